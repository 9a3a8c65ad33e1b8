"""One interface for every engine: launch into the lab, open a page, drive it, close.

A scenario and `Softphone` only ever see `Page`; whether Playwright (CDP, BiDi) or Selenium
(WebDriver) is underneath is the engine's business.
"""

from __future__ import annotations

import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class BrowserMissing(RuntimeError):
    """The engine (or its driver) is not installed; the message says what to install."""


class PageTimeout(TimeoutError):
    """A `wait_for` condition did not come true in time."""


@dataclass(frozen=True)
class BrowserSpec:
    """A matrix column: an engine, optionally emulating a device or a slow CPU.

    `{name: chromium-pixel7, engine: chromium, device: "Pixel 7", cpu_throttle: 4}` is a column
    of its own beside plain `chromium`."""

    name: str
    engine: str
    device: str | None = None
    cpu_throttle: float | None = None
    executable: str | None = None
    channel: str | None = None
    driver: str | None = None  # webkit: "playwright" (Playwright's WebKit) or "webkitgtk"; default: whichever is installed
    audio: str = "pulse"  # "pulse" (virtual devices) or "fake" (the engine's own fake capture)


@dataclass
class LaunchContext:
    """What an engine needs to know about the lab it launches into."""

    netns: str
    page_origin: str
    workdir: Path
    mic_wav: Path
    exclude_host: str = ""  # the lab host that name rules must leave resolvable
    env: dict[str, str] = field(default_factory=dict)  # e.g. PULSE_SERVER for the audio server
    scratch: Path | None = None  # the lab's private folder, swept with it: for what must not outlive the run


class Page(Protocol):
    """The small page interface scenarios use; Playwright and Selenium both implement it."""

    driver: str

    def goto(self, url: str, timeout_s: float = 15.0) -> None: ...

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Playwright semantics: a JS function source is called with `arg` (awaited if it
        returns a promise); any other expression's value is returned. Values are JSON."""

    def wait_for(self, expression: str, arg: Any = None, timeout_s: float = 10.0) -> Any:
        """Poll a JS function/expression until it is truthy; return that value, or raise PageTimeout."""

    def console(self) -> list[str]:
        """Console lines and page errors so far, as "type: text"."""

    def screenshot(self, path: Path) -> Path: ...

    def close(self) -> None: ...


class RunningBrowser(ABC):
    """A launched browser. One per engine per run; a fresh context (profile state) per page."""

    driver: str  # "playwright-cdp", "playwright-bidi", "playwright-webkit", "webdriver"
    version: str
    trace: bool = False  # keep a Playwright trace of each page, for the evidence of a failed cell
    audio: str | None = None  # set where the engine ignores the column's audio mode
    process_roots: tuple[int, ...] = ()  # its process trees, for the process sampler; () when not ours

    @abstractmethod
    def new_page(self, context_args: dict | None = None, lifecycle: bool = False) -> Page:
        """A fresh page (and profile state). `lifecycle`: one that can go to the background
        (`page.lifecycle` is then set; it stays None where the engine cannot)."""

    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def cdp(self, page: Page):
        """A CDP session for this page, where the engine has one; None elsewhere."""
        return None


class Engine(ABC):
    """A browser engine's launch recipe and facts."""

    name: str
    binaries: tuple[str, ...] = ()
    package: str = ""
    uses_audio_server = True  # False: the engine captures from its own mock devices whatever it is given

    def binary(self, spec: BrowserSpec | None = None) -> str:
        if spec and spec.executable:
            if shutil.which(spec.executable) or Path(spec.executable).is_file():
                return shutil.which(spec.executable) or spec.executable
            raise BrowserMissing(f"browser {spec.name!r}: executable {spec.executable!r} does not exist; "
                                 f"fix 'executable' in the matrix or --browser-executable")
        for candidate in self.binaries:
            found = shutil.which(candidate)
            if found:
                return found
        raise BrowserMissing(f"browser {self.name!r}: none of {', '.join(self.binaries)} is installed; "
                             f"install it with `apt-get install {self.package}` (or `make setup`)")

    def version(self, spec: BrowserSpec | None = None) -> str:
        out = subprocess.run([self.binary(spec), "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or out.stderr.strip()

    @abstractmethod
    def launch(self, playwright, ctx: LaunchContext, spec: BrowserSpec, overrides: dict) -> RunningBrowser:
        """Start the browser inside ctx.netns. `playwright` is a driver already running in that namespace."""


def device_context_args(playwright, spec: BrowserSpec) -> dict:
    """Playwright's descriptor for the emulated device (viewport, user agent, touch)."""
    if not spec.device:
        return {}
    devices = playwright.devices
    if spec.device not in devices:
        near = [d for d in devices if spec.device.lower().split()[0] in d.lower()][:6]
        raise BrowserMissing(f"browser {spec.name!r}: device {spec.device!r} is not one of Playwright's "
                             f"device descriptors; fix 'device' in the matrix" +
                             (f" (close: {', '.join(near)})" if near else ""))
    return {k: v for k, v in devices[spec.device].items() if k != "default_browser_type"}

"""The `webkit` engine: two drivers behind one name.

- Playwright's WebKit (`driver = "playwright-webkit"`), where someone ran `playwright install webkit`:
  it has RTCPeerConnection. It cannot be downloaded on the machines this project was built on,
  so its recipe below is written from Playwright 1.64.1's own code (its WebKit maps the
  `microphone` permission, and its build answers getUserMedia with mock capture streams gated
  on granted permissions), not measured here.
- Debian's WebKitGTK over WebDriver (`driver = "webdriver"`, see webkitgtk.py), used when
  Playwright's WebKit is absent. That build has no RTCPeerConnection: a finding, not a failure.

`BrowserSpec.driver` picks one: "playwright" / "playwright-webkit", or "webkitgtk" / "webdriver";
unset means Playwright's WebKit if it is installed, else WebKitGTK.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from harness.engines.base import BrowserMissing, BrowserSpec, Engine, LaunchContext, RunningBrowser

PLAYWRIGHT = "playwright-webkit"
WEBKITGTK = "webkitgtk"
DRIVER_ALIASES = {"playwright": PLAYWRIGHT, "playwright-webkit": PLAYWRIGHT,
                  "webkitgtk": WEBKITGTK, "webdriver": WEBKITGTK}
PLAYWRIGHT_WEBKIT_FIX = ("pip's playwright can fetch it on a machine with internet: `playwright install webkit` "
                         "(and `playwright install-deps webkit`); without it, Debian's WebKitGTK is used "
                         "(`apt-get install webkit2gtk-driver xvfb`), which has no RTCPeerConnection")
MEDIA_PERMISSIONS = ["microphone"]


def playwright_webkit_executable(playwright=None) -> Path:
    """Where Playwright's WebKit lives, whether or not it is there.

    With a running Playwright this is `playwright.webkit.executable_path` (authoritative); without
    one (e.g. `doctor`), the same path is worked out as Playwright's registry does it:
    PLAYWRIGHT_BROWSERS_PATH ("0" = inside the package), else ~/.cache/ms-playwright, then
    webkit-<revision from the driver's browsers.json>/pw_run.sh."""
    if playwright is not None:
        return Path(playwright.webkit.executable_path)
    import playwright as package

    driver = Path(package.__file__).parent / "driver" / "package"
    revision = next(b["revision"] for b in json.loads((driver / "browsers.json").read_text())["browsers"]
                    if b["name"] == "webkit")
    env = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if env == "0":
        root = driver / ".local-browsers"
    elif env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ms-playwright"
    return root / f"webkit-{revision}" / "pw_run.sh"


def has_playwright_webkit(playwright=None, executable: str | None = None) -> bool:
    path = Path(executable) if executable else playwright_webkit_executable(playwright)
    return path.is_file()


def doctor_row() -> tuple[str, bool, str, str]:
    """(what, ok, found, fix) for `rtcmatrix doctor`: WebKitGTK alone runs, but cannot call."""
    path = playwright_webkit_executable()
    found = path.is_file()
    return ("Playwright WebKit (WebKit with WebRTC)", found, str(path) if found else f"missing ({path})",
            PLAYWRIGHT_WEBKIT_FIX)


def requested_driver(spec: BrowserSpec | None) -> str | None:
    """The driver a column asks for: its `driver`, else what its `executable` is (a MiniBrowser
    means WebKitGTK, anything else Playwright's WebKit), else None (whichever is installed)."""
    if spec is None:
        return None
    if spec.driver:
        if spec.driver not in DRIVER_ALIASES:
            raise BrowserMissing(f"browser {spec.name!r}: unknown webkit driver {spec.driver!r}; "
                                 f"use one of {', '.join(DRIVER_ALIASES)}")
        return DRIVER_ALIASES[spec.driver]
    if spec.executable:
        return WEBKITGTK if Path(spec.executable).name == "MiniBrowser" else PLAYWRIGHT
    return None


def choose_driver(requested: str | None, playwright_present: bool, webkitgtk_present: bool) -> str:
    """PLAYWRIGHT or WEBKITGTK, or BrowserMissing saying what to install. Playwright's WebKit wins
    when nothing is asked for, because it has WebRTC."""
    if requested == PLAYWRIGHT or (requested is None and playwright_present):
        if playwright_present:
            return PLAYWRIGHT
        raise BrowserMissing(f"Playwright's WebKit is not installed; {PLAYWRIGHT_WEBKIT_FIX}")
    if webkitgtk_present:
        return WEBKITGTK
    if requested == WEBKITGTK:
        raise BrowserMissing("WebKitGTK is not installed; `apt-get install webkit2gtk-driver xvfb`")
    raise BrowserMissing(f"no WebKit is installed. Playwright's WebKit: {PLAYWRIGHT_WEBKIT_FIX}")


def playwright_launch_args(ctx: LaunchContext, spec: BrowserSpec, overrides: dict | None = None) -> dict:
    """`playwright.webkit.launch(**this)`. No media flags: Playwright's WebKit answers getUserMedia
    with its mock capture once the context grants the permission, and has no autoplay switch
    (media that is capturing or playing a MediaStream may autoplay in WebKit). Not measured here:
    whether it allows getUserMedia on the lab's plain-http origin (WebKitGTK needed
    `-MediaCaptureRequiresSecureConnection` for that)."""
    overrides = dict(overrides or {})
    args = {"headless": True, "env": {**os.environ, **ctx.env, **overrides.pop("env", {})}}
    if spec.executable:
        args["executable_path"] = spec.executable
    return {**args, **overrides}


def playwright_context_args(context_args: dict | None = None, device_args: dict | None = None) -> dict:
    """`browser.new_context(**this)`: the microphone is granted up front (the same grant as
    `context.grant_permissions(["microphone"])`), merged with whatever the caller asked for."""
    merged = {**(device_args or {}), **(context_args or {})}
    merged["permissions"] = list(dict.fromkeys([*merged.get("permissions", []), *MEDIA_PERMISSIONS]))
    return merged


class PlaywrightWebKitBrowser(RunningBrowser):
    """Playwright's WebKit, launched by the Playwright driver that already runs in the client namespace."""

    driver = PLAYWRIGHT
    audio = "mock capture devices"

    def __init__(self, playwright, ctx: LaunchContext, spec: BrowserSpec, overrides: dict):
        self.spec = spec
        self.trace = False
        self.browser = playwright.webkit.launch(**playwright_launch_args(ctx, spec, overrides))
        self.version = f"Playwright WebKit {self.browser.version}"
        self.device_args = {}
        if spec.device:
            if spec.device not in playwright.devices:
                self.browser.close()
                raise BrowserMissing(f"browser {spec.name!r}: device {spec.device!r} is not one of Playwright's "
                                     f"device descriptors; fix 'device' in the matrix")
            self.device_args = {k: v for k, v in playwright.devices[spec.device].items()
                                if k != "default_browser_type"}

    def new_page(self, context_args: dict | None = None, lifecycle: bool = False):
        from harness.engines.playwright_page import PlaywrightPage  # the shared Playwright `Page`

        context = self.browser.new_context(**playwright_context_args(context_args, self.device_args))
        return PlaywrightPage(context, self.driver, trace=self.trace)  # no lifecycle control in WebKit

    def is_connected(self) -> bool:
        return self.browser.is_connected()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()


class WebKit(Engine):
    uses_audio_server = False  # both drivers capture from WebKit's own mock devices
    name = "webkit"
    binaries = ("WebKitWebDriver",)
    package = "webkit2gtk-driver xvfb"

    def driver_for(self, spec: BrowserSpec | None = None, playwright=None) -> str:
        """PLAYWRIGHT or WEBKITGTK for this column (BrowserMissing if neither can run it)."""
        from harness.engines import webkitgtk

        requested = requested_driver(spec)
        pw_exe = spec.executable if spec and requested == PLAYWRIGHT else None
        try:
            webkitgtk.tools(spec if requested == WEBKITGTK else None)
            gtk = True
        except BrowserMissing:
            gtk = False
        return choose_driver(requested, has_playwright_webkit(playwright, pw_exe), gtk)

    def binary(self, spec: BrowserSpec | None = None) -> str:
        from harness.engines import webkitgtk

        if self.driver_for(spec) == PLAYWRIGHT:
            return (spec.executable if spec and spec.executable else None) or str(playwright_webkit_executable())
        return webkitgtk.tools(spec if requested_driver(spec) == WEBKITGTK else None)[1]

    def version(self, spec: BrowserSpec | None = None) -> str:
        """Without starting anything (Xvfb would be needed for MiniBrowser --version)."""
        from harness.engines import webkitgtk

        if self.driver_for(spec) == PLAYWRIGHT:
            return f"Playwright WebKit at {self.binary(spec)}"
        found = webkitgtk.package_version(self.binary(spec))
        other = "installed, not chosen" if has_playwright_webkit() else "not installed"
        return (f"WebKitGTK {found or '(version unknown)'} over WebDriver (no RTCPeerConnection); "
                f"Playwright's WebKit: {other}")

    def launch(self, playwright, ctx: LaunchContext, spec: BrowserSpec, overrides: dict) -> RunningBrowser:
        if spec.cpu_throttle:
            raise BrowserMissing(f"browser {spec.name!r}: no WebKit driver can throttle the CPU; "
                                 f"drop cpu_throttle from the matrix")
        if self.driver_for(spec, playwright) == PLAYWRIGHT:
            return PlaywrightWebKitBrowser(playwright, ctx, spec, dict(overrides))
        from harness.engines.webkitgtk import WebKitGTKBrowser

        if spec.device:
            raise BrowserMissing(f"browser {spec.name!r}: device emulation needs Playwright's WebKit; "
                                 f"{PLAYWRIGHT_WEBKIT_FIX}")
        return WebKitGTKBrowser(ctx, spec, extra_args=list(overrides.get("args", [])))

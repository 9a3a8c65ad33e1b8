"""Debian's WebKitGTK (MiniBrowser) over WebDriver, entirely inside the lab's client namespace.

Why it is built this way (each point measured on this machine):
- Xvfb, WebKitWebDriver and MiniBrowser all run in the client namespace (`ip netns exec`), so the
  lab link is the browser's only route and the sweep finds leftovers by namespace.
- WebKitWebDriver listens on the namespace's own loopback, which the harness cannot dial from the
  host namespace. Every Selenium call therefore runs on one thread that has entered the namespace
  (`NetnsWorker`): sockets keep the namespace of the thread that made them.
- `--host=local` (the default) fails there ("Unable to listen"), because IPv6 is off in lab
  namespaces: the driver is told `--host=127.0.0.1`.
- The page is plain http on a lab address: `-MediaCaptureRequiresSecureConnection` is enough for
  `navigator.mediaDevices` and getUserMedia (the page stays a non-secure context). The mock
  devices need no prompt under automation.
- One page = one WebKitWebDriver + one MiniBrowser (a fresh automation session, whose website
  data is ephemeral, and fresh XDG dirs): about a second, so every page gets its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import psutil

from harness.engines.base import BrowserMissing, BrowserSpec, LaunchContext, PageTimeout, RunningBrowser
from harness.engines.xvfb import NetnsWorker, Xvfb, netns_prefix, stop_tree, xvfb_binary

T = TypeVar("T")
APT_FIX = "apt-get install webkit2gtk-driver xvfb"
MINIBROWSER_GLOBS = ("/usr/lib/*/webkit2gtk-4.*/MiniBrowser", "/usr/libexec/webkit2gtk-4.*/MiniBrowser",
                     "/usr/lib/webkit2gtk-4.*/MiniBrowser")
FEATURES = ("-MediaCaptureRequiresSecureConnection",  # getUserMedia on the lab's plain-http origin
            "-GetUserMediaRequiresFocus")  # defensive: Xvfb has no window manager to give focus


def minibrowser_args() -> list[str]:
    # Given args replace WebKitWebDriver's default ["--automation"]; without it no session starts (measured).
    return ["--automation", "--enable-mock-capture-devices=true", "--features=" + ",".join(FEATURES),
            "--autoplay-policy=allow", "--media-playback-requires-user-gesture=false", "--enable-media-stream=true",
            "--enable-webrtc=true"]  # no effect on Debian's build (no RTCPeerConnection); on where a build has it


def find_minibrowser() -> str | None:
    found = sorted(p for pattern in MINIBROWSER_GLOBS for p in glob.glob(pattern))
    return found[-1] if found else None


def tools(spec: BrowserSpec | None = None) -> tuple[str, str, str]:
    """(WebKitWebDriver, MiniBrowser, Xvfb), or BrowserMissing saying what to install."""
    driver, xvfb = shutil.which("WebKitWebDriver"), xvfb_binary()
    browser = spec.executable if spec and spec.executable else find_minibrowser()
    if spec and spec.executable and not Path(spec.executable).is_file():
        raise BrowserMissing(f"browser {spec.name!r}: MiniBrowser {spec.executable!r} does not exist; "
                             f"fix 'executable' in the matrix")
    missing = [name for name, path in (("WebKitWebDriver", driver), ("MiniBrowser", browser), ("Xvfb", xvfb))
               if not path]
    if missing:
        raise BrowserMissing(f"WebKitGTK: {', '.join(missing)} not installed; `{APT_FIX}`")
    return driver, browser, xvfb  # type: ignore[return-value]


def package_version(path: str) -> str:
    """The Debian package version of the file at `path`, without starting anything (for `doctor`)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        owner = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True, timeout=10).stdout
        pkg = owner.split(":")[0].strip()
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    return ""


class ScriptError(RuntimeError):
    """A JS exception (or rejected promise) in `evaluate`; the message is the page's own."""


class WebKitGTKBrowser(RunningBrowser):
    """Xvfb in the client namespace, and a fresh WebKitWebDriver + MiniBrowser per page.

    `WebKitGTKBrowser(ctx)` starts Xvfb; `new_page()` starts the rest; `close()` stops it all."""

    driver = "webdriver"
    audio = "mock capture devices"  # WebKitGTK's own; it does not use the column's audio server

    def __init__(self, ctx: LaunchContext, spec: BrowserSpec | None = None, extra_args: list[str] | None = None,
                 script_timeout_s: float = 300.0):
        self.ctx, self.spec = ctx, spec
        self.driver_bin, self.browser_bin, _ = tools(spec)
        self.args = minibrowser_args() + list(extra_args or [])
        self.script_timeout_s = script_timeout_s
        self.trace = False  # set by the plugin; WebDriver has no trace
        self.root = ctx.workdir / f"webkitgtk-{os.getpid()}-{id(self):x}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.pages: list = []
        self._count = 0
        self._closed = False
        self.xvfb = Xvfb(ctx.netns, self.root / "xvfb.log").start()
        self.version = self._version()

    def _version(self) -> str:
        """"WebKitGTK 2.50.6": from the package when dpkg owns the binary (fast), else `MiniBrowser
        --version`, which needs the display and costs ~0.6 s (GTK start-up)."""
        if packaged := package_version(self.browser_bin):
            return "WebKitGTK " + packaged.split(":")[-1].split("-")[0]
        try:
            out = subprocess.run([*netns_prefix(self.ctx.netns), self.browser_bin, "--version"],
                                 env=self.env(self.root), capture_output=True, text=True, timeout=20)
            return out.stdout.strip() or "WebKitGTK (version unknown)"
        except BaseException:
            self.xvfb.stop()
            raise

    def env(self, home: Path) -> dict[str, str]:
        """The audio server (ctx.env) and the display; HOME and XDG dirs of the page's own.
        GStreamer's plugin registry is shared per browser: it is a cache, not profile state."""
        dirs = {"HOME": home, "XDG_DATA_HOME": home / "data", "XDG_CACHE_HOME": home / "cache",
                "XDG_CONFIG_HOME": home / "config", "XDG_RUNTIME_DIR": home / "runtime"}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return {**os.environ, **self.ctx.env, "DISPLAY": self.xvfb.display,
                "GST_REGISTRY": str(self.root / "gst-registry.bin"), **{k: str(v) for k, v in dirs.items()}}

    def new_page(self, context_args: dict | None = None, lifecycle: bool = False):
        """A fresh session. `viewport` sets the window size; other Playwright context options have no
        WebDriver equivalent and are kept in `page.ignored_context_args`. No lifecycle control here."""
        if self._closed:
            raise RuntimeError("this WebKitGTK browser is closed")
        self._count += 1
        page = WebKitGTKPage(self, self.root / f"page-{self._count}", context_args or {})
        self.pages.append(page)
        return page

    def is_connected(self) -> bool:
        return not self._closed and self.xvfb.alive()

    def close(self) -> None:
        self._closed = True
        for page in list(self.pages):
            with contextlib.suppress(Exception):
                page.close()
        self.xvfb.stop()


# Playwright's evaluate, over WebDriver's execute-script (which awaits a returned promise):
# a function source is called with the argument; any other expression's value is returned.
EVALUATE_JS = """const [expression, arg] = arguments;
let value = (0, eval)(expression);
if (typeof value === "function") value = value(arg);
return Promise.resolve(value).then((v) => (v === undefined ? null : v));"""
FUNCTION_KEYWORD = re.compile(r"^(async\s+)?function[\s(]")

# WebKitGTK's WebDriver gives no console events: mirror console.* and page errors into an array.
CONSOLE_HOOK_JS = """if (!window.__rtcmConsole) {
  const lines = (window.__rtcmConsole = []);
  const text = (a) => { try { return typeof a === "string" ? a : a instanceof Error ? String(a)
                                     : JSON.stringify(a) ?? String(a); } catch (e) { return String(a); } };
  for (const type of ["log", "info", "warn", "error", "debug"]) {
    const original = console[type].bind(console);
    console[type] = (...args) => { lines.push((type === "warn" ? "warning" : type) + ": " + args.map(text).join(" "));
                                   original(...args); };
  }
  addEventListener("error", (e) => lines.push("pageerror: " + ((e.error && e.error.message) || e.message)));
  addEventListener("unhandledrejection",
                   (e) => lines.push("pageerror: " + ((e.reason && e.reason.message) || e.reason)));
}
return window.__rtcmConsole.splice(0);"""


class WebKitGTKPage:
    """One page: its own WebKitWebDriver, MiniBrowser session and NetnsWorker thread.

    `console()` sees lines from the hook that `goto` injects after each load: lines a page logs
    before the hook (while it loads) are lost, and so are those after it navigates by itself,
    until the next `console()` or `goto` puts the hook back. (MiniBrowser's
    `--enable-write-console-messages-to-stdout` printed nothing into WebKitWebDriver's log here.)"""

    driver = "webdriver"
    lifecycle = None  # no backgrounding over WebDriver
    cdp = None

    def __init__(self, owner: WebKitGTKBrowser, home: Path, context_args: dict):
        from selenium import webdriver
        from selenium.webdriver import WebKitGTKOptions
        from selenium.webdriver.common.proxy import Proxy, ProxyType
        from selenium.webdriver.remote.client_config import ClientConfig
        from selenium.webdriver.remote.remote_connection import RemoteConnection

        self.owner, self.home = owner, home
        self._console: list[str] = []
        self.ignored_context_args = {k: v for k, v in context_args.items() if k != "viewport"}
        self.worker: NetnsWorker | None = None
        self.proc: subprocess.Popen | None = None
        self.session: Any = None
        self._seen: list[psutil.Process] = []
        try:
            self.worker = NetnsWorker(owner.ctx.netns)
            port = self.worker.free_port()
            env = owner.env(home)
            with open(home / "webdriver.log", "ab") as log:
                self.proc = subprocess.Popen(
                    [*netns_prefix(owner.ctx.netns), owner.driver_bin, f"--port={port}", "--host=127.0.0.1"],
                    env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            self.worker.wait_listening(port, self.proc, timeout_s=10)
            options = WebKitGTKOptions()
            options.binary_location = owner.browser_bin
            for arg in owner.args:
                options.add_argument(arg)
            url = f"http://127.0.0.1:{port}"
            config = ClientConfig(url, proxy=Proxy({"proxyType": ProxyType.DIRECT["string"]}), timeout=60)
            self.session = self.worker.call(lambda: webdriver.Remote(RemoteConnection(client_config=config),
                                                                     options=options))
            self.capabilities: dict = dict(self.session.capabilities)
            self.worker.call(self.session.set_script_timeout, owner.script_timeout_s)
            if viewport := context_args.get("viewport"):
                self.worker.call(self.session.set_window_size, viewport["width"], viewport["height"])
            with contextlib.suppress(psutil.Error):
                self._seen = psutil.Process(self.proc.pid).children(recursive=True)
        except BaseException:
            self.close()
            raise

    def _run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """On the namespace thread. The driver's own timeouts bound each call; the margin here only
        catches a driver that stopped answering."""
        from selenium.common.exceptions import JavascriptException

        try:
            return self.worker.call(fn, *args, timeout_s=timeout_s or self.owner.script_timeout_s + 30)
        except JavascriptException as err:
            raise ScriptError(re.sub(r"^Message: ", "", err.msg or str(err)).strip()) from None

    def goto(self, url: str, timeout_s: float = 15.0) -> None:
        from selenium.common.exceptions import TimeoutException

        self._drain()
        self._run(self.session.set_page_load_timeout, timeout_s)
        try:
            self._run(self.session.get, url, timeout_s=timeout_s + 30)
        except TimeoutException:
            raise PageTimeout(f"page did not load within {timeout_s:g} s: {url}") from None
        self._drain()  # installs the hook in the new document

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Playwright's semantics (see base.Page); a JS exception or rejection raises ScriptError with
        the page's message. A promise may take up to the browser's `script_timeout_s` (300 s)."""
        from selenium.common.exceptions import TimeoutException

        expression = expression.strip()
        if FUNCTION_KEYWORD.match(expression):
            expression = f"({expression})"
        try:
            return self._run(self.session.execute_script, EVALUATE_JS, expression, arg)
        except TimeoutException:
            raise PageTimeout(f"no result within {self.owner.script_timeout_s:g} s: {expression[:200]}") from None

    def wait_for(self, expression: str, arg: Any = None, timeout_s: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression, arg)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise PageTimeout(f"not true within {timeout_s:g} s: {expression}")
            time.sleep(0.1)

    def _drain(self) -> None:
        with contextlib.suppress(Exception):
            self._console += self._run(self.session.execute_script, CONSOLE_HOOK_JS) or []

    def console(self) -> list[str]:
        """Console lines and page errors so far, as "type: text" (see the class docstring for gaps)."""
        if self.session is not None:
            self._drain()
        return list(self._console)

    def screenshot(self, path: Path) -> Path:
        png = self._run(self.session.get_screenshot_as_png)
        Path(path).write_bytes(png)
        return Path(path)

    def close(self) -> None:
        """End the session, then the driver and every browser process; return when all are gone."""
        session, self.session = self.session, None
        if self.proc is not None:  # before quit: MiniBrowser's helpers are reparented once it exits
            with contextlib.suppress(psutil.Error):
                self._seen += psutil.Process(self.proc.pid).children(recursive=True)
        if session is not None:
            with contextlib.suppress(Exception):
                self.worker.call(session.quit, timeout_s=10)
        if self.proc is not None:
            stop_tree(self.proc, self._seen)
            self.proc = None
        if self.worker is not None:
            self.worker.shutdown()
        with contextlib.suppress(ValueError):
            self.owner.pages.remove(self)

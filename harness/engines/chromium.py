"""Chromium (Debian's), driven by Playwright over CDP.

Two ways in, one recipe: pages come from a Playwright-launched browser (a fresh context each);
a page that must go to the background comes from a second instance that rtcmatrix starts itself
and joins with `connect_over_cdp(no_defaults=True)`. Measured: under Playwright's own launch the
page stays `visible` whatever the window does, because Playwright emulates focus.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import Browser, Playwright

from harness.engines.base import BrowserMissing, BrowserSpec, Engine, LaunchContext, RunningBrowser, device_context_args
from harness.engines.playwright_page import PlaywrightPage

DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
# A --disable-features switch of ours replaces Playwright's own (only the last one counts), so its
# list (Playwright 1.64.1) is repeated here. WebRtcHideLocalIpsWithMdns: measured, Chromium's mDNS
# responder joins 224.0.0.251 during a call with real audio devices, an IGMP report off the lab.
PLAYWRIGHT_DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "DialMediaRouteProvider",
    "GlobalMediaControls", "HttpsUpgrades", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "BlockOriginHeaderModificationOnRedirect",
    "AvoidCorsURLLoaderRestartOnRedirect", "Translate", "AutoDeElevate", "OptimizationHints",
    "NetworkTimeServiceQuerying", "AimEnabled",
]
DISABLED_FEATURES = PLAYWRIGHT_DISABLED_FEATURES + ["WebRtcHideLocalIpsWithMdns"]


def chromium_args(ctx: LaunchContext, spec: BrowserSpec) -> list[str]:
    args = [
        "--use-fake-ui-for-media-stream",  # grants the microphone without a prompt
        "--autoplay-policy=no-user-gesture-required",
        f"--unsafely-treat-insecure-origin-as-secure={ctx.page_origin}",  # the page is plain http on a lab address
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-features=" + ",".join(DISABLED_FEATURES),
        # Anything outside the lab fails at once instead of waiting on DNS (STUN, telemetry, an SDK's own hosts).
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {ctx.exclude_host}" if ctx.exclude_host
        else "--host-resolver-rules=MAP * ~NOTFOUND",
    ]
    if spec.audio == "fake":
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={ctx.mic_wav}"]
    return args


class ChromiumBrowser(RunningBrowser):
    driver = "playwright-cdp"

    def __init__(self, engine: "Chromium", playwright: Playwright, ctx: LaunchContext, spec: BrowserSpec,
                 overrides: dict):
        self.engine, self.playwright, self.ctx, self.spec = engine, playwright, ctx, spec
        self.args = chromium_args(ctx, spec) + list(overrides.pop("args", []))
        self.overrides = overrides
        self.trace = False
        if spec.audio == "pulse":
            # Playwright's default --mute-audio would leave the virtual speakers recording silence.
            from harness.audio.pulse import CHROMIUM_IGNORE_DEFAULT_ARGS

            overrides.setdefault("ignore_default_args", CHROMIUM_IGNORE_DEFAULT_ARGS)
        self.browser: Browser = playwright.chromium.launch(
            executable_path=engine.binary(spec), channel=spec.channel, headless=True, args=self.args,
            env={**os.environ, **ctx.env}, **overrides)
        self.version = self.browser.version
        self.device_args = device_context_args(playwright, spec)
        self._lifecycle: _SelfLaunched | None = None
        self.cpu_slowdown: float | None = None

    def new_page(self, context_args: dict | None = None, lifecycle: bool = False) -> PlaywrightPage:
        args = {**self.device_args, **(context_args or {})}
        if lifecycle:
            if self._lifecycle is None:
                self._lifecycle = _SelfLaunched(self)
            page = self._lifecycle.new_page()
            page.cdp = page.context.new_cdp_session(page.page)
            _emulate(page.cdp, args)  # its default context cannot take context arguments: CDP can
        else:
            page = PlaywrightPage(self.browser.new_context(**args), self.driver, trace=self.trace)
            page.cdp = page.context.new_cdp_session(page.page)
        if self.spec.cpu_throttle:
            if self.cpu_slowdown is None:
                self.cpu_slowdown = measure_slowdown(page, float(self.spec.cpu_throttle))
            page.cdp.send("Emulation.setCPUThrottlingRate", {"rate": float(self.spec.cpu_throttle)})
        return page

    def is_connected(self) -> bool:
        return self.browser.is_connected()

    def close(self) -> None:
        if self._lifecycle:
            self._lifecycle.close()
            self._lifecycle = None
        with contextlib.suppress(Exception):
            self.browser.close()


def _emulate(cdp, args: dict) -> None:
    """The device part of Playwright's context arguments, sent over CDP to one page."""
    viewport = args.get("viewport")
    if viewport:
        cdp.send("Emulation.setDeviceMetricsOverride", {
            "width": viewport["width"], "height": viewport["height"],
            "deviceScaleFactor": args.get("device_scale_factor", 1), "mobile": bool(args.get("is_mobile"))})
    if args.get("user_agent"):
        cdp.send("Emulation.setUserAgentOverride", {"userAgent": args["user_agent"]})
    if args.get("has_touch"):
        cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    unknown = set(args) - {"viewport", "screen", "user_agent", "has_touch", "device_scale_factor", "is_mobile"}
    if unknown:
        raise BrowserMissing(f"a page that goes to the background takes only device emulation; "
                             f"drop {', '.join(sorted(unknown))} from browser_context_args for it")


# A fixed piece of script work, long enough (about 40 ms plain) that Chromium's throttle, which
# suspends the page in short slices, averages out.
SCRIPT_WORK_JS = """() => { let x = 0; const t0 = performance.now();
  for (let i = 0; i < 1e7; i++) x += Math.sqrt(i);
  return x > 0 ? performance.now() - t0 : null; }"""


def measure_slowdown(page: PlaywrightPage, rate: float, pairs: int = 5) -> float:
    """How much slower the page's script runs at `rate`: the median of plain/throttled pairs timed
    back to back, so a busy host weighs on both halves of each pair alike (two columns timed
    apart read 1.9x for 4 in a loaded CI run)."""
    page.evaluate(SCRIPT_WORK_JS)  # the JIT's first pass
    ratios = []
    for _ in range(pairs):
        page.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1.0})
        plain = page.evaluate(SCRIPT_WORK_JS)
        page.cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        ratios.append(page.evaluate(SCRIPT_WORK_JS) / plain)
    return round(sorted(ratios)[len(ratios) // 2], 2)


class _SelfLaunched:
    """A Chromium started by rtcmatrix in the client namespace, joined over CDP without
    Playwright's defaults, so that minimising its window really hides the page."""

    def __init__(self, owner: ChromiumBrowser):
        ctx = owner.ctx
        self.profile = ctx.workdir / f"chromium-lifecycle-{owner.spec.name}-{os.getpid()}"  # one profile per instance
        # Chromium's singleton socket goes in TMPDIR: in the lab's folder, a killed run's is swept with the lab.
        # (A short path: a socket's is at most 107 bytes, which the run's output folder can exceed.)
        self.tmp = Path(tempfile.mkdtemp(prefix="chromium-", dir=ctx.scratch))
        cmd = ["ip", "netns", "exec", ctx.netns, owner.engine.binary(owner.spec), "--headless",
               "--remote-debugging-port=0", f"--user-data-dir={self.profile}", *owner.args, "about:blank"]
        if os.geteuid() == 0:
            cmd.insert(5, "--no-sandbox")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **ctx.env, "TMPDIR": str(self.tmp)}, start_new_session=True)
        endpoint = self._endpoint(timeout_s=20)
        self.browser = owner.playwright.chromium.connect_over_cdp(endpoint, no_defaults=True)
        self.driver = "playwright-cdp (connected)"

    def _endpoint(self, timeout_s: float) -> str:
        found: list[str] = []

        def read():
            for line in self.proc.stderr:
                if not found and (m := DEVTOOLS.search(line)):
                    found.append(m.group(1))  # keep draining, or Chromium blocks on a full pipe

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not found and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        if not found:
            self.close()
            raise RuntimeError("Chromium started for backgrounding printed no DevTools endpoint")
        return found[0]

    def new_page(self) -> PlaywrightPage:
        page = PlaywrightPage(self.browser.contexts[0], self.driver, own_context=False)
        page.lifecycle = ChromiumLifecycle(self.browser, page)
        return page

    def close(self) -> None:
        with contextlib.suppress(Exception):
            # Browser.close shuts Chromium down as a user would; browser.close() only disconnects from it.
            self.browser.new_browser_cdp_session().send("Browser.close")
            self.browser.close()
            self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        for folder in (self.profile, self.tmp):  # a browser profile, not evidence
            shutil.rmtree(folder, ignore_errors=True)


class ChromiumLifecycle:
    """Backgrounding as a user does it: minimise the window (page `hidden`), then let the
    browser freeze the page (timers stop), and bring it back."""

    can_freeze = True

    def __init__(self, browser: Browser, page: PlaywrightPage):
        self.browser_cdp = browser.new_browser_cdp_session()
        self.page = page

    def _window(self, state: str) -> None:
        window = self.page.cdp.send("Browser.getWindowForTarget")["windowId"]
        self.browser_cdp.send("Browser.setWindowBounds", {"windowId": window, "bounds": {"windowState": state}})

    def hide(self) -> None:
        self._window("minimized")

    def show(self) -> None:
        self._window("normal")

    def freeze(self) -> None:
        self.page.cdp.send("Page.setWebLifecycleState", {"state": "frozen"})

    def resume(self) -> None:
        self.page.cdp.send("Page.setWebLifecycleState", {"state": "active"})


class Chromium(Engine):
    name = "chromium"
    binaries = ("chromium", "chromium-browser")
    package = "chromium"

    def launch(self, playwright: Playwright, ctx: LaunchContext, spec: BrowserSpec, overrides: dict) -> ChromiumBrowser:
        return ChromiumBrowser(self, playwright, ctx, spec, dict(overrides))

"""Firefox ESR (Debian's), driven by Playwright over WebDriver BiDi.

Stock Firefox speaks BiDi, not Playwright's patched Juggler protocol: `channel="moz-firefox"`
with Debian's binary. Playwright 1.64.1 works; 1.65 breaks `new_context` here.
"""

from __future__ import annotations

import contextlib
import os

from playwright.sync_api import Browser, Error as PlaywrightError, Playwright

from harness.engines.base import BrowserSpec, Engine, LaunchContext, RunningBrowser, device_context_args
from harness.engines.playwright_page import PlaywrightPage

# Media without prompts over plain http from a lab address, and a browser that keeps quiet.
BASE_PREFS: dict = {
    "media.navigator.permission.disabled": True,
    "media.devices.insecure.enabled": True,
    "media.getusermedia.insecure.enabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.setsinkid.enabled": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.trr.mode": 5,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "app.update.auto": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "browser.region.update.enabled": False,
    "browser.newtabpage.enabled": False,
    # The harness backgrounds a page by opening a tab in front of it (FirefoxLifecycle): a tab, not a window.
    "browser.link.open_newwindow": 3,
    "browser.link.open_newwindow.restriction": 0,
    "dom.disable_open_during_load": False,
    # Takes effect only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (set in the environment below).
    "services.settings.server": "http://127.0.0.1:9/v1",
}
FAKE_PREFS = {"media.navigator.streams.fake": True, "media.navigator.audio.fake_frequency": 440}


def firefox_prefs(spec: BrowserSpec, extra: dict | None = None, origin: str | None = None) -> dict:
    """`origin`: the lab page, treated as a secure context (as Chromium's
    --unsafely-treat-insecure-origin-as-secure does); setSinkId is [SecureContext]."""
    from harness.audio import pulse

    prefs = {**BASE_PREFS, **pulse.firefox_prefs(origin)}
    if spec.audio == "fake":
        prefs.update(FAKE_PREFS)
    prefs.update(extra or {})
    return prefs


class FirefoxBrowser(RunningBrowser):
    driver = "playwright-bidi"

    def __init__(self, engine: "Firefox", playwright: Playwright, ctx: LaunchContext, spec: BrowserSpec,
                 overrides: dict):
        self.spec = spec
        prefs = firefox_prefs(spec, overrides.pop("firefox_user_prefs", None), ctx.page_origin)
        self.trace = False
        self.browser: Browser = playwright.firefox.launch(
            channel="moz-firefox", executable_path=engine.binary(spec), headless=True, firefox_user_prefs=prefs,
            env={**os.environ, **ctx.env, "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"}, **overrides)
        self.version = self.browser.version
        # Firefox has no mobile viewport mode: the rest of the descriptor (size, user agent, touch) applies.
        self.device_args = {k: v for k, v in device_context_args(playwright, spec).items() if k != "is_mobile"}

    def new_page(self, context_args: dict | None = None, lifecycle: bool = False) -> PlaywrightPage:
        args = {**self.device_args, **(context_args or {})}
        page = PlaywrightPage(self.browser.new_context(**args), self.driver, trace=self.trace)
        if lifecycle:
            page.lifecycle = FirefoxLifecycle(page)
        return page

    def is_connected(self) -> bool:
        return self.browser.is_connected()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()


class Firefox(Engine):
    name = "firefox"
    binaries = ("firefox-esr", "firefox")
    package = "firefox-esr"

    def launch(self, playwright: Playwright, ctx: LaunchContext, spec: BrowserSpec, overrides: dict) -> FirefoxBrowser:
        return FirefoxBrowser(self, playwright, ctx, spec, dict(overrides))


class FirefoxLifecycle:
    """Backgrounding as far as BiDi in Playwright 1.64 can: another tab brought in front hides the
    page (`visibilityState` "hidden", as when a user switches tabs). It cannot minimise a window,
    and Firefox has no page freezing to drive, so `can_freeze` is False and the rows say so."""

    can_freeze = False

    def __init__(self, page: PlaywrightPage):
        self.page = page
        self._cover = None

    def hide(self) -> None:
        if self._cover is None:
            with self.page.context.expect_page() as opened:
                self.page.page.evaluate("() => { window.open('about:blank', '_blank', 'noopener'); }")
            self._cover = opened.value
        self._cover.bring_to_front()
        self._settle("hidden")

    def show(self) -> None:
        self.page.page.bring_to_front()
        self._settle("visible")

    def _settle(self, state: str, timeout_s: float = 3.0) -> None:
        """The switch reaches the page a moment later (under load, after the next evaluate): wait for
        it, so the row reads the state it asked for; one that never comes shows in the row's proof."""
        with contextlib.suppress(PlaywrightError):
            self.page.page.wait_for_function(f"document.visibilityState === '{state}'", polling=100,
                                             timeout=timeout_s * 1000)  # rAF polling stops in a hidden page

    def freeze(self) -> None:
        raise NotImplementedError("Firefox under WebDriver BiDi: no page lifecycle state to set")

    resume = freeze

"""A browser someone else runs: Playwright's `connect()` (a browser server) or
`connect_over_cdp()`, given through the `connect_options` fixture.

The driver lives in the client namespace, so the endpoint is dialled from inside the lab: run
the browser server there too (`rtcmatrix lab exec -- npx playwright launch-server ...`), or the
lab link is not what its traffic crosses.
"""

from __future__ import annotations

import contextlib

from playwright.sync_api import Browser, Playwright

from harness.engines.base import BrowserMissing, BrowserSpec, RunningBrowser
from harness.engines.playwright_page import PlaywrightPage

DRIVERS = {"chromium": "playwright-cdp", "firefox": "playwright-bidi", "webkit": "playwright-webkit"}


class RemoteBrowser(RunningBrowser):
    def __init__(self, browser: Browser, spec: BrowserSpec, how: str):
        self.browser, self.spec = browser, spec
        self.driver = f"{DRIVERS.get(spec.engine, 'playwright')} ({how})"
        self.version = browser.version
        self.trace = False

    def new_page(self, context_args: dict | None = None, lifecycle: bool = False) -> PlaywrightPage:
        return PlaywrightPage(self.browser.new_context(**(context_args or {})), self.driver, trace=self.trace)

    def is_connected(self) -> bool:
        return self.browser.is_connected()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()


def connect(playwright: Playwright, spec: BrowserSpec, options: dict) -> RemoteBrowser:
    options = dict(options)
    browser_type = getattr(playwright, spec.engine, None)
    if browser_type is None:
        raise BrowserMissing(f"browser {spec.name!r}: engine {spec.engine!r} has no Playwright connect()")
    try:
        if "endpoint_url" in options:
            return RemoteBrowser(browser_type.connect_over_cdp(**options), spec, "connect_over_cdp")
        # pytest-playwright's key is ws_endpoint; Playwright 1.64's connect() calls it endpoint.
        endpoint = options.pop("ws_endpoint", None) or options.pop("endpoint", None)
        if not endpoint:
            raise BrowserMissing(f"connect_options for {spec.name!r}: give 'ws_endpoint' (a browser server) "
                                 f"or 'endpoint_url' (CDP)")
        return RemoteBrowser(browser_type.connect(endpoint, **options), spec, "connect")
    except TypeError as err:  # a key connect() does not take
        raise BrowserMissing(f"connect_options for {spec.name!r}: {err}; see Playwright's BrowserType.connect") from None

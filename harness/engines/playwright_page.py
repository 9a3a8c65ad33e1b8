"""`Page` over Playwright (Chromium over CDP, Firefox over WebDriver BiDi, WebKit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page as PwPage
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from harness.engines.base import PageTimeout

POLL_MS = 50


class PlaywrightPage:
    """One page in its own fresh context; console lines are kept from the first one on."""

    def __init__(self, context: BrowserContext, driver: str, trace: bool = False, own_context: bool = True):
        self.context = context
        self.driver = driver
        self.own_context = own_context
        self.cdp = None  # a CDP session, on Chromium
        self.lifecycle = None  # hide/show/freeze/resume, where the engine can background a page
        self.tracing = False
        if trace:
            try:
                context.tracing.start(screenshots=True, snapshots=True)
                self.tracing = True
            except PlaywrightError:
                pass  # BiDi has no tracing in 1.64
        self.page: PwPage = context.new_page()
        self._console: list[str] = []
        self.requests: list[dict] = []
        self.page.on("console", lambda m: self._console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self._console.append(f"pageerror: {e}"))
        self.page.on("requestfinished", self._finished)

    def _finished(self, request) -> None:
        entry: dict = {"url": request.url, "type": request.resource_type}
        try:
            sizes = request.sizes()
            entry["bytes"] = sizes.get("responseBodySize", 0) + sizes.get("responseHeadersSize", 0)
        except PlaywrightError:
            entry["bytes"] = None
        self.requests.append(entry)

    def goto(self, url: str, timeout_s: float = 15.0) -> None:
        self.page.goto(url, timeout=timeout_s * 1000)

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait_for(self, expression: str, arg: Any = None, timeout_s: float = 10.0) -> Any:
        try:
            # A fixed interval, not animation frames: a hidden page draws none and would never be re-checked.
            return self.page.wait_for_function(expression, arg=arg, timeout=timeout_s * 1000,
                                               polling=POLL_MS).json_value()
        except PlaywrightTimeout:
            raise PageTimeout(f"not true within {timeout_s:g} s: {expression}") from None

    def console(self) -> list[str]:
        return list(self._console)

    def screenshot(self, path: Path) -> Path:
        self.page.screenshot(path=str(path), timeout=5000)
        return path

    def save_trace(self, path: Path) -> Path | None:
        if not self.tracing:
            return None
        self.context.tracing.stop(path=str(path))
        self.tracing = False
        return path

    def close(self) -> None:
        try:
            if self.tracing:
                self.context.tracing.stop()
        except PlaywrightError:
            pass
        try:
            self.context.close() if self.own_context else self.page.close()
        except PlaywrightError:
            pass

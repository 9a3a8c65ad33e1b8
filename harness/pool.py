"""One running browser per engine for a whole run, launched into the lab on first use."""

from __future__ import annotations

import contextlib
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from harness.browsers import LaunchContext, engine
from harness.farend import audio
from harness.farend.handle import FarEnd
from impairments.lab import Lab


class BrowserPool:
    """Relaunches an engine whose browser died, so one crash costs one cell, not the run."""

    def __init__(self, lab: Lab, far_end: FarEnd, workdir: Path, launch_overrides: dict):
        self.lab, self.far_end, self.workdir = lab, far_end, workdir
        self.launch_overrides = launch_overrides
        self.playwright = sync_playwright().start()
        self.running: dict[str, Browser] = {}
        self.mic_wav = audio.tone(workdir / "mic-tone.wav")

    def get(self, name: str) -> Browser:
        browser = self.running.get(name)
        if browser is None or not browser.is_connected():
            ctx = LaunchContext(self.lab.client_ns, self.far_end.url, self.workdir, self.mic_wav)
            browser = engine(name).launch(self.playwright, ctx, self.launch_overrides)
            self.running[name] = browser
        return browser

    def close(self) -> None:
        for browser in self.running.values():
            with contextlib.suppress(Exception):
                browser.close()
        self.running.clear()
        with contextlib.suppress(Exception):
            self.playwright.stop()

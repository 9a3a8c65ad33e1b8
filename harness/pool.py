"""One running browser per matrix column for a whole run, launched into the lab on first use.

The Playwright driver itself runs inside the client namespace (see engines/driver.py); each
column that uses virtual audio devices gets its own private audio server, which lives and dies
with its browser.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from harness.engines import BrowserSpec, LaunchContext, RunningBrowser, engine
from harness.engines.driver import start_in_netns
from harness.farend import audio
from harness.farend.handle import FarEnd
from harness.metrics.process import browser_roots, netns_pids
from impairments.lab import Lab

MIC_TONES = {"a": 440.0, "b": 880.0}  # distinct, so the far end can tell which microphone it hears
SPEAKERS = ["a", "b"]


class BrowserPool:
    """Relaunches a column whose browser died, so one crash costs one cell, not the run."""

    def __init__(self, lab: Lab, far_end: FarEnd, workdir: Path, specs: dict[str, BrowserSpec],
                 launch_overrides: dict | None = None, connect_options: dict | None = None):
        self.lab, self.far_end, self.workdir = lab, far_end, workdir
        self.specs = specs
        self.launch_overrides = launch_overrides or {}
        self.connect_options = connect_options or {}
        self.playwright = None
        self.running: dict[str, RunningBrowser] = {}
        self.audio: dict[str, object] = {}
        self.mic_wavs = {name: audio.tone(workdir / f"mic-{name}-{int(hz)}hz.wav", hz=hz)
                         for name, hz in MIC_TONES.items()}

    def spec(self, name: str) -> BrowserSpec:
        return self.specs.get(name) or BrowserSpec(name=name, engine=name)

    def driver(self):
        """The Playwright driver in the client namespace, started on first use."""
        if self.playwright is None:
            self.playwright = start_in_netns(self.lab.client_ns, self.workdir)
        return self.playwright

    def get(self, name: str) -> RunningBrowser:
        browser = self.running.get(name)
        if browser is not None and browser.is_connected():
            return browser
        if browser is not None:
            self.stop_browser(name)
        spec = self.spec(name)
        remote = self.connect_options.get(name) or self.connect_options.get(spec.engine)
        if remote:  # someone else's browser: no local binary, no audio server of ours
            from harness.engines.remote import connect

            self.running[name] = connect(self.driver(), spec, remote)
            return self.running[name]
        recipe = engine(spec.engine)
        recipe.binary(spec)  # a missing browser says so before any audio server starts
        env = {}
        if spec.audio == "pulse" and recipe.uses_audio_server:
            from harness.audio.pulse import AudioServer

            server = AudioServer(self.lab.client_ns, self.workdir / f"{name}-audio",
                                 mics=self.mic_wavs, speakers=SPEAKERS).start()
            self.audio[name] = server
            env = dict(server.env)
        ctx = LaunchContext(netns=self.lab.client_ns, page_origin=self.far_end.url, workdir=self.workdir,
                            mic_wav=self.mic_wavs["a"], exclude_host=self.lab.server_ip, env=env,
                            scratch=self.lab.run_dir)
        overrides = launch_overrides_for(self.launch_overrides, name, spec.engine)
        try:
            driver = self.driver()
            before = netns_pids(self.lab.client_ns)
            browser = recipe.launch(driver, ctx, spec, overrides)
            browser.process_roots = tuple(browser_roots(before, netns_pids(self.lab.client_ns)))
        except BaseException:
            self._stop_audio(name)
            raise
        self.running[name] = browser
        return browser

    def audio_server(self, name: str):
        return self.audio.get(name)

    def _stop_audio(self, name: str) -> None:
        server = self.audio.pop(name, None)
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()

    def stop_browser(self, name: str) -> None:
        """Close a column's browser and its audio server; the next `get` launches afresh."""
        browser = self.running.pop(name, None)
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()
        self._stop_audio(name)

    def close(self) -> None:
        for name in list(self.running):
            self.stop_browser(name)  # and its audio server: one exists only beside a running browser
        if self.playwright is not None:
            with contextlib.suppress(Exception):
                self.playwright.stop()
            self.playwright = None


LAUNCH_KEYS = {"args", "env", "firefox_user_prefs", "timeout", "slow_mo", "ignore_default_args", "downloads_path",
               "proxy", "traces_dir", "chromium_sandbox", "handle_sigint", "handle_sigterm", "handle_sighup"}


def launch_overrides_for(overrides: dict, column: str, engine_name: str) -> dict:
    """`browser_launch_args` is flat ({"args": [...]}, for every engine) or keyed by column or
    engine ({"firefox": {...}, "*": {...}}); the column's own entry wins over its engine's."""
    keyed = bool(overrides) and all(isinstance(v, dict) for v in overrides.values()) \
        and not (LAUNCH_KEYS & set(overrides))
    if not keyed:
        return dict(overrides)
    return {**overrides.get("*", {}), **overrides.get(engine_name, {}), **overrides.get(column, {})}

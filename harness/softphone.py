"""`Softphone`: the harness's side of the test page. It talks only to `window.rtcm`, which wraps
the adapter contract (web/ADAPTER.md), through the engine-neutral `Page`: a scenario never knows
whether Playwright or WebDriver is underneath."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlencode

from harness.engines import CAPABILITIES_JS, Page, PageTimeout
from harness.farend.handle import FarEnd
from harness.metrics import summarise

NO_PROCESSING = {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False}


class CallFailed(AssertionError):
    pass


HAS_RTT_JS = """() => rtcm.stats.some((s) => (s.entries || []).some((e) =>
    (e.type === "remote-inbound-rtp" && e.roundTripTime) || (e.type === "candidate-pair" && e.currentRoundTripTime)))"""


class Softphone:
    def __init__(self, page: Page, far_end: FarEnd, phase=None, r0: dict[str, float] | None = None):
        self.page = page
        self.r0 = r0  # the E-model's R0 per codec (the matrix's option)
        self.phase = phase or (lambda name: contextlib.nullcontext())  # CellRun.phase: where the time went
        self.far_end = far_end
        self.page_url = far_end.url
        self.ws_url = far_end.ws_url
        self.call_id: str | None = None
        self.series: list[dict] = []
        self.called_at: float | None = None
        self.connected_at: float | None = None
        self.capabilities: dict = {}
        self.processes = None  # a ProcessSampler of the browser's processes, where they are ours to read
        self.js_heap_mb: dict[str, float] = {}  # state -> the largest used JS heap read in it
        self.login_s: float | None = None
        self.ws_at_dial: dict | None = None  # the page's WebSocket counters when it dialled

    def open(self, adapter: str = "reference", **query: str) -> dict:
        """Load the test page with an adapter; returns the adapter's facts and the page's capabilities."""
        with self.phase("page"):
            return self._open(adapter, **query)

    def _open(self, adapter: str, **query: str) -> dict:
        try:
            self.page.goto(f"{self.page_url}/?{urlencode({'name': adapter, **query})}")
        except Exception:
            # A navigation still pending (a dead link: the browser retries its SYN for about two
            # minutes) holds every later evaluate, evidence included; leave it for a blank page.
            with contextlib.suppress(Exception):
                self.page.goto("about:blank", timeout_s=5)
            raise
        self.capabilities = self.page.evaluate(CAPABILITIES_JS)
        try:
            self.page.wait_for("window.rtcm !== undefined && rtcm.attached", timeout_s=10)
        except PageTimeout:
            raise RuntimeError("test page did not load: window.rtcm never appeared") from None
        errors = self.page.evaluate("rtcm.errors")
        if errors:
            raise RuntimeError(f"test page did not load cleanly: {errors}")
        return self.page.evaluate("rtcm.adapterInfo()")

    def login(self, username: str = "alice", password: str | None = None) -> None:
        """Log in with this run's credentials for `username` (or the password given)."""
        password = password or self.far_end.credentials(username)["password"]
        started = time.monotonic()
        with self.phase("login"):
            self.page.evaluate("([server, username, password]) => rtcm.login({server, username, password})",
                               [self.ws_url, username, password])
        self.login_s = round(time.monotonic() - started, 3)

    def call(self, destination: str = "echo", audio_processing: bool = False, headers: dict | None = None,
             input_device: str | None = None, **options) -> str:
        opts = {"headers": headers or {}, **options}
        constraints = {} if audio_processing else dict(NO_PROCESSING)
        # Processing fades a steady tone within seconds; the far end must hear it unaltered.
        if input_device:
            constraints["deviceId"] = {"exact": input_device}
        if constraints:
            opts["audioConstraints"] = constraints
        self.ws_at_dial = self.websocket()
        self.called_at = time.time()
        with self.phase("call"):
            self.call_id = self.page.evaluate("([to, opts]) => rtcm.call(to, opts)", [destination, opts])
        return self.call_id

    def events(self) -> list[dict]:
        return self.page.evaluate("rtcm.events")

    def websocket(self) -> dict:
        """The page's WebSocket counters so far: bytes and frames each way, sockets opened."""
        return self.page.evaluate("() => rtcm.probe.websocket()")

    def call_signalling(self) -> dict | None:
        """Bytes and frames over the page's WebSockets since it dialled."""
        if self.ws_at_dial is None:
            return None
        now = self.websocket()
        return {k: now[k] - self.ws_at_dial.get(k, 0) for k in now}

    def console(self) -> list[str]:
        return self.page.console()

    def wait_for(self, event: str, timeout_s: float = 20.0) -> dict:
        """Wait until the adapter emits `event`; a `failed` event ends the wait with the reason."""
        js = "(ev) => rtcm.events.find(e => e.type === ev || e.type === 'failed')"
        try:
            with self.phase("call") if event == "connected" else contextlib.nullcontext():
                found = self.page.wait_for(js, arg=event, timeout_s=timeout_s)
        except PageTimeout:
            seen = [e["type"] for e in self.events()]
            raise CallFailed(f"no '{event}' within {timeout_s:g} s; events seen: {seen}") from None
        if found["type"] == "failed" and event != "failed":
            raise CallFailed(f"call failed: {found['detail'].get('reason')}")
        if event == "connected":
            self.connected_at = found["t"] / 1000
        return found

    @property
    def connect_s(self) -> float | None:
        if self.called_at and self.connected_at:
            return self.connected_at - self.called_at
        return None

    def _in_state(self, state: str):
        return self.processes.state(state) if self.processes else contextlib.nullcontext()

    def _read_heap(self, state: str) -> None:
        used = self.page.evaluate("() => (performance.memory && performance.memory.usedJSHeapSize) || null")
        if used:
            self.js_heap_mb[state] = max(self.js_heap_mb.get(state, 0.0), round(used / 2**20, 2))

    def idle(self, seconds: float) -> None:
        """Stay logged in without a call, so the browser's idle cost is sampled (the seed's 'idle state')."""
        with self.phase("idle"), self._in_state("idle"):
            time.sleep(seconds)
        self._read_heap("idle")

    def measure(self, seconds: float, interval_ms: int = 1000, rtt_grace_s: float = 0.0):
        """Sample getStats for a while; returns the metrics of that window.

        `rtt_grace_s`: sample on, up to that long, until the browser has a round trip. An engine that
        reads it only from the far end's RTCP reports (Firefox: remote-inbound-rtp, every ~5 s) can
        lose both of a 10 s window's reports on a lossy link."""
        self.page.evaluate("(ms) => rtcm.startStats(ms)", interval_ms)
        with self.phase("media"), self._in_state("call"):
            time.sleep(seconds)
            deadline = time.monotonic() + rtt_grace_s
            while time.monotonic() < deadline and not self.page.evaluate(HAS_RTT_JS):
                time.sleep(0.5)
        self._read_heap("call")
        self.page.evaluate("() => rtcm.stopStats()")
        window = self.page.evaluate("rtcm.takeStats()")
        self.series += window
        return summarise(window, self.connect_s, self.r0)

    def devices(self) -> list[dict]:
        return self.page.evaluate("() => rtcm.devices()")

    def hangup(self) -> None:
        self.page.evaluate("() => rtcm.hangup()")

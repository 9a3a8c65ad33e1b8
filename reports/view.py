"""The results arranged as the report shows them: profiles x features x browsers."""

from __future__ import annotations

from reports.claims import differs
from reports.results import CellResult, RunResult, Status

SYMBOL = {Status.supported: "Supported", Status.not_supported: "Not supported", Status.degraded: "Degraded",
          Status.failed: "Failed", Status.error: "Harness error", Status.skipped: "Skipped",
          Status.interrupted: "Interrupted"}

PERFORMANCE_ROWS = [
    ("RTT (ms)", "rtt_ms", "{:.0f}"),
    ("RTT: wire, STUN checks (ms)", "wire_rtt_ms", "{:.0f}"),
    ("RTT: far end, RTCP LSR/DLSR (ms)", "rtcp_rtt_ms", "{:.0f}"),
    ("RTT: the link check (ms)", "link_rtt_ms", "{:.0f}"),
    ("Jitter, downlink (ms)", "jitter_ms", "{:.1f}"),
    ("Jitter, uplink: browser (ms)", "uplink_jitter_ms", "{:.1f}"),
    ("Jitter, uplink: wire (ms)", "wire_jitter_ms", "{:.1f}"),
    ("Packet loss, downlink (%)", "packet_loss_pct", "{:.2f}"),
    ("Packet loss, uplink: browser (%)", "uplink_loss_pct", "{:.2f}"),
    ("Packet loss, uplink: wire (%)", "wire_loss_pct", "{:.2f}"),
    ("MOS (E-model)", "mos", "{:.2f}"),
    ("MOS (E-model, wire and link check)", "wire_mos", "{:.2f}"),
    ("Perceptual score, downlink (PESQ MOS-LQO)", "perceptual_mos", "{:.2f}"),
    ("Login (s)", "login_s", "{:.2f}"),
    ("Dial to ringing (s)", "ringing_s", "{:.2f}"),
    ("Dial to answered (s)", "connect_s", "{:.2f}"),
    ("Dial to first audio at the far end (s)", "first_audio_s", "{:.2f}"),
    ("DTMF end to end (ms)", "dtmf_latency_ms", "{:.0f}"),
    ("Reconnect after a drop (s)", "reconnect_s", "{:.1f}"),
    ("Signalling during a call: sent (bytes)", "call_ws_sent_bytes", "{:.0f}"),
    ("Signalling during a call: received (bytes)", "call_ws_received_bytes", "{:.0f}"),
    ("Audio out (kbit/s)", "bitrate_out_kbps", "{:.0f}"),
    ("Audio in (kbit/s)", "bitrate_in_kbps", "{:.0f}"),
    ("CPU on call, max (% of a core)", "cpu_call_pct", "{:.1f}"),
    ("CPU on call, median (% of a core)", "cpu_call_median_pct", "{:.1f}"),
    ("CPU idle, max (% of a core)", "cpu_idle_pct", "{:.1f}"),
    ("Memory on call, max (PSS MB)", "mem_call_pss_mb", "{:.0f}"),
    ("Memory idle, max (PSS MB)", "mem_idle_pss_mb", "{:.0f}"),
    ("Page processes on call: CPU max (% of a core)", "page_cpu_call_pct", "{:.1f}"),
    ("Page processes on call: memory max (USS MB)", "page_mem_call_uss_mb", "{:.0f}"),
    ("JS heap on call (MB)", "js_heap_call_mb", "{:.1f}"),
    ("Network: total requests", "page_requests", "{:.0f}"),
    ("Network: transferred (KB)", "page_transferred_kb", "{:.1f}"),
    ("Network: resources loaded (KB)", "page_resources_kb", "{:.0f}"),
    ("DOMContentLoaded (ms)", "dom_content_loaded_ms", "{:.0f}"),
    ("Load (ms)", "load_ms", "{:.0f}"),
    ("Finish (ms)", "finish_ms", "{:.0f}"),
]


class MatrixView:
    rows = PERFORMANCE_ROWS

    def __init__(self, run: RunResult, sdk: str | None = None):
        """`sdk`: only that SDK's cells (the report has one matrix per SDK)."""
        self.sdk = sdk
        self.claims = run.claims.get(sdk or "", {}) if run.claims else {}
        if sdk is not None:
            run = run.model_copy(update={"cells": [c for c in run.cells if c.sdk == sdk]})
        self.run = run
        self.profiles = _unique(c.profile for c in run.cells)
        self.browsers = _unique(c.browser for c in run.cells)
        self.features = _unique(c.feature for c in run.cells)
        self.by_key = {(c.profile, c.feature, c.browser): c for c in run.cells}

    def cell(self, profile: str, feature: str, browser: str) -> CellResult | None:
        return self.by_key.get((profile, feature, browser))

    def claim(self, scenario: str | None, browser: str) -> str | None:
        """The vendor's words for this row and column, if the run carries its table."""
        return ((self.claims.get("rows") or {}).get(scenario) or {}).get(browser) if scenario else None

    def performance_claim(self, attr: str, browser: str) -> str | None:
        """The vendor's words for this figure and column (its performance table), if the run carries it."""
        return ((self.claims.get("performance") or {}).get(attr) or {}).get(browser)

    def claim_differs(self, cell: CellResult | None) -> bool:
        return bool(cell) and differs(self.claim(cell.scenario, cell.browser), cell.status.value)

    def label(self, cell: CellResult | None) -> str:
        return SYMBOL[cell.status] if cell else "Not run"

    def performance(self, profile: str, browser: str, attr: str, fmt: str) -> str:
        values = [getattr(c.metrics, attr) for c in self.run.cells
                  if c.profile == profile and c.browser == browser and c.metrics
                  and getattr(c.metrics, attr) is not None]
        return fmt.format(sum(values) / len(values)) if values else "-"

    def cells_of(self, profile: str) -> list[CellResult]:
        return [c for c in self.run.cells if c.profile == profile]

    def link(self, profile: str):
        for c in self.run.cells:
            if c.profile == profile and c.link:
                return c.link
        return None

    def version(self, browser: str) -> str:
        facts = self.run.engines.get(browser)
        if facts and facts.version:
            return f"{facts.version} ({facts.driver})"
        return next((c.browser_version for c in self.run.cells if c.browser == browser and c.browser_version), "")

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Status}
        for c in self.run.cells:
            out[c.status.value] += 1
        return out


def per_sdk(run: RunResult) -> list[MatrixView]:
    return [MatrixView(run, sdk) for sdk in _unique(c.sdk for c in run.cells)]


def _unique(values) -> list:
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen

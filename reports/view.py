"""The results arranged as the report shows them: profiles x features x browsers."""

from __future__ import annotations

from reports.results import CellResult, RunResult, Status

SYMBOL = {Status.supported: "Supported", Status.not_supported: "Not supported", Status.degraded: "Degraded",
          Status.failed: "Failed", Status.error: "Harness error", Status.skipped: "Skipped",
          Status.interrupted: "Interrupted"}

PERFORMANCE_ROWS = [
    ("RTT (ms)", "rtt_ms", "{:.0f}"),
    ("Jitter (ms)", "jitter_ms", "{:.1f}"),
    ("Packet loss (%)", "packet_loss_pct", "{:.2f}"),
    ("MOS (E-model)", "mos", "{:.2f}"),
    ("Connect time (s)", "connect_s", "{:.2f}"),
    ("Audio out (kbit/s)", "bitrate_out_kbps", "{:.0f}"),
    ("Audio in (kbit/s)", "bitrate_in_kbps", "{:.0f}"),
]


class MatrixView:
    rows = PERFORMANCE_ROWS

    def __init__(self, run: RunResult, sdk: str | None = None):
        """`sdk`: only that SDK's cells (the report has one matrix per SDK)."""
        self.sdk = sdk
        if sdk is not None:
            run = run.model_copy(update={"cells": [c for c in run.cells if c.sdk == sdk]})
        self.run = run
        self.profiles = _unique(c.profile for c in run.cells)
        self.browsers = _unique(c.browser for c in run.cells)
        self.features = _unique(c.feature for c in run.cells)
        self.by_key = {(c.profile, c.feature, c.browser): c for c in run.cells}

    def cell(self, profile: str, feature: str, browser: str) -> CellResult | None:
        return self.by_key.get((profile, feature, browser))

    def label(self, cell: CellResult | None) -> str:
        return SYMBOL[cell.status] if cell else "Not run"

    def performance(self, profile: str, browser: str, attr: str, fmt: str) -> str:
        values = [getattr(c.metrics, attr) for c in self.run.cells
                  if c.profile == profile and c.browser == browser and c.metrics
                  and getattr(c.metrics, attr) is not None]
        return fmt.format(sum(values) / len(values)) if values else "-"

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

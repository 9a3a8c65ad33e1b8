"""`CellRun`: what a scenario records while it runs one cell, and the proofs its verdict rests on."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from harness.matrix import Cell, Options
from reports.results import LinkRecord, Metrics, Proof, Status


# Told each phase as it starts (the CLI's progress bar, in a serial run).
PHASE_LISTENERS: list = []


class NotSupported(Exception):
    """Raised by `CellRun.not_supported`: the probe stops, and the cell passes as not-supported."""


class CellRun:
    def __init__(self, cell: Cell, options: Options, evidence_dir: Path, link: LinkRecord | None,
                 engine: str | None = None):
        self.cell = cell
        self.engine = engine or cell.browser  # the column's engine (a column may be "chromium-pixel7")
        self.options = options
        self.evidence_dir = evidence_dir
        self.link = link
        self.proofs: list[Proof] = []
        self.metrics = Metrics()
        self.evidence: dict[str, str] = {}
        self.browser_version: str | None = None
        self.started_at = time.time()
        self.status: Status = Status.supported  # until a check says otherwise
        self.behaviour: str | None = None
        self.reason: str | None = None
        self.lacking: str | None = None
        self.phases: dict[str, float] = {}
        evidence_dir.mkdir(parents=True, exist_ok=True)

    @property
    def profile(self):
        return self.cell.profile

    def prove(self, by: str, claim: str, ok: bool, **details) -> None:
        """Record a check made at the far end, on the wire or on the page; a failed one fails the cell."""
        self.proofs.append(Proof(by=by, claim=claim, ok=bool(ok), details=details))
        if not ok:
            shown = ", ".join(f"{k}={v!r}" for k, v in details.items())
            raise AssertionError(f"[{by}] {claim}: not so ({shown})")

    def not_supported(self, who: str, missing: str, why: str, **evidence) -> None:
        """End the probe: `who` ("browser" or "sdk") lacks `missing`. The evidence is kept."""
        if evidence:
            self.keep("not-supported.json", {"who": who, "missing": missing, "why": why, **evidence})
        self.status, self.lacking = Status.not_supported, f"{who}: {missing}"
        self.reason = f"Not supported: {why}"
        raise NotSupported(self.reason)

    def degraded(self, reason: str) -> None:
        """It works, but a measured figure is past its threshold; the probe carries on."""
        if self.status == Status.supported:
            self.status = Status.degraded
        self.reason = f"{self.reason}; {reason}" if self.reason else reason

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a part of the cell (added up when it recurs), so a slow cell says where its time went."""
        started = time.monotonic()
        for listen in PHASE_LISTENERS:
            listen(name)
        try:
            yield
        finally:
            self.phases[name] = round(self.phases.get(name, 0.0) + time.monotonic() - started, 3)

    def keep(self, name: str, data: object) -> Path:
        """Store a piece of evidence as JSON in the cell's folder."""
        path = self.evidence_dir / name
        path.write_text(json.dumps(data, indent=1, default=str))
        self.evidence[Path(name).stem] = str(path)
        return path

    def keep_file(self, label: str, path: Path) -> None:
        self.evidence[label] = str(path)

    @property
    def proven_by(self) -> list[str]:
        return sorted({p.by for p in self.proofs if p.ok})

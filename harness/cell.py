"""`CellRun`: what a scenario records while it runs one cell, and the proofs its verdict rests on."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness.matrix import Cell, Options
from reports.results import LinkRecord, Metrics, Proof


class CellRun:
    def __init__(self, cell: Cell, options: Options, evidence_dir: Path, link: LinkRecord | None):
        self.cell = cell
        self.options = options
        self.evidence_dir = evidence_dir
        self.link = link
        self.proofs: list[Proof] = []
        self.metrics = Metrics()
        self.evidence: dict[str, str] = {}
        self.browser_version: str | None = None
        self.started_at = time.time()
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

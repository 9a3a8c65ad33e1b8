"""The results model: one `CellResult` per browser x profile x scenario, kept with its evidence."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class Verdict(str, Enum):
    passed = "passed"
    failed = "failed"
    error = "error"  # the harness could not run the cell: not a finding about the SDK
    skipped = "skipped"


class Proof(BaseModel):
    """One check a verdict rests on, and where it was made."""

    by: str = Field(description="far-end | wire | page")
    claim: str
    ok: bool
    details: dict = {}


class Metrics(BaseModel):
    rtt_ms: float | None = None
    rtt_source: str | None = None
    jitter_ms: float | None = None
    packet_loss_pct: float | None = None
    mos: float | None = None
    connect_s: float | None = None
    bitrate_out_kbps: float | None = None
    bitrate_in_kbps: float | None = None
    samples: int = 0


class LinkRecord(BaseModel):
    backend: str
    configured: dict
    netem: dict = {}
    measured: dict | None = None
    ok: bool | None = None
    deviations: list[dict] = []
    schedule: dict | None = None  # steps as configured, and when each one really took effect


class CellResult(BaseModel):
    id: str
    browser: str
    browser_version: str | None = None
    profile: str
    scenario: str
    feature: str
    verdict: Verdict
    proven_by: list[str] = []
    reason: str | None = None
    proofs: list[Proof] = []
    metrics: Metrics = Metrics()
    link: LinkRecord | None = None
    evidence: dict[str, str] = {}
    started_at: float | None = None
    duration_s: float | None = None


class RunResult(BaseModel):
    schema_version: int = SCHEMA_VERSION
    rtcmatrix_version: str
    matrix: str
    started_at: float
    finished_at: float | None = None
    host: dict = {}
    lab: dict = {}
    interrupted: bool = False
    cells: list[CellResult] = []

    def save(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls.model_validate(json.loads(path.read_text()))

"""The results model: one `CellResult` per browser x profile x scenario, kept with its evidence."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

SCHEMA_VERSION = 2


class Status(str, Enum):
    """What a cell found. pytest fails a cell on `failed` and `error` only."""

    supported = "supported"
    not_supported = "not-supported"  # the engine or the SDK lacks it; the missing API is named
    degraded = "degraded"  # it works, but a measured figure is past its threshold
    failed = "failed"  # it should work and does not
    error = "error"  # the harness could not run the cell: not a finding about the SDK
    skipped = "skipped"
    interrupted = "interrupted"  # cut short by Ctrl-C or SIGTERM: no finding either way


class Proof(BaseModel):
    """One check a verdict rests on, and where it was made."""

    by: str = Field(description="far-end | wire | speaker | page")
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
    # Page load and network usage (Navigation and Resource Timing, the driver's requests, the wire)
    page_requests: int | None = None
    page_transferred_kb: float | None = None
    page_resources_kb: float | None = None
    dom_content_loaded_ms: float | None = None
    load_ms: float | None = None
    finish_ms: float | None = None
    page_wire_kb: float | None = None


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
    sdk: str = "reference"
    browser: str
    browser_version: str | None = None
    profile: str
    scenario: str
    feature: str
    status: Status
    behaviour: str | None = None  # in words, from what was measured, for rows that describe one
    proven_by: list[str] = []
    reason: str | None = None
    lacking: str | None = None  # not-supported: who lacks it ("browser" or "sdk") and the missing API
    proofs: list[Proof] = []
    metrics: Metrics = Metrics()
    link: LinkRecord | None = None
    evidence: dict[str, str] = {}
    started_at: float | None = None
    duration_s: float | None = None


class EngineFacts(BaseModel):
    """A browser column as it ran: what it is, how it was driven, what its pages could do."""

    name: str
    engine: str
    version: str | None = None
    driver: str | None = None  # playwright-cdp, playwright-bidi, playwright-webkit, webdriver
    audio: str | None = None  # pulse (virtual devices) or fake (the engine's own fake capture)
    device: str | None = None
    cpu_throttle: float | None = None
    executable: str | None = None
    capabilities: dict = {}


class RunResult(BaseModel):
    schema_version: int = SCHEMA_VERSION
    rtcmatrix_version: str
    matrix: str
    started_at: float
    finished_at: float | None = None
    host: dict = {}
    lab: dict = {}
    interrupted: bool = False
    engines: dict[str, EngineFacts] = {}
    cells: list[CellResult] = []

    def save(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls.model_validate(json.loads(path.read_text()))

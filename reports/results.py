"""The results model: one `CellResult` per browser x profile x scenario, kept with its evidence."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field

SCHEMA_VERSION = 2
# The JSON Schema of results.json, generated from these models and kept in the repo for consumers
# that are not Python; `python -m reports.results --schema` writes it, a test keeps it in step.
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


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
    # The browser's uplink, as the far end reported it back (RTCP receiver reports: remote-inbound-rtp)
    uplink_jitter_ms: float | None = None
    uplink_loss_pct: float | None = None
    # The same uplink on the wire, at the far end's side of the lab link (harness/wire.py): RFC 3550
    # jitter and sequence gaps of the browser's RTP. SRTCP is encrypted: wire_rtt_ms is the round
    # trip of the far end's STUN checks answered by the browser (median), link_rtt_ms the link check's
    # (one-way means, both ways); wire_mos is the E-model on the wire's loss, jitter and RTT (else the
    # link check's).
    wire_jitter_ms: float | None = None
    wire_loss_pct: float | None = None
    wire_packets: int | None = None
    wire_rtt_ms: float | None = None
    wire_rtt_samples: int | None = None
    link_rtt_ms: float | None = None
    wire_mos: float | None = None
    # The far end's spoken prompt as the browser's speaker played it, against the prompt itself:
    # PESQ P.862.2 MOS-LQO (harness/metrics/perceptual.py); where the column records its speaker.
    perceptual_mos: float | None = None
    # Page load and network usage (Navigation and Resource Timing, the driver's requests, the wire)
    page_requests: int | None = None
    page_transferred_kb: float | None = None
    page_resources_kb: float | None = None
    dom_content_loaded_ms: float | None = None
    load_ms: float | None = None
    finish_ms: float | None = None
    page_wire_kb: float | None = None
    # What the browser costs the machine (psutil, harness/metrics/process.py), its whole process tree
    # unless page_: "idle" is logged in with no call, "call" is on a call. CPU in % of one core (like
    # top; _machine_: of all cores), max over ~4 Hz samples unless _median_. Memory max, in MB.
    cpu_idle_pct: float | None = None
    cpu_idle_median_pct: float | None = None
    cpu_idle_machine_pct: float | None = None
    cpu_call_pct: float | None = None
    cpu_call_median_pct: float | None = None
    cpu_call_machine_pct: float | None = None
    mem_idle_uss_mb: float | None = None
    mem_idle_pss_mb: float | None = None
    mem_idle_pss_median_mb: float | None = None
    mem_idle_rss_mb: float | None = None
    mem_call_uss_mb: float | None = None
    mem_call_pss_mb: float | None = None
    mem_call_pss_median_mb: float | None = None
    mem_call_rss_mb: float | None = None
    page_cpu_idle_pct: float | None = None  # the page's processes: renderers, tab content processes
    page_cpu_call_pct: float | None = None
    page_mem_idle_uss_mb: float | None = None
    page_mem_call_uss_mb: float | None = None
    js_heap_idle_mb: float | None = None  # where the engine exposes it (performance.memory: Chromium)
    js_heap_call_mb: float | None = None
    process_idle_samples: int | None = None
    process_call_samples: int | None = None
    sampler_cpu_pct: float | None = None  # the sampler's own thread, % of one core
    # The E-model's inputs beyond the network: the call's codec (getStats) and the R0 used for it
    # (matrix option r0, per codec; ITU-T G.107's 93.2 where it names none).
    codec: str | None = None
    mos_r0: float | None = None
    # The far end's RTCP round trip (RFC 3550 6.4.1: now - LSR - DLSR of each receiver report the
    # browser sent about the far end's audio), median over the measured window. SRTCP hides those
    # fields on the wire; the far end holds the keys. Reference far end only.
    rtcp_rtt_ms: float | None = None
    rtcp_rtt_samples: int | None = None
    # The call's timing, in seconds. connect_s is dial to answered (the SDK's connected event).
    login_s: float | None = None  # login() to registered
    ringing_s: float | None = None  # dial to the SDK's ringing event
    first_audio_s: float | None = None  # dial to the first audio the far end heard from the browser
    dtmf_latency_ms: float | None = None  # mean, the page's dtmfSent to the far end's detection
    reconnect_s: float | None = None  # the link back to registered again, after a network drop
    # Signalling the page exchanged over its WebSockets from dial to hang-up (harness.js counts the
    # frames whatever the SDK): bytes each way.
    call_ws_sent_bytes: int | None = None
    call_ws_received_bytes: int | None = None


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
    workarounds: list[str] = []  # backend workarounds for SDK defects in force for this cell (off by default)
    proofs: list[Proof] = []
    metrics: Metrics = Metrics()
    link: LinkRecord | None = None
    evidence: dict[str, str] = {}
    started_at: float | None = None
    duration_s: float | None = None
    # Where the cell's time went, in seconds: conditions, browser, context, page, login, call, media, probe, teardown.
    phases: dict[str, float] = {}
    overhead_s: float | None = None  # the harness's time around the probe: everything but call, media and probe
    worker: str | None = None  # the pytest-xdist worker that ran it (gw0, gw1...), in a parallel run


class EngineFacts(BaseModel):
    """A browser column as it ran: what it is, how it was driven, what its pages could do."""

    name: str
    engine: str
    version: str | None = None
    driver: str | None = None  # playwright-cdp, playwright-bidi, playwright-webkit, webdriver
    audio: str | None = None  # pulse (virtual devices) or fake (the engine's own fake capture)
    device: str | None = None
    cpu_throttle: float | None = None
    cpu_slowdown: float | None = None  # what cpu_throttle measured: throttled over plain, same script work
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
    shard: str | None = None  # "K/N" when this run is one slice of a matrix (rtcmatrix run --shard)
    workers: int = 1
    merged_from: list[str] = []  # the runs `rtcmatrix merge` (or a parallel run's workers) joined into this one
    engines: dict[str, EngineFacts] = {}
    claims: dict[str, dict] = {}  # SDK -> a vendor's published table (reports/claims.py), printed beside ours
    cells: list[CellResult] = []

    def save(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        return cls.model_validate(json.loads(path.read_text()))


def json_schema() -> dict:
    schema = RunResult.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://rtcmatrix.dev/schemas/results-v{SCHEMA_VERSION}.json"
    return schema


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m reports.results --schema   (writes reports/results.schema.json)")
    SCHEMA_FILE.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    print(SCHEMA_FILE)

"""Replay a customer's network: turn a recorded time series into a schedule, and measure how
closely the lab reproduced it.

Sources: a Chrome webrtc-internals dump (.json or gzip), a per-second JSON/CSV of RTT, jitter
and loss, or a mahimahi trace (one line per 1500-byte delivery opportunity, in ms).

Translation, per second: one-way delay = RTT / 2 in each direction; netem jitter = 1.5 x the
RTP interarrival jitter (RFC 3550 jitter of a uniform +-j delay is 2j/3); loss goes to the
direction it was seen in (browser inbound -> downlink, remote-inbound -> uplink).
"""

from __future__ import annotations

import csv
import re
import gzip
import json
import math
import statistics
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from impairments.schedule import Schedule

MAHIMAHI_PACKET_BYTES = 1500
RFC3550_TO_NETEM_JITTER = 1.5


class ReplayError(ValueError):
    """The recording cannot be replayed; the message says what is missing or malformed."""


class Sample(BaseModel):
    """One second of the original call."""

    t: int
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    down_loss_pct: float | None = None
    up_loss_pct: float | None = None
    down_kbit: float | None = None
    up_kbit: float | None = None


# --- readers ----------------------------------------------------------------------------------

def load(path: Path) -> tuple[list[Sample], str]:
    """Read any supported recording; returns the samples and a word for the format."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ReplayError(f"{path}: cannot read it ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError as err:
            raise ReplayError(f"{path}: looks gzipped but is not readable ({err})") from None
    text = raw.decode("utf-8", errors="replace").strip()
    if path.suffix.lower() == ".csv":
        return from_csv(text, path), "csv"
    if text.startswith("{") or text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ReplayError(f"{path}: not valid JSON ({err})") from None
        if isinstance(data, dict) and "PeerConnections" in data:
            return from_webrtc_internals(data, path), "webrtc-internals"
        return from_series(data, path), "json"
    return from_mahimahi(text, path), "mahimahi"


def from_series(data: object, where: Path) -> list[Sample]:
    rows = data.get("samples") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise ReplayError(f"{where}: expected a list of per-second samples, or {{\"samples\": [...]}}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ReplayError(f"{where}: sample {i} is not an object with t, rtt_ms, jitter_ms, loss_pct")
        out.append(_sample(row, i, where))
    return out


def from_csv(text: str, where: Path) -> list[Sample]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "rtt_ms" not in reader.fieldnames:
        raise ReplayError(f"{where}: the CSV needs a header with at least rtt_ms (and t, jitter_ms, loss_pct)")
    return [_sample({k: v for k, v in row.items() if v not in (None, "")}, i, where)
            for i, row in enumerate(reader)]


def _sample(row: dict, i: int, where: Path) -> Sample:
    def num(key: str) -> float | None:
        if key not in row:
            return None
        try:
            value = float(row[key])
        except (TypeError, ValueError):
            raise ReplayError(f"{where}: sample {i}: {key} is {row[key]!r}, not a number") from None
        if value < 0 or math.isnan(value):
            raise ReplayError(f"{where}: sample {i}: {key} is {value}; it must be 0 or more")
        return value

    loss = num("loss_pct")
    return Sample(t=int(num("t") if "t" in row else i), rtt_ms=num("rtt_ms"), jitter_ms=num("jitter_ms"),
                  down_loss_pct=num("down_loss_pct") if "down_loss_pct" in row else loss,
                  up_loss_pct=num("up_loss_pct") if "up_loss_pct" in row else loss,
                  down_kbit=num("down_kbit"), up_kbit=num("up_kbit"))


def _series(stats: dict, stats_type: str, attr: str) -> list[tuple[float, float]]:
    """Every (time, value) of one attribute of one stats type, audio only, from all matching ids."""
    out = []
    kinds = {k.rsplit("-", 1)[0]: v for k, v in stats.items() if k.endswith("-kind")}
    for key, entry in stats.items():
        if not isinstance(entry, dict) or entry.get("statsType") != stats_type or not key.endswith(f"-{attr}"):
            continue
        stat_id = key[: -len(attr) - 1]
        kind = kinds.get(stat_id, {}).get("values", "")
        if kind and "audio" not in kind:
            continue
        try:
            values = json.loads(entry["values"]) if isinstance(entry["values"], str) else entry["values"]
            start = datetime.fromisoformat(entry["startTime"].replace("Z", "+00:00")).timestamp()
            end = datetime.fromisoformat(entry["endTime"].replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError, TypeError) as err:
            raise ReplayError(f"stats entry {key!r} is malformed ({err})") from None
        step = (end - start) / (len(values) - 1) if len(values) > 1 else 1.0
        out += [(start + i * step, float(v)) for i, v in enumerate(values) if isinstance(v, (int, float))]
    return sorted(out)


def from_webrtc_internals(data: dict, where: Path) -> list[Sample]:
    pcs = data.get("PeerConnections")
    if not isinstance(pcs, dict) or not pcs:
        raise ReplayError(f"{where}: the dump has no PeerConnections; record it during the call "
                          "(chrome://webrtc-internals, 'Create a WebRTC-Internals dump')")
    # The connection with the most samples is the call.
    stats = max((pc.get("stats") or {} for pc in pcs.values() if isinstance(pc, dict)), key=len, default={})
    rtcp_rtt = _series(stats, "remote-inbound-rtp", "roundTripTime")
    ice_rtt = _series(stats, "candidate-pair", "currentRoundTripTime")
    rtt = rtcp_rtt or ice_rtt
    if not rtt:
        raise ReplayError(f"{where}: no RTT in the dump (remote-inbound-rtp roundTripTime or "
                          "candidate-pair currentRoundTripTime); was the call connected while recording?")
    jitter = _series(stats, "inbound-rtp", "jitter")
    lost = _series(stats, "inbound-rtp", "packetsLost")
    received = _series(stats, "inbound-rtp", "packetsReceived")
    up_loss = _series(stats, "remote-inbound-rtp", "fractionLost")
    t0 = min(s[0][0] for s in (rtt, jitter, lost, received) if s)
    per_second: dict[int, dict] = {}

    def put(series, field, scale=1.0):
        for t, v in series:
            per_second.setdefault(int(round(t - t0)), {}).setdefault(field, []).append(v * scale)

    put(rtt, "rtt_ms", 1000)
    if rtcp_rtt and ice_rtt:  # RTCP RTT starts seconds into a call: the ICE RTT covers the start
        first = int(round(rtcp_rtt[0][0] - t0))
        put([(t, v) for t, v in ice_rtt if int(round(t - t0)) < first], "rtt_ms", 1000)
    put(jitter, "jitter_ms", 1000)
    put(up_loss, "up_loss_pct", 100)
    # Cumulative counters -> loss of each interval.
    counters = {int(round(t - t0)): v for t, v in lost}
    got = {int(round(t - t0)): v for t, v in received}
    seconds = sorted(set(counters) & set(got))
    for a, b in zip(seconds, seconds[1:]):
        d_lost, d_got = counters[b] - counters[a], got[b] - got[a]
        if d_lost + d_got > 0:
            per_second.setdefault(b, {})["down_loss_pct"] = [100 * max(0, d_lost) / (max(0, d_lost) + d_got)]
    samples = [Sample(t=t, **{k: statistics.fmean(v) for k, v in fields.items()})
               for t, fields in sorted(per_second.items())]
    return _fill(samples)


def from_mahimahi(text: str, where: Path) -> list[Sample]:
    """Delivery opportunities per second -> a downlink rate per second."""
    stamps = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.isdigit():
            raise ReplayError(f"{where}: line {n} is {line[:30]!r}; a mahimahi trace has one integer (ms) per line")
        stamps.append(int(line))
    if not stamps:
        raise ReplayError(f"{where}: the trace is empty")
    seconds = stamps[-1] // 1000 + 1
    counts = [0] * seconds
    for ms in stamps:
        counts[ms // 1000] += 1
    return [Sample(t=s, down_kbit=max(8.0, c * MAHIMAHI_PACKET_BYTES * 8 / 1000)) for s, c in enumerate(counts)]


def _fill(samples: list[Sample]) -> list[Sample]:
    """Carry the last known value into seconds where a series had no sample (the first into the start)."""
    if not samples:
        return samples
    out, last = [], {}
    for s in samples:  # seed with each field's first known value
        for k, v in s.model_dump().items():
            if v is not None and k != "t":
                last.setdefault(k, v)
    for t in range(samples[0].t, samples[-1].t + 1):
        here = next((s for s in samples if s.t == t), None)
        values = {k: v for k, v in (here.model_dump() if here else {}).items() if v is not None and k != "t"}
        last.update(values)
        out.append(Sample(t=t, **last))
    return out


# --- translation ------------------------------------------------------------------------------

def name_from_file(path: Path) -> str:
    """A schedule name from a recording's file name (`ticket 4711:x.csv` -> `ticket-4711-x`)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.name.split(".")[0]).strip("-.")[:64]
    return stem if stem and stem[0].isalnum() else f"replay-{stem}".strip("-")[:64]


def to_schedule(samples: list[Sample], name: str, source: str) -> Schedule:
    """One step per second, merging runs of identical seconds."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ReplayError(f"--name {name!r}: a schedule name is letters, digits, '_', '.' and '-', starting with a "
                          "letter or digit, at most 64 characters")
    steps: list[dict] = []
    for s in samples:
        link: dict = {}
        if s.rtt_ms is not None:
            link["delay_ms"] = round(s.rtt_ms / 2, 2)
        if s.jitter_ms and link.get("delay_ms"):
            link["jitter_ms"] = round(min(RFC3550_TO_NETEM_JITTER * s.jitter_ms, link["delay_ms"]), 2)
        up, down = dict(link), dict(link)
        if s.up_loss_pct:
            up["loss_pct"] = round(min(100.0, s.up_loss_pct), 3)
        if s.down_loss_pct:
            down["loss_pct"] = round(min(100.0, s.down_loss_pct), 3)
        if s.up_kbit:
            up["rate_kbit"] = round(s.up_kbit, 1)
        if s.down_kbit:
            down["rate_kbit"] = round(s.down_kbit, 1)
        profile = {"name": f"{name}-t{s.t}", "uplink": up, "downlink": down}
        if steps and steps[-1]["profile"]["uplink"] == up and steps[-1]["profile"]["downlink"] == down:
            steps[-1]["duration_s"] += 1
        else:
            steps.append({"duration_s": 1, "profile": profile})
    if not steps:
        raise ReplayError("the recording has no samples to replay")
    return Schedule(name=name, source=source, steps=steps, original=[s.model_dump() for s in samples],
                    description=f"replay of {len(samples)} s ({len(steps)} distinct steps)")


# --- fidelity -----------------------------------------------------------------------------------

class Fidelity(BaseModel):
    """How closely a replay reproduced the original, measured on the wire second by second."""

    seconds: int
    rtt_mean_abs_error_ms: float | None
    rtt_correlation: float | None
    loss_mean_abs_error_pct: float | None
    per_second: list[dict]


def measure(lab, schedule: Schedule, pps: int = 50) -> Fidelity:
    """Run the replay on the lab while probing both directions; compare second by second."""
    from impairments.schedule import run_probed

    if not schedule.original:
        raise ReplayError(f"schedule {schedule.name!r} carries no original recording to compare with")
    runner, probe = run_probed(lab, schedule, pps=pps, head_s=0.0, tail_s=0.0)
    if runner.error:
        raise ReplayError(f"the replay stopped: {runner.error}")
    bins = {d: probe[d].per_second(since=runner.started_at) for d in ("uplink", "downlink")}
    return compare([Sample(**o) for o in schedule.original], bins)


def compare(samples: list[Sample], measured: dict[str, list[dict]]) -> Fidelity:
    """`measured`: per-second bins of the link check's timeline, keyed uplink/downlink."""
    up = {b["t"]: b for b in measured["uplink"]}
    down = {b["t"]: b for b in measured["downlink"]}
    rows = []
    t0 = samples[0].t
    for s in samples:
        u, d = up.get(s.t - t0), down.get(s.t - t0)
        if not u or not d:
            continue
        rtt = u["delay_ms"] + d["delay_ms"] if u["delay_ms"] is not None and d["delay_ms"] is not None else None
        rows.append({"t": s.t - t0, "rtt_original_ms": s.rtt_ms, "rtt_measured_ms": rtt,
                     "down_loss_original_pct": s.down_loss_pct, "down_loss_measured_pct": d["loss_pct"],
                     "up_loss_original_pct": s.up_loss_pct, "up_loss_measured_pct": u["loss_pct"]})
    pairs = [(r["rtt_original_ms"], r["rtt_measured_ms"]) for r in rows
             if r["rtt_original_ms"] is not None and r["rtt_measured_ms"] is not None]
    losses = [(r[f"{d}_loss_original_pct"] or 0.0, r[f"{d}_loss_measured_pct"]) for r in rows for d in ("down", "up")]
    corr = None
    if len(pairs) > 2 and statistics.pstdev([a for a, _ in pairs]) > 0 and statistics.pstdev([b for _, b in pairs]) > 0:
        corr = statistics.correlation([a for a, _ in pairs], [b for _, b in pairs])
    return Fidelity(
        seconds=len(rows),
        rtt_mean_abs_error_ms=statistics.fmean(abs(a - b) for a, b in pairs) if pairs else None,
        rtt_correlation=corr,
        loss_mean_abs_error_pct=statistics.fmean(abs(a - b) for a, b in losses) if losses else None,
        per_second=rows,
    )

"""Call metrics from a getStats series, and the E-model MOS that voice SDKs report.

Browsers differ in what they fill in (Firefox often reads RTT as 0 early), so every figure
says where it came from and zeros from not-yet-measured fields are ignored.
"""

from __future__ import annotations

import statistics

from reports.results import Metrics

# ITU-T G.107 default R0; Plivo uses 95 for Opus, Twilio 94.768 (see shared/notes/field.md).
R0 = 93.2


def r0_for(codec: str | None, table: dict[str, float] | None = None) -> float:
    """The R0 a matrix gives this codec (option `r0`, keyed by codec name), else G.107's default."""
    return (table or {}).get((codec or "").lower(), R0)


def codec_of(series: list[dict]) -> str | None:
    """The codec the browser sends with (its outbound audio's codecId), as a lowercase name."""
    for sample in reversed(series):
        for out in _of(sample, "outbound-rtp"):
            codec = next((e for e in sample["entries"] if e["type"] == "codec" and e.get("id") == out.get("codecId")), None)
            if codec and codec.get("mimeType"):
                return codec["mimeType"].split("/")[-1].lower()
    return None


def mos(rtt_ms: float, jitter_ms: float, loss_pct: float, r0: float = R0) -> float:
    """Simplified E-model: effective latency, a latency penalty, 2.5 R per percent of loss."""
    le = rtt_ms + 2 * jitter_ms + 10
    r = r0 - le / 40 if le < 160 else r0 - (le - 120) / 10
    r -= 2.5 * loss_pct
    # G.107 maps R outside 0..100 to the ends; the cubic itself turns back up below 0.
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    value = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
    return max(1.0, min(4.5, value))


def _of(sample: dict, kind: str, kind_field: str = "audio") -> list[dict]:
    return [e for e in sample["entries"] if e["type"] == kind and e.get("kind", kind_field) == kind_field]


def _selected_pair(sample: dict) -> dict | None:
    pairs = [e for e in sample["entries"] if e["type"] == "candidate-pair"]
    transports = [e for e in sample["entries"] if e["type"] == "transport"]
    chosen = {t.get("selectedCandidatePairId") for t in transports}
    for p in pairs:
        if p["id"] in chosen or p.get("selected"):
            return p
    nominated = [p for p in pairs if p.get("nominated") and p.get("state") == "succeeded"]
    return nominated[0] if nominated else None


def rtt_series(series: list[dict]) -> tuple[list[float], str | None]:
    """RTT in ms: RTCP (remote-inbound-rtp) first, else the ICE pair's STUN RTT."""
    rtcp = [1000 * e["roundTripTime"] for s in series for e in _of(s, "remote-inbound-rtp")
            if e.get("roundTripTime")]
    if rtcp:
        return rtcp, "remote-inbound-rtp.roundTripTime"
    stun = [1000 * p["currentRoundTripTime"] for s in series if (p := _selected_pair(s))
            and p.get("currentRoundTripTime")]
    return stun, ("candidate-pair.currentRoundTripTime" if stun else None)


def summarise(series: list[dict], connect_s: float | None = None, r0: dict[str, float] | None = None) -> Metrics:
    if not series:
        return Metrics(connect_s=connect_s)
    rtts, source = rtt_series(series)
    jitters = [1000 * e["jitter"] for s in series for e in _of(s, "inbound-rtp") if e.get("jitter") is not None]
    first, last = series[0], series[-1]
    loss = None
    inbound_last, inbound_first = _of(last, "inbound-rtp"), _of(first, "inbound-rtp")
    if inbound_last:
        lost = inbound_last[0].get("packetsLost", 0) - (inbound_first[0].get("packetsLost", 0) if inbound_first else 0)
        got = inbound_last[0].get("packetsReceived", 0) - (inbound_first[0].get("packetsReceived", 0) if inbound_first else 0)
        loss = 100.0 * max(lost, 0) / (got + max(lost, 0)) if got + lost > 0 else None
    span_s = (last["t"] - first["t"]) / 1000

    def rate(kind: str, counter: str) -> float | None:
        a, b = _of(first, kind), _of(last, kind)
        if not a or not b or span_s <= 0:
            return None
        return 8 * (b[0].get(counter, 0) - a[0].get(counter, 0)) / span_s / 1000

    up_jitters = [1000 * e["jitter"] for s in series for e in _of(s, "remote-inbound-rtp")
                  if e.get("jitter") is not None]
    m = Metrics(
        rtt_ms=statistics.median(rtts) if rtts else None,
        rtt_source=source,
        jitter_ms=statistics.median(jitters) if jitters else None,
        packet_loss_pct=loss,
        connect_s=connect_s,
        bitrate_out_kbps=rate("outbound-rtp", "bytesSent"),
        bitrate_in_kbps=rate("inbound-rtp", "bytesReceived"),
        samples=len(series),
        uplink_jitter_ms=statistics.median(up_jitters) if up_jitters else None,
        uplink_loss_pct=_uplink_loss(first, last),
    )
    m.codec = codec_of(series)
    m.mos_r0 = r0_for(m.codec, r0)
    if m.rtt_ms is not None and m.jitter_ms is not None:
        m.mos = round(mos(m.rtt_ms, m.jitter_ms, m.packet_loss_pct or 0.0, m.mos_r0), 2)
    return m


def _uplink_loss(first: dict, last: dict) -> float | None:
    """The far end's view of what the browser sent (its RTCP receiver reports, remote-inbound-rtp):
    packets it reported lost, as % of the packets sent over the same stretch."""
    r0, r1 = _of(first, "remote-inbound-rtp"), _of(last, "remote-inbound-rtp")
    o0, o1 = _of(first, "outbound-rtp"), _of(last, "outbound-rtp")
    if not r1 or not o1 or "packetsLost" not in r1[0]:
        return None
    lost = r1[0]["packetsLost"] - (r0[0].get("packetsLost", 0) if r0 else 0)
    sent = o1[0].get("packetsSent", 0) - (o0[0].get("packetsSent", 0) if o0 else 0)
    return round(100.0 * max(lost, 0) / sent, 2) if sent > 0 else None

"""The wire's view of a call beside the browser's: the browser's RTP as it arrived at the far end's
side of the lab link, the round trip of the far end's STUN checks, and the link check's round
trip, so a browser that misreports (RTT 0, jitter in the wrong unit, loss it never saw) shows
against figures it cannot touch."""

from __future__ import annotations

import statistics

from harness.metrics.getstats import R0, mos
from harness.wire import RtpStream
from reports.results import LinkRecord, Metrics


def link_rtt_ms(link: LinkRecord | None) -> float | None:
    """The link check's RTT: its one-way mean delays, uplink plus downlink."""
    measured = (link.measured or {}) if link else {}
    ways = [(measured.get(d) or {}).get("delay_ms_mean") for d in ("uplink", "downlink")]
    return round(sum(ways), 2) if all(w is not None for w in ways) else None


def add_wire_view(metrics: Metrics, sent: list[RtpStream], link: LinkRecord | None,
                  stun_rtt_ms: list[float] = ()) -> Metrics:
    """Fill the wire_ figures from the browser's one audio stream (the largest, if it sent more)."""
    metrics.link_rtt_ms = link_rtt_ms(link)
    if stun_rtt_ms:
        metrics.wire_rtt_ms = round(statistics.median(stun_rtt_ms), 2)
        metrics.wire_rtt_samples = len(stun_rtt_ms)
    if not sent:
        return metrics
    stream = max(sent, key=lambda s: s.packets)
    metrics.wire_packets = stream.packets
    metrics.wire_loss_pct = stream.loss_pct
    metrics.wire_jitter_ms = stream.jitter_ms
    rtt = next((r for r in (metrics.wire_rtt_ms, metrics.link_rtt_ms, metrics.rtt_ms) if r is not None), None)
    if rtt is not None and stream.jitter_ms is not None:
        metrics.wire_mos = round(mos(rtt, stream.jitter_ms, stream.loss_pct, metrics.mos_r0 or R0), 2)
    return metrics

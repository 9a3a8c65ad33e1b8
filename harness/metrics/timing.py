"""The call's timing and signalling cost: login, dial to ringing, to answered and to the first
audio the far end heard, and the bytes the page's WebSockets carried. The page's event log and the
far end run on one machine's clock, so their times subtract."""

from __future__ import annotations

import statistics

from reports.results import Metrics


def first_audio_at(timeline: list[dict]) -> float | None:
    """When the far end first heard sound: the first active run's arrival (else its start)."""
    for seg in timeline:
        if seg.get("active"):
            return seg.get("arrived_epoch") or seg.get("start_epoch")
    return None


def add_call_timing(metrics: Metrics, phone, timeline: list[dict] | None = None) -> Metrics:
    """Fill login_s, ringing_s and first_audio_s from what the softphone and the far end saw."""
    metrics.login_s = phone.login_s
    if phone.called_at is None:
        return metrics
    ringing = [e["t"] / 1000 for e in phone.events() if e["type"] == "ringing" and e["t"] / 1000 >= phone.called_at]
    if ringing:
        metrics.ringing_s = round(ringing[0] - phone.called_at, 3)
    heard_at = first_audio_at(timeline or [])
    if heard_at is not None and heard_at >= phone.called_at:
        metrics.first_audio_s = round(heard_at - phone.called_at, 3)
    return metrics


def add_rtcp_rtt(metrics: Metrics, samples: list, start: float, end: float) -> Metrics:
    """The far end's RTCP round trips ([when, ms]) that fell in the measured window, as a median."""
    window = [ms for at, ms in samples if start <= at <= end]
    if window:
        metrics.rtcp_rtt_ms = round(statistics.median(window), 2)
        metrics.rtcp_rtt_samples = len(window)
    return metrics


def add_signalling(metrics: Metrics, counted: dict | None) -> Metrics:
    if counted:
        metrics.call_ws_sent_bytes = counted.get("sentBytes")
        metrics.call_ws_received_bytes = counted.get("receivedBytes")
    return metrics

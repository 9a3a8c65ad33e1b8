"""Mute and unmute: the far end must hear silence while the browser is muted, and the tone again
after unmute, each edge within 500 ms of the rtcm.mute() / rtcm.unmute() call.

Budget: about 3.6 s of media: 1.2 s heard, 1.2 s muted, 1.2 s heard again. The far end's energy
timeline (segments on the browser's media clock, with epoch times) is the judge; the page's
`muted`/`unmuted` events only say the SDK was asked.
"""

import time

import pytest

from harness.scenarios.common import open_for_calls

pytestmark = [pytest.mark.scenario("mute"), pytest.mark.slow, pytest.mark.lab]

HEARD_S, MUTED_S, AFTER_S = 1.2, 1.2, 1.2
EDGE_WITHIN_S = 0.5
EARLY_S = 0.05  # the far end's epoch is the browser's send time plus the smallest one-way delay seen
MIN_SEGMENT_S = 0.3  # an edge is where a state starts that lasts at least this long
# Lost packets are silent frames at the far end: on lossy-5 they cut the returning audio into
# 100-340 ms pieces and moved the unmute edge from 97 ms to 537 ms. Gaps this short are not silence.
LOST_GAP_S = 0.1


def _bridge(segments: list[dict]) -> list[dict]:
    """The timeline with silent gaps of at most LOST_GAP_S between two active segments made active."""
    out: list[dict] = []
    for n, s in enumerate(segments):
        short_gap = (not s["active"] and s["start_epoch"] is not None and 0 < n < len(segments) - 1
                     and s["end_epoch"] - s["start_epoch"] <= LOST_GAP_S
                     and segments[n - 1]["active"] and segments[n + 1]["active"])
        s = {**s, "active": True} if short_gap else s
        if out and out[-1]["active"] == s["active"] and out[-1]["start_epoch"] is not None and s["start_epoch"] is not None:
            out[-1] = {**out[-1], "end_epoch": s["end_epoch"]}
        else:
            out.append(s)
    return out


def _edge(segments: list[dict], active: bool, after: float, before: float | None = None) -> float | None:
    """Epoch at which the far end's timeline turns active (or silent), for at least MIN_SEGMENT_S,
    at or after `after` (and before `before`)."""
    for s in segments:
        if s["start_epoch"] is None or s["active"] is not active or s["end_epoch"] <= after:
            continue
        if s["end_epoch"] - max(s["start_epoch"], after) < MIN_SEGMENT_S:
            continue
        start = max(s["start_epoch"], after)
        if before is None or start < before:
            return start
    return None


def _share_active(segments: list[dict], start: float, end: float) -> float:
    total = active = 0.0
    for s in segments:
        if s["start_epoch"] is None:
            continue
        a, b = max(s["start_epoch"], start), min(s["end_epoch"], end)
        if b > a:
            total += b - a
            active += (b - a) if s["active"] else 0.0
    return active / total if total else 0.0


def test_mute(cell, softphone, far_end):
    open_for_calls(cell, softphone)
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(HEARD_S)
    asked_mute = time.time()
    softphone.page.evaluate("() => rtcm.mute()")
    time.sleep(MUTED_S)
    asked_unmute = time.time()
    softphone.page.evaluate("() => rtcm.unmute()")
    time.sleep(AFTER_S)
    raw = far_end.timeline(call_id)
    segments = _bridge(raw)
    softphone.hangup()
    events = {e["type"]: e["t"] / 1000 for e in softphone.events() if e["type"] in ("muted", "unmuted")}
    cell.keep("farend-timeline.json", {"asked_mute": asked_mute, "asked_unmute": asked_unmute, "events": events,
                                       "segments": raw})
    cell.prove("page", "the SDK reported muted and unmuted", set(events) == {"muted", "unmuted"},
               events=sorted(events))

    before = _share_active(segments, asked_mute - HEARD_S + 0.3, asked_mute)
    cell.prove("far-end", "before mute the far end hears the browser", before >= 0.9, active_share=round(before, 2))
    silent = _edge(segments, False, asked_mute - EARLY_S, asked_unmute)
    mute_ms = None if silent is None else round(1000 * (silent - asked_mute))
    cell.prove("far-end", f"the far end hears silence within {EDGE_WITHIN_S * 1000:.0f} ms of rtcm.mute()",
               silent is not None and -EARLY_S <= silent - asked_mute <= EDGE_WITHIN_S,
               mute_edge_ms=mute_ms,
               heard=[(s["active"], round(s["start_epoch"] - asked_mute, 3)) for s in segments
                      if s["start_epoch"] is not None and s["end_epoch"] > asked_mute - 1][:12])
    quiet = _share_active(segments, silent + 0.05, asked_unmute)
    cell.prove("far-end", "it stays silent until unmute", quiet <= 0.05,
               active_share=round(quiet, 2), muted_s=round(asked_unmute - silent, 2))
    back = _edge(segments, True, asked_unmute - EARLY_S)
    unmute_ms = None if back is None else round(1000 * (back - asked_unmute))
    cell.prove("far-end", f"the far end hears the browser again within {EDGE_WITHIN_S * 1000:.0f} ms of rtcm.unmute()",
               back is not None and -EARLY_S <= back - asked_unmute <= EDGE_WITHIN_S,
               unmute_edge_ms=unmute_ms, mute_edge_ms=mute_ms)

"""Make an outbound call: the browser logs in, calls, and the far end must hear it.

Media: `stats_seconds` (6 s by default) of call, and up to RTT_GRACE_S more while the browser has
no round trip yet, measured from the browser, on the wire and at both ends: the far end's
recording, and the browser's speaker (scored against the far end's spoken prompt where the column
records its speakers and the far end speaks)."""

import time

import pytest

from harness.farend.audio import TONE_HZ
from harness.metrics.perceptual import downlink_score
from harness.metrics.timing import add_call_timing, add_rtcp_rtt, add_signalling
from harness.metrics.wire import add_wire_view
from harness.scenarios.common import open_for_calls
from harness.wire import WireTap

pytestmark = [pytest.mark.scenario("outbound-call"), pytest.mark.slow, pytest.mark.lab]

HEARD_DBFS = -40.0  # the tone is sent at -12 dBFS; Opus and 10 % loss keep it well above this
TONE_TOLERANCE_HZ = 5.0
# The call's first second at the speaker is left out of its perceptual score: Chromium's playout
# shifted by 30-40 ms there as its output settled (PESQ 3.4 with it, 4.2-4.3 without, on ideal).
SETTLE_S = 1.5
# Firefox reads its RTT only from the far end's RTCP reports (~5 s apart); under 10 % loss both of a
# 10 s window's were lost once in CI. Sampling goes on up to this long for the first one.
RTT_GRACE_S = 6.0
MIN_RTP_PPS = 25  # Opus at 20 ms sends 50 packets a second; half of that is a call that barely flows


def test_outbound_call(cell, softphone, far_end, lab, browsers):
    open_for_calls(cell, softphone)
    softphone.login()
    if cell.options.idle_seconds:
        softphone.idle(cell.options.idle_seconds)
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    with WireTap(lab) as tap:
        start = time.time()
        cell.metrics = softphone.measure(cell.options.stats_seconds, rtt_grace_s=RTT_GRACE_S)
        end = time.time()
    # The figures first, so that a proof that does not hold leaves them in the results.
    _score_downlink(cell, browsers.audio_server(cell.cell.browser), getattr(far_end, "prompt", None), start, end)
    wire = tap.report()
    cell.keep("wire.json", wire.model_dump())
    sent = wire.from_browser(lab.client_ip)
    add_wire_view(cell.metrics, sent, cell.link, wire.stun_rtt_ms)
    seconds = max((s.seconds for s in sent), default=0.0)
    cell.prove("wire", "RTP from the browser crossed the lab link to the far end",
               len(sent) == 1 and seconds > 0 and sent[0].packets / max(seconds, 1e-9) >= MIN_RTP_PPS,
               streams=[{"ssrc": s.ssrc, "pt": s.payload_type, "packets": s.packets, "kbps": round(s.kbps, 1),
                         "missing_seq": s.missing_seq, "jitter_ms": s.jitter_ms} for s in sent], window_s=round(seconds, 2))

    heard = far_end.call(call_id)
    cell.keep("farend.json", heard)
    timeline = far_end.timeline(call_id) if heard is not None else []
    add_call_timing(cell.metrics, softphone, timeline)
    add_rtcp_rtt(cell.metrics, (heard or {}).get("rtcp_rtt_ms") or [], start, end)
    cell.prove("far-end", "the far end answered this call", heard is not None and heard["heard"] is not None,
               call_id=call_id)
    audio = heard["heard"]
    cell.prove("far-end", "the far end received audio energy from the browser",
               audio["rms_dbfs"] > HEARD_DBFS and audio["active_ratio"] > 0.5,
               rms_dbfs=round(audio["rms_dbfs"], 1), active_ratio=round(audio["active_ratio"], 2),
               seconds=audio["seconds"])
    cell.prove("far-end", f"what it heard is the browser's {TONE_HZ:g} Hz microphone tone",
               audio["dominant_hz"] is not None and abs(audio["dominant_hz"] - TONE_HZ) < TONE_TOLERANCE_HZ,
               dominant_hz=audio["dominant_hz"])
    cell.prove("page", "the browser measured a round trip on the call",
               cell.metrics.rtt_ms is not None, rtt_ms=cell.metrics.rtt_ms, source=cell.metrics.rtt_source)

    softphone.hangup()
    ended = far_end.wait_ended(call_id)
    add_signalling(cell.metrics, softphone.call_signalling())
    cell.prove("far-end", "the far end saw the browser hang up", ended["ended_by"] == "browser",
               ended_by=ended["ended_by"])
    if ended.get("recording"):
        cell.keep_file("heard", ended["recording"])


def _score_downlink(cell, server, prompt, start: float, end: float) -> None:
    """The far end's prompt as the browser's speaker played it, scored (metrics.perceptual_mos)."""
    if server is None or prompt is None:
        return  # audio: fake has no speaker to record; a SIP far end plays a tone, not speech
    with cell.phase("perceptual"):
        score = downlink_score(prompt, server.recording("a"), server.offset_s("a", start + SETTLE_S),
                               server.offset_s("a", end))
    cell.keep("perceptual.json", score)
    cell.keep_file("speaker-a", server.recording("a"))
    cell.metrics.perceptual_mos = score["mos"]

"""Receive an incoming call: the far end calls the logged-in browser user, the page rings
(`incomingCall`), the harness answers, and audio must flow both ways.

Budget: about 2.5 s of media after the answer, after 0.5 s of ringing (the page rings within tens of ms).
The far end proves the ring (the SDK's ringing reached it), the answer, and that it hears the
browser's 440 Hz microphone tone; the browser's speaker recording (the column's audio server,
speaker a) proves the far end's prompt was played, against a silent stretch recorded while
ringing. A column on the engine's fake capture (`audio: fake`) has no speaker to record: there
the page's inbound audio energy stands in, and the proof says so.
"""

import time

import pytest

from harness.audio.analysis import dbfs, read_wav
from harness.engines import PageTimeout
from harness.farend.audio import TONE_HZ
from harness.scenarios.common import far_end_wait, open_for_calls, recorded, require_sdk
from harness.softphone import NO_PROCESSING

pytestmark = [pytest.mark.scenario("inbound-call"), pytest.mark.slow, pytest.mark.lab]

MEDIA_S = 2.5
RING_HOLD_S = 0.5  # let it ring a moment, as a user would: the speaker must stay silent meanwhile
RING_TIMEOUT_S = 3.0  # the page must ring within this; in the lab it takes tens of milliseconds
TONE_TOLERANCE_HZ = 10.0
HEARD_SHARE = 0.9  # of the far end's 250 ms windows after the answer
PLAYED_DBFS = -45.0  # a speaker that played the prompt; an idle one records digital silence
SILENT_DBFS = -60.0
USER = "alice"  # softphone.login()'s default

INCOMING_JS = "(id) => rtcm.events.find(e => e.type === 'incomingCall' && e.detail.callId === id) || null"
ENERGY_JS = "async () => ((await rtcm.probe.media())[0] || {}).inbound || null"


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round((b - a) * 1000, 1)


def _level(server, speaker: str, start: float, end: float) -> float:
    x, rate = read_wav(server.recording(speaker))
    a, b = (int(max(0.0, server.offset_s(speaker, t)) * rate) for t in (start, end))
    return dbfs(x[a:b]) if b > a else -120.0


def _ring(softphone, call_id: str, timeout_s: float = RING_TIMEOUT_S) -> dict | None:
    """Wait for the page's incomingCall for `call_id`; None if it never came."""
    try:
        return softphone.page.wait_for(INCOMING_JS, call_id, timeout_s=timeout_s)
    except PageTimeout:
        return None


def test_inbound_call(cell, softphone, far_end, browsers):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "incoming", "incoming calls")
    server = browsers.audio_server(cell.cell.browser)
    softphone.login()
    cell.prove("far-end", f"the browser is registered as {USER!r}", far_end.wait_registered(USER, 5.0),
               registrations=sorted(far_end.registrations()))

    call_id = far_end.originate(USER)
    incoming = _ring(softphone, call_id)
    rang_at = time.time()
    summary = far_end_wait(far_end, call_id, recorded("ringing"), 3.0 if incoming else 0.0)
    sent = summary.get("invited_at")
    ts = summary.get("timestamps") or {}
    page_ms = _ms(sent, incoming["t"] / 1000) if incoming else None
    cell.prove("page", "the page rang: incomingCall for the far end's call", incoming is not None,
               call_id=call_id, incoming_ms=page_ms, detail=incoming and incoming["detail"],
               events=None if incoming else [e["type"] for e in softphone.events()])
    cell.prove("far-end", "the far end heard the browser ringing", "ringing" in ts,
               ringing_ms=_ms(sent, ts.get("ringing")), timestamps=ts)
    detail = incoming["detail"]
    cell.prove("page", "the ring says who calls whom", detail.get("from") == far_end.caller and detail.get("to") == USER,
               **{"from": detail.get("from"), "to": detail.get("to")})

    time.sleep(RING_HOLD_S)
    answer_sent = time.time()
    softphone.page.evaluate("(o) => rtcm.answer(o)", {"callId": call_id, "audioConstraints": dict(NO_PROCESSING)})
    answered = far_end.wait_answered(call_id, cell.options.connect_timeout_s)
    ts = answered.get("timestamps") or {}
    cell.prove("far-end", "the far end got the browser's answer", "answered" in ts,
               answer_to_far_end_ms=_ms(answer_sent, ts.get("answered")), state=answered.get("state"),
               ended_by=answered.get("ended_by"))
    connected = softphone.wait_for("connected", cell.options.connect_timeout_s)
    before = softphone.page.evaluate(ENERGY_JS) if server is None else None
    start = time.time()
    cell.metrics = softphone.measure(MEDIA_S)  # the call's RTT, jitter, loss while the far end listens
    end = time.time()
    after = softphone.page.evaluate(ENERGY_JS) if server is None else None
    track = far_end.frequency(call_id)
    softphone.hangup()
    ended = far_end.wait_ended(call_id)
    cell.keep("farend.json", ended)
    cell.keep("farend-frequency.json", track)

    # The ring: invite sent -> incomingCall on the page -> ringing back at the far end; then, from the
    # harness's answer (after RING_HOLD_S of ringing): -> answered at the far end -> connected on the page.
    ring_figures = {"incoming_ms": page_ms, "ringing_ms": _ms(sent, ts.get("ringing")),
                    "answer_to_far_end_ms": _ms(answer_sent, ts.get("answered")),
                    "answer_to_connected_ms": _ms(answer_sent, connected["t"] / 1000),
                    "invite_to_answered_ms": _ms(sent, ts.get("answered"))}
    cell.metrics.connect_s = round((connected["t"] / 1000) - answer_sent, 3)
    windows = [w for w in track if start + 0.5 <= w["epoch"] < end]
    hits = sum(w["hz"] is not None and abs(w["hz"] - TONE_HZ) < TONE_TOLERANCE_HZ for w in windows)
    share = hits / len(windows) if windows else 0.0
    cell.prove("far-end", f"the far end hears the browser's {TONE_HZ:g} Hz microphone tone on the answered call",
               share >= HEARD_SHARE and len(windows) >= 6, share=round(share, 2), windows=len(windows), **ring_figures)

    if server is not None:
        ringing_level = _level(server, "a", rang_at, answer_sent)
        played = _level(server, "a", start + 0.5, end)
        cell.keep_file("speaker-a", server.recording("a"))
        cell.prove("speaker", "the browser played the far end's prompt on its speaker (silent while it only rang)",
                   played > PLAYED_DBFS and ringing_level < SILENT_DBFS, played_dbfs=round(played, 1),
                   ringing_dbfs=round(ringing_level, 1), ringing_s=round(answer_sent - rang_at, 2),
                   speaker=server.speaker_label("a"))
    else:
        energy, packets = (None if not after else (after.get(k) or 0) - ((before or {}).get(k) or 0)
                           for k in ("totalAudioEnergy", "packetsReceived"))  # just connected: no inbound yet is 0
        cell.prove("page", "the browser received the far end's audio (inbound audio energy grew; no speaker to record "
                   "on this column: audio: fake)", bool(energy and energy > 0 and packets and packets > 0),
                   energy=energy, packets=packets, seconds=round(end - start, 1))
    cell.prove("far-end", "the far end saw the browser hang up", ended.get("ended_by") == "browser",
               ended_by=ended.get("ended_by"), end_reason=ended.get("end_reason"))
    if ended.get("recording"):
        cell.keep_file("heard", ended["recording"])

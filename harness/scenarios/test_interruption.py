"""Incoming PSTN call during an ongoing SDK call: what a phone does to a browser call, played on
the column's audio server and the far end.

During call 1 (on microphone a, whose 440 Hz the far end recognises):
(a) the microphone goes away (the audio server unplugs the source the call captures from, as
    when the phone's own call takes the microphone);
(b) a second call comes in (the far end calls the logged-in user while call 1 is up).
The far end proves what happened: whether call 2 rang (the browser's ringing, timed from the
invite; a call that never rings fails the row), whether it could be answered and carries audio,
and call 1's fate: still up at the far end, still sending (RTP per second, energy), which tone,
from when it fell silent. The page adds the SDK's events and the tracks' readyState. Then the
microphone comes back (the server is shared by the column's cells), call 2 hangs up, and the far
end listens to call 1 once more: does it continue, does its audio come back?
The behaviour is written from those figures.

Budget: about 8 s of media: 1.5 s on mic a, 2 s without it, call 2 ringing and answered,
2.5 s with both calls up, 1.5 s on call 1 alone with the microphone back.
"""

import time

import numpy as np
import pytest

from harness.audio.analysis import dbfs, read_wav
from harness.engines import PageTimeout
from harness.scenarios.common import open_for_calls, require_sdk
from harness.softphone import NO_PROCESSING

pytestmark = [pytest.mark.scenario("interruption"), pytest.mark.slow, pytest.mark.lab]

BEFORE_S, MIC_GONE_S, BOTH_S, AFTER_S = 1.5, 2.0, 2.5, 1.5
DEVICE_WAIT_S = 5.0
RING_WAIT_S = 5.0             # an incoming call that has not rung by then never will
MIC_HZ = {"a": 440.0, "b": 880.0}
TONE_TOLERANCE_HZ = 10.0
HEARD_SHARE = 0.8             # of the far end's 250 ms windows
USER = "alice"

MEDIA_JS = "() => rtcm.probe.media()"  # open peer connections, oldest first: call 1, then call 2


def _event(softphone, types: list[str], call_id: str, timeout_s: float) -> dict | None:
    js = "([types, id]) => rtcm.events.find(e => types.includes(e.type) && e.detail.callId === id) || null"
    try:
        return softphone.page.wait_for(js, arg=[types, call_id], timeout_s=timeout_s)
    except PageTimeout:
        return None


def _find_mic(softphone, label: str) -> tuple[str | None, list[dict]]:
    """The mic's deviceId, once the browser lists it by label (Firefox lists none until the SDK's
    microphone permission, asked for at login, has come through)."""
    deadline = time.monotonic() + DEVICE_WAIT_S
    while True:
        devices = softphone.devices()
        found = next((d["deviceId"] for d in devices if d["kind"] == "audioinput" and d["label"] == label), None)
        if found or time.monotonic() > deadline:
            return found, devices
        time.sleep(0.2)


def _share(track: list[dict], hz: float, start: float, end: float) -> tuple[float, int]:
    windows = [w for w in track if w["epoch"] is not None and start <= w["epoch"] < end]
    hits = sum(w["hz"] is not None and abs(w["hz"] - hz) < TONE_TOLERANCE_HZ for w in windows)
    return (hits / len(windows) if windows else 0.0), len(windows)


def _tones(track: list[dict], start: float, end: float) -> dict:
    """The share of each known mic's tone, and of silence, in [start, end)."""
    windows = [w for w in track if w["epoch"] is not None and start <= w["epoch"] < end]
    n = len(windows) or 1
    out = {f"{int(hz)}_hz": round(sum(w["hz"] is not None and abs(w["hz"] - hz) < TONE_TOLERANCE_HZ
                                      for w in windows) / n, 2) for hz in MIC_HZ.values()}
    out["silent"] = round(sum(w["hz"] is None for w in windows) / n, 2)
    out["windows"] = len(windows)
    return out


class Heard:
    """What the far end heard on one call, on the wall clock."""

    def __init__(self, far_end, call_id: str, path):
        self.summary = far_end.call(call_id) or {}
        heard = self.summary.get("heard") or {}
        self.anchor = heard.get("anchor_epoch")
        self.x, self.rate = (read_wav(far_end.recording(call_id, path)) if self.anchor else (np.zeros(0), 48_000))

    @property
    def last_frame_epoch(self) -> float | None:
        return self.anchor + self.x.size / self.rate if self.anchor else None

    def level(self, start: float, end: float) -> float:
        if not self.anchor:
            return -120.0
        a, b = (int(max(0.0, t - self.anchor) * self.rate) for t in (start, end))
        return round(dbfs(self.x[a:b]), 1) if b > a else -120.0

    def kbps(self, start: float, end: float) -> float | None:
        """The far end's received RTP payload rate over the seconds of the call whose middle falls
        within [start, end) (a second without a packet counts as 0); None if none does."""
        received = self.summary.get("received") or {}
        t0 = self.summary.get("invited_at") or 0
        series = {int(round(s["t_s"])): s["payload_kbps"] for s in received.get("series", [])}
        seconds = [k for k in range(int(start - t0) - 1, int(end - t0) + 1) if start <= t0 + k + 0.5 < end]
        return round(sum(series.get(k, 0.0) for k in seconds) / len(seconds), 1) if seconds else None


def test_interruption(cell, softphone, far_end, browsers):
    info = open_for_calls(cell, softphone)
    server = browsers.audio_server(cell.cell.browser)
    if server is None:
        pytest.skip("this column uses the engine's fake capture (audio: fake); unplugging the microphone needs "
                    "virtual devices")
    require_sdk(cell, info, "incoming", "incoming calls")
    softphone.login()
    mic_a, devices = _find_mic(softphone, server.mic_label("a"))
    cell.prove("page", "the browser lists microphone a", mic_a is not None, listed=[d["label"] for d in devices])

    call1 = softphone.call(far_end.callee, input_device=mic_a)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(BEFORE_S)
    senders_before = softphone.page.evaluate("() => rtcm.probe.senders()")
    in_use = next((n for n in server.mics if senders_before and senders_before[0]["label"] == server.mic_label(n)), None)
    cell.prove("page", "call 1 captures from one of the server's microphones", in_use is not None,
               senders=senders_before, mics={n: server.mic_label(n) for n in server.mics})
    marks = {"call1_connected": softphone.connected_at, "mic_removed": time.time()}
    call2 = rang = answered = None
    page: dict = {}
    try:
        server.remove_mic(in_use)
        time.sleep(MIC_GONE_S)
        page["senders_mic_gone"] = softphone.page.evaluate("() => rtcm.probe.senders()")
        page["media_mic_gone"] = softphone.page.evaluate(MEDIA_JS)
        marks["call2_invited"] = time.time()
        call2 = far_end.originate(USER, from_="pstn-caller", ring_timeout_s=RING_WAIT_S + 5)
        rang = _event(softphone, ["incomingCall"], call2, RING_WAIT_S)
        if rang is not None:
            marks["call2_answering"] = time.time()
            softphone.page.evaluate("(o) => rtcm.answer(o)", {"callId": call2, "audioConstraints": NO_PROCESSING})
            answered = _event(softphone, ["connected", "failed"], call2, cell.options.connect_timeout_s)
            marks["call2_connected"] = time.time()
            time.sleep(BOTH_S)
            marks["both_end"] = time.time()
            page["farend_call1_both"] = far_end.call(call1)
            page["senders_both"] = softphone.page.evaluate("() => rtcm.probe.senders()")
            page["media_both"] = softphone.page.evaluate(MEDIA_JS)
    finally:
        server.restore_mic(in_use)
        marks["mic_restored"] = time.time()
    farend_call2 = far_end.call(call2) if call2 else None
    if answered is not None and answered["type"] == "connected":
        softphone.hangup()  # the adapter's current call is the answered one
        far_end.wait_ended(call2, 3)
        marks["call2_ended"] = time.time()
        time.sleep(AFTER_S)
        marks["after_end"] = time.time()
        page["media_after"] = softphone.page.evaluate(MEDIA_JS)
    elif call2:
        far_end.hangup(call2)
    events = softphone.events()
    call1_end = far_end.call(call1) or {}
    call1_state, call1_ended = call1_end.get("state"), call1_end.get("ended_at")
    if not call1_ended:
        far_end.hangup(call1)
        far_end.wait_ended(call1, 3)
    h1 = Heard(far_end, call1, cell.evidence_dir / "heard-call1.wav")
    track1 = far_end.frequency(call1)
    track2 = far_end.frequency(call2) if farend_call2 and farend_call2.get("heard") else []
    cell.keep_file("heard-call1", cell.evidence_dir / "heard-call1.wav")
    cell.keep("interruption.json", {"marks": marks, "page": page, "farend_call2": farend_call2,
                                    "call1_state_before_hangup": call1_state, "call1_ended_at": call1_ended})
    cell.keep("farend-frequency.json", {"call1": track1, "call2": track2})

    removed = marks["mic_removed"]
    hz1 = MIC_HZ.get(in_use, 0.0)
    before, n_before = _share(track1, hz1, marks["call1_connected"] + 0.5, removed)
    cell.prove("far-end", f"before the microphone went away the far end heard call 1's microphone {in_use} "
                          f"({hz1:g} Hz)", before >= HEARD_SHARE and n_before >= 3,
               share=round(before, 2), windows=n_before)

    # (a) the microphone went away
    ev1 = [{"type": e["type"], "after_s": round(e["t"] / 1000 - removed, 3), **e["detail"]} for e in events
           if e["detail"].get("callId") == call1 and e["t"] / 1000 >= removed]
    gone_end = marks.get("call2_invited", removed + MIC_GONE_S)
    stopped = next((w["epoch"] for w in track1 if w["epoch"] and w["epoch"] >= removed
                    and not (w["hz"] and abs(w["hz"] - hz1) < TONE_TOLERANCE_HZ)), h1.last_frame_epoch)
    mic_gone = _phase(h1, track1, removed + 0.5, gone_end, page.get("senders_mic_gone"))
    mic_gone.update(tone_stopped_after_s=None if stopped is None else round(max(0.0, stopped - removed), 2),
                    sdk_events=ev1)

    # (b) the second call
    ts = (farend_call2 or {}).get("timestamps") or {}
    ring_ms = round(1000 * (ts["ringing"] - ts["invite_sent"])) if "ringing" in ts and "invite_sent" in ts else None
    cell.prove("far-end", "the second call rang in the browser while call 1 was up (the far end heard its ringing)",
               ring_ms is not None and rang is not None, ring_ms=ring_ms, timestamps=ts,
               incoming_call_event=rang, wait_s=RING_WAIT_S)
    cell.prove("page", "the second call could be answered", answered is not None and answered["type"] == "connected",
               event=answered)
    both_start, both_end = marks["call2_connected"] + 0.5, marks["both_end"]
    heard2 = _tones(track2, both_start, both_end)
    hz2 = max(MIC_HZ.values(), key=lambda hz: heard2[f"{int(hz)}_hz"])
    cell.prove("far-end", "the far end hears the answered second call",
               heard2[f"{int(hz2)}_hz"] >= HEARD_SHARE and heard2["windows"] >= 4, **heard2)

    # call 1's fate while call 2 was up, and after
    during = page.get("farend_call1_both") or {}
    both = _phase(h1, track1, both_start, both_end, page.get("senders_both"))
    both["farend_state"] = during.get("state")
    after = _phase(h1, track1, marks["call2_ended"] + 0.3, marks["after_end"], None)
    after["farend_state"] = call1_state
    cell.keep("call1-fate.json", {"mic_gone": mic_gone, "both": both, "after": after,
                                  "inbound_packets": {k: [(m.get("inbound") or {}).get("packetsReceived")
                                                          for m in page.get(k, [])]
                                                      for k in ("media_mic_gone", "media_both", "media_after")}})
    cell.prove("far-end", "call 1 stayed up while the second call was answered (the far end's connection is "
                          "still connected, no bye)", during.get("state") == "connected" and not during.get("ended_at"),
               mic_gone=mic_gone, both=both, after=after)

    inbound = [next(iter(page.get(k) or []), {}).get("inbound") or {} for k in ("media_mic_gone", "media_both",
                                                                            "media_after")]
    received = [i.get("packetsReceived") for i in inbound]
    gone = (f"call 1 kept its {hz1:g} Hz" if mic_gone["tones"].get(f"{int(hz1)}_hz", 0) >= HEARD_SHARE else
            f"the far end stopped hearing call 1's {hz1:g} Hz {mic_gone['tone_stopped_after_s']:g} s later and heard "
            f"{_say(mic_gone)} instead")
    last, answering = h1.last_frame_epoch, marks["call2_answering"]
    cut = ""
    if last and answering - 0.5 <= last < both_end - 0.5:
        delta = last - answering
        cut = (", its audio stopping as the browser answered call 2" if abs(delta) < 0.05 else
               f", its audio stopping {abs(delta):.2f} s {'after' if delta > 0 else 'before'} the browser answered call 2")
    events_said = ", ".join(e["type"] for e in ev1 if e["type"] not in ("ended",)) or "none"
    still = (f"; call 1 kept receiving the far end (page: {received[0]} -> {received[-1]} packets)"
             if None not in received and received[-1] > received[0] else "")
    with_audio = any(both["tones"].get(f"{int(hz)}_hz", 0) >= HEARD_SHARE for hz in MIC_HZ.values())
    lead = "Both calls happen in parallel" if with_audio else "Both calls stay up in parallel, call 1 without audio"
    cell.behaviour = (
        f"{lead}: call 2 rang {ring_ms} ms after the invite and was answered (the far end heard {hz2:g} Hz, "
        f"microphone {next(n for n, hz in MIC_HZ.items() if hz == hz2)}) while call 1 stayed up. Microphone "
        f"{in_use} going away mid-call: {gone} (track {mic_gone['track']}, SDK events: {events_said}). With both "
        f"calls up, call 1 sent {_say(both)}; its track {both['track']}{cut}. After call 2 ended and the microphone "
        f"came back, call 1 sent {_say(after)} and stayed {after['farend_state'] or 'unknown'}{still}")

def _phase(heard: Heard, track: list[dict], start: float, end: float, senders: list[dict] | None) -> dict:
    """What the far end got from call 1 over [start, end): tones, level, RTP rate; and call 1's
    microphone track state on the page (its sender is the first, being the oldest call's)."""
    return {"tones": _tones(track, start, end), "level_dbfs": heard.level(start, end), "kbps": heard.kbps(start, end),
            "track": (senders[0].get("readyState") if senders else None), "span_s": round(end - start, 2)}


def _say(part: dict) -> str:
    """"880 Hz (microphone b) at -15 dBFS, 31 kbit/s", "silence (-120 dBFS) at 1.2 kbit/s", "nothing (no RTP)"."""
    tones = [(name, hz) for name, hz in MIC_HZ.items() if part["tones"].get(f"{int(hz)}_hz", 0) >= HEARD_SHARE]
    level = "" if part.get("level_dbfs") is None else f" at {part['level_dbfs']:g} dBFS"
    rate = "" if part.get("kbps") is None else f", {part['kbps']:g} kbit/s"
    if tones:
        return " and ".join(f"{hz:g} Hz (microphone {name})" for name, hz in tones) + level + rate
    if not part["tones"].get("windows") and not part.get("kbps"):
        return "nothing (no RTP)"
    return f"silence ({part['level_dbfs']:g} dBFS{rate})" if part.get("level_dbfs") is not None else "silence"

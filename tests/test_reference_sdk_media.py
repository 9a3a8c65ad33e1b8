"""The reference SDK's media, device and page probes (see test_reference_sdk.py for the set-up):
maxAverageBitrate, PCMU, DSCP, page unload, WebRTC detection, microphone and speaker switching,
the console mirror. Each turns red with its `break=`."""

from __future__ import annotations

import time

import pytest

from harness.farend import audio
from tests.test_reference_sdk import (  # noqa: F401 (chromium, phone: fixtures)
    NO_PROCESSING, WORKS_OR_BROKEN, Phone, _rfc4733_ok, chromium, figure, opened, phone)

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]


# --- encoder options -------------------------------------------------------------------------------------

@WORKS_OR_BROKEN
def test_max_average_bitrate_reaches_the_sdp_and_the_encoder(phone, far_end, broken):
    opened(phone, broken, "bitrate", maxAverageBitrate=16000)
    phone.login()
    call_id = phone.connected_call()
    time.sleep(4)
    offer = far_end.sdp(call_id)["remote"]
    browser_remote = phone.js("rtcm.probe.sdp()")[0]["remote"]
    encodings = phone.js("rtcm.probe.senders()")[0]["encodings"]
    received = far_end.call(call_id)["received"]
    phone.js("rtcm.hangup()")
    ok = ("maxaveragebitrate=16000" in offer and "maxaveragebitrate=16000" in browser_remote
          and encodings[0].get("maxBitrate") == 16000 and received["recent_payload_kbps"] <= 18)
    figure(f"opus payload kbit/s received with maxAverageBitrate 16000 ({'broken' if broken else 'works'})",
           recent=received["recent_payload_kbps"], series=[s["payload_kbps"] for s in received["series"]])
    assert ok is not broken, {"offer has it": "maxaveragebitrate=16000" in offer, "encodings": encodings,
                              "kbps": received["recent_payload_kbps"]}


@WORKS_OR_BROKEN
def test_pcmu_is_negotiated_on_request(phone, far_end, broken):
    opened(phone, broken, "codec")
    phone.login()
    call_id = phone.connected_call(codec="pcmu")
    time.sleep(1.5)
    if not broken:
        phone.js("rtcm.sendDtmf('159#', {mode: 'rfc4733', durationMs: 100, gapMs: 70})")
        time.sleep(0.3)
    truth = far_end.truth(call_id)
    media = phone.js("rtcm.probe.media()")[0]
    phone.js("rtcm.hangup()")
    codec = truth["codec"]
    ok = codec["name"].upper() == "PCMU" and codec["pt"] == 0 and truth["received"]["payload_types"].get("0", 0) > 50
    assert ok is not broken, codec
    if broken:
        return
    assert abs(truth["heard"]["dominant_hz"] - audio.TONE_HZ) < 5 and truth["heard"]["codec_rates"] == [8000]
    assert truth["dtmf_payload_types"] == [{"pt": 126, "clock_rate": 8000}]
    assert _rfc4733_ok(truth["dtmf"]["rfc4733"], "159#"), truth["dtmf"]["rfc4733"]
    assert not truth["dtmf"]["inband"]
    assert media["codec"]["mimeType"].upper() == "AUDIO/PCMU" and media["inbound"]["totalAudioEnergy"] > 0
    figure("pcmu (browser's offer)", far_end_hz=round(truth["heard"]["dominant_hz"], 1), dtmf="159#",
           durations_ms=[d["duration_ms"] for d in truth["dtmf"]["rfc4733"]], browser_codec=media["codec"]["mimeType"])
    # The far end's own offer, restricted to PCMU, works the same way.
    incoming = far_end.originate("alice", codec="pcmu", ring_timeout_s=6)
    phone.wait_event("incomingCall", 4)
    phone.js("(o) => rtcm.answer(o)", {"audioConstraints": NO_PROCESSING})
    phone.wait_event("connected", 8, where=f"e.detail.callId === {incoming!r}")
    time.sleep(1.0)
    phone.js("rtcm.sendDtmf('2*', {mode: 'rfc4733'})")
    time.sleep(0.3)
    back = far_end.truth(incoming)
    phone.js("rtcm.hangup()")
    assert back["codec"]["name"].upper() == "PCMU" and back["dtmf_payload_types"][0]["clock_rate"] == 8000
    assert _rfc4733_ok(back["dtmf"]["rfc4733"], "2*") and abs(back["heard"]["dominant_hz"] - audio.TONE_HZ) < 5


@WORKS_OR_BROKEN
def test_dscp_sets_the_sender_priority(phone, far_end, broken):
    opened(phone, broken, "dscp")
    phone.login()
    phone.connected_call()
    encodings = phone.js("rtcm.probe.senders()")[0]["encodings"]
    phone.js("rtcm.hangup()")
    ok = encodings[0].get("networkPriority") == "high" and encodings[0].get("priority") == "high"
    assert ok is not broken, encodings


# --- page unload, detection -------------------------------------------------------------------------------

@WORKS_OR_BROKEN
def test_page_unload_hangs_up(phone, far_end, broken):
    opened(phone, broken, "unload")
    phone.login()
    call_id = phone.connected_call()
    time.sleep(0.5)
    left = time.time()
    phone.page.goto("about:blank")
    ended = far_end.wait_ended(call_id, 5)
    ok = ended["ended_by"] == "browser" and ended["end_reason"] == "unload"
    assert ok is not broken, (ended["ended_by"], ended["end_reason"])
    figure(f"unload ({'broken' if broken else 'works'})", ended_by=ended["ended_by"], reason=ended["end_reason"],
           after_ms=round(1000 * (ended["ended_at"] - left)))


@WORKS_OR_BROKEN
def test_webrtc_not_supported_is_detected(chromium, far_end, broken):
    context = chromium.new_context()
    context.add_init_script("delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;")
    phone = Phone(context, far_end)
    try:
        info = opened(phone, broken, "notsupported")
        time.sleep(0.2)
        fired = phone.events("webrtcNotSupported")
        ok = info["supported"] is False and bool(fired) and fired[0]["detail"]["missing"] == ["RTCPeerConnection"]
        assert ok is not broken, (info["supported"], fired)
        if not broken:
            with pytest.raises(Exception, match="missing RTCPeerConnection"):
                phone.login()
    finally:
        phone.close()


# --- devices -----------------------------------------------------------------------------------------------

@WORKS_OR_BROKEN
def test_set_input_switches_the_microphone_mid_call(phone, far_end, broken):
    opened(phone, broken, "input")
    phone.login()
    call_id = phone.connected_call()
    inputs = [d for d in phone.js("rtcm.devices()") if d["kind"] == "audioinput"]
    assert len(inputs) >= 2, inputs
    before = phone.js("rtcm.probe.senders()")[0]
    target = next(d for d in inputs if d["deviceId"] != before["deviceId"])
    time.sleep(0.5)
    switched = time.time()
    phone.js("(id) => rtcm.setInput(id)", target["deviceId"])
    time.sleep(1.0)
    after = phone.js("rtcm.probe.senders()")[0]
    timeline = far_end.timeline(call_id)
    phone.js("rtcm.hangup()")
    assert phone.events("inputChanged")
    assert after["processing"] == before["processing"] == {k: False for k in NO_PROCESSING}
    gaps = [s for s in timeline if not s["active"] and s["end_epoch"] > switched - 0.2]
    ok = after["deviceId"] == target["deviceId"] and after["trackId"] != before["trackId"] and after["enabled"]
    assert ok is not broken, {"before": before, "after": after, "target": target}
    if ok:
        figure("setInput", device=target["label"], silence_after_switch_ms=[round(1000 * (s["end_epoch"] - s["start_epoch"])) for s in gaps])
        assert all(s["end_epoch"] - s["start_epoch"] < 0.3 for s in gaps)


@WORKS_OR_BROKEN
def test_set_output_sets_the_sink_of_this_and_later_calls(phone, far_end, broken):
    opened(phone, broken, "output")
    phone.login()
    phone.connected_call()
    outputs = [d for d in phone.js("rtcm.devices()") if d["kind"] == "audiooutput" and d["deviceId"] != "default"]
    target = outputs[0]["deviceId"]
    phone.js("(id) => rtcm.setOutput(id)", target)
    first = phone.js("rtcm.probe.audio()")
    phone.js("rtcm.hangup()")
    phone.connected_call()
    later = [a for a in phone.js("rtcm.probe.audio()") if a["inDocument"]]
    phone.js("rtcm.hangup()")
    ok = [a["sinkId"] for a in first if a["inDocument"]] == [target] and [a["sinkId"] for a in later] == [target]
    assert phone.events("outputChanged")
    assert ok is not broken, {"first": first, "later": later}


def test_set_output_without_set_sink_id_says_not_supported(chromium, far_end):
    context = chromium.new_context()
    context.add_init_script("delete HTMLMediaElement.prototype.setSinkId;")
    phone = Phone(context, far_end)
    try:
        info = phone.open()
        assert info["features"]["setOutput"] is False
        with pytest.raises(Exception, match="not supported: setSinkId is missing"):
            phone.js("rtcm.setOutput('default')")
    finally:
        phone.close()


def test_console_and_errors_are_mirrored(phone):
    phone.open()
    phone.js("console.log('hello', {a: 1}); console.warn('careful'); setTimeout(() => { throw new Error('boom'); }, 0)")
    phone.page.wait_for_function("rtcm.errors.length > 0", timeout=3000)
    mirrored = [(c["level"], c["text"]) for c in phone.js("rtcm.console")]
    assert ("log", 'hello {"a":1}') in mirrored and ("warn", "careful") in mirrored
    assert any(level == "pageerror" and "boom" in text for level, text in mirrored)
    assert any("boom" in e for e in phone.js("rtcm.errors"))


def test_page_lifecycle_is_logged(phone):
    """The log itself (really hiding and freezing a page needs a windowed Chromium over CDP: the
    background scenario does that)."""
    phone.open()
    phone.js("() => { for (const t of ['visibilitychange', 'freeze', 'resume']) document.dispatchEvent(new Event(t)); }")
    seen = [e for e in phone.js("rtcm.lifecycleEvents") if e["type"] not in ("focus", "blur")]
    assert [e["type"] for e in seen] == ["pageshow", "visibilitychange", "freeze", "resume"], seen
    assert seen[1]["visibilityState"] == "visible"

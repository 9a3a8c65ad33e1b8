"""The far end's ground truth can say no, and says when: it tells the browser's tone from
silence, sees 440 Hz turn into 880 Hz within a second, keeps a timeline and a recording that
agree, and sends its own audio at a modest bitrate."""

from __future__ import annotations

import time

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from harness.audio.analysis import dominant_hz, read_wav
from harness.farend import audio
from harness.farend.handle import FarEndError
from tests.test_reference_sdk import Phone, chromium_in_lab, figure

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]

STEP_S = 2.0


@pytest.fixture(scope="module")
def truth_browsers(lab, far_end, tmp_path_factory):
    """Two Chromiums in the client namespace: one whose microphone plays 440 Hz, one whose
    microphone alternates 440 Hz and 880 Hz every 2 s."""
    from impairments.profile import Profile

    lab.apply(Profile(name="ideal"))
    workdir = tmp_path_factory.mktemp("truth")
    steady = audio.tone(workdir / "mic-440.wav", seconds=10)
    stepped = audio.tones(workdir / "mic-440-880.wav", [(440.0, STEP_S), (880.0, STEP_S)])
    pw = sync_playwright().start()
    running = {}
    try:
        (workdir / "a").mkdir()
        (workdir / "b").mkdir()
        running["440"] = chromium_in_lab(pw, lab, far_end, workdir / "a", steady)
        running["440-880"] = chromium_in_lab(pw, lab, far_end, workdir / "b", stepped)
        yield running
    finally:
        for b in running.values():
            b.close()
        pw.stop()


@pytest.fixture
def phone_for(truth_browsers, far_end):
    made = []

    def make(mic: str) -> Phone:
        p = Phone(truth_browsers[mic].new_context(), far_end)
        made.append(p)
        p.open()
        p.login()
        return p

    yield make
    for p in made:
        p.close()


def test_far_end_hears_the_tone_then_silence_when_muted(phone_for, far_end):
    phone = phone_for("440")
    call_id = phone.connected_call()
    time.sleep(2.5)
    live = far_end.call(call_id)["heard"]
    phone.js("rtcm.mute()")
    time.sleep(0.5)
    before = far_end.call(call_id)["heard"]["seconds"]
    time.sleep(2.5)
    after = far_end.call(call_id)["heard"]
    phone.js("rtcm.hangup()")
    assert live["rms_dbfs"] > -30 and abs(live["dominant_hz"] - audio.TONE_HZ) < 5
    # The far end kept receiving frames while muted, total energy fell, and the silence is one long gap.
    assert after["seconds"] > before + 2
    assert after["rms_dbfs"] < live["rms_dbfs"] - 1.5
    assert after["longest_gap_s"] >= 2.0


def test_frequency_track_sees_440_turn_into_880_within_a_second(phone_for, far_end):
    phone = phone_for("440-880")
    call_id = phone.connected_call()
    time.sleep(5.0)
    track = far_end.frequency(call_id, window_s=0.25)
    phone.js("rtcm.hangup()")
    near = lambda hz, f: hz is not None and abs(hz - f) < 10  # noqa: E731
    changes = []
    last_440 = None
    for w in track:
        if near(w["hz"], 440):
            last_440 = w
        elif near(w["hz"], 880) and last_440 is not None:
            changes.append(w["epoch"] - last_440["epoch"])
            last_440 = None
    assert changes, [(w["media_s"], w["hz"]) for w in track]
    # Consecutive 0.25 s windows: the one holding the change is neither tone, so 0.25-0.5 s apart.
    assert all(0.2 <= c <= 1.0 for c in changes), changes
    labelled = [w for w in track if w["hz"] is not None]
    clean = [w for w in labelled if near(w["hz"], 440) or near(w["hz"], 880)]
    assert len(clean) >= 0.7 * len(labelled)
    figure("440 -> 880 Hz", window_s=0.25, change_seen_within_s=[round(c, 2) for c in changes],
           windows=len(track), windows_on_a_tone=len(clean))


def test_timeline_and_recording_agree(phone_for, far_end, tmp_path):
    phone = phone_for("440")
    call_id = phone.connected_call()
    time.sleep(3.0)
    truth = far_end.truth(call_id)
    wav = far_end.recording(call_id, tmp_path / "heard.wav")
    phone.js("rtcm.hangup()")
    x, rate = read_wav(wav)
    heard = truth["heard"]
    # The recording was fetched a moment after the truth: it holds that much more.
    assert rate == 48000 and heard["seconds"] <= x.size / rate <= heard["seconds"] + 0.5
    assert dominant_hz(x, rate) == pytest.approx(audio.TONE_HZ, abs=3)
    segments = truth["timeline"]
    assert segments and segments[0]["media_start_s"] == 0.0
    assert all(a["media_end_s"] == pytest.approx(b["media_start_s"]) for a, b in zip(segments, segments[1:]))
    assert segments[-1]["media_end_s"] == pytest.approx(heard["seconds"], abs=0.02)
    for s in segments:
        assert s["start_epoch"] == pytest.approx(truth["call_start"] + s["start_s"], abs=0.002)
    first = segments[0]
    assert first["active"] and 0 < first["start_s"] < 1.5, first
    assert np.isclose(first["start_epoch"], heard["anchor_epoch"])
    figure("timeline", first_audio_after_invite_s=first["start_s"], segments=len(segments),
           recording_s=round(x.size / rate, 2))


def test_far_end_sends_modest_opus(phone_for, far_end):
    phone = phone_for("440")
    call_id = phone.connected_call()
    time.sleep(1.0)
    a = phone.js("rtcm.probe.media()")[0]
    t0 = time.time()
    time.sleep(2.0)
    b = phone.js("rtcm.probe.media()")[0]
    elapsed = time.time() - t0
    summary = far_end.call(call_id)
    phone.js("rtcm.hangup()")
    pps = (b["inbound"]["packetsReceived"] - a["inbound"]["packetsReceived"]) / elapsed
    kbps = (b["inbound"]["bytesReceived"] - a["inbound"]["bytesReceived"]) * 8 / elapsed / 1000
    assert summary["sent_opus_bitrate"] == 32000
    assert 45 <= pps <= 55  # 20 ms frames
    assert 20 <= kbps <= 40, kbps  # aiortc's default would be ~96 kbit/s of payload
    figure("far end's own Opus (browser's inbound-rtp)", set_bit_s=summary["sent_opus_bitrate"],
           payload_kbps=round(kbps, 1), pps=round(pps, 1))


def test_originate_needs_a_registered_user_and_unknown_calls_are_404(far_end):
    with pytest.raises(FarEndError, match="is not registered"):
        far_end.originate("nobody-here")
    assert far_end.call("no-such-call") is None

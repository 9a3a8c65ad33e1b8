"""The audio-device rows end to end through `rtcmatrix run`: echo cancellation (an echo path inside
the column's audio server, measured at the far end) and an incoming call during a call while the
microphone goes away; then the same rows made to fail: the SDK configured with its canceller off
(page options, as an app would) and the SDK ignoring incoming calls (break=incoming). Also the
audio server puts back what those rows change on it (one server serves a column's every cell)."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.rowutil import proof, run_side_by_side

pytestmark = [pytest.mark.slow, pytest.mark.lab]
CLI = [sys.executable, "-m", "harness.cli"]
ROWS = ["interruption", "echo"]
EC_OFF = {"audioConstraints": {"echoCancellation": False}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # Side by side: the rows on every engine, and an app that turned its canceller off (the `page:`
    # SDK options) with the SDK's incoming calls broken.
    return run_side_by_side(tmp_path_factory.mktemp("rows-devices"), {
        "rows": {"scenarios": ROWS, "browsers": ["chromium", "firefox", "webkit"],
                 "options": {"link_check_probes": 0, "stats_seconds": 2}},
        "broken": {"scenarios": ROWS, "browsers": ["chromium"],
                   "options": {"link_check_probes": 0, "stats_seconds": 2, "break": "incoming", "page": EC_OFF}}})


@pytest.fixture(scope="module")
def rows(runs):
    return runs["rows"]


@pytest.fixture(scope="module")
def broken(runs):
    return runs["broken"]


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_echo_is_cancelled_measured_at_the_far_end(rows, browser):
    cell = rows[(browser, "echo")]
    assert cell["status"] in ("supported", "degraded"), cell["reason"]
    loop = proof(cell, "with the processing off, what speaker a played comes back to the far end")["details"]
    assert loop["return_db"] > -10 and loop["correlation"] >= 0.8 and loop["speaker_dbfs"] > -45, loop
    echo = proof(cell, "with the SDK's processing on, the echo is at least 6 dB lower")
    figures = echo["details"]
    assert echo["ok"] and figures["typical_reduction_db"] >= 6, figures
    assert (cell["status"] == "supported") == (figures["typical_reduction_db"] >= 15 and
                                               figures["energy_reduction_db"] >= 10), (cell["status"], figures)
    assert figures["processing_on"]["echoCancellation"] is True and figures["processing_on"]["autoGainControl"] is False
    for key in ("echoCancellation", "noiseSuppression"):
        reported = proof(cell, f"the microphone track reports {key} on")
        assert reported["ok"] and reported["details"]["off"][key] is False
    assert {"far-end", "speaker", "page"} <= set(cell["proven_by"])
    assert cell["behaviour"].startswith("echo cancelled: ") and f"{figures['typical_reduction_db']:g} dB less" in \
        cell["behaviour"]
    print(f"{browser} echo: {cell['behaviour']}")


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_second_call_rings_and_call_one_survives(rows, browser):
    cell = rows[(browser, "interruption")]
    assert cell["status"] == "supported", cell["reason"]
    assert proof(cell, "before the microphone went away the far end heard call 1's microphone a (440 Hz)")["ok"]
    ring = proof(cell, "the second call rang in the browser while call 1 was up")["details"]
    assert 0 <= ring["ring_ms"] < 1000, ring
    heard2 = proof(cell, "the far end hears the answered second call")["details"]
    assert heard2["880_hz"] >= 0.8, heard2  # mic b, the default once a went away
    fate = proof(cell, "call 1 stayed up while the second call was answered")
    assert fate["ok"] and fate["details"]["both"]["farend_state"] == "connected", fate
    gone = fate["details"]["mic_gone"]
    assert gone["tones"]["440_hz"] < 0.2 and gone["tone_stopped_after_s"] < 1.0, gone  # mic a's tone went with it
    # Measured: Chromium carries call 1 on to the new default microphone (track still live) until the
    # second call opens it; Firefox ends the track and sends silence.
    if browser == "chromium":
        assert gone["track"] == "live" and gone["tones"]["880_hz"] >= 0.8, gone
        assert fate["details"]["both"]["track"] == "ended" and not fate["details"]["both"]["kbps"], fate
    else:
        assert gone["track"] == "ended" and gone["tones"]["silent"] >= 0.8 and gone["kbps"], gone
    # Both engines: call 1 is up but without audio while call 2 is (measured, see above).
    assert cell["behaviour"].startswith("Both calls stay up in parallel, call 1 without audio: call 2 rang "
                                        f"{ring['ring_ms']} ms after the invite"), cell["behaviour"]
    print(f"{browser} interruption: {cell['behaviour']}")


def test_webkit_rows_are_truthful(rows):
    for row in ROWS:
        cell = rows[("webkit", row)]
        assert cell["status"] == "not-supported" and cell["lacking"] == "browser: RTCPeerConnection", cell["reason"]


def test_rows_turn_red(broken):
    """The probes can fail: a second call the SDK ignores never rings, and an SDK configured with its
    canceller off lets the echo through, which the far end hears."""
    cell = broken[("chromium", "interruption")]
    assert cell["status"] == "failed" and "the second call rang in the browser" in cell["reason"], cell["reason"]
    assert proof(cell, "before the microphone went away")["ok"]
    cell = broken[("chromium", "echo")]
    assert cell["status"] == "failed" and "the echo is at least 6 dB lower" in cell["reason"], cell["reason"]
    figures = proof(cell, "with the SDK's processing on, the echo is at least 6 dB lower")["details"]
    assert figures["processing_on"]["echoCancellation"] is False and figures["typical_reduction_db"] < 6
    assert figures["page_options"]["audioConstraints"] == EC_OFF["audioConstraints"]


def test_audio_server_puts_back_what_the_rows_change(tmp_path):
    """remove_mic/restore_mic and add_echo_mic/remove_echo_mic leave the server as it was: the same
    sources and default, and the restored mic plays its tone again."""
    import pulsectl

    from harness.audio.analysis import dominant_hz
    from harness.audio.pulse import AudioServer
    from harness.farend.audio import tone
    from impairments.lab import Lab

    wavs = {"a": tone(tmp_path / "a.wav", hz=440, seconds=2), "b": tone(tmp_path / "b.wav", hz=880, seconds=2)}
    with Lab() as lab, AudioServer(lab.client_ns, tmp_path / "pa", wavs, ["a", "b"]) as server:
        def state():
            with pulsectl.Pulse("rtcm-test", server=server.env["PULSE_SERVER"]) as pulse:
                return sorted(s.name for s in pulse.source_list()), pulse.server_info().default_source_name, \
                    len(pulse.module_list())

        before = state()
        label = server.add_echo_mic("echo", speaker="a")
        assert "rtcm_mic_echo" in state()[0] and label == server.mic_label("echo") == "rtcm mic echo (hears speaker a)"
        server.remove_echo_mic("echo")
        assert state() == before and server.echo_mics == []
        server.remove_mic("a")
        gone = state()
        assert "rtcm_mic_a" not in gone[0] and gone[1] != "rtcm_mic_a" and server.mics == ["b"]
        server.restore_mic("a")
        assert state() == before and server.mics == ["a", "b"]
        raw = tmp_path / "a.raw"
        with open(raw, "wb") as out:
            rec = subprocess.Popen(["ip", "netns", "exec", lab.client_ns, "parec", "--device=rtcm_mic_a", "--raw",
                                    "--format=s16le", "--rate=48000", "--channels=1"], stdout=out,
                                   env={**os.environ, **server.env})
            time.sleep(1.0)
            rec.terminate()
            rec.wait(timeout=5)
        x = np.frombuffer(raw.read_bytes()[: raw.stat().st_size & ~1], "<i2").astype(np.float32) / 32768
        assert x.size > 24_000 and abs(dominant_hz(x[-24_000:], 48000) - 440) < 5

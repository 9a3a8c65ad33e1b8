"""The SIP backend with no browser: a baresip caller in the client namespace calls the far end through
Kamailio and rtpengine; the far end calls a registered UA; a wrong password is refused."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness.audio.analysis import dominant_hz, read_wav
from harness.backends.sip import SipBackend, sweep_leftovers
from harness.backends.sip.baresip import Baresip
from harness.backends.sip.procs import leftovers
from impairments.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def caller(lab, backend, name="alice", password=None, tone_hz=440, answermode="manual"):
    return Baresip(lab.exec_prefix("client"), lab.client_ns, backend.rundir / name, ip=lab.client_ip,
                   sip_port=5062, proxy=lab.server_ip, user=name, domain=backend.sip_domain,
                   password=password or backend.credentials(name)["password"], tone_hz=tone_hz,
                   ctrl_port=4445, answermode=answermode, rtp_ports=(33000, 33199), name=name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with Lab(backend="auto", log_dir=tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture
def backend(lab, tmp_path):
    b = SipBackend(lab, tmp_path)
    try:
        yield b.start()
    finally:
        b.stop()


def test_call_to_far_end_audio_dtmf_hangup(lab, backend, tmp_path):
    alice = caller(lab, backend).start()
    try:
        assert backend.wait_registered("alice", 5)
        t0 = time.monotonic()
        alice.command("dial", backend.far_end_uri)
        call_id = None
        while time.monotonic() - t0 < 5 and not call_id:
            call_id = next((e["id"] for e in alice.ctrl.events if e.get("id")), None)
            time.sleep(0.02)
        assert call_id, "caller never saw its own call"
        summary = backend.wait_answered(call_id, 5)
        answered_s = time.monotonic() - t0
        assert summary["state"] == "answered", summary
        assert summary["codec"].lower().startswith("opus"), summary["codec"]
        time.sleep(2.0)
        alice.command("sndcode", "1")
        time.sleep(0.4)
        alice.command("sndcode", "#")
        time.sleep(1.5)
        # mute at the far end: the caller's recording of the far end's 1000 Hz goes silent
        backend.mute(call_id)
        time.sleep(1.5)
        backend.unmute(call_id)
        time.sleep(1.0)
        track = backend.frequency(call_id)
        near = [w for w in track if w["hz"] and abs(w["hz"] - 440) < 5]
        assert len(near) >= 0.8 * len(track) and len(track) >= 16, track
        dtmf = backend.dtmf(call_id)
        assert dtmf["digits"] == "1#", dtmf
        assert all(e["mode"] == "rfc4733" for e in dtmf["events"])
        sdp = backend.sdp(call_id)
        assert "m=audio" in sdp["offer"] and "m=audio" in sdp["answer"]
        backend.hangup(call_id)
        ended = backend.wait_ended(call_id, 5)
        assert ended["state"] == "ended" and ended["ended_at"] >= ended["answered_at"]
        trace = backend.sip_trace(call_id)
        assert any("\nBYE sip:" in m for m in trace) and any("SIP/2.0 407" in m for m in trace)
        heard = backend.recording(call_id, tmp_path / "heard.wav")
        x, rate = read_wav(heard)
        assert abs(dominant_hz(x, rate) - 440) < 5
        # the caller heard the far end's tone, then silence while muted, then the tone again
        cx, crate = read_wav(alice.recordings()[-1])
        sec = lambda a, b: cx[int(a * crate):int(b * crate)]  # noqa: E731
        assert abs(dominant_hz(sec(0.5, 2.5), crate) - 1000) < 5
        levels = [float((sec(t, t + 0.25) ** 2).mean()) for t in [i * 0.25 for i in range(int(len(cx) / crate * 4))]]
        assert min(levels) < 1e-7 < max(levels), "far end's mute never silenced its tone"
        print(f"\nanswered {answered_s * 1000:.0f} ms after dial; timings {backend.describe()['timings']}")
    finally:
        alice.stop()
    d = backend.describe()
    assert d["workarounds"] == [] and "5.6" in d["kamailio"]
    backend.stop()
    assert leftovers() == []
    assert not subprocess.run(["pgrep", "-a", "kamailio"], capture_output=True).stdout


def test_originate_rings_registered_ua(lab, backend):
    bob = caller(lab, backend, "bob", tone_hz=880).start()
    try:
        assert backend.wait_registered("bob", 5)
        call_id = backend.originate("bob", {"X-Calluuid": "rtcm-test-1", "X-PH-Test": "v1"})
        t0 = time.monotonic()
        while not any(e.get("type") == "CALL_INCOMING" and e.get("id") == call_id for e in bob.ctrl.events):
            assert time.monotonic() - t0 < 5, bob.ctrl.events
            time.sleep(0.02)
        assert backend.call(call_id)["state"] == "ringing"
        sent = [m for m in backend.sip_messages(call_id) if m.method == "INVITE" and m.tag == "snd" and not m.status]
        assert sent and sent[0].headers.get("x-ph-test") == "v1" and sent[0].headers.get("x-calluuid")
        bob.command("accept")
        assert backend.wait_answered(call_id, 5)["state"] == "answered"
        time.sleep(1.0)
        bob.command("hangup")
        assert backend.wait_ended(call_id, 5)["state"] == "ended"
    finally:
        bob.stop()


def test_wrong_password_is_refused(lab, backend):
    mallory = caller(lab, backend, "mallory", password="not-the-password").start(wait_registered=False)
    try:
        time.sleep(1.0)
        assert not backend.wait_registered("mallory", 1)
        msgs = [m for m in backend.trace.refresh() if "mallory" in m.headers.get("from", "")]
        assert any(m.status in (401, 403) for m in msgs) and not any(m.status == 200 for m in msgs)
        assert any(m.status == 403 for m in msgs)
    finally:
        mallory.stop()


def test_sweep_leftovers_finds_only_ours(lab, tmp_path):
    b = SipBackend(lab, tmp_path).start()
    try:
        assert len(leftovers()) >= 4
        assert sweep_leftovers()
        assert leftovers() == []
    finally:
        b.stop()

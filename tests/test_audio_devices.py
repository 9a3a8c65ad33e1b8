"""Audio analysis on synthetic signals, and (slow, lab) private PulseAudio devices in real browsers."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from harness.audio.analysis import dbfs, dominant_hz, energy_segments, frequency_track, read_wav

RATE = 48_000


def sine(hz: float, seconds: float, amp: float = 0.25, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def write_pcm16(path: Path, x: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


# --- analysis: pure numpy -------------------------------------------------------------------

def test_read_wav_mono_and_stereo_mixdown(tmp_path):
    x = sine(440, 0.5)
    y, rate = read_wav(write_pcm16(tmp_path / "m.wav", x))
    assert rate == RATE and y.dtype == np.float32 and y.size == x.size
    assert np.max(np.abs(y - x)) < 1e-3
    # Left = tone, right = silence: the mix is half the tone.
    st = np.stack([x, np.zeros_like(x)], axis=1).reshape(-1)
    y2, _ = read_wav(write_pcm16(tmp_path / "s.wav", st, rate=RATE, channels=2))
    assert y2.size == x.size and np.max(np.abs(y2 - x / 2)) < 1e-3


def test_read_wav_float_and_unfinalised_header(tmp_path):
    x = sine(880, 0.3)
    body = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    # Sizes left as 0xFFFFFFFF, as a recorder killed mid-write leaves them.
    raw = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    raw += b"data" + struct.pack("<I", 0xFFFFFFFF) + body + b"\x00"  # one stray byte: partial frame
    (tmp_path / "f.wav").write_bytes(raw)
    y, rate = read_wav(tmp_path / "f.wav")
    assert rate == 16000 and y.size == x.size and np.allclose(y, x)


def test_read_wav_rejects_non_wav(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError):
        read_wav(tmp_path / "x.wav")


def test_dbfs():
    assert dbfs(np.zeros(1000)) == -120.0
    assert dbfs(np.array([])) == -120.0
    assert dbfs(np.ones(100)) == pytest.approx(0.0, abs=1e-6)
    # A sine of amplitude A has RMS A/sqrt(2).
    assert dbfs(sine(1000, 1.0, amp=0.5)) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)


@pytest.mark.parametrize("hz", [440.0, 880.0, 1234.5])
def test_dominant_hz(hz):
    assert dominant_hz(sine(hz, 0.5), RATE) == pytest.approx(hz, abs=1.0)


def test_dominant_hz_short_and_min_hz():
    assert dominant_hz(sine(440, 0.2), RATE) is None
    # A strong 30 Hz hum under a weaker 500 Hz tone: min_hz ignores the hum.
    x = sine(30, 1.0, amp=0.8) + sine(500, 1.0, amp=0.1)
    assert dominant_hz(x, RATE) == pytest.approx(500, abs=1.0)
    assert dominant_hz(x, RATE, min_hz=20) == pytest.approx(30, abs=1.0)


def test_frequency_track_tone_silence_tone():
    x = np.concatenate([sine(440, 1.0), np.zeros(RATE), sine(880, 1.0)])
    track = frequency_track(x, RATE)
    assert len(track) == 12
    assert [t for t, _ in track[:3]] == [0.0, 0.25, 0.5]
    assert all(h == pytest.approx(440, abs=2) for _, h in track[:4])
    assert all(h is None for _, h in track[4:8])
    assert all(h == pytest.approx(880, abs=2) for _, h in track[8:])


def test_energy_segments():
    x = np.concatenate([np.zeros(RATE // 2), sine(440, 1.0, amp=0.5), np.zeros(RATE // 2)])
    segs = energy_segments(x, RATE)
    assert [s["active"] for s in segs] == [False, True, False]
    assert segs[1]["start_s"] == pytest.approx(0.5) and segs[1]["end_s"] == pytest.approx(1.5)
    assert segs[1]["dbfs"] == pytest.approx(dbfs(sine(440, 1.0, amp=0.5)), abs=0.1)
    assert segs[0]["dbfs"] == -120.0 and segs[2]["end_s"] == pytest.approx(2.0)
    assert energy_segments(np.zeros(10), RATE) == []


# --- the private PulseAudio server with real browsers (root, lab) ---------------------------

SINK_HZ = 660.0
GUM = """(id) => navigator.mediaDevices.getUserMedia({audio: {deviceId: {exact: id},
    echoCancellation: false, noiseSuppression: false, autoGainControl: false}})"""
JS_DEVICES = """async () => {
  const s = await navigator.mediaDevices.getUserMedia({audio: true});  // labels need permission
  s.getTracks().forEach(t => t.stop());
  return (await navigator.mediaDevices.enumerateDevices()).map(d => ({kind: d.kind, label: d.label, id: d.deviceId}));
}"""
# Capture from one mic and hand back 0.68 s of what the page heard, for dominant_hz in Python.
JS_CAPTURE = f"""async (id) => {{
  const s = await ({GUM})(id);
  const ctx = new AudioContext(); await ctx.resume();
  const an = ctx.createAnalyser(); an.fftSize = 32768;
  ctx.createMediaStreamSource(s).connect(an);
  await new Promise(r => setTimeout(r, 1200));
  const buf = new Float32Array(an.fftSize); an.getFloatTimeDomainData(buf);
  const track = s.getAudioTracks()[0];
  const out = {{rate: ctx.sampleRate, samples: Array.from(buf), label: track.label}};
  s.getTracks().forEach(t => t.stop()); await ctx.close();
  return out;
}}"""
# A WAV played by the element itself: one clock. (A WebAudio oscillator through a
# MediaStreamDestination into <audio> has two, and under CPU load Chromium then played 660 Hz
# as 726 Hz with dropouts.)
JS_PLAY = """async (id) => {
  const el = document.getElementById('out'); el.src = '/tone.wav'; el.loop = true;
  await el.setSinkId(id); await el.play();
  return el.sinkId;
}"""


def _engine_ready(engine: str) -> str | None:
    import shutil

    binary = {"chromium": "/usr/bin/chromium", "firefox": "/usr/bin/firefox-esr"}[engine]
    return binary if shutil.which(binary) else None


@pytest.fixture(scope="module")
def audio_lab(tmp_path_factory):
    """A lab, a page served from the server namespace, an AudioServer in the client namespace,
    and a Playwright driver that runs inside the client namespace (Firefox needs that)."""
    import os
    import subprocess
    import sys

    from playwright._impl._driver import compute_driver_executable
    from playwright.sync_api import sync_playwright

    from harness.audio.pulse import AudioServer
    from harness.farend.audio import tone
    from impairments.lab import Lab

    base = tmp_path_factory.mktemp("audio")
    www = base / "www"
    www.mkdir()
    (www / "index.html").write_text("<!doctype html><title>rtcm audio</title><audio id=out></audio>")
    (www / "favicon.ico").write_bytes(b"")
    tone(www / "tone.wav", hz=SINK_HZ)
    wavs = {"a": tone(base / "a.wav", hz=440), "b": tone(base / "b.wav", hz=880)}
    with Lab() as lab:
        port = 8000
        http = subprocess.Popen(["ip", "netns", "exec", lab.server_ns, sys.executable, "-m", "http.server",
                                 str(port), "--bind", lab.server_ip, "-d", str(www)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = AudioServer(lab.client_ns, base / "pa", wavs, ["a", "b"])
        pw = None
        try:
            server.start()
            node, _ = compute_driver_executable()
            wrapper = base / "node-in-netns"
            wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {lab.client_ns} {node} "$@"\n')
            wrapper.chmod(0o755)
            os.environ["PLAYWRIGHT_NODEJS_PATH"] = str(wrapper)
            try:
                pw = sync_playwright().start()
            finally:
                os.environ.pop("PLAYWRIGHT_NODEJS_PATH", None)
            yield {"lab": lab, "server": server, "pw": pw, "origin": f"http://{lab.server_ip}:{port}",
                   "base": base, "wrapper": wrapper}
        finally:
            if pw:
                pw.stop()
            server.stop()
            http.kill()
            http.wait()


def launch(audio_lab, engine: str, server=None):
    """A browser in the client namespace using `server`'s devices (the shared one by default)."""
    import os

    from harness.audio.pulse import CHROMIUM_IGNORE_DEFAULT_ARGS, chromium_args, firefox_prefs

    binary = _engine_ready(engine)
    if not binary:
        pytest.skip(f"{engine} is not installed")
    server = server or audio_lab["server"]
    env = {**os.environ, **server.env}
    pw, origin = audio_lab["pw"], audio_lab["origin"]
    if engine == "chromium":
        return pw.chromium.launch(executable_path=binary, headless=True, env=env, args=chromium_args(origin),
                                  ignore_default_args=CHROMIUM_IGNORE_DEFAULT_ARGS)
    return pw.firefox.launch(channel="moz-firefox", executable_path=binary, headless=True, env=env,
                             firefox_user_prefs=firefox_prefs(origin))


def open_page(browser, audio_lab):
    import time

    page = browser.new_page()
    deadline = time.monotonic() + 10
    while True:  # the http server in the server namespace may still be binding
        try:
            page.goto(audio_lab["origin"] + "/index.html", timeout=3000)
            return page
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module", params=["chromium", "firefox"])
def browser(request, audio_lab):
    b = launch(audio_lab, request.param)
    yield request.param, b
    b.close()


def devices(page) -> dict[tuple[str, str], str]:
    return {(d["kind"], d["label"]): d["id"] for d in page.evaluate(JS_DEVICES)}


@pytest.mark.slow
@pytest.mark.lab
def test_enumerate_devices_lists_virtual_mics_and_speakers(audio_lab, browser):
    engine, b = browser
    server = audio_lab["server"]
    page = open_page(b, audio_lab)
    found = devices(page)
    page.close()
    labels = {(k, label) for k, label in found}
    print(engine, sorted(labels))
    for name in server.mics:
        assert ("audioinput", server.mic_label(name)) in labels
    for name in server.speakers:
        assert ("audiooutput", server.speaker_label(name)) in labels


@pytest.mark.slow
@pytest.mark.lab
def test_get_user_media_captures_the_chosen_mic(audio_lab, browser):
    engine, b = browser
    server = audio_lab["server"]
    page = open_page(b, audio_lab)
    found = devices(page)
    heard = {}
    for name, hz in (("a", 440.0), ("b", 880.0)):
        label = server.mic_label(name)
        got = page.evaluate(JS_CAPTURE, found[("audioinput", label)])
        x = np.array(got["samples"], dtype=np.float32)
        heard[name] = (got["label"], dominant_hz(x, got["rate"]), dbfs(x))
        assert got["label"] == label
        assert heard[name][1] == pytest.approx(hz, abs=3), heard
        assert heard[name][2] > -30, heard  # the tone is -12 dBFS peak, -15 dBFS RMS
    page.close()
    print(engine, heard)


def _active_span(x: np.ndarray, rate: int, hz: float) -> tuple[float, float, float] | None:
    """(first, last moment in s, silent time in between) of the runs of `hz` in x, from 20 ms frames."""
    segs = energy_segments(x, rate)
    runs = [s for s in segs if s["active"] and s["end_s"] - s["start_s"] >= 0.2
            and (dominant_hz(x[int(s["start_s"] * rate):int(s["end_s"] * rate)], rate) or 0) == pytest.approx(hz, abs=5)]
    if not runs:
        return None
    lo, hi = runs[0]["start_s"], runs[-1]["end_s"]
    gaps = sum(s["end_s"] - s["start_s"] for s in segs if not s["active"] and lo <= s["start_s"] < hi)
    return lo, hi, gaps


@pytest.mark.slow
@pytest.mark.lab
def test_set_sink_id_routes_to_one_speaker_and_moves_mid_play(audio_lab, browser):
    import time

    engine, b = browser
    server = audio_lab["server"]
    page = open_page(b, audio_lab)
    if not page.evaluate("() => typeof HTMLMediaElement.prototype.setSinkId === 'function'"):
        page.close()
        pytest.skip(f"{engine}: HTMLMediaElement.setSinkId is missing (secure context: "
                    f"{page.evaluate('() => window.isSecureContext')})")
    found = devices(page)
    spk = {n: found[("audiooutput", server.speaker_label(n))] for n in ("a", "b")}
    t_play = time.time()
    page.evaluate(JS_PLAY, spk["b"])
    time.sleep(3)
    t_switch = time.time()
    page.evaluate("(id) => document.getElementById('out').setSinkId(id)", spk["a"])
    t_switched = time.time()
    time.sleep(3)
    page.evaluate("() => document.getElementById('out').pause()")
    t_end = time.time()
    page.close()
    time.sleep(0.3)  # let the recorders catch up

    # Both recordings, cut to the same wall-clock window: [play - 0.5 s, end + 0.5 s].
    spans, tracks = {}, {}
    for n in ("a", "b"):
        x, rate = read_wav(server.recording(n))
        lo = int(max(0.0, server.offset_s(n, t_play) - 0.5) * rate)
        hi = int((server.offset_s(n, t_end) + 0.5) * rate)
        cut, origin = x[lo:hi], lo / rate
        spans[n] = _active_span(cut, rate, SINK_HZ)
        spans[n] = spans[n] and (round(spans[n][0] + origin, 2), round(spans[n][1] + origin, 2), spans[n][2])
        tracks[n] = [(round(t + origin, 2), h and round(h)) for t, h in frequency_track(cut, rate, window_s=0.5)]
    switch = (server.offset_s("a", t_switch), server.offset_s("a", t_switched))
    print(f"{engine}: play at {server.offset_s('b', t_play):.2f} s, switch called {switch[0]:.2f}-{switch[1]:.2f} s, "
          f"speaker b {spans['b']}, speaker a {spans['a']}\n  b: {tracks['b']}\n  a: {tracks['a']}")
    assert spans["b"] and spans["a"], (spans, tracks)
    # b carried the tone from play to the switch, a from the switch to the end; within 0.5 s.
    assert spans["b"][0] == pytest.approx(server.offset_s("b", t_play), abs=0.5)
    assert spans["b"][1] == pytest.approx(switch[1], abs=0.5)
    assert spans["a"][0] == pytest.approx(switch[0], abs=0.5)
    assert spans["a"][1] == pytest.approx(server.offset_s("a", t_end), abs=0.5)
    # A clean tone: dropouts only from CPU starvation (measured 0-0.4 s in 10 s with both cores busy).
    assert spans["a"][2] < 0.5 and spans["b"][2] < 0.5, spans
    # And not on the other speaker meanwhile (the tone, not a stray click).
    assert all(h != pytest.approx(SINK_HZ, abs=5) for t, h in tracks["a"] if t < switch[0] - 0.5)
    assert all(h != pytest.approx(SINK_HZ, abs=5) for t, h in tracks["b"] if t > switch[1] + 0.5)


JS_WATCH = f"""async (id) => {{
  const s = await ({GUM})(id);
  const track = s.getAudioTracks()[0];
  const w = window._watch = {{track, ended: null, muted: null, devicechange: 0, t0: performance.now()}};
  track.onended = () => {{ w.ended = Date.now(); }};
  track.onmute = () => {{ w.muted = Date.now(); }};
  navigator.mediaDevices.ondevicechange = () => {{ w.devicechange++; }};
  const ctx = new AudioContext(); await ctx.resume();
  w.an = ctx.createAnalyser(); w.an.fftSize = 2048;
  ctx.createMediaStreamSource(s).connect(w.an);
  return track.label;
}}"""
JS_STATE = """async () => {
  const w = window._watch, buf = new Float32Array(w.an.fftSize); w.an.getFloatTimeDomainData(buf);
  const rms = Math.sqrt(buf.reduce((a, v) => a + v * v, 0) / buf.length);
  const labels = (await navigator.mediaDevices.enumerateDevices()).filter(d => d.kind === 'audioinput').map(d => d.label);
  return {readyState: w.track.readyState, muted: w.track.muted, ended_at: w.ended, muted_at: w.muted,
          devicechange: w.devicechange, rms, labels};
}"""


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_remove_mic_unplugs_it_mid_capture(audio_lab, engine):
    import time

    from harness.audio.pulse import AudioServer
    from harness.farend.audio import tone

    base = audio_lab["base"] / f"unplug-{engine}"
    base.mkdir()
    wavs = {"a": tone(base / "a.wav", hz=440), "c": tone(base / "c.wav", hz=1000)}
    with AudioServer(audio_lab["lab"].client_ns, base / "pa", wavs, ["a"]) as server:
        b = launch(audio_lab, engine, server)
        try:
            page = open_page(b, audio_lab)
            found = devices(page)
            assert page.evaluate(JS_WATCH, found[("audioinput", server.mic_label("c"))]) == server.mic_label("c")
            time.sleep(0.5)
            before = page.evaluate(JS_STATE)
            t_remove = time.time()
            server.remove_mic("c")
            assert server.mics == ["a"]
            after = [before]
            for _ in range(15):  # 3 s
                time.sleep(0.2)
                after.append(page.evaluate(JS_STATE))
            page.close()
        finally:
            b.close()
    last = after[-1]
    ended_after = last["ended_at"] and last["ended_at"] / 1000 - t_remove
    print(f"{engine}: before {before}\n  after 3 s {last}\n  onended {ended_after} s after remove_mic; readyState "
          f"{[s['readyState'] for s in after]}\n  rms over time {[round(s['rms'], 3) for s in after]}")
    assert before["rms"] > 0.05 and server.mic_label("c") in before["labels"]
    assert server.mic_label("c") not in last["labels"] and server.mic_label("a") in last["labels"]
    # Measured in both engines: the live track ends (onended, readyState "ended") and devicechange fires.
    assert last["readyState"] == "ended" and ended_after is not None and ended_after < 2.0
    assert last["devicechange"] >= 1


@pytest.mark.slow
@pytest.mark.lab
def test_stop_leaves_no_process_and_is_idempotent(audio_lab, tmp_path):
    import time

    import psutil

    from harness.audio.pulse import AudioServer

    wav = tone_wav(tmp_path / "a.wav")
    server = AudioServer(audio_lab["lab"].client_ns, tmp_path / "pa", {"a": wav}, ["a", "b"]).start()
    ours = _processes_of(server.workdir)
    assert {"pulseaudio", "parec"} <= {p.name() for p in ours}, ours
    t0 = time.monotonic()
    server.stop()
    took = time.monotonic() - t0
    server.stop()
    left = [p for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left and not _processes_of(server.workdir), left
    assert read_wav(server.recording("b"))[0].size > 0
    print(f"started in {server.started_s:.2f} s, stopped in {took:.2f} s")


@pytest.mark.slow
@pytest.mark.lab
def test_daemon_dies_with_its_owner(audio_lab, tmp_path):
    """SIGKILL the Python process that owns a server: the daemon and recorders must go too."""
    import signal
    import subprocess
    import sys

    from tests.labutil import wait_until

    wav = tone_wav(tmp_path / "a.wav")
    code = ("import sys, time; from pathlib import Path; from harness.audio.pulse import AudioServer;"
            f"AudioServer({audio_lab['lab'].client_ns!r}, Path({str(tmp_path / 'pa')!r}), {{'a': Path({str(wav)!r})}},"
            " ['a']).start(); print('up', flush=True); time.sleep(60)")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    try:
        assert owner.stdout.readline().strip() == "up"
        assert {p.name() for p in _processes_of(tmp_path / "pa")} >= {"pulseaudio", "parec"}
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_until(lambda: not _processes_of(tmp_path / "pa"), timeout_s=5), _processes_of(tmp_path / "pa")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def _processes_of(workdir: Path) -> list:
    """The watchdog shell, pulseaudio and the recorders: all run with this server's daemon.conf."""
    import contextlib

    import psutil

    conf = str(Path(workdir).resolve() / "daemon.conf")
    mine = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("PULSE_CONFIG") == conf:
                mine.append(proc)
    return mine


def tone_wav(path: Path, hz: float = 440.0) -> Path:
    from harness.farend.audio import tone

    return tone(path, hz=hz, seconds=2.0)

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

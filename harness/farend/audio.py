"""Known audio for both ends: a tone the browser sends, a spoken prompt the far end plays.

A pure tone is what the far end can prove it heard (its frequency survives Opus and loss);
the prompt is speech, so a person opening the lab by hand hears something meaningful.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

RATE = 48_000
TONE_HZ = 440.0
TONE_DBFS = -12.0
PROMPT_TEXT = "This is the r t c matrix far end. One, two, three, four, five. The call is working."


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    Path(path).write_bytes(write_wav_bytes(samples, rate))
    return path


def write_wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    pcm = np.clip(samples, -1, 1)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm * 32767).astype("<i2").tobytes())
    return out.getvalue()


def tones(path: Path, steps: list[tuple[float, float]], dbfs: float = TONE_DBFS) -> Path:
    """Consecutive tones, [(hz, seconds), ...] (hz 0 is silence), phase-continuous at each change."""
    parts, phase = [], 0.0
    for hz, seconds in steps:
        n = int(seconds * RATE)
        step = 2 * np.pi * hz / RATE
        parts.append(10 ** (dbfs / 20) * np.sin(phase + step * np.arange(n)) if hz else np.zeros(n))
        phase = (phase + step * n) % (2 * np.pi)
    return write_wav(path, np.concatenate(parts))


def tone(path: Path, hz: float = TONE_HZ, seconds: float = 10.0, dbfs: float = TONE_DBFS) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    return write_wav(path, 10 ** (dbfs / 20) * np.sin(2 * np.pi * hz * t))


def prompt(path: Path, text: str = PROMPT_TEXT) -> Path:
    """Speak the prompt with espeak-ng; without it, fall back to a two-tone chime, said in the log."""
    espeak = shutil.which("espeak-ng")
    if espeak:
        raw = path.with_suffix(".raw.wav")
        subprocess.run([espeak, "-w", str(raw), text], check=True, capture_output=True)
        with wave.open(str(raw)) as w:
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
            rate = w.getframerate()
        raw.unlink()
        return write_wav(path, data, rate)
    t = np.arange(RATE) / RATE
    return write_wav(path, 0.25 * (np.sin(2 * np.pi * 660 * t) + np.sin(2 * np.pi * 880 * t)))

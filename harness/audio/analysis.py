"""Measure recorded audio: level, pitch, and when it starts/stops, in plain numpy.

Every check the harness makes on audio (did mic b carry 880 Hz, in which second did the
tone move from speaker b to speaker a) reduces to these few functions, so they stay pure
and have no dependency beyond numpy.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SILENCE_DBFS = -120.0

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV as mono float32 in [-1, 1] and its sample rate.

    Parsed by hand rather than with `wave` because recordings still being written (or cut
    off when their recorder was killed) carry placeholder chunk sizes, and float WAVs exist.
    """
    data = Path(path).read_bytes()
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[body:body + 16])
            if fmt[0] == _EXTENSIBLE and size >= 40:
                sub = struct.unpack("<H", data[body + 24:body + 26])[0]
                fmt = (sub,) + fmt[1:]
        elif cid == b"data":
            # A size of 0 or 0xFFFFFFFF (or past the end) means "until end of file".
            end = len(data) if size in (0, 0xFFFFFFFF) or body + size > len(data) else body + size
            pcm = data[body:end]
            break
        pos = body + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    width = bits // 8
    frame = width * channels
    pcm = pcm[: len(pcm) - len(pcm) % frame] if frame else b""
    if tag == _FLOAT and bits in (32, 64):
        x = np.frombuffer(pcm, "<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag == _PCM and bits == 8:
        x = (np.frombuffer(pcm, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _PCM and bits == 16:
        x = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(pcm, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif tag == _PCM and bits == 32:
        x = (np.frombuffer(pcm, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    else:
        raise ValueError(f"{path}: unsupported WAV format tag {tag} with {bits} bits")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False), int(rate)


def dbfs(x: np.ndarray) -> float:
    """RMS level relative to a full-scale square wave; -120 for silence or no samples."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(x * x)))
    if rms <= 1e-6:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, float(20.0 * np.log10(rms)))


def dominant_hz(x: np.ndarray, rate: int, min_hz: float = 50.0) -> float | None:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation.

    Under 0.25 s the bins are too coarse (4 Hz) to tell tones apart reliably, so None.
    """
    x = np.asarray(x, dtype=np.float64)
    if rate <= 0 or x.size < 0.25 * rate:
        return None
    spec = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    lo = int(np.ceil(min_hz * x.size / rate))
    if lo >= spec.size - 1:
        return None
    k = lo + int(np.argmax(spec[lo:]))
    if spec[k] <= 0:
        return None
    shift = 0.0
    if lo < k < spec.size - 1:
        a, b, c = np.log(spec[k - 1:k + 2] + 1e-20)
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den else 0.0
    return float((k + shift) * rate / x.size)


def frequency_track(x: np.ndarray, rate: int, window_s: float = 0.25,
                    silence_dbfs: float = -50.0) -> list[tuple[float, float | None]]:
    """Dominant frequency per consecutive window: (start s, Hz or None when silent)."""
    n = int(round(window_s * rate))
    if n <= 0:
        return []
    x = np.asarray(x)
    out: list[tuple[float, float | None]] = []
    for start in range(0, x.size - n + 1, n):
        w = x[start:start + n]
        hz = dominant_hz(w, rate) if dbfs(w) > silence_dbfs else None
        out.append((start / rate, hz))
    return out


def energy_segments(x: np.ndarray, rate: int, frame_s: float = 0.02,
                    silence_dbfs: float = -50.0) -> list[dict]:
    """Runs of active (above `silence_dbfs`) or silent frames, with the run's mean level.

    The level is the RMS over the whole run, not a mean of per-frame dB, so a run's dBFS
    matches what `dbfs` says of the same samples.
    """
    n = int(round(frame_s * rate))
    x = np.asarray(x, dtype=np.float64)
    if n <= 0 or x.size < n:
        return []
    frames = x[: (x.size // n) * n].reshape(-1, n)
    power = np.mean(frames * frames, axis=1)
    levels = np.where(power > 1e-12, 10 * np.log10(np.maximum(power, 1e-12)), SILENCE_DBFS)
    active = levels > silence_dbfs
    out: list[dict] = []
    i = 0
    while i < active.size:
        j = i
        while j + 1 < active.size and active[j + 1] == active[i]:
            j += 1
        p = float(np.mean(power[i:j + 1]))
        level = max(SILENCE_DBFS, 10 * np.log10(p)) if p > 1e-12 else SILENCE_DBFS
        out.append({"start_s": i * n / rate, "end_s": (j + 1) * n / rate,
                    "active": bool(active[i]), "dbfs": float(level)})
        i = j + 1
    return out


def heard(x: np.ndarray, rate: int, segments: list[dict] | None = None) -> dict:
    """What a far end heard, the same way for every backend: length, level, share of `segments`
    (energy_segments' 20 ms frames by default) that were active, and the dominant tone (None
    under half a second)."""
    if segments is None:
        segments = energy_segments(x, rate) if rate else []
    active_s = sum(s["end_s"] - s["start_s"] for s in segments if s["active"])
    total_s = sum(s["end_s"] - s["start_s"] for s in segments)
    return {
        "seconds": x.size / rate if rate else 0.0,
        "rms_dbfs": dbfs(x),
        "active_ratio": active_s / total_s if total_s else 0.0,
        "dominant_hz": dominant_hz(x, rate, min_hz=50) if rate and x.size >= rate // 2 else None,
    }

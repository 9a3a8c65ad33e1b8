"""What the far end heard: the ground truth a scenario's verdict rests on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from harness.farend.audio import RATE, write_wav

SILENCE_DBFS = -50.0
WINDOW_S = 0.02
MAX_SECONDS = 120


def dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else -120.0


class Listener:
    """Drains a received audio track, keeping mono 48 kHz samples and arrival times."""

    def __init__(self, track: MediaStreamTrack):
        self.track = track
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.frames = 0
        self.started = time.time()
        self.first_frame_at: float | None = None
        self.first_sound_at: float | None = None
        self.ended_at: float | None = None
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                now = time.time()
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0
                if frame.sample_rate != RATE:
                    continue
                self.frames += 1
                self.first_frame_at = self.first_frame_at or now
                if self.first_sound_at is None and dbfs(pcm) > SILENCE_DBFS:
                    self.first_sound_at = now
                if self.samples < MAX_SECONDS * RATE:
                    self.chunks.append(pcm.astype(np.float32))
                    self.samples += pcm.size
        except MediaStreamError:
            pass
        finally:
            self.ended_at = time.time()

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def findings(self) -> dict:
        """Energy, activity and dominant frequency of everything heard so far."""
        x = self.audio()
        win = int(WINDOW_S * RATE)
        windows = x[: x.size // win * win].reshape(-1, win) if x.size >= win else np.zeros((0, win))
        levels = [dbfs(w) for w in windows]
        active = [lvl > SILENCE_DBFS for lvl in levels]
        dominant = None
        if x.size >= RATE // 2:
            spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
            freqs = np.fft.rfftfreq(x.size, 1 / RATE)
            band = freqs > 50
            dominant = float(freqs[band][np.argmax(spectrum[band])])
        return {
            "frames": self.frames,
            "seconds": x.size / RATE,
            "rms_dbfs": dbfs(x),
            "active_ratio": float(np.mean(active)) if active else 0.0,
            "dominant_hz": dominant,
            "first_frame_after_s": (self.first_frame_at - self.started) if self.first_frame_at else None,
            "first_sound_after_s": (self.first_sound_at - self.started) if self.first_sound_at else None,
            "longest_gap_s": _longest_run(active) * WINDOW_S,
        }

    def save(self, path: Path) -> Path:
        return write_wav(path, self.audio())


def _longest_run(active: list[bool]) -> int:
    """Longest silent stretch after the first sound (a dropout, not the call's quiet start)."""
    best = run = 0
    seen = False
    for a in active:
        if a:
            seen, run = True, 0
        elif seen:
            run += 1
            best = max(best, run)
    return best

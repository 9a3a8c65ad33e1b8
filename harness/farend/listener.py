"""What the far end heard: the ground truth a scenario's verdict rests on.

Each decoded frame is placed on the sender's media clock (its RTP timestamp, through the frame's
pts), so gaps (lost packets, RFC 4733 digits, which replace audio while they play) become
silence at the right place and the recording stays time-aligned with the call. Absolute times
come from an anchor: the smallest (arrival time - media time) over all frames, i.e. the browser's
send time plus the smallest one-way delay seen.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from pathlib import Path

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from harness.audio.analysis import dbfs, energy_segments, frequency_track, heard
from harness.farend.audio import RATE, write_wav

SILENCE_DBFS = -50.0
WINDOW_S = 0.02
MAX_SECONDS = 120
MAX_GAP_S = 5.0  # a timestamp jump beyond this is a new stream, not silence


class Listener:
    """Drains a received audio track into a mono 48 kHz buffer on the media clock."""

    def __init__(self, track: MediaStreamTrack):
        self.track = track
        self.buffer = np.zeros(MAX_SECONDS * RATE, np.float32)
        self.samples = 0          # end of what has been written, in samples
        self.frames = 0
        self.codec_rates: set[int] = set()
        self.started = time.time()
        self.first_frame_at: float | None = None
        self.first_sound_at: float | None = None
        self.ended_at: float | None = None
        self.anchor: float | None = None      # epoch of media time 0
        self.marks: list[tuple[float, float]] = []  # (media s, arrival epoch), one per second
        self._base_pts: float | None = None
        self._fallback_s = 0.0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.track.recv()
                self._add(frame, time.time())
        except MediaStreamError:
            pass
        finally:
            self.ended_at = time.time()

    def _add(self, frame, now: float) -> None:
        pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0
        rate = frame.sample_rate
        self.codec_rates.add(rate)
        if rate != RATE:
            n = int(round(pcm.size * RATE / rate))
            pcm = np.interp(np.arange(n) * rate / RATE, np.arange(pcm.size), pcm)
        if frame.pts is not None and frame.time_base is not None:
            t = float(frame.pts * frame.time_base)
            self._base_pts = t if self._base_pts is None else self._base_pts
            t -= self._base_pts
        else:
            t = self._fallback_s
        self._fallback_s = t + pcm.size / RATE
        start = int(round(t * RATE))
        if start > self.samples + MAX_GAP_S * RATE:   # the sender restarted its clock: carry on
            self._base_pts = (self._base_pts or 0) + (start - self.samples) / RATE
            start = self.samples
        if start + pcm.size <= self.samples - RATE // 100:
            return  # late or duplicate
        if start < self.samples:  # overlaps what is written: keep only the new tail
            pcm, start = pcm[self.samples - start:], self.samples
        end = min(start + pcm.size, self.buffer.size)
        if end <= start:
            return
        self.buffer[start:end] = pcm[: end - start]
        self.samples = max(self.samples, end)
        self.frames += 1
        media_t = start / RATE
        self.first_frame_at = self.first_frame_at or now
        if self.first_sound_at is None and dbfs(pcm) > SILENCE_DBFS:
            self.first_sound_at = now
        lag = now - media_t
        self.anchor = lag if self.anchor is None else min(self.anchor, lag)
        if not self.marks or media_t - self.marks[-1][0] >= 1.0:
            self.marks.append((media_t, now))

    # --- reading ---------------------------------------------------------------------------------
    def audio(self) -> np.ndarray:
        return self.buffer[: self.samples].copy()

    def epoch(self, media_s: float) -> float | None:
        return None if self.anchor is None else self.anchor + media_s

    def arrived(self, media_s: float) -> float | None:
        """When the frame at this media time actually arrived (nearest one-second mark)."""
        if not self.marks:
            return None
        i = bisect.bisect_left([m for m, _ in self.marks], media_s)
        i = min(max(i, 0), len(self.marks) - 1)
        m, at = self.marks[i]
        return at + (media_s - m)

    def findings(self) -> dict:
        """Energy, activity and dominant frequency of everything heard so far."""
        x = self.audio()
        segments = energy_segments(x, RATE, WINDOW_S, SILENCE_DBFS)
        return {
            "frames": self.frames,
            **heard(x, RATE, segments),
            "first_frame_after_s": (self.first_frame_at - self.started) if self.first_frame_at else None,
            "first_sound_after_s": (self.first_sound_at - self.started) if self.first_sound_at else None,
            "longest_gap_s": _longest_gap(segments),
            "codec_rates": sorted(self.codec_rates),
            "anchor_epoch": self.anchor,
        }

    def timeline(self, call_start: float, frame_s: float = WINDOW_S, silence_dbfs: float = SILENCE_DBFS) -> list[dict]:
        """Energy segments with media times (s from the first frame), times from the call's
        start, and epoch times."""
        out = []
        for s in energy_segments(self.audio(), RATE, frame_s, silence_dbfs):
            a, b = self.epoch(s["start_s"]), self.epoch(s["end_s"])
            out.append({"active": s["active"], "dbfs": round(s["dbfs"], 1),
                        "media_start_s": round(s["start_s"], 3), "media_end_s": round(s["end_s"], 3),
                        "start_s": round(a - call_start, 3) if a else None,
                        "end_s": round(b - call_start, 3) if b else None,
                        "start_epoch": a, "end_epoch": b, "arrived_epoch": self.arrived(s["start_s"])})
        return out

    def frequency(self, call_start: float, window_s: float = 0.25, silence_dbfs: float = SILENCE_DBFS) -> list[dict]:
        out = []
        for t, hz in frequency_track(self.audio(), RATE, window_s, silence_dbfs):
            e = self.epoch(t)
            out.append({"media_s": round(t, 3), "t_s": round(e - call_start, 3) if e else None,
                        "epoch": e, "hz": round(hz, 1) if hz else None})
        return out

    def save(self, path: Path) -> Path:
        return write_wav(path, self.audio())


def _longest_gap(segments: list[dict]) -> float:
    """Longest silent stretch after the first sound (a dropout, not the call's quiet start)."""
    best, seen = 0.0, False
    for s in segments:
        if s["active"]:
            seen = True
        elif seen:
            best = max(best, s["end_s"] - s["start_s"])
    return round(best, 3)

"""When each stretch of a growing recording was written: its growth, sampled every 40 ms, maps
recording time to wall time and back. A recording alone hides the time it lost: sndfile writes
nothing while no packet comes (the SIP far end), and a loaded machine's null sink renders late
and drops what it could not render (a browser's speaker: about 5 % of wall time with two
workers on two cores), so a mapping from its first sample alone drifts by seconds."""

from __future__ import annotations

import struct
import threading
from pathlib import Path


def _wav_format(head: bytes) -> tuple[int, int, int] | None:
    """(data offset, bytes per frame, rate) of a WAV header, or None."""
    data = head.find(b"data")
    if head[:4] != b"RIFF" or data < 0:
        return None
    channels, rate = struct.unpack_from("<HI", head, 22)
    bits = struct.unpack_from("<H", head, 34)[0]
    return data + 8, max(1, channels * bits // 8), rate


class Arrivals:
    """The growth of recordings: WAV files, or raw PCM when `raw` gives (bytes per frame, rate)."""

    def __init__(self, files, step_s: float = 0.04, raw: tuple[int, int] | None = None):
        self.files, self.step_s, self.raw = files, step_s, raw
        self.growth: dict[Path, list[tuple[float, float]]] = {}  # file -> [(wall time, seconds recorded)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sip-recording-arrivals", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.step_s):
            try:
                for path in self.files():
                    self._sample(path)
            except Exception:  # a file that vanished or is half-written: the next pass sees it
                continue

    def _sample(self, path: Path) -> None:
        st = path.stat()
        if self.raw:
            offset, (frame, rate) = 0, self.raw
        else:
            with open(path, "rb") as f:
                fmt = _wav_format(f.read(512))
            if fmt is None:
                return
            offset, frame, rate = fmt
        seconds = max(0, st.st_size - offset) / frame / rate
        points = self.growth.setdefault(path, [])
        if not points or seconds > points[-1][1]:
            points.append((st.st_mtime, seconds))

    def epoch(self, path: Path, t: float) -> float | None:
        """Wall time at which the sample `t` seconds into the recording arrived."""
        points = self.growth.get(path) or []
        if not points or points[-1][1] < t:
            try:
                self._sample(path)
            except OSError:
                pass
            points = self.growth.get(path) or []
        for wall, recorded in points:
            if recorded >= t:
                return wall - (recorded - t)
        return points[-1][0] + (t - points[-1][1]) if points else None

    def position(self, path: Path, at: float) -> float | None:
        """Where wall time `at` falls in the recording (seconds): the inverse of `epoch`."""
        if not self.growth.get(path) or self.growth[path][-1][0] < at:
            try:
                self._sample(path)
            except OSError:
                pass
        points = self.growth.get(path) or []
        before = 0.0
        for wall, recorded in points:
            if wall >= at:  # a time inside a stall maps to where the recording stood then
                return max(before, recorded - (wall - at))
            before = recorded
        return points[-1][1] + (at - points[-1][0]) if points else None

    def gaps(self, path: Path, min_s: float = 0.1) -> list[tuple[float, float, float]]:
        """(recording time, wall start, wall end) where wall time ran on and no audio arrived."""
        points = self.growth.get(path) or []
        out = []
        for (w0, r0), (w1, r1) in zip(points, points[1:]):
            lost = (w1 - w0) - (r1 - r0)
            if lost >= min_s:
                out.append((r0, w0, w0 + lost))
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

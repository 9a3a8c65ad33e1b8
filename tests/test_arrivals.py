"""A growing recording's clock: wall time to recording time and back, across the time it lost."""

from pathlib import Path

import pytest

from harness.audio.arrivals import Arrivals


def test_a_recording_that_lost_time_maps_both_ways_from_its_growth(tmp_path):
    raw = tmp_path / "speaker-a.raw"
    raw.write_bytes(b"")
    clock = Arrivals(lambda: [], raw=(2, 48_000))
    clock.stop()
    # 2 s recorded in the first 2 s, then a 1 s stall (nothing rendered), then 1 s more.
    clock.growth[raw] = [(100.0, 0.0), (101.0, 1.0), (102.0, 2.0), (103.0, 2.0), (104.0, 3.0)]
    assert clock.position(raw, 101.5) == pytest.approx(1.5)
    # After the stall the recording is a second behind the wall: a start-anchored map says 3.5.
    assert clock.position(raw, 103.5) == pytest.approx(2.5)
    assert clock.epoch(raw, 2.5) == pytest.approx(103.5)
    assert clock.position(raw, 102.5) == pytest.approx(2.0)  # inside the stall: where the recording stood
    assert clock.gaps(raw) == [(2.0, 102.0, 103.0)]


def test_raw_files_grow_by_their_frame_size(tmp_path):
    raw = tmp_path / "speaker-b.raw"
    raw.write_bytes(b"\0" * 2 * 48_000)  # one second of 16-bit mono
    clock = Arrivals(lambda: [], raw=(2, 48_000))
    clock.stop()
    assert clock.position(raw, Path(raw).stat().st_mtime) == pytest.approx(1.0)

"""Replay: real dumps, series and traces become schedules, and the lab reproduces them."""

import json
import statistics
from pathlib import Path

import pytest

from impairments import replay

DUMP = Path(__file__).with_name("data") / "webrtc-internals-ramp.json.gz"  # see data/capture_webrtc_internals.py


def test_real_chromium_dump_reads_back_its_known_conditions():
    samples, kind = replay.load(DUMP)
    assert kind == "webrtc-internals"
    rtts = [s.rtt_ms for s in samples]
    assert all(abs(r - 80) < 5 for r in rtts[:5])  # 40 ms each way
    assert 220 <= max(rtts) <= 290  # 140 ms each way, as far as RTCP caught up
    assert all(b >= a - 1 for a, b in zip(rtts, rtts[1:]))  # the schedule only ever grew the delay
    late = samples[-4:]
    assert 1 <= statistics.fmean(s.down_loss_pct for s in late) <= 8  # 4 % loss in the last step
    assert all((s.down_loss_pct or 0) == 0 for s in samples[:10])


def test_schedule_halves_rtt_per_direction_and_merges_runs():
    samples, _ = replay.load(DUMP)
    schedule = replay.to_schedule(samples, "customer", "test")
    assert schedule.total_s == len(samples)
    assert len(schedule.steps) < len(samples)
    first = schedule.steps[0].profile
    assert first.uplink.delay_ms == first.downlink.delay_ms == pytest.approx(samples[0].rtt_ms / 2, abs=0.01)
    assert schedule.original and len(schedule.original) == len(samples)


def test_csv_json_and_mahimahi(tmp_path: Path):
    csv = tmp_path / "cust.csv"
    csv.write_text("t,rtt_ms,jitter_ms,loss_pct\n0,100,4,0\n1,300,10,5\n")
    s, kind = replay.load(csv)
    assert kind == "csv" and s[1].rtt_ms == 300 and s[1].down_loss_pct == 5 and s[1].up_loss_pct == 5
    js = tmp_path / "cust.json"
    js.write_text(json.dumps({"samples": [{"t": 0, "rtt_ms": 50}, {"t": 1, "rtt_ms": 70, "down_loss_pct": 2}]}))
    s, kind = replay.load(js)
    assert kind == "json" and s[1].down_loss_pct == 2 and s[1].up_loss_pct is None
    trace = tmp_path / "cell.trace"
    trace.write_text("\n".join(str(ms) for ms in list(range(0, 1000, 10)) + list(range(1000, 2000, 20))))
    s, kind = replay.load(trace)
    assert kind == "mahimahi" and [x.down_kbit for x in s] == [1200.0, 600.0]
    sched = replay.to_schedule(s, "cell", "t")
    assert sched.steps[0].profile.downlink.rate_kbit == 1200 and sched.steps[0].profile.uplink.rate_kbit is None


@pytest.mark.parametrize("content, message", [
    ('{"PeerConnections": {}}', "no PeerConnections"),
    ('{"PeerConnections": {"1": {"stats": {}}}}', "no RTT in the dump"),
    ("t,rtt_ms\n0,fast\n", "rtt_ms is 'fast'"),
    ("t,latency\n0,1\n", "needs a header with at least rtt_ms"),
    ("12\nbanana\n", "line 2"),
    ('[{"rtt_ms": -4}]', "must be 0 or more"),
    ("{not json", "not valid JSON"),
])
def test_malformed_recordings_get_one_clear_message(tmp_path: Path, content, message):
    f = tmp_path / ("x.csv" if content.startswith("t,") else "x.json" if content[0] in "[{" else "x.trace")
    f.write_text(content)
    with pytest.raises(replay.ReplayError, match=message):
        replay.load(f)


@pytest.mark.slow
@pytest.mark.lab
def test_lab_reproduces_the_real_dump(lab):
    samples, _ = replay.load(DUMP)
    fidelity = replay.measure(lab, replay.to_schedule(samples, "customer", "test"), pps=50)
    assert fidelity.seconds >= len(samples) - 1
    assert fidelity.rtt_mean_abs_error_ms < 5, fidelity.per_second
    assert fidelity.rtt_correlation > 0.95
    assert fidelity.loss_mean_abs_error_pct < 3


def test_replay_cli_writes_a_schedule_usable_as_a_profile(tmp_path: Path):
    from typer.testing import CliRunner

    from harness.cli import app
    from impairments.presets import resolve
    from impairments.schedule import Schedule

    out = tmp_path / "customer.yaml"
    result = CliRunner().invoke(app, ["replay", str(DUMP), "-o", str(out)])
    assert result.exit_code == 0, result.output
    schedule = resolve(str(out))
    assert isinstance(schedule, Schedule) and schedule.original and schedule.steps
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    result = CliRunner().invoke(app, ["replay", str(bad)])
    assert result.exit_code == 2 and "samples" in result.output

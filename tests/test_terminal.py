"""The terminal is a page too: user text (YAML, names, paths) is printed verbatim, never read as
rich markup or emoji codes."""

from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from reports.results import CellResult, RunResult, Status

runner = CliRunner()


def test_a_yaml_error_keeps_its_brackets(tmp_path: Path):
    bad = tmp_path / "m.yaml"
    bad.write_text("name: [unclosed\nbrowsers: [chromium]\n")
    got = runner.invoke(app, ["run", "--matrix", str(bad)])
    assert got.exit_code == 2 and "Traceback" not in got.output
    assert "[unclosed" in got.output, got.output


def test_a_replayed_files_name_is_not_an_emoji(tmp_path: Path):
    recording = tmp_path / "ticket:x:4711.csv"
    recording.write_text("t,rtt_ms,jitter_ms,loss_pct\n0,80,5,0\n1,120,5,1\n2,90,4,0\n")
    out = tmp_path / "sched:x:[bold].yaml"
    got = runner.invoke(app, ["replay", str(recording), "-o", str(out)])
    assert got.exit_code == 0, got.output
    text = got.output.replace("\n", "")
    assert "❌" not in text and str(out) in text, got.output


def test_names_in_tables_are_text(tmp_path: Path):
    run = RunResult(rtcmatrix_version="t", matrix="[red]m.yaml", started_at=1.0, cells=[
        CellResult(id="a", sdk="my[b]sdk", browser="chromium:x:", profile="p[/]", scenario="dtmf", feature="DTMF",
                   status=Status.supported)])
    (tmp_path / "r").mkdir()
    run.save(tmp_path / "r" / "results.json")
    got = runner.invoke(app, ["merge", str(tmp_path / "r"), "--out", str(tmp_path / "m")])
    assert got.exit_code == 0, got.output
    for text in ("my[b]sdk", "chromium:x:", "p[/]"):
        assert text in got.output, (text, got.output)
    got = runner.invoke(app, ["history", "--db", str(tmp_path / "h.sqlite"), "--add", str(tmp_path / "r")])
    assert got.exit_code == 0 and "[red]m.yaml" in got.output, got.output


def test_a_bad_schedule_name_is_one_message(tmp_path: Path):
    recording = tmp_path / "r.csv"
    recording.write_text("t,rtt_ms\n0,80\n1,120\n")
    got = runner.invoke(app, ["replay", str(recording), "--name", "my [lift] ride"])
    assert got.exit_code == 2 and "--name 'my [lift] ride'" in got.output and "Traceback" not in got.output
    assert not list(tmp_path.glob("*.yaml"))

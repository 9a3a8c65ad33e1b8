"""History: runs recorded in SQLite, listed, and a trend page that shows what moved.

The real run's history (recorded by `rtcmatrix run`) is checked in tests/test_run_e2e.py; here the
runs are written as results files, as `rtcmatrix history --add` takes them from a merge job."""

import re
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from harness.cli import app
from reports import history
from reports.results import CellResult, Metrics, RunResult, Status

runner = CliRunner()


def _run(folder: Path, started: float, status: Status, rtt: float, name: str = "chromium") -> Path:
    folder.mkdir(parents=True)
    RunResult(rtcmatrix_version="t", matrix="m.yaml", started_at=started, lab={"backend": "uml-netem"}, cells=[
        CellResult(id="a", browser=name, profile="3g", scenario="dtmf", feature="DTMF", status=status,
                   behaviour="12 of 12 digits", metrics=Metrics(rtt_ms=rtt, mos=4.1)),
        CellResult(id="b", browser=name, profile="3g", scenario="mute", feature="Mute", status=Status.supported,
                   metrics=Metrics(rtt_ms=rtt, mos=4.1)),
    ]).save(folder / "results.json")
    return folder


def test_three_runs_and_a_planted_change(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    folders = [_run(tmp_path / "r1", 100, Status.supported, 200), _run(tmp_path / "r2", 200, Status.supported, 204),
               _run(tmp_path / "r3", 300, Status.failed, 420)]
    got = runner.invoke(app, ["history", "--db", str(db)] + [a for f in folders for a in ("--add", str(f))])
    assert got.exit_code == 0, got.output
    assert [r.folder for r in history.runs(db)] == [str(f.resolve()) for f in folders]
    assert history.runs(db)[2].counts == {"failed": 1, "supported": 1}
    # recording a folder again replaces it
    assert runner.invoke(app, ["history", "--db", str(db), "--add", str(folders[0])]).exit_code == 0
    assert len(history.runs(db)) == 3
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM cells").fetchone()[0] == 6

    page = tmp_path / "trend.html"
    got = runner.invoke(app, ["trend", "--db", str(db), "--out", str(page)])
    assert got.exit_code == 0 and "2 change(s)" in got.output, got.output
    html = page.read_text()
    runs = [r.id for r in history.runs(db)]
    assert f"DTMF: supported -&gt; failed in run {runs[2]}" in html
    assert f"RTT (ms): 204 -&gt; 420 in run {runs[2]}" in html  # 200 -> 204 is not a change
    assert html.count("<svg") == 2  # sparklines: RTT and MOS
    assert re.search(r'class="s failed" title="failed: 12 of 12 digits"', html)
    assert "<script" not in html


def test_the_newest_runs_only(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for i in range(4):
        history.record(db, RunResult.load(_run(tmp_path / f"r{i}", i, Status.supported, 10) / "results.json"),
                       tmp_path / f"r{i}")
    assert [Path(r.folder).name for r in history.runs(db, last=2)] == ["r2", "r3"]


def test_bad_input_is_one_message(tmp_path: Path):
    got = runner.invoke(app, ["history", "--db", str(tmp_path / "none.sqlite")])
    assert got.exit_code == 2 and "no history there yet" in got.output
    (tmp_path / "junk.sqlite").write_text("not sqlite " * 100)
    got = runner.invoke(app, ["trend", "--db", str(tmp_path / "junk.sqlite")])
    assert got.exit_code == 2 and "not an rtcmatrix history file" in got.output and "Traceback" not in got.output
    got = runner.invoke(app, ["history", "--db", str(tmp_path / "h.sqlite"), "--add", str(tmp_path)])
    assert got.exit_code == 2 and "no results.json there" in got.output
    assert not (tmp_path / "h.sqlite").exists()  # nothing half-applied


def test_names_are_text_in_the_trend(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    hostile = '<img src=x onerror="alert(1)">'
    history.record(db, RunResult.load(_run(tmp_path / "r", 1, Status.supported, 10, name=hostile) / "results.json"),
                   tmp_path / "r")
    page, _, _ = __import__("reports.trend", fromlist=["write_trend"]).write_trend(db, tmp_path / "t.html")
    html = page.read_text()
    assert hostile not in html and "&lt;img src=x" in html

"""`rtcmatrix history` and `rtcmatrix trend`: the runs a machine recorded, and how they moved."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from harness.terminal import console, fail
from reports import history

DEFAULT_DB = Path(__file__).resolve().parents[1] / "reports" / "out" / history.DEFAULT_NAME
DB_OPT = typer.Option(DEFAULT_DB, "--db", help="the history file (rtcmatrix run --history PATH records elsewhere)")
LAST_OPT = typer.Option(None, "--last", min=1, help="only the newest N runs")


def record(db: Path, results: Path) -> None:
    """Record a finished run; a history that cannot be written is said, and the run still counts."""
    from reports.results import RunResult

    try:
        run_id = history.record(db, RunResult.load(results), results.parent)
    except (history.HistoryError, OSError) as e:
        console.print(Text(f"history: not recorded: {e}"))
        return
    console.print(Text(f"History: run {run_id} in {db}"))


def history_cmd(db: Path = DB_OPT, last: Optional[int] = LAST_OPT,
                add: list[Path] = typer.Option([], "--add", metavar="FOLDER",
                                               help="record this run's folder first (a merged run, or an older "
                                                    "run's; repeatable)")) -> None:
    """List the recorded runs, oldest first."""
    from reports.results import RunResult

    for folder in add:
        results = folder / "results.json"
        if not results.is_file():
            fail(f"--add {folder}: no results.json there; give the --out folder of an rtcmatrix run or merge")
        try:
            run = RunResult.load(results)
        except ValueError as e:
            fail(f"--add {folder}: not an rtcmatrix results file ({str(e).splitlines()[0]})")
        try:
            history.record(db, run, folder)
        except (history.HistoryError, OSError) as e:
            fail(str(e))
    try:
        rows = history.runs(db, last)
    except history.HistoryError as e:
        fail(str(e))
    table = Table(title=Text(f"rtcmatrix history ({db})"))
    for col in ("#", "started", "matrix", "backend", "cells", "folder"):
        table.add_column(col, overflow="fold")
    for r in rows:
        started = datetime.fromtimestamp(r.started_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        counts = " · ".join(f"{v} {k}" for k, v in sorted(r.counts.items())) + (" (interrupted)" if r.interrupted else "")
        table.add_row(str(r.id), started, Text(r.matrix), r.backend or "-", counts, Text(r.folder))
    console.print(table)


def trend_cmd(db: Path = DB_OPT, out: Path = typer.Option(Path("trend.html"), "--out", help="the HTML page to write"),
              last: Optional[int] = LAST_OPT) -> None:
    """Write an HTML page of each feature's status and each key figure across the recorded runs."""
    from reports.trend import write_trend

    try:
        path, runs, n_changes = write_trend(db, out, last)
    except history.HistoryError as e:
        fail(str(e))
    console.print(Text(f"trend over {len(runs)} run(s), {n_changes} change(s): {path}"))

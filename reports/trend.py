"""How a matrix moved across runs: each feature's status and each key figure, per SDK x browser x
profile, from the history file. One self-contained HTML page, like the report."""

from __future__ import annotations

from pathlib import Path

from reports import charts, history
from reports.html import _env


def write_trend(db: Path, path: Path, last: int | None = None) -> tuple[Path, list[history.RunRow], int]:
    """Write the page; returns it, the runs it covers and how many changes it lists."""
    chosen = history.runs(db, last)
    if not chosen:
        raise history.HistoryError(f"{db}: no runs recorded yet")
    rows = []
    n_changes = 0
    for s in history.series(db, chosen):
        sparks = [(label, s.metrics[name], charts.sparkline(s.metrics[name], label))
                  for name, label in history.TREND_METRICS if any(v is not None for v in s.metrics.get(name, []))]
        moved = history.changes(s, chosen)
        n_changes += len(moved)
        rows.append({"series": s, "sparks": sparks, "changes": moved})
    html = _env().get_template("trend.html.j2").render(db=db, runs=chosen, rows=rows)
    path.write_text(html)
    return path, chosen, n_changes

"""Every run, kept: a SQLite file of runs and their cells, so a nightly matrix remembers.

One row per run and one per cell, with the cell's headline figures. `trend` reads them back as a
series per SDK x browser x profile: each feature's status across runs, and each key figure's.
The file is plain SQLite so that a team can also query it themselves.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from reports.results import RunResult

DEFAULT_NAME = "history.sqlite"
# The figures a trend follows, with their labels: the seed's second table's headline rows.
TREND_METRICS = [("rtt_ms", "RTT (ms)"), ("jitter_ms", "Jitter (ms)"), ("packet_loss_pct", "Loss (%)"),
                 ("mos", "MOS"), ("connect_s", "Connect (s)"), ("cpu_call_pct", "CPU on call (% of a core)"),
                 ("mem_call_pss_mb", "Memory on call (PSS MB)")]
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    matrix TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    rtcmatrix_version TEXT,
    host TEXT,
    backend TEXT,
    interrupted INTEGER NOT NULL,
    counts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL,
    sdk TEXT NOT NULL, browser TEXT NOT NULL, profile TEXT NOT NULL, scenario TEXT NOT NULL, feature TEXT NOT NULL,
    status TEXT NOT NULL,
    behaviour TEXT,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, cell_id)
);
"""


class HistoryError(ValueError):
    pass


def default_path(out: Path) -> Path:
    """Beside the run folders: reports/out/history.sqlite for reports/out/<timestamp>/."""
    return out.resolve().parent / DEFAULT_NAME


def _connect(db: Path, create: bool) -> sqlite3.Connection:
    if not create and not db.is_file():
        raise HistoryError(f"{db}: no history there yet; `rtcmatrix run` records each run (--history PATH)")
    try:
        if create:
            db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(SCHEMA)
    except sqlite3.DatabaseError as e:
        raise HistoryError(f"{db}: not an rtcmatrix history file ({e})") from None
    return conn


def record(db: Path, run: RunResult, folder: Path) -> int:
    """Add a run (its results.json's folder names it; recording a folder again replaces it)."""
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    with closing(_connect(db, create=True)) as conn, conn:
        conn.execute("DELETE FROM runs WHERE folder = ?", (str(folder.resolve()),))
        cur = conn.execute(
            "INSERT INTO runs (folder, matrix, started_at, finished_at, rtcmatrix_version, host, backend, interrupted,"
            " counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (str(folder.resolve()), run.matrix, run.started_at, run.finished_at, run.rtcmatrix_version,
             run.host.get("hostname") or run.host.get("host"), run.lab.get("backend"), int(run.interrupted),
             json.dumps(counts)))
        run_id = cur.lastrowid
        conn.executemany(
            "INSERT INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, c.id, c.sdk, c.browser, c.profile, c.scenario, c.feature, c.status.value, c.behaviour,
              json.dumps({k: getattr(c.metrics, k) for k, _ in TREND_METRICS})) for c in run.cells])
    return int(run_id)


@dataclass
class RunRow:
    id: int
    folder: str
    matrix: str
    started_at: float
    finished_at: float | None
    version: str | None
    host: str | None
    backend: str | None
    interrupted: bool
    counts: dict[str, int]


@dataclass
class Series:
    """One SDK x browser x profile across runs: statuses per feature, figures per metric (None: not run)."""

    sdk: str
    browser: str
    profile: str
    statuses: dict[str, list[tuple[str, str | None] | None]] = field(default_factory=dict)  # (status, behaviour)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)


def runs(db: Path, last: int | None = None) -> list[RunRow]:
    """Runs oldest first; `last`: only the newest N."""
    with closing(_connect(db, create=False)) as conn:
        rows = conn.execute("SELECT id, folder, matrix, started_at, finished_at, rtcmatrix_version, host, backend,"
                            " interrupted, counts FROM runs ORDER BY started_at, id").fetchall()
    out = [RunRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), json.loads(r[9])) for r in rows]
    return out[-last:] if last else out


def series(db: Path, chosen: list[RunRow]) -> list[Series]:
    """Each SDK x browser x profile's history over `chosen` runs, in their order."""
    index = {r.id: i for i, r in enumerate(chosen)}
    groups: dict[tuple[str, str, str], Series] = {}
    sums: dict[tuple, list[list[float]]] = {}
    with closing(_connect(db, create=False)) as conn:
        marks = ",".join("?" * len(index)) or "NULL"
        rows = conn.execute(f"SELECT run_id, sdk, browser, profile, feature, status, behaviour, metrics FROM cells"
                            f" WHERE run_id IN ({marks}) ORDER BY sdk, browser, profile, feature",
                            list(index)).fetchall()
    for run_id, sdk, browser, profile, feature, status, behaviour, metrics in rows:
        key = (sdk, browser, profile)
        s = groups.setdefault(key, Series(sdk, browser, profile))
        s.statuses.setdefault(feature, [None] * len(chosen))[index[run_id]] = (status, behaviour)
        values = json.loads(metrics)
        for name, _ in TREND_METRICS:
            if values.get(name) is not None:
                sums.setdefault((key, name), [[] for _ in chosen])[index[run_id]].append(values[name])
    for (key, name), per_run in sums.items():
        groups[key].metrics[name] = [round(sum(v) / len(v), 3) if v else None for v in per_run]
    return [groups[k] for k in sorted(groups)]


def changes(s: Series, chosen: list[RunRow]) -> list[str]:
    """What moved between consecutive runs in a series, in words: statuses, behaviours, and figures
    that moved by more than a fifth (and by more than a small absolute step)."""
    out = []
    for feature, history in s.statuses.items():
        for i in range(1, len(history)):
            a, b = history[i - 1], history[i]
            if a and b and a[0] != b[0]:
                out.append(f"{feature}: {a[0]} -> {b[0]} in run {chosen[i].id}")
    for name, label in TREND_METRICS:
        values = s.metrics.get(name) or []
        for i in range(1, len(values)):
            a, b = values[i - 1], values[i]
            if a is not None and b is not None and abs(b - a) > max(0.2 * abs(a), 0.1):
                out.append(f"{label}: {a:g} -> {b:g} in run {chosen[i].id}")
    return out

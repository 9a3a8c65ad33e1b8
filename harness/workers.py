"""Parallel cells (pytest-xdist workers, each with its own lab) and shards (a slice of the matrix per machine).

A worker is a whole rtcmatrix session: its own lab, far end, SIP backends and browsers, so two
workers never share a port, a namespace or an audio server. Cells are grouped by profile, SDK and
browser (`--dist loadgroup`): a worker keeps a group's conditions, backend and browser for all of
its cells. Each worker writes its results beside its lab; the controller joins them into one run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from harness.matrix import Cell, MatrixError
from reports.merge import merge_runs
from reports.results import RunResult

WORKER_WAIT_S = 30  # a worker tears its lab down after an interrupt: a few seconds, more on a loaded machine


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """ "K/N" (1-based, as in Playwright Test) -> (K, N)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2))):
        raise MatrixError(f"--shard {text!r}: give K/N with 1 <= K <= N, e.g. --shard 1/3 for the first of three "
                          f"machines")
    return int(m.group(1)), int(m.group(2))


def shard_cells(cells: list[Cell], shard: tuple[int, int] | None) -> list[Cell]:
    """The K-th of N contiguous slices of the matrix's cells, sizes differing by at most one.

    Contiguous, because the matrix is profile-major: a slice changes conditions as rarely as the
    whole run does. The same matrix gives every machine the same slices."""
    if shard is None:
        return cells
    k, n = shard
    size, extra = divmod(len(cells), n)
    start = (k - 1) * size + min(k - 1, extra)
    return cells[start:start + size + (1 if k <= extra else 0)]


def group_of(cell: Cell) -> str:
    """The cells one worker runs back to back: one profile, one SDK's backend, one browser."""
    return f"{cell.profile.name}.{cell.sdk}.{cell.browser}"


def scheduler(config: pytest.Config, cells: list[Cell], log):
    """xdist's scope scheduling, with a cell's group as its scope.

    Our own mapping rather than xdist's `xdist_group` marker: pytest-xdist 3.8 renames items for
    that marker through an attribute pytest 9 no longer reads, so the marker groups nothing there."""
    from xdist.scheduler import LoadGroupScheduling

    by_param = {c.id.removesuffix(f"-{c.scenario}"): group_of(c) for c in cells}

    class CellGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            param = nodeid[nodeid.find("[") + 1:-1] if nodeid.endswith("]") else ""
            return by_param[param] if param in by_param else super()._split_scope(nodeid)

    return CellGroups(config, log)


def groups(cells: list[Cell]) -> int:
    return len({group_of(c) for c in cells})


def default_workers(cells: list[Cell]) -> int:
    """One per core, never more than there are groups to share out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, groups(cells)))


def worker_id(config: pytest.Config) -> str | None:
    return getattr(config, "workerinput", {}).get("workerid")


def is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("dsession")


def stop_workers() -> None:
    """Interrupt the controller's workers and wait until each has torn its lab down.

    Not until they exit: a worker that has finished waits for the controller's word to leave, which
    xdist sends once this hook returns. Its lab record (impairments/sweep.py) goes with its lab."""
    import time

    import psutil

    from impairments import sweep

    children = psutil.Process().children()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.send_signal(signal.SIGINT)
    pids = {c.pid for c in children}
    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline and any(r.pid in pids for r in sweep.records()):
        time.sleep(0.1)


def worker_dir(out: Path, wid: str) -> Path:
    return out / "workers" / wid


def join(run: RunResult, out: Path, cell_ids: list[str]) -> RunResult:
    """The controller's run with every worker's cells, in the matrix's order."""
    parts = sorted((out / "workers").glob("*/results.json"), key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))
    runs = [RunResult.load(p) for p in parts]
    if not runs:
        return run
    merged = merge_runs(runs, [p.parent.name for p in parts])
    merged.started_at, merged.host, merged.matrix = run.started_at, run.host, run.matrix
    merged.shard, merged.workers = run.shard, len(runs)
    merged.interrupted = merged.interrupted or run.interrupted
    merged.lab = {**runs[0].lab, "workers": [r.lab for r in runs]}
    order = {cid: n for n, cid in enumerate(cell_ids)}
    merged.cells.sort(key=lambda c: order.get(c.id, len(order)))
    return merged

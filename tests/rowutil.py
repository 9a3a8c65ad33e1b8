"""Running a small matrix through `rtcmatrix run` as a user does, and reading its cells back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "harness.cli"]


def start_matrix(tmp_path: Path, name: str, matrix: dict | Path, workers: int = 1,
                 args: list[str] = ()) -> tuple[subprocess.Popen, Path, Path]:
    """Start `rtcmatrix run` on `matrix` (a dict, whose profiles default to [ideal], or a matrix
    file as a user has it, filtered by `args`) in the background."""
    if isinstance(matrix, dict):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"name": name, "profiles": ["ideal"], **matrix}))
    else:
        path = matrix
    out, log = tmp_path / name, tmp_path / f"{name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(CLI + ["run", "--matrix", str(path), "--out", str(out), "--workers", str(workers),
                                       *args], stdout=f, stderr=subprocess.STDOUT, text=True)
    return proc, out, log


def finish_matrix(started: tuple[subprocess.Popen, Path, Path], timeout_s: float = 600) -> dict:
    """Wait for a started run; returns {(browser, scenario): cell, (sdk, browser, scenario): cell,
    "_run": results, "_out": its folder}."""
    proc, out, log = started
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=30)
        raise
    assert code == 0, log.read_text()
    results = json.loads((out / "results.json").read_text())
    cells = results["cells"]
    return ({(c["browser"], c["scenario"]): c for c in cells} | {(c["sdk"], c["browser"], c["scenario"]): c for c in cells}
            | {"_run": results, "_out": out})


def run_matrix(tmp_path: Path, name: str, matrix: dict | Path, timeout_s: float = 600, workers: int = 1,
               args: list[str] = ()) -> dict:
    """Run `matrix` on `workers` workers and read its cells back (see finish_matrix).

    One worker unless asked: a row test measures timings and audio that a second lab on two cores
    would load, so only the suites written for it run in parallel."""
    return finish_matrix(start_matrix(tmp_path, name, matrix, workers, args), timeout_s)


def run_side_by_side(tmp_path: Path, matrices: dict[str, dict], timeout_s: float = 600,
                     workers: dict[str, int] | None = None) -> dict[str, dict]:
    """Several runs at once (one worker each unless `workers` says), each with its own lab: a row's
    run beside its broken-SDK run, whose probes only need to fail."""
    started = {name: start_matrix(tmp_path, name, m, (workers or {}).get(name, 1)) for name, m in matrices.items()}
    return {name: finish_matrix(s, timeout_s) for name, s in started.items()}


def proof(cell: dict, claim: str) -> dict:
    """The cell's proof whose claim starts with `claim`."""
    return next(p for p in cell["proofs"] if p["claim"].startswith(claim))

"""Running a small matrix through `rtcmatrix run` as a user does, and reading its cells back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "harness.cli"]


def run_matrix(tmp_path: Path, name: str, matrix: dict, timeout_s: float = 600, workers: int = 1) -> dict:
    """Run `matrix` (profiles default to [ideal]) on `workers` workers; returns {(browser, scenario): cell,
    (sdk, browser, scenario): cell, "_run": results}.

    One worker unless asked: a row test measures timings and audio that a second lab on two cores
    would load, so only the suites written for it run in parallel."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "profiles": ["ideal"], **matrix}))
    out = tmp_path / name
    proc = subprocess.run(CLI + ["run", "--matrix", str(path), "--out", str(out), "--workers", str(workers)],
                          capture_output=True, text=True,
                          timeout=timeout_s)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    cells = results["cells"]
    return ({(c["browser"], c["scenario"]): c for c in cells} | {(c["sdk"], c["browser"], c["scenario"]): c for c in cells}
            | {"_run": results})


def proof(cell: dict, claim: str) -> dict:
    """The cell's proof whose claim starts with `claim`."""
    return next(p for p in cell["proofs"] if p["claim"].startswith(claim))

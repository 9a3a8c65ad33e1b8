"""What a matrix costs: wall time, cells per minute, each cell's overhead, the host's CPU, at 1 and 2 workers.

    python bench/matrix_time.py [--matrix FILE] [--browser B ...] [--profile P ...] [--scenario S ...]
                                [--workers 1,2] [--out DIR]

A cell's overhead is the harness's time around its probe: set-up (less one-off costs: the lab's
start, a profile's link check, a browser's launch, a SIP backend's start), page load, login and
teardown. The one-off costs are printed beside it. Targets (issue 11): median overhead <= 3 s,
max <= 5 s; 2 workers >= 1.6x faster than 1; the default matrix in <= 10 min on 2 cores.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
ONE_OFF = ("startup", "link-check", "browser", "backend")


def run(args: argparse.Namespace, workers: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "run", "--matrix", str(args.matrix), "--workers", str(workers),
           "--out", str(out)]
    for flag, values in (("--browser", args.browser), ("--profile", args.profile), ("--scenario", args.scenario)):
        for v in values:
            cmd += [flag, v]
    cpu0, t0 = psutil.cpu_times(), time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall, cpu1 = time.monotonic() - t0, psutil.cpu_times()
    if proc.returncode not in (0,):
        sys.exit(f"rtcmatrix run --workers {workers} exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    busy = lambda c: c.user + c.nice + c.system + c.irq + c.softirq + c.steal  # noqa: E731
    results = json.loads((out / "results.json").read_text())
    cells = results["cells"]
    overheads = [c["overhead_s"] for c in cells if c.get("overhead_s") is not None]
    one_off = {k: sum(c["phases"].get(k, 0.0) for c in cells) for k in ONE_OFF}
    worst = max(cells, key=lambda c: c.get("overhead_s") or 0.0)
    return {"workers": results.get("workers", workers), "wall_s": wall, "cells": len(cells),
            "cells_per_min": len(cells) / wall * 60, "overhead_median_s": statistics.median(overheads),
            "overhead_max_s": max(overheads), "worst": f"{worst['id']} {worst['phases']}",
            "cpu_pct": 100 * (busy(cpu1) - busy(cpu0)) / (wall * psutil.cpu_count()), "one_off_s": one_off,
            "statuses": {s: sum(c["status"] == s for c in cells) for s in sorted({c["status"] for c in cells})}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matrix", type=Path, default=ROOT / "matrices" / "default.yaml")
    ap.add_argument("--browser", action="append", default=[])
    ap.add_argument("--profile", action="append", default=[])
    ap.add_argument("--scenario", action="append", default=[])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to compare")
    ap.add_argument("--out", type=Path, default=None, help="keep each run's output here")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    base = args.out or Path(tempfile.mkdtemp(prefix="rtcm-bench-"))
    rows = [run(args, w, base / f"workers-{w}") for w in counts]
    table = Table(title=f"matrix time: {args.matrix.name} ({psutil.cpu_count()} cores)")
    for col in ("workers", "cells", "wall", "cells/min", "speed-up", "overhead median", "overhead max", "host CPU",
                "one-off (lab, link checks, browsers, backends)", "statuses"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["workers"]), str(r["cells"]), f"{r['wall_s']:.0f} s", f"{r['cells_per_min']:.1f}",
                      f"{rows[0]['wall_s'] / r['wall_s']:.2f}x", f"{r['overhead_median_s']:.2f} s",
                      f"{r['overhead_max_s']:.2f} s", f"{r['cpu_pct']:.0f} %",
                      ", ".join(f"{k} {v:.0f} s" for k, v in r["one_off_s"].items()),
                      ", ".join(f"{k} {v}" for k, v in r["statuses"].items()))
    console = Console(width=200)
    console.print(table)
    for r in rows:
        console.print(f"workers {r['workers']}: the most overhead: {r['worst']}", highlight=False, markup=False)
    console.print(f"outputs: {base}", highlight=False)


if __name__ == "__main__":
    main()

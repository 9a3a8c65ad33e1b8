"""What measuring costs: the process sampler's and the wire capture's own CPU, per cell.

    python bench/sampler_overhead.py [--browser B ...] [--profile P ...] [--seconds S] [--out DIR]

Runs the make-call row (an idle window, then a call) on each browser and profile through
`rtcmatrix run`, and prints, per cell, the sampler's thread CPU (target: under 1 % of a core),
the capture thread's CPU, and the browser's own figures they were measuring, for scale.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--browser", action="append", default=[])
    ap.add_argument("--profile", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=10.0, help="call length (and idle length)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="rtcm-bench-sampler-"))
    matrix = out / "sampler.json"
    out.mkdir(parents=True, exist_ok=True)
    matrix.write_text(json.dumps({
        "name": "sampler-overhead", "browsers": args.browser or ["chromium", "firefox"],
        "profiles": args.profile or ["ideal", "3g"], "scenarios": ["outbound-call"],
        "options": {"stats_seconds": args.seconds, "idle_seconds": args.seconds, "link_check_probes": 100}}))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--matrix", str(matrix), "--workers", "1",
                           "--out", str(out / "run")], cwd=ROOT, capture_output=True, text=True)
    results = out / "run" / "results.json"
    if not results.exists():
        sys.exit(f"the run produced no results (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    table = Table(title=f"Measuring's own cost ({args.seconds:g} s idle, {args.seconds:g} s call)")
    for col in ("cell", "sampler CPU %", "samples idle/call", "capture CPU %", "browser CPU call max %",
                "browser PSS call MB", "status"):
        table.add_column(col, justify="left" if col in ("cell", "status") else "right")
    for c in json.loads(results.read_text())["cells"]:
        m = c["metrics"]
        wire = out / "run" / "cells" / c["id"] / "wire.json"
        capture = json.loads(wire.read_text()).get("capture_cpu_pct") if wire.exists() else None
        fmt = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
        table.add_row(c["id"], fmt(m.get("sampler_cpu_pct")),
                      f"{fmt(m.get('process_idle_samples'))}/{fmt(m.get('process_call_samples'))}", fmt(capture),
                      fmt(m.get("cpu_call_pct")), fmt(m.get("mem_call_pss_mb")), c["status"])
    Console().print(table)
    print(f"output: {out}")


if __name__ == "__main__":
    main()

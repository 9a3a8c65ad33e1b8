"""The `rtcmatrix` command line."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from harness.browsers import ENGINES
from harness.matrix import DEFAULT_MATRIX, MatrixError, load
from harness.scenarios import SCENARIOS
from impairments.profile import ProfileError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Browser x network compatibility matrix for WebRTC voice SDKs.")
console = Console()
err = Console(stderr=True)
SCENARIO_DIR = Path(__file__).with_name("scenarios")
PROJECT_ROOT = Path(__file__).resolve().parents[1]

EXIT_HARNESS = 3
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def need_root() -> None:
    if os.geteuid() != 0:
        fail("the lab needs root: it creates network namespaces and netem qdiscs. "
             "Run as root (sudo rtcmatrix ...); rootless mode is not available on this kernel.")


def _plugin_args() -> list[str]:
    registered = any(ep.value == "harness.plugin" for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", "harness.plugin"]


@app.command()
def run(
    matrix: Path = typer.Option(DEFAULT_MATRIX, "--matrix", help="matrix YAML file"),
    browser: list[str] = typer.Option([], "--browser", help="only this browser (repeatable)"),
    profile: list[str] = typer.Option([], "--profile", help="only this profile: preset name or YAML file (repeatable)"),
    scenario: list[str] = typer.Option([], "--scenario", help="only this scenario (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default reports/out/<timestamp>)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto | host | uml"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show pytest's own output"),
) -> None:
    """Run the matrix and write results.json, report.html, summary.md and junit.xml.

    Exits 0 when the run completed, whatever the verdicts; non-zero when the harness failed.
    """
    import pytest

    if backend not in (None, "auto", "host", "uml"):
        fail(f"--backend: {backend!r} is not one of auto, host, uml")
    try:
        m = load(matrix, browser, profile, scenario, list(SCENARIOS), list(ENGINES))
    except (MatrixError, ProfileError) as e:
        fail(str(e))
    need_root()
    out = out or PROJECT_ROOT / "reports" / "out" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    args = [str(SCENARIO_DIR), "--matrix", str(matrix.resolve()), "--rtcm-out", str(out),
            "--junitxml", str(out / "junit.xml"), "-p", "no:cacheprovider", "--rootdir", str(SCENARIO_DIR),
            "-c", os.devnull] + _plugin_args()
    for flag, values in (("--rtcm-browser", browser), ("--rtcm-profile", profile), ("--rtcm-scenario", scenario)):
        for v in values:
            args += [flag, v]
    if backend:
        args += ["--rtcm-backend", backend]
    args += ["-v"] if verbose else ["-q"]
    console.print(f"rtcmatrix: {len(m.cells())} cells ({', '.join(m.browsers)} x "
                  f"{', '.join(p.name for p in m.profiles)} x {', '.join(m.scenarios)})")
    started = time.monotonic()
    code = pytest.main(args)
    results = out / "results.json"
    if code == pytest.ExitCode.INTERRUPTED:
        err.print(f"interrupted; partial results in {out}")
        raise typer.Exit(EXIT_INTERRUPTED)
    if code == pytest.ExitCode.USAGE_ERROR:
        raise typer.Exit(2)
    if not results.exists():
        fail(f"the run produced no results (pytest exit {int(code)}); see the output above", EXIT_HARNESS)
    _print_summary(results)
    console.print(f"\nReport: [bold]{out / 'report.html'}[/]  ({time.monotonic() - started:.0f} s)")
    console.print(f"Results: {results}  JUnit: {out / 'junit.xml'}")
    from reports.results import RunResult, Verdict

    errors = [c for c in RunResult.load(results).cells if c.verdict == Verdict.error]
    if errors or code in (pytest.ExitCode.INTERNAL_ERROR,):
        err.print(f"[bold red]harness errors in {len(errors)} cell(s)[/]: " + "; ".join(f"{c.id}: {c.reason}" for c in errors))
        raise typer.Exit(EXIT_HARNESS)


def _print_summary(results: Path) -> None:
    from reports.results import RunResult

    run = RunResult.load(results)
    table = Table(title=f"rtcmatrix ({run.lab.get('backend', '-')})")
    for col in ("cell", "verdict", "proven at", "RTT ms", "jitter ms", "loss %", "MOS", "link"):
        table.add_column(col)
    for c in run.cells:
        m = c.metrics
        fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)  # noqa: E731
        link = "-" if not c.link or c.link.ok is None else ("as configured" if c.link.ok else "DEVIATES")
        table.add_row(c.id, c.verdict.value, ", ".join(c.proven_by), fmt(m.rtt_ms), fmt(m.jitter_ms),
                      fmt(m.packet_loss_pct, "{:.2f}"), fmt(m.mos, "{:.2f}"), link)
    console.print(table)


@app.command()
def profiles(fields: bool = typer.Option(False, "--fields", help="list the fields a profile file may set")) -> None:
    """List the network presets with their numbers and sources."""
    from impairments.presets import presets
    from impairments.profile import Link

    if fields:
        table = Table(title="Link fields (set under uplink:, downlink: or both:)")
        table.add_column("field")
        table.add_column("type / range")
        for name, f in Link.model_fields.items():
            table.add_row(name, str(f.annotation).replace("typing.", "") + _bounds(f))
        console.print(table)
        return
    table = Table(title="Network presets (delays one way; --profile NAME or a YAML file)")
    for col in ("name", "uplink / downlink", "source"):
        table.add_column(col, overflow="fold")
    for name, p in presets().items():
        table.add_row(name, p.summary(), p.source)
    console.print(table)


def _bounds(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                parts.append(f"{attr} {getattr(meta, attr)}")
    return f" ({', '.join(parts)})" if parts else ""


@app.command()
def sweep() -> None:
    """Remove what dead rtcmatrix runs left behind (only names starting with rtcm-)."""
    need_root()
    from impairments.sweep import sweep as do_sweep

    removed = do_sweep()
    console.print(f"removed {len(removed)} namespace(s): {', '.join(removed) or '-'}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()

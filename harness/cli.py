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
from rich.table import Table
from rich.text import Text

from harness.engines import ENGINES
from harness.gates import expected, gate, load_expectations
from harness.history_cli import history_cmd, record as record_history, trend_cmd
from harness.lab_cli import lab_app
from harness.terminal import console, err, fail, need_root
from harness.matrix import DEFAULT_MATRIX, MatrixError, load
from harness.scenarios import SCENARIOS
from impairments.profile import ProfileError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Browser x network compatibility matrix for WebRTC voice SDKs.")
SCENARIO_DIR = Path(__file__).with_name("scenarios")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXIT_HARNESS = 3
EXIT_INTERRUPTED = 130


def _plugin_args() -> list[str]:
    registered = any(ep.value == "harness.plugin" for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", "harness.plugin"]


@app.command()
def run(
    matrix: Path = typer.Option(DEFAULT_MATRIX, "--matrix", help="matrix YAML file"),
    browser: list[str] = typer.Option([], "--browser", help="only this browser (repeatable)"),
    sdk: list[str] = typer.Option([], "--sdk", help="only this SDK (repeatable)"),
    profile: list[str] = typer.Option([], "--profile", help="only this profile: preset name or YAML file (repeatable)"),
    scenario: list[str] = typer.Option([], "--scenario", help="only this scenario (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="output folder (default reports/out/<timestamp>)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto | host | uml"),
    browser_path: list[str] = typer.Option([], "--browser-path", metavar="NAME=PATH",
                                           help="another binary for a browser column or engine (repeatable)"),
    browser_channel: list[str] = typer.Option([], "--browser-channel", metavar="NAME=CHANNEL",
                                              help="a Playwright channel for a browser column or engine (repeatable)"),
    workers: Optional[int] = typer.Option(None, "--workers", "-n", min=1, max=64,
                                          help="cells in parallel, each worker with its own lab (default: one per "
                                               "core, at most one per profile x SDK x browser)"),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N",
                                        help="run the K-th of N slices of the matrix; join them with rtcmatrix merge"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="a baseline results.json: gate this run "
                                                                       "against it (exit 1 on a regression)"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="gate rules YAML for --baseline (see rtcmatrix compare)"),
    expect: list[str] = typer.Option([], "--expect", metavar="[SDK=]FILE",
                                     help="expectations (a claims file, like matrices/claims/plivo-seed.yaml) for an "
                                          "SDK, or for every SDK of the run: exit 1 where a cell differs"),
    history: Optional[Path] = typer.Option(None, "--history", help="record the run in this SQLite file (default: "
                                                                     "history.sqlite beside the output folder)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show pytest's own output"),
) -> None:
    """Run the matrix and write results.json, report.html, summary.md and junit.xml.

    Exits 0 when the run completed, whatever the verdicts; 1 when --baseline found a regression or a cell differs
    from --expect; 130 when interrupted; 2 on bad input; 3 when the harness failed.
    """
    import pytest

    if backend not in (None, "auto", "host", "uml"):
        fail(f"--backend: {backend!r} is not one of auto, host, uml")
    from harness import workers as par
    from harness.plugin import pairs

    try:
        m = load(matrix, browser, profile, scenario, list(SCENARIOS), list(ENGINES),
                 executables=pairs("--browser-path", browser_path), channels=pairs("--browser-channel", browser_channel),
                 sdks=sdk)
        cells = par.shard_cells(m.cells(), par.parse_shard(shard))
    except (MatrixError, ProfileError) as e:
        fail(str(e))
    if not cells:
        fail(f"--shard {shard}: this slice of the matrix is empty ({len(m.cells())} cells); use fewer shards")
    if baseline is not None:
        from reports.compare import CompareError, load_rules, load_run

        try:  # a bad baseline says so before the run, not after it
            base_run, gate_rules = load_run(baseline), load_rules(rules)
        except CompareError as e:
            fail(str(e))
    expectations = load_expectations(expect, m.sdks)
    groups = par.groups(cells)
    if workers is not None and workers > groups:
        err.print(f"--workers {workers}: these cells make {groups} group(s) (profile x SDK x browser); "
                  f"running {groups} worker(s)")
    n_workers = min(workers, groups) if workers else par.default_workers(cells)
    need_root()
    out = out or PROJECT_ROOT / "reports" / "out" / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    args = [str(SCENARIO_DIR), "--matrix", str(matrix.resolve()), "--rtcm-out", str(out),
            "--junitxml", str(out / "junit.xml"), "-p", "no:cacheprovider", "--rootdir", str(SCENARIO_DIR),
            "-c", os.devnull, "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "-o", "console_output_style=classic"] + _plugin_args()
    for flag, values in (("--rtcm-browser", browser), ("--rtcm-sdk", sdk), ("--rtcm-profile", profile), ("--rtcm-scenario", scenario),
                         ("--rtcm-browser-path", browser_path), ("--rtcm-browser-channel", browser_channel)):
        for v in values:
            args += [flag, v]
    if backend:
        args += ["--rtcm-backend", backend]
    if shard:
        args += ["--rtcm-shard", shard]
    if n_workers > 1:
        args += ["-n", str(n_workers), "--dist", "loadgroup"]
    args += ["-v"] if verbose else ["-q"]
    console.print(f"rtcmatrix: {len(cells)} cells" + (f" (shard {shard} of {len(m.cells())})" if shard else "")
                  + f" ({', '.join(m.sdks)} x {', '.join(m.browsers)} x {', '.join(p.name for p in m.profiles)} x "
                  f"{', '.join(m.scenarios)}) on {n_workers} worker(s)")
    started = time.monotonic()
    from harness.progress import Progress

    code = pytest.main(args, plugins=[] if verbose else [Progress(len(cells), console, live=console.is_terminal)])
    results = out / "results.json"
    if code == pytest.ExitCode.INTERRUPTED:
        err.print(f"interrupted; partial results in {out}")
        raise typer.Exit(EXIT_INTERRUPTED)
    if code == pytest.ExitCode.USAGE_ERROR:
        raise typer.Exit(2)
    if not results.exists():
        fail(f"the run produced no results (pytest exit {int(code)}); see the output above", EXIT_HARNESS)
    from reports.history import default_path

    record_history(history or default_path(out), results)
    _print_summary(results)
    console.print(f"\nReport: {out / 'report.html'}  ({time.monotonic() - started:.0f} s)")
    console.print(f"Results: {results}  JUnit: {out / 'junit.xml'}")
    from reports.results import RunResult, Status

    errors = [c for c in RunResult.load(results).cells if c.status == Status.error]
    if errors or code in (pytest.ExitCode.INTERNAL_ERROR,):
        err.print(Text.assemble((f"harness errors in {len(errors)} cell(s)", "bold red"), ": ",
                                "; ".join(f"{c.id}: {c.reason}" for c in errors)))
        raise typer.Exit(EXIT_HARNESS)
    differ = expected(out, expectations) if expectations else 0
    if baseline is not None and gate(base_run, RunResult.load(results), gate_rules, str(baseline)):
        raise typer.Exit(1)
    if differ:
        raise typer.Exit(1)


@app.command()
def compare(
    base: Path = typer.Argument(..., help="the baseline results.json"),
    new: Path = typer.Argument(..., help="the new results.json"),
    rules: Optional[Path] = typer.Option(None, "--rules", help="gate rules YAML: metric tolerances, behaviour_changes"),
) -> None:
    """Print what changed between two runs; exit 1 on a regression, 0 otherwise, 2 on bad input."""
    from reports.compare import CompareError, load_rules, load_run

    try:
        base_run, new_run, gate_rules = load_run(base), load_run(new), load_rules(rules)
    except CompareError as e:
        fail(str(e))
    if gate(base_run, new_run, gate_rules, str(base)):
        raise typer.Exit(1)


@app.command()
def merge(
    runs: list[Path] = typer.Argument(..., help="output folders of the shards (each holds a results.json)"),
    out: Path = typer.Option(..., "--out", help="folder for the joined results.json, report.html, junit.xml, summary.md"),
) -> None:
    """Join the shards of a matrix (rtcmatrix run --shard K/N) into one run and its reports."""
    from reports.merge import MergeError, merge_junit, merge_runs, write_all
    from reports.results import RunResult

    loaded = []
    for folder in runs:
        results = folder / "results.json"
        if not results.is_file():
            fail(f"{folder}: no results.json there; give the --out folder of each rtcmatrix run")
        try:
            loaded.append(RunResult.load(results))
        except ValueError as e:
            fail(f"{results}: not an rtcmatrix results file ({str(e).splitlines()[0]})")
    out.mkdir(parents=True, exist_ok=True)
    try:
        run = merge_runs(loaded, [str(f) for f in runs])
        junit = merge_junit([f / "junit.xml" for f in runs], out / "junit.xml")
    except MergeError as e:
        fail(str(e))
    write_all(run, out)
    _print_summary(out / "results.json")
    console.print(f"\nmerged {len(runs)} run(s), {len(run.cells)} cells: {out / 'report.html'}"
                  + (f"  JUnit: {junit}" if junit else "  (no junit.xml in the runs)"))


def _print_summary(results: Path) -> None:
    from reports.results import RunResult

    run = RunResult.load(results)
    table = Table(title=f"rtcmatrix ({run.lab.get('backend', '-')})")
    for col in ("sdk", "browser", "profile", "scenario", "status", "proven at", "RTT ms", "jitter ms", "loss %", "MOS", "link"):
        table.add_column(col)
    for c in run.cells:
        m = c.metrics
        fmt = lambda v, f="{:.1f}": "-" if v is None else f.format(v)  # noqa: E731
        link = "-" if not c.link or c.link.ok is None else ("as configured" if c.link.ok else "DEVIATES")
        table.add_row(c.sdk, c.browser, c.profile, c.scenario, c.status.value, ", ".join(c.proven_by), fmt(m.rtt_ms), fmt(m.jitter_ms),
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


app.add_typer(lab_app, name="lab")
app.command("history")(history_cmd)
app.command("trend")(trend_cmd)


@app.command()
def replay(
    recording: Path = typer.Argument(..., help="webrtc-internals dump (.json/.gz), per-second JSON/CSV, or mahimahi trace"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="schedule YAML to write (default: <name>.schedule.yaml)"),
    name: Optional[str] = typer.Option(None, "--name", help="schedule name (default: from the file name)"),
    check: bool = typer.Option(False, "--check", help="replay it in a lab now and measure how closely it matches"),
    pps: int = typer.Option(50, "--pps", min=5, max=2000, help="probe rate per direction for --check"),
) -> None:
    """Turn a customer's recording into a schedule you can pass to --profile; --check measures it."""
    import yaml

    from impairments import replay as rp

    try:
        samples, kind = rp.load(recording)
        label = name or rp.name_from_file(recording)
        schedule = rp.to_schedule(samples, label, source=f"{kind} recording {recording.name}")
    except (rp.ReplayError, ProfileError) as e:
        fail(str(e))
    out = out or Path(f"{label}.schedule.yaml")
    out.write_text(yaml.safe_dump(schedule.model_dump(mode="json", exclude_defaults=True), sort_keys=False))
    rtts = [s.rtt_ms for s in samples if s.rtt_ms is not None]
    console.print(f"{kind}: {len(samples)} s -> {len(schedule.steps)} steps"
                  + (f"; RTT {min(rtts):.0f}-{max(rtts):.0f} ms" if rtts else "") + f"\nschedule: {out}")
    console.print(f"replay a call under it: rtcmatrix run --profile {out}")
    if not check:
        return
    need_root()
    from impairments.lab import Lab

    with Lab() as lab:
        fidelity = rp.measure(lab, schedule, pps=pps)
    report = out.with_suffix(".fidelity.json")
    report.write_text(fidelity.model_dump_json(indent=1))
    fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
    console.print(f"replayed {fidelity.seconds} s on {lab.backend}: RTT mean abs error "
                  f"{fmt(fidelity.rtt_mean_abs_error_ms, '{:.1f}')} ms, correlation "
                  f"{fmt(fidelity.rtt_correlation, '{:.3f}')}, loss mean abs error "
                  f"{fmt(fidelity.loss_mean_abs_error_pct, '{:.2f}')} %\nper second: {report}")


@app.command()
def doctor() -> None:
    """Say what this machine has for rtcmatrix, with a fix for each missing piece."""
    import shutil

    from harness.engines import BrowserMissing, engine
    from impairments.uml.router import busybox, uml_binary, uml_modules_dir

    rows: list[tuple[str, bool, str, str]] = []
    root = os.geteuid() == 0
    rows.append(("root", root, "yes" if root else "no", "run as root: the lab makes namespaces and qdiscs"))
    host_netem = False
    if root:
        from impairments.detect import host_has_netem

        host_netem = host_has_netem()
    rows.append(("host kernel netem", host_netem, "available" if host_netem else "missing (sch_netem)",
                 "optional: the UML router gives real netem; or load sch_netem (modprobe sch_netem)"))
    uml = bool(uml_binary() and uml_modules_dir() and busybox())
    rows.append(("User-mode Linux router", uml, f"{uml_binary()} modules {uml_modules_dir()}" if uml else "missing",
                 "apt-get install user-mode-linux busybox-static"))
    for name in ENGINES:
        try:
            rows.append((f"browser {name}", True, engine(name).version(), ""))
        except BrowserMissing as e:
            rows.append((f"browser {name}", False, "missing", str(e)))
    from harness.engines.webkit import doctor_row

    rows.append(doctor_row())
    for tool, pkg, why in (("espeak-ng", "espeak-ng", "the far end's spoken prompt (else a chime)"),
                           ("sox", "sox", "audio conversion and measurement"),
                           ("pulseaudio", "pulseaudio pulseaudio-utils",
                            "a private audio server per browser: virtual microphones and speakers (Firefox needs one)"),
                           ("parec", "pulseaudio-utils", "records the virtual speakers"),
                           ("Xvfb", "xvfb", "a display for WebKitGTK")):
        found = shutil.which(tool)
        rows.append((tool, bool(found), found or "missing", f"apt-get install {pkg}: {why}"))
    from importlib.metadata import version

    pw = version("playwright")
    rows.append(("playwright", pw == "1.64.1", pw, "pip install playwright==1.64.1 (1.65 breaks Firefox over BiDi)"))
    table = Table(title="rtcmatrix doctor")
    for col in ("what", "ok", "found", "fix"):
        table.add_column(col, overflow="fold")
    for what, ok, found, fix in rows:
        table.add_row(what, Text("yes", style="green") if ok else Text("no", style="red"), found, "" if ok else fix)
    console.print(table)
    essential = root and (host_netem or uml) and any(ok for w, ok, _, _ in rows if w == "browser chromium")
    console.print("ready to run" if essential else "not ready: see the fixes above", style=None if essential else "red")
    raise typer.Exit(0 if essential else 1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()

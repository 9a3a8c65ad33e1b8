"""The rtcmatrix plugin's results hooks: each cell's `CellResult`, timed, and the run's reports.

A serial run writes results.json, report.html and summary.md itself. In a parallel run each
worker saves its cells beside its lab and the controller joins them (harness/workers.py).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest

from harness import workers
from harness.matrix import DEFAULT_MATRIX, Cell
from harness.plugin import CELL_RUN, CURRENT, OUT, REPORTS, RUN, STARTUP, _cells
from harness.cell import NotSupported
from harness.verdicts import cell_result
from reports.results import RunResult, Status


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[RUN] = RunResult(
        rtcmatrix_version=_version(),
        matrix=str(session.config.getoption("--matrix") or DEFAULT_MATRIX),
        started_at=time.time(),
        host={"hostname": platform.node(), "platform": platform.platform(), "kernel": platform.release(),
              "python": platform.python_version(), "cpus": os.cpu_count()},
        shard=session.config.getoption("--rtcm-shard"),
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Session fixtures (the lab, the far end) start once: their time is the run's, not the cell's overhead."""
    started = time.monotonic()
    yield
    if fixturedef.scope == "session":
        stash = request.config.stash
        stash[STARTUP] = stash.get(STARTUP, 0.0) + time.monotonic() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and call.excinfo is not None and call.excinfo.errisinstance(NotSupported):
        report.outcome, report.longrepr = "passed", None  # a finding, not a failure
    rec = item.stash.get(CELL_RUN, None)
    if call.when == "call" and rec is not None:
        # The cell as CI reads it without opening results.json. junit.xml takes its properties from
        # the teardown report, which copies the item's: so they go on the item as well.
        status = rec.status.value if report.passed else (Status.skipped if report.skipped else Status.failed).value
        props = [("rtcm_status", status)] + ([("rtcm_behaviour", rec.behaviour)] if rec.behaviour else []) \
            + [("rtcm_proven_by", ", ".join(rec.proven_by) or "-")] \
            + [(f"rtcm_proof_{n}", f"{'ok' if p.ok else 'NOT'} [{p.by}] {p.claim}") for n, p in enumerate(rec.proofs, 1)]
        report.user_properties.extend(props)
        item.user_properties.extend(props)
    reports = item.stash.setdefault(REPORTS, {})
    reports[report.when] = report
    if report.when == "teardown" and "cell" in getattr(item, "fixturenames", ()):
        _charge_startup(item)
        cell_result(item, reports, item.config.stash.get(RUN, None), item.stash.get(CELL_RUN, None))


def _charge_startup(item: pytest.Item) -> None:
    rec = item.stash.get(CELL_RUN, None)
    startup = item.config.stash.get(STARTUP, 0.0)
    item.config.stash[STARTUP] = 0.0
    if rec is not None and startup:
        rec.phases["startup"] = round(startup, 3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    """Remember the cell in progress: an interrupt skips its reports, not its place in the results."""
    item.config.stash[CURRENT] = item
    outcome = yield
    if outcome.excinfo is None:
        item.config.stash[CURRENT] = None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """The report line says when a passing cell is not-supported or degraded."""
    status = dict(report.user_properties).get("rtcm_status") if report.when == "call" and report.passed else None
    if status == Status.not_supported.value:
        return "not-supported", "N", ("NOT-SUPPORTED", {"yellow": True})
    if status == Status.degraded.value:
        return "degraded", "D", ("DEGRADED", {"yellow": True})
    return None


@pytest.hookimpl(tryfirst=True)  # a controller joins its workers before xdist shuts them down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    run = config.stash.get(RUN, None)
    if workers.is_controller(config) and run is not None and config.getoption("--rtcm-out"):
        _join_workers(config, run, exitstatus)
        return
    out = config.stash.get(OUT, None)
    if run is None or out is None:
        return
    run.finished_at = time.time()
    run.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    current = session.config.stash.get(CURRENT, None)
    recorded = {c.id for c in run.cells}
    spec = getattr(current, "callspec", None)
    if run.interrupted and spec and isinstance(spec.params.get("cell"), Cell) and spec.params["cell"].id not in recorded:
        cell_result(current, current.stash.get(REPORTS, {}), run, current.stash.get(CELL_RUN, None), interrupted=True)
    if not run.cells:
        return
    wid = workers.worker_id(config)
    if wid:  # the controller writes the reports, from every worker's results
        run.save(workers.worker_dir(out, wid) / "results.json")
        return
    from reports.merge import write_all

    write_all(run, out)


def _join_workers(config: pytest.Config, run: RunResult, exitstatus: int) -> None:
    run.finished_at = time.time()
    run.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    if run.interrupted:
        workers.stop_workers()
    out = Path(config.getoption("--rtcm-out"))
    merged = workers.join(run, out, [c.id for c in _cells(config)])
    if merged.cells:
        from reports.merge import write_all

        write_all(merged, out)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtcmatrix")
    except PackageNotFoundError:
        return "0+source"

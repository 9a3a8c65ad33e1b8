"""From pytest's reports of one cell to its `CellResult`: status, behaviour, proofs, evidence.

A failure while setting the cell up (lab, browser, far end) is the harness's `error`; a failed
check while the scenario runs is the SDK's `failed`; a cell cut short by an interrupt is
`interrupted`, never `failed`. `not-supported` and `degraded` cells pass in pytest.
"""

from __future__ import annotations

import pytest

from harness.cell import CellRun
from harness.matrix import Cell
from harness.scenarios import SCENARIOS
from reports.results import CellResult, Metrics, RunResult, Status


def cell_result(item: pytest.Item, reports: dict, run: RunResult | None, rec: CellRun | None,
                interrupted: bool = False) -> None:
    """Append the cell's result to the run."""
    spec = getattr(item, "callspec", None)
    cell = spec.params.get("cell") if spec else None
    if run is None or not isinstance(cell, Cell):
        return
    from harness.plugin import MATRIX  # the plugin imports this module

    matrix = item.config.stash.get(MATRIX, None)
    if matrix is not None and matrix.claims and not run.claims:
        run.claims = matrix.claims
    sdk = matrix.sdks.get(cell.sdk) if matrix is not None else None
    status, reason = _status(reports, rec)
    if interrupted and status in (Status.failed, Status.error):
        status, reason = Status.interrupted, f"interrupted while it ran ({reason})"
    run.cells.append(CellResult(
        id=cell.id,
        browser=cell.browser,
        sdk=cell.sdk,
        browser_version=rec.browser_version if rec else None,
        profile=cell.profile.name,
        scenario=cell.scenario,
        feature=SCENARIOS.get(cell.scenario, cell.scenario),
        status=status,
        behaviour=rec.behaviour if rec else None,
        proven_by=rec.proven_by if rec and status in (Status.supported, Status.degraded, Status.not_supported) else [],
        reason=reason,
        lacking=rec.lacking if rec and status == Status.not_supported else None,
        workarounds=list(sdk.workarounds) if sdk is not None else [],
        proofs=rec.proofs if rec else [],
        metrics=rec.metrics if rec else Metrics(),
        link=rec.link if rec else None,
        evidence=rec.evidence if rec else {},
        started_at=rec.started_at if rec else None,
        duration_s=sum(r.duration for r in reports.values()),
        **_timing(reports, rec),
        worker=getattr(item.config, "workerinput", {}).get("workerid"),
    ))


PROBE_PHASES = ("page", "login", "call", "media", "idle", "perceptual")  # timed inside the probe's own body
# Paid once per run, profile, column or backend, by whichever cell comes first: the run's cost, not the cell's.
ONE_OFF = ("startup", "link-check", "browser", "backend")


def _timing(reports: dict, rec: CellRun | None) -> dict:
    """The cell's phases, and its overhead: set-up (less the one-off costs), page, login and teardown.

    "conditions" and "link-check" nest (the check runs while the conditions are entered): the
    overhead subtracts the check once, from the set-up that holds both."""
    phases = dict(rec.phases) if rec else {}
    took = {when: r.duration for when, r in reports.items()}
    if "teardown" in took:
        phases["teardown"] = round(took["teardown"], 3)
    if "call" in took:
        phases["probe"] = round(max(0.0, took["call"] - sum(phases.get(p, 0.0) for p in PROBE_PHASES)), 3)
    if "setup" not in took:
        return {"phases": phases}
    overhead = took["setup"] - sum(phases.get(p, 0.0) for p in ONE_OFF) \
        + sum(phases.get(p, 0.0) for p in ("page", "login", "teardown"))
    return {"phases": phases, "overhead_s": round(max(0.0, overhead), 3)}


def _status(reports: dict, rec: CellRun | None) -> tuple[Status, str | None]:
    setup, call, teardown = reports.get("setup"), reports.get("call"), reports.get("teardown")
    if setup and setup.failed:
        return Status.error, _reason(setup)
    if setup and setup.skipped:
        return Status.skipped, _reason(setup)
    if call and call.failed:
        return Status.failed, _reason(call)
    if call and call.skipped:
        return Status.skipped, _reason(call)
    if not (call and call.passed):
        return Status.error, "did not run"
    if teardown and teardown.failed:
        return Status.error, _reason(teardown)
    return (rec.status, rec.reason) if rec else (Status.error, "no record of the cell")


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    return crash.message if crash else str(longrepr).strip().splitlines()[-1]

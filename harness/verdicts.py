"""From pytest's reports of one cell to its `CellResult`: verdict, reason, proofs, evidence.

A failure while setting the cell up (lab, browser, far end) is the harness's `error`; a failed
check while the scenario runs is the SDK's `failed`.
"""

from __future__ import annotations

import pytest

from harness.cell import CellRun
from harness.matrix import Cell
from harness.scenarios import SCENARIOS
from reports.results import CellResult, Metrics, RunResult, Verdict


def cell_result(item: pytest.Item, reports: dict, run: RunResult | None, rec: CellRun | None) -> None:
    """Append the cell's result to the run."""
    spec = getattr(item, "callspec", None)
    cell: Cell | None = spec.params.get("cell") if spec else None
    if run is None or cell is None:
        return
    setup, call = reports.get("setup"), reports.get("call")
    reason = None
    if setup and setup.failed:
        verdict, reason = Verdict.error, _reason(setup)
    elif setup and setup.skipped:
        verdict, reason = Verdict.skipped, _reason(setup)
    elif call and call.failed:
        verdict, reason = Verdict.failed, _reason(call)
    elif call and call.skipped:
        verdict, reason = Verdict.skipped, _reason(call)
    elif call and call.passed:
        verdict = Verdict.passed
    else:
        verdict, reason = Verdict.error, "did not run"
    teardown = reports.get("teardown")
    if teardown and teardown.failed and verdict == Verdict.passed:
        verdict, reason = Verdict.error, _reason(teardown)
    run.cells.append(CellResult(
        id=cell.id,
        browser=cell.browser,
        browser_version=rec.browser_version if rec else None,
        profile=cell.profile.name,
        scenario=cell.scenario,
        feature=SCENARIOS.get(cell.scenario, cell.scenario),
        verdict=verdict,
        proven_by=rec.proven_by if rec and verdict == Verdict.passed else [],
        reason=reason,
        proofs=rec.proofs if rec else [],
        metrics=rec.metrics if rec else Metrics(),
        link=rec.link if rec else None,
        evidence=rec.evidence if rec else {},
        started_at=rec.started_at if rec else None,
        duration_s=sum(r.duration for r in reports.values()),
    ))


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    return crash.message if crash else str(longrepr).strip().splitlines()[-1]

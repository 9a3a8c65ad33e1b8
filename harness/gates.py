"""The ends of a run that can fail it: the gate against a baseline, and expectations (a vendor's
table, or a team's own) against the measured cells."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from harness.scenarios import SCENARIOS
from harness.terminal import console, fail


def gate(base_run, new_run, rules, label: str) -> bool:
    """Print the changes against a baseline; True when one of them is a regression."""
    from reports.compare import compare as diff

    changes = diff(base_run, new_run, rules)
    table = Table(title=f"against {label}")
    for col in ("cell", "change", "before", "after", "regression"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c.cell, c.kind, c.before or "-", c.after or "-",
                      Text("yes", style="bold red") if c.regression else "no")
    if changes:
        console.print(table)
    regressions = sum(c.regression for c in changes)
    console.print(f"gate: {len(changes)} change(s), {regressions} regression(s) in {len(new_run.cells)} cells: "
                  + ("FAIL" if regressions else "pass"), style="bold red" if regressions else "green")
    return regressions > 0


def load_expectations(given: list[str], sdks: list[str]) -> dict[str, dict]:
    """--expect [SDK=]FILE, checked before the run: SDK -> Claims as a dict."""
    from reports.claims import ClaimsError, load_claims

    out: dict[str, dict] = {}
    for item in given:
        sdk, sep, file = item.partition("=")
        if not sep:
            sdk, file = "", item
        if sdk and sdk not in sdks:
            fail(f"--expect {item}: the run has no SDK named {sdk!r}; its SDKs: {', '.join(sdks)}")
        try:
            claims = load_claims(Path(file), list(SCENARIOS)).model_dump()
        except ClaimsError as e:
            fail(f"--expect {item}: {e}")
        out.update({s: claims for s in ([sdk] if sdk else sdks)})
    return out


def expected(out: Path, expectations: dict[str, dict]) -> int:
    """Put the expectations beside the cells (results, report, summary) and print where they differ."""
    from reports.claims import disagreements
    from reports.merge import write_all
    from reports.results import RunResult

    run = RunResult.load(out / "results.json")
    run.claims.update(expectations)
    write_all(run, out)
    differ = disagreements(run, expectations)
    table = Table(title="cells that differ from the expectations")
    for col in ("cell", "measured", "expected"):
        table.add_column(col, overflow="fold")
    for cell, words in differ:
        table.add_row(cell.id, cell.status.value, words)
    if differ:
        console.print(table)
    console.print(f"expectations: {len(differ)} of {len(run.cells)} cells differ",
                  style="bold red" if differ else "green")
    return len(differ)

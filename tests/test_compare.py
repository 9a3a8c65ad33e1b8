"""The gate: regressions caught, an unchanged run passed, bad input one message with exit 2."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from reports.compare import CompareError, Rules, compare, load_rules
from reports.results import CellResult, Metrics, RunResult, Status

runner = CliRunner()


def _cell(cid, status=Status.supported, behaviour=None, **metrics):
    return CellResult(id=cid, browser="chromium", profile="ideal", scenario="s", feature="f", status=status,
                      behaviour=behaviour, metrics=Metrics(**metrics))


def _run(*cells):
    return RunResult(rtcmatrix_version="t", matrix="m.yaml", started_at=1.0, cells=list(cells))


def test_unchanged_passes_and_each_kind_of_change_is_named():
    base = _run(_cell("a", mos=4.4, rtt_ms=2.0), _cell("b"), _cell("c", behaviour="rfc4733"), _cell("d"),
                _cell("e", Status.degraded))
    assert compare(base, base) == []
    new = _run(_cell("a", mos=4.0, rtt_ms=5.0), _cell("b", Status.failed), _cell("c", behaviour="info"),
               _cell("e", Status.supported), _cell("f", Status.error))
    changes = {(c.cell, c.kind): c for c in compare(base, new)}
    assert changes[("a", "metric")].regression and "mos 4.4" in changes[("a", "metric")].before
    assert ("a", "metric") in changes and not any(k == ("a", "status") for k in changes)
    assert len([c for c in changes.values() if c.cell == "a"]) == 1  # 2 ms -> 5 ms RTT is within 20 ms
    assert changes[("b", "new-failure")].regression
    assert not changes[("c", "behaviour")].regression
    assert changes[("d", "missing")].regression
    assert not changes[("e", "status")].regression  # better
    assert changes[("f", "new-failure")].regression
    strict = Rules(behaviour_changes="fail", metrics={"mos": None})
    changes = {(c.cell, c.kind): c for c in compare(base, new, strict)}
    assert changes[("c", "behaviour")].regression and ("a", "metric") not in changes


def test_rules_errors_name_the_field(tmp_path: Path):
    for body, needle in (("metrics: {moss: {worse: lower, by: 1}}", "unknown metric 'moss'"),
                         ("metrics: {mos: {worse: sideways}}", "metrics.mos.worse"),
                         ("behaviour_changes: maybe", "behaviour_changes"),
                         ("metrics: {mos: {worse: lower, by: -1}}", "metrics.mos.by")):
        (tmp_path / "r.yaml").write_text(body)
        with pytest.raises(CompareError, match=needle.replace(".", r"\.")):
            load_rules(tmp_path / "r.yaml")


def test_cli_compare_exit_codes(tmp_path: Path):
    base = _run(_cell("a", mos=4.4), _cell("b"))
    base.save(tmp_path / "base.json")
    worse = _run(_cell("a", mos=3.9), _cell("b", Status.degraded))
    worse.save(tmp_path / "new.json")
    assert runner.invoke(app, ["compare", str(tmp_path / "base.json"), str(tmp_path / "base.json")]).exit_code == 0
    result = runner.invoke(app, ["compare", str(tmp_path / "base.json"), str(tmp_path / "new.json")])
    assert result.exit_code == 1 and "2 regression(s)" in result.output and "FAIL" in result.output, result.output
    old = json.loads((tmp_path / "base.json").read_text()) | {"schema_version": 1}
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "bad.yaml").write_text("metrics: [")
    for args, needle in ((["compare", str(tmp_path / "none.json"), str(tmp_path / "new.json")], "cannot read results"),
                         (["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")], "results schema 1"),
                         (["compare", str(tmp_path / "base.json"), str(tmp_path / "new.json"), "--rules",
                           str(tmp_path / "bad.yaml")], "cannot read the rules file"),
                         (["run", "--baseline", str(tmp_path / "none.json")], "cannot read results")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, result.output

"""Shards, worker groups and merging, without a lab: the slices, the joins and the messages."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.matrix import DEFAULT_MATRIX, MatrixError, load
from harness.workers import default_workers, group_of, groups, parse_shard, shard_cells
from reports.merge import MergeError, merge_junit, merge_runs
from reports.results import CellResult, RunResult, Status

runner = CliRunner()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 100])
def test_shards_partition_the_matrix_in_order(n):
    cells = load(DEFAULT_MATRIX).cells()
    slices = [shard_cells(cells, (k, n)) for k in range(1, n + 1)]
    assert [c for s in slices for c in s] == cells  # every cell once, in the matrix's order
    assert max(map(len, slices)) - min(map(len, slices)) <= 1
    assert shard_cells(cells, (1, n)) == shard_cells(load(DEFAULT_MATRIX).cells(), (1, n))  # the same on every machine


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2"])
def test_a_bad_shard_names_the_form(text):
    with pytest.raises(MatrixError, match=r"--shard .*give K/N with 1 <= K <= N"):
        parse_shard(text)


def test_groups_keep_a_profile_sdk_and_browser_together():
    cells = load(DEFAULT_MATRIX).cells()
    assert groups(cells) == len({(c.profile.name, c.sdk, c.browser) for c in cells})
    assert group_of(cells[0]) == f"{cells[0].profile.name}.{cells[0].sdk}.{cells[0].browser}"
    assert 1 <= default_workers(cells) <= groups(cells)
    assert default_workers(cells[:1]) == 1


def _run(ids, shard=None, **kw) -> RunResult:
    return RunResult(rtcmatrix_version="t", matrix="m.yaml", started_at=kw.get("started", 10.0), shard=shard,
                     finished_at=kw.get("finished", 20.0), interrupted=kw.get("interrupted", False),
                     cells=[CellResult(id=i, browser="chromium", profile="ideal", scenario="s", feature="f",
                                       status=Status.supported) for i in ids])


def test_merge_joins_shards_in_shard_order():
    merged = merge_runs([_run(["c", "d"], "2/2", started=5, finished=30), _run(["a", "b"], "1/2", interrupted=True)],
                        ["out2", "out1"])
    assert [c.id for c in merged.cells] == ["a", "b", "c", "d"]
    assert (merged.started_at, merged.finished_at, merged.interrupted) == (5, 30, True)
    assert merged.merged_from == ["out1 (shard 1/2)", "out2 (shard 2/2)"] and merged.shard is None


def test_merge_refuses_a_cell_found_twice():
    with pytest.raises(MergeError, match="cell a is in both out1 and out2"):
        merge_runs([_run(["a"]), _run(["a", "b"])], ["out1", "out2"])


def test_merge_junit_sums_the_suites(tmp_path: Path):
    for n, failures in ((1, 0), (2, 1)):
        (tmp_path / f"{n}.xml").write_text(
            f'<testsuites><testsuite name="pytest" tests="2" failures="{failures}" errors="0" skipped="0" time="1.5">'
            f'<testcase name="a{n}"/><testcase name="b{n}"/></testsuite></testsuites>')
    out = merge_junit([tmp_path / "1.xml", tmp_path / "2.xml", tmp_path / "missing.xml"], tmp_path / "j.xml")
    suite = ET.parse(out).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("4", "1", "3.000")
    assert [c.get("name") for c in suite] == ["a1", "b1", "a2", "b2"]


def test_cli_merge_and_shard_errors_are_one_message(tmp_path: Path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{}")
    (tmp_path / "[odd]").mkdir()
    for args, needle in ((["merge", str(tmp_path / "[odd]"), "--out", str(tmp_path / "m")],
                          f"{tmp_path / '[odd]'}: no results.json there"),
                         (["merge", str(tmp_path / "bad"), "--out", str(tmp_path / "m")], "not an rtcmatrix results file"),
                         (["run", "--shard", "4/3"], "--shard '4/3': give K/N"),
                         (["run", "--workers", "0"], "--workers")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert needle in result.output.replace("\n", "") and "Traceback" not in result.output, result.output


def test_cli_merge_writes_every_report(tmp_path: Path):
    for n, ids in ((1, ["a"]), (2, ["b"])):
        (tmp_path / f"s{n}").mkdir()
        _run(ids, f"{n}/2").save(tmp_path / f"s{n}" / "results.json")
    result = runner.invoke(app, ["merge", str(tmp_path / "s2"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert [c.id for c in RunResult.load(tmp_path / "m" / "results.json").cells] == ["a", "b"]
    assert (tmp_path / "m" / "report.html").exists() and (tmp_path / "m" / "summary.md").exists()

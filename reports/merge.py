"""Joining runs into one: the shards of a matrix run on several machines, or the workers of one run.

Shards never share a cell, so a cell found twice means two runs that are not slices of one matrix:
that is refused, never silently resolved. JUnit files are joined beside the results, so CI's test
report lists every cell once whatever split the run.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reports.results import RunResult


class MergeError(ValueError):
    pass


def merge_runs(runs: list[RunResult], sources: list[str] | None = None) -> RunResult:
    """One run holding every cell of `runs`, in shard order (K of "K/N"), else in the order given."""
    if not runs:
        raise MergeError("nothing to merge: give at least one run's output folder")
    sources = sources or [str(n) for n in range(len(runs))]
    order = sorted(range(len(runs)), key=lambda n: (_shard_index(runs[n]), n))
    first = runs[order[0]]
    merged = first.model_copy(deep=True)
    merged.cells, merged.merged_from, merged.shard = [], [], None
    seen: dict[str, str] = {}
    for n in order:
        run, source = runs[n], sources[n]
        if run.schema_version != first.schema_version:
            raise MergeError(f"{source}: results schema {run.schema_version}, but {sources[order[0]]} has "
                             f"{first.schema_version}: merge runs made by the same rtcmatrix version")
        for cell in run.cells:
            if cell.id in seen:
                raise MergeError(f"cell {cell.id} is in both {seen[cell.id]} and {source}: shards of one matrix "
                                 f"never overlap (run each with --shard K/N of the same N)")
            seen[cell.id] = source
            merged.cells.append(cell)
        merged.started_at = min(merged.started_at, run.started_at)
        if run.finished_at is not None:
            merged.finished_at = max(merged.finished_at or run.finished_at, run.finished_at)
        merged.interrupted = merged.interrupted or run.interrupted
        merged.workers = max(merged.workers, run.workers)
        for name, facts in run.engines.items():
            if name not in merged.engines or not merged.engines[name].capabilities:
                merged.engines[name] = facts
        merged.claims = {**run.claims, **merged.claims}
        merged.merged_from.append(source + (f" (shard {run.shard})" if run.shard else ""))
    return merged


def _shard_index(run: RunResult) -> int:
    if run.shard and "/" in run.shard:
        return int(run.shard.split("/")[0])
    return 0


def merge_junit(paths: list[Path], out: Path) -> Path | None:
    """Join JUnit files into one suite named "rtcmatrix", with its counts summed."""
    cases, totals = [], {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    elapsed = 0.0
    for path in paths:
        if not path.exists():
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise MergeError(f"{path}: not a JUnit XML file ({e}); re-run that shard or leave it out") from None
        for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
            for key in totals:
                totals[key] += int(suite.get(key, 0))
            elapsed += float(suite.get("time", 0))
            cases += suite.findall("testcase")
    if not cases:
        return None
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name="rtcmatrix", time=f"{elapsed:.3f}",
                          **{k: str(v) for k, v in totals.items()})
    suite.extend(cases)
    ET.ElementTree(suites).write(out, encoding="utf-8", xml_declaration=True)
    return out


def write_all(run: RunResult, out: Path) -> None:
    """results.json, report.html and summary.md for a run."""
    from reports.html import write_html
    from reports.summary import write_markdown

    out.mkdir(parents=True, exist_ok=True)
    run.save(out / "results.json")
    write_html(run, out / "report.html")
    write_markdown(run, out / "summary.md")

"""The regression gate: what changed between a baseline run and a new one, and whether it may ship.

A regression is a cell that got worse (supported -> degraded, failed or not-supported; degraded ->
failed or not-supported), a cell that newly fails, a cell of the baseline the new run could not
verify (missing, error, interrupted), or a metric past its tolerance. Behaviour changes are shown;
they fail the gate only when the rules say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reports.results import SCHEMA_VERSION, CellResult, RunResult, Status

RANK = {Status.supported: 3, Status.degraded: 2, Status.not_supported: 1, Status.failed: 0}
UNVERIFIED = (Status.error, Status.interrupted, Status.skipped)


class CompareError(ValueError):
    pass


class Tolerance(BaseModel):
    """How far a metric may move the bad way. With several bounds, it must pass all of them to regress,
    so a 2 ms RTT turning 3 ms is not a +50 % regression."""

    model_config = ConfigDict(extra="forbid")
    worse: Literal["higher", "lower"]
    by: float | None = Field(default=None, ge=0, description="absolute change allowed")
    by_pct: float | None = Field(default=None, ge=0, description="relative change allowed, in percent")


DEFAULT_METRICS = {
    "mos": Tolerance(worse="lower", by=0.3),
    "connect_s": Tolerance(worse="higher", by=0.5, by_pct=30),
    "rtt_ms": Tolerance(worse="higher", by=20, by_pct=30),
    "jitter_ms": Tolerance(worse="higher", by=5, by_pct=50),
    "packet_loss_pct": Tolerance(worse="higher", by=2),
    "load_ms": Tolerance(worse="higher", by=300, by_pct=30),
    "cpu_call_pct": Tolerance(worse="higher", by=10, by_pct=20),
    "mem_call_pss_mb": Tolerance(worse="higher", by=50, by_pct=20),
}


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: dict[str, Tolerance | None] = {}  # merged over DEFAULT_METRICS; `null` turns one off
    behaviour_changes: Literal["show", "fail"] = "show"

    def tolerances(self) -> dict[str, Tolerance | None]:
        return {**DEFAULT_METRICS, **self.metrics}


class Change(BaseModel):
    cell: str
    kind: str  # status, new-failure, unverified, missing, metric, behaviour
    before: str | None = None
    after: str | None = None
    regression: bool


def load_rules(path: Path | None) -> Rules:
    if path is None:
        return Rules()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise CompareError(f"{path}: cannot read the rules file ({e})") from None
    metrics = raw.get("metrics") if isinstance(raw, dict) else None
    if isinstance(metrics, dict):
        unknown = [k for k in metrics if k not in _metric_names()]
        if unknown:
            raise CompareError(f"{path}: metrics: unknown metric {unknown[0]!r}; known: {', '.join(_metric_names())}")
    try:
        return Rules.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CompareError(f"{path}: {where}: {first['msg']}") from None


def _metric_names() -> list[str]:
    from reports.results import Metrics

    return [k for k, f in Metrics.model_fields.items() if f.annotation in (float | None, int | None)]


def load_run(path: Path) -> RunResult:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CompareError(f"{path}: cannot read results ({e}); give a results.json from rtcmatrix run") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if version != SCHEMA_VERSION:
        raise CompareError(f"{path}: results schema {version}, this rtcmatrix reads {SCHEMA_VERSION}: "
                           f"re-run the baseline with this version")
    try:
        return RunResult.model_validate(raw)
    except ValidationError as e:
        raise CompareError(f"{path}: not an rtcmatrix results file ({e.errors()[0]['msg']})") from None


def compare(base: RunResult, new: RunResult, rules: Rules | None = None) -> list[Change]:
    rules = rules or Rules()
    after = {c.id: c for c in new.cells}
    changes: list[Change] = []
    for b in base.cells:
        n = after.pop(b.id, None)
        if n is None:
            changes.append(Change(cell=b.id, kind="missing", before=b.status.value, regression=True))
            continue
        changes += _cell_changes(b, n, rules)
    for n in after.values():  # cells the baseline did not have
        if n.status in (Status.failed, Status.error):
            changes.append(Change(cell=n.id, kind="new-failure", after=n.status.value, regression=True))
    return changes


def _cell_changes(b: CellResult, n: CellResult, rules: Rules) -> list[Change]:
    out = []
    if n.status in UNVERIFIED and b.status not in UNVERIFIED:
        return [Change(cell=n.id, kind="unverified", before=b.status.value, after=f"{n.status.value}: {n.reason}",
                       regression=True)]
    if b.status != n.status:
        worse = b.status in RANK and n.status in RANK and RANK[n.status] < RANK[b.status]
        kind = "new-failure" if n.status == Status.failed else "status"
        out.append(Change(cell=n.id, kind=kind, before=b.status.value, after=n.status.value,
                          regression=worse or n.status == Status.failed))
    if (b.behaviour or None) != (n.behaviour or None):
        out.append(Change(cell=n.id, kind="behaviour", before=b.behaviour, after=n.behaviour,
                          regression=rules.behaviour_changes == "fail"))
    for name, tol in rules.tolerances().items():
        if tol is None:
            continue
        old, cur = getattr(b.metrics, name, None), getattr(n.metrics, name, None)
        if old is None or cur is None:
            continue
        delta = (cur - old) if tol.worse == "higher" else (old - cur)
        past = delta > 0 and (tol.by is None or delta > tol.by) and \
            (tol.by_pct is None or (old != 0 and 100 * delta / abs(old) > tol.by_pct))
        if past and (tol.by is not None or tol.by_pct is not None):
            out.append(Change(cell=n.id, kind="metric", before=f"{name} {old:g}", after=f"{name} {cur:g}",
                              regression=True))
    return out

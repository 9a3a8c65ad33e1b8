"""What the lab does during a cell: its profile applied and measured, or its schedule run
(and a replay's fidelity probed beside the call)."""

from __future__ import annotations

import contextlib

import threading

from harness.cell import CellRun
from harness.matrix import Cell
from impairments import linkcheck, replay
from impairments.lab import Lab
from impairments.schedule import Schedule, ScheduleRunner
from reports.results import LinkRecord


class CellConditions:
    """Applies a cell's profile to the lab, and measures each profile's link once per run."""

    def __init__(self, lab: Lab, probes: int):
        self.lab = lab
        self.probes = probes
        self.checked: dict[str, linkcheck.LinkCheck] = {}

    def enter(self, cell: Cell, phase=None) -> tuple[LinkRecord, "ScheduleInCell | None"]:
        """Apply the cell's conditions; a schedule is checked on its first step, then started."""
        schedule = cell.profile if isinstance(cell.profile, Schedule) else None
        fixed = schedule.first if schedule else cell.profile
        if self.lab.applied is None or self.lab.applied.profile != fixed:
            self.lab.apply(fixed)
        applied = self.lab.applied
        measured = None
        if self.probes:
            if cell.profile.name not in self.checked:
                with phase("link-check") if phase else contextlib.nullcontext():
                    self.checked[cell.profile.name] = linkcheck.check(self.lab, probes=self.probes)
            measured = self.checked[cell.profile.name]
        record = LinkRecord(
            backend=self.lab.backend,
            configured=fixed.model_dump(mode="json"),
            netem=applied.netem,
            measured=measured.model_dump(mode="json") if measured else None,
            ok=measured.ok if measured else None,
            deviations=[d.model_dump() for d in measured.deviations] if measured else [],
        )
        if not schedule:
            return record, None
        record.schedule = {"name": schedule.name, "summary": schedule.summary(), "loop": schedule.loop,
                           "steps": [s.model_dump(mode="json") for s in schedule.steps]}
        return record, ScheduleInCell(self.lab, schedule)


class ScheduleInCell:
    """A schedule running during one cell; a replay is also probed lightly, to measure its fidelity."""

    REPLAY_PPS = 20  # ~21 kbit/s per direction beside the call

    def __init__(self, lab: Lab, schedule: Schedule):
        self.schedule = schedule
        self.stop_probe = threading.Event()
        self.probe: dict = {}
        self.prober = None
        if schedule.original:
            self.prober = threading.Thread(target=lambda: self.probe.update(linkcheck.timeline(
                lab, schedule.total_s, pps=self.REPLAY_PPS, stop=self.stop_probe)), daemon=True)
            self.prober.start()
        self.runner = ScheduleRunner(lab, schedule).start()

    def finish(self, run: CellRun) -> None:
        self.runner.stop()
        self.stop_probe.set()
        assert run.link and run.link.schedule is not None
        run.link.schedule.update(started_at=self.runner.started_at, max_drift_ms=self.runner.max_drift_ms,
                                 error=self.runner.error, applied=[r.model_dump() for r in self.runner.records])
        if self.prober:
            self.prober.join(timeout=30)
            if self.probe and self.runner.started_at:
                bins = {d: self.probe[d].per_second(since=self.runner.started_at) for d in ("uplink", "downlink")}
                fidelity = replay.compare([replay.Sample(**o) for o in self.schedule.original], bins)
                run.link.schedule["fidelity"] = fidelity.model_dump()

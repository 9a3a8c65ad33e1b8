"""Conditions that change over time: a list of steps, each a duration and a profile.

Steps run on absolute deadlines from one start time, so lateness never accumulates; every
step records when it was due and when netem really had it, and the difference is the drift.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from impairments.profile import Link, Profile

if TYPE_CHECKING:
    from impairments.lab import Lab


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    duration_s: float = Field(gt=0, le=86_400)
    profile: Profile

    @field_validator("profile", mode="before")
    @classmethod
    def _named(cls, value):
        if isinstance(value, str):
            from impairments.presets import fixed_presets

            found = fixed_presets().get(value)
            if found is None:
                raise ValueError(f"{value!r} is not a fixed preset profile (schedules cannot nest)")
            return found
        if isinstance(value, dict) and "name" not in value:
            return {"name": "step", **value}
        return value


class Schedule(BaseModel):
    """`steps:` in a profile file makes it a schedule; `ramp:` writes the steps for you."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    source: str = ""
    loop: bool = False
    steps: list[Step] = Field(min_length=1, max_length=100_000)
    original: list[dict] | None = Field(default=None, description="a replay's recorded seconds, for fidelity")

    @model_validator(mode="before")
    @classmethod
    def _ramp(cls, data):
        if isinstance(data, dict) and "ramp" in data:
            data = dict(data)
            data["steps"] = ramp_steps(**data.pop("ramp"))
        return data

    @property
    def first(self) -> Profile:
        return self.steps[0].profile

    @property
    def total_s(self) -> float:
        return sum(s.duration_s for s in self.steps)

    def summary(self) -> str:
        return f"{len(self.steps)} steps over {self.total_s:g} s{' (looping)' if self.loop else ''}: " + \
            " -> ".join(f"{s.profile.name} {s.duration_s:g}s" for s in self.steps[:6]) + \
            (" ..." if len(self.steps) > 6 else "")


def ramp_steps(start: dict, end: dict, steps: int, step_s: float) -> list[dict]:
    """Linear ramp between two link settings (applied to both directions), in `steps` steps."""
    if steps < 2:
        raise ValueError("ramp: steps must be at least 2")
    a, b = Link(**start), Link(**end)
    numeric = [k for k, v in Link.model_fields.items() if v.annotation in (float, int)]
    out = []
    for i in range(steps):
        f = i / (steps - 1)
        fields = {}
        for k in numeric:
            va, vb = getattr(a, k), getattr(b, k)
            if va or vb:
                v = va + (vb - va) * f
                fields[k] = round(v) if isinstance(va, int) and isinstance(vb, int) else round(v, 3)
        for k in ("rate_kbit",):
            if a.rate_kbit and b.rate_kbit:
                fields[k] = round(a.rate_kbit + (b.rate_kbit - a.rate_kbit) * f, 3)
        out.append({"duration_s": step_s, "profile": {"name": f"ramp-{i + 1}", "both": fields}})
    return out


class StepRecord(BaseModel):
    index: int
    profile: str
    due_s: float  # from the schedule's start
    applied_s: float  # when netem had it, from the same start
    drift_ms: float
    took_ms: float


class ScheduleRunner:
    """Applies a schedule to a lab on a background thread until it ends or is stopped."""

    def __init__(self, lab: "Lab", schedule: Schedule):
        self.lab = lab
        self.schedule = schedule
        self.records: list[StepRecord] = []
        self.started_at: float | None = None  # wall clock, for lining up with other evidence
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{schedule.name}", daemon=True)

    def start(self) -> "ScheduleRunner":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            # The schedule's clock starts when its first step is in netem: a first apply can be slow
            # (qdiscs are created, not changed), and that must not push every later step off time.
            steps = self.schedule.steps
            before = time.monotonic()
            self.lab.apply(steps[0].profile)
            cold = time.monotonic() - before
            # Two same-value re-applies (changes in place, nothing queued is lost) seed the lead
            # with warm timings before any real step depends on it.
            warm: list[float] = []
            for _ in range(2):
                before = time.monotonic()
                self.lab.apply(steps[0].profile)
                warm.append(1000 * (time.monotonic() - before))
            t0 = time.monotonic()
            self.started_at = time.time()
            self.records.append(StepRecord(index=0, profile=steps[0].profile.name, due_s=0.0, applied_s=0.0,
                                           drift_ms=0.0, took_ms=1000 * cold))
            index, due, first = 1, steps[0].duration_s, True
            while not self._stop.is_set():
                for step in steps[1:] if first else steps:
                    # Start early by what applying has been taking, so netem has the step on time.
                    lead = statistics.median((warm + [r.took_ms for r in self.records[1:]])[-5:]) / 1000
                    if self._stop.wait(max(0.0, t0 + due - lead - time.monotonic())):
                        return
                    before = time.monotonic()
                    self.lab.apply(step.profile)
                    after = time.monotonic()
                    self.records.append(StepRecord(
                        index=index, profile=step.profile.name, due_s=due, applied_s=after - t0,
                        drift_ms=1000 * (after - t0 - due), took_ms=1000 * (after - before)))
                    index += 1
                    due += step.duration_s
                first = False
                if not self.schedule.loop:
                    self._stop.wait(max(0.0, t0 + due - time.monotonic()))
                    return
        except Exception as err:  # kept for the results; the cell says the schedule broke
            self.error = f"{type(err).__name__}: {err}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def max_drift_ms(self) -> float | None:
        return max((abs(r.drift_ms) for r in self.records), default=None)


def run_probed(lab: "Lab", schedule: Schedule, pps: int = 200, head_s: float = 0.3,
               tail_s: float = 0.3) -> tuple[ScheduleRunner, dict]:
    """One pass of the schedule (a looping one runs once) while the link is probed both ways,
    from `head_s` before it starts to `tail_s` after it ends; returns the runner and the timelines."""
    from impairments import linkcheck

    probe: dict = {}
    prober = threading.Thread(target=lambda: probe.update(
        linkcheck.timeline(lab, head_s + schedule.total_s + tail_s, pps=pps)))
    prober.start()
    time.sleep(head_s)
    runner = ScheduleRunner(lab, schedule.model_copy(update={"loop": False})).start()
    runner.join()
    prober.join()
    return runner, probe

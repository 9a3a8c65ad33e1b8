"""What `rtcmatrix run` shows while it runs: the cell in progress, its phase, and an ETA.

On a terminal, a rich progress bar; in CI (no TTY), one plain line per finished cell, which a log
keeps readable. pytest's own per-test letters are left out: this is the run's one progress."""

from __future__ import annotations

import re
import time

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.text import Text

from harness import cell as cellmod

_NODE = re.compile(r"test_([\w-]+)\.py::\w+\[(.+)\]$")


def label(nodeid: str) -> str:
    """`harness/scenarios/test_dtmf.py::test_dtmf[chromium-3g]` -> `chromium-3g · dtmf`."""
    m = _NODE.search(nodeid)
    return f"{m.group(2)} · {m.group(1).replace('_', '-')}" if m else nodeid


class Progress:
    def __init__(self, total: int, console: Console, live: bool):
        self.total, self.console, self.live = total, console, live
        self.done = 0
        self.started = time.monotonic()
        self.running: dict[str, str] = {}  # nodeid -> its phase (serial runs see phases)
        self.outcomes: dict[str, str] = {}
        self.bar: Bar | None = None
        self.task = None

    # pytest hooks (this object is a plugin of the CLI's pytest session; under xdist, the controller's)
    def pytest_sessionstart(self, session) -> None:
        if self.live:
            self.bar = Bar(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
            self.task = self.bar.add_task("starting", total=self.total)
            self.bar.start()
        cellmod.PHASE_LISTENERS.append(self._phase)

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.running[nodeid] = "starting"
        self._show()

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report, config):
        if report.when == "call":
            from harness.results_hooks import pytest_report_teststatus as ours

            category = (ours(report, config) or (report.outcome,))[0]
            return category, "", category.upper()
        if report.failed:
            return "error", "", "ERROR"
        if report.skipped:
            return "skipped", "", "SKIPPED"
        return "", "", ""

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.failed or report.skipped:
            status = dict(report.user_properties).get("rtcm_status") or (
                "error" if report.failed and report.when != "call" else report.outcome)
            self.outcomes.setdefault(report.nodeid, status)

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        self.running.pop(nodeid, None)
        self.done += 1
        status = self.outcomes.pop(nodeid, "done")
        took = time.monotonic() - self.started
        eta = took / self.done * (self.total - self.done)
        line = Text(f"[{self.done}/{self.total}] {label(nodeid)}: {status}"
                    + (f" · ETA {eta / 60:.1f} min" if self.done < self.total else ""))
        if self.bar:
            self.bar.console.print(line)
            self.bar.update(self.task, completed=self.done)
        else:
            self.console.print(line, highlight=False)
        self._show()

    def pytest_sessionfinish(self, session) -> None:
        if self._phase in cellmod.PHASE_LISTENERS:
            cellmod.PHASE_LISTENERS.remove(self._phase)
        if self.bar:
            self.bar.stop()

    def _phase(self, name: str) -> None:
        for nodeid in self.running:
            self.running[nodeid] = name
        self._show()

    def _show(self) -> None:
        if self.bar:
            now = "; ".join(f"{label(n)} ({p})" for n, p in self.running.items()) or "between cells"
            self.bar.update(self.task, description=now)

"""rtcmatrix run's progress: a line per finished cell with its status (CI), a live bar on a terminal."""

import io
from types import SimpleNamespace

from rich.console import Console

from harness import cell as cellmod
from harness.progress import Progress, label

NODE = "harness/scenarios/test_dtmf.py::test_dtmf[chromium-3g]"


def _report(when, outcome, status=None):
    return SimpleNamespace(when=when, outcome=outcome, nodeid=NODE, failed=outcome == "failed",
                           skipped=outcome == "skipped", passed=outcome == "passed",
                           user_properties=[("rtcm_status", status)] if status else [])


def _drive(progress: Progress) -> None:
    progress.pytest_sessionstart(None)
    progress.pytest_runtest_logstart(NODE, None)
    cellmod.PHASE_LISTENERS[-1]("login")
    assert progress.running[NODE] == "login"
    progress.pytest_runtest_logreport(_report("setup", "passed"))
    progress.pytest_runtest_logreport(_report("call", "passed", "degraded"))
    progress.pytest_runtest_logfinish(NODE, None)
    progress.pytest_sessionfinish(None)
    assert progress._phase not in cellmod.PHASE_LISTENERS


def test_a_line_per_cell_in_ci():
    out = io.StringIO()
    _drive(Progress(2, Console(file=out, width=200, markup=False), live=False))
    assert out.getvalue().startswith("[1/2] chromium-3g · dtmf: degraded · ETA "), out.getvalue()


def test_a_live_bar_on_a_terminal():
    out = io.StringIO()
    _drive(Progress(1, Console(file=out, width=200, force_terminal=True, markup=False), live=True))
    assert "[1/1] chromium-3g · dtmf: degraded" in out.getvalue() and "1/1" in out.getvalue()


def test_labels_and_letters():
    assert label(NODE) == "chromium-3g · dtmf" and label("x::y") == "x::y"
    p = Progress(1, Console(file=io.StringIO()), live=False)
    config = SimpleNamespace()
    assert p.pytest_report_teststatus(_report("call", "passed", "not-supported"), config) == \
        ("not-supported", "", "NOT-SUPPORTED")
    assert p.pytest_report_teststatus(_report("setup", "failed"), config) == ("error", "", "ERROR")
    assert p.pytest_report_teststatus(_report("teardown", "passed"), config) == ("", "", "")

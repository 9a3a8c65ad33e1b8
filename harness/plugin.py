"""The rtcmatrix pytest plugin: matrix options, lab/far-end/browser fixtures, and the results.

It feels like pytest-playwright: a small option group, session-scoped fixtures, and
`browser_launch_args` / `browser_context_args` fixtures a user overrides in a conftest.
Each scenario test takes the `cell` fixture and is run once per browser x profile in the matrix.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from harness.browsers import ENGINES, BrowserMissing, LaunchContext, engine
from harness.cell import CellRun
from harness.farend import audio
from harness.farend.handle import FarEnd
from harness.matrix import DEFAULT_MATRIX, Cell, Matrix, MatrixError, load
from harness.scenarios import SCENARIOS
from harness.softphone import Softphone
from impairments import linkcheck, replay
from impairments.lab import Lab
from impairments.schedule import Schedule, ScheduleRunner
from reports.results import CellResult, LinkRecord, Metrics, RunResult, Verdict

MATRIX = pytest.StashKey[Matrix]()
RUN = pytest.StashKey[RunResult]()
OUT = pytest.StashKey[Path]()
CELL_RUN = pytest.StashKey[CellRun]()
REPORTS = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtcmatrix", "rtcmatrix browser/network matrix")
    group.addoption("--matrix", default=None, help=f"matrix YAML (default: {DEFAULT_MATRIX.name})")
    group.addoption("--rtcm-browser", action="append", default=[], help="run only this browser (repeatable)")
    group.addoption("--rtcm-profile", action="append", default=[],
                    help="run only this profile: a preset name or a YAML file (repeatable)")
    group.addoption("--rtcm-scenario", action="append", default=[], help="run only this scenario (repeatable)")
    group.addoption("--rtcm-out", default=None, help="write results.json and report.html here")
    group.addoption("--rtcm-backend", default=None, choices=["auto", "host", "uml"],
                    help="where netem runs (default: the matrix's option, else auto)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(name): a feature probe run once per matrix cell")
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real lab, real browser)")
    config.addinivalue_line("markers", "lab: needs root and the lab network (namespaces, netem)")
    config.addinivalue_line("markers", "browser(name): needs this browser engine installed")
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _terminate)


_MAIN_PID = os.getpid()


def _terminate(signum, frame):
    """SIGTERM winds the run down like Ctrl-C, so the lab is torn down.

    Forked helpers (pyroute2 forks for namespace work) inherit this handler: they must die
    as the signal intends, never unwind through the harness."""
    if os.getpid() != _MAIN_PID:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt(f"signal {signum}")


def _matrix(config: pytest.Config) -> Matrix:
    if MATRIX not in config.stash:
        opt = config.getoption
        path = Path(opt("--matrix")) if opt("--matrix") else DEFAULT_MATRIX
        try:
            config.stash[MATRIX] = load(path, opt("--rtcm-browser"), opt("--rtcm-profile"),
                                        opt("--rtcm-scenario"), list(SCENARIOS), list(ENGINES))
        except MatrixError as err:
            raise pytest.UsageError(str(err)) from None
    return config.stash[MATRIX]


def _scenario_of(node) -> str | None:
    marker = node.get_closest_marker("scenario")
    return marker.args[0] if marker else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    name = _scenario_of(metafunc.definition)
    if name not in SCENARIOS:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: add @pytest.mark.scenario(NAME) with a name "
                                f"from harness.scenarios.SCENARIOS ({', '.join(SCENARIOS)})")
    matrix = _matrix(metafunc.config)
    cells = [c for c in matrix.cells() if c.scenario == name]
    metafunc.parametrize("cell", [pytest.param(c, id=f"{c.browser}-{c.profile.name}") for c in cells],
                         indirect=True, scope="function")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if not any("cell" in getattr(i, "fixturenames", ()) for i in items):
        return
    order = {c.id: n for n, c in enumerate(_matrix(config).cells())}

    def key(item):
        spec = getattr(item, "callspec", None)
        cell = spec.params.get("cell") if spec else None
        return order.get(cell.id, -1) if isinstance(cell, Cell) else -1

    items.sort(key=key)


# --- session fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def rtcm_matrix(pytestconfig: pytest.Config) -> Matrix:
    return _matrix(pytestconfig)


@pytest.fixture(scope="session")
def rtcm_out(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where results and evidence go: --rtcm-out, else a pytest temporary folder."""
    if OUT not in pytestconfig.stash:
        opt = pytestconfig.getoption("--rtcm-out")
        out = Path(opt) if opt else tmp_path_factory.mktemp("rtcmatrix")
        out.mkdir(parents=True, exist_ok=True)
        pytestconfig.stash[OUT] = out
    return pytestconfig.stash[OUT]


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config, rtcm_matrix: Matrix, rtcm_out: Path):
    backend = pytestconfig.getoption("--rtcm-backend") or rtcm_matrix.options.backend
    the_lab = Lab(backend=backend, log_dir=rtcm_out / "lab")
    # Also on unconfigure: a Ctrl-C can skip session teardown, never this.
    pytestconfig.add_cleanup(the_lab.close)
    with the_lab:
        run = pytestconfig.stash.get(RUN, None)
        if run is not None:
            run.lab = the_lab.describe()
        yield the_lab


@pytest.fixture(scope="session")
def far_end(lab: Lab, rtcm_out: Path, pytestconfig: pytest.Config):
    fe = FarEnd(lab, rtcm_out / "farend")
    pytestconfig.add_cleanup(fe.stop)
    fe.start()
    yield fe
    fe.stop()


@pytest.fixture(scope="session")
def browser_launch_args() -> dict:
    """Extra `launch()` arguments for every engine; override in your conftest."""
    return {}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    """Extra `new_context()` arguments; override in your conftest."""
    return {}


class BrowserPool:
    """One running browser per engine, launched on first use and relaunched if it dies."""

    def __init__(self, lab: Lab, far_end: FarEnd, workdir: Path, launch_overrides: dict):
        self.lab, self.far_end, self.workdir = lab, far_end, workdir
        self.launch_overrides = launch_overrides
        self.playwright = sync_playwright().start()
        self.running: dict[str, Browser] = {}
        self.mic_wav = audio.tone(workdir / "mic-tone.wav")

    def get(self, name: str) -> Browser:
        browser = self.running.get(name)
        if browser is None or not browser.is_connected():
            ctx = LaunchContext(self.lab.client_ns, self.far_end.url, self.workdir, self.mic_wav)
            browser = engine(name).launch(self.playwright, ctx, self.launch_overrides)
            self.running[name] = browser
        return browser

    def close(self) -> None:
        for browser in self.running.values():
            with contextlib.suppress(Exception):
                browser.close()
        self.running.clear()
        with contextlib.suppress(Exception):
            self.playwright.stop()


@pytest.fixture(scope="session")
def browsers(lab: Lab, far_end: FarEnd, rtcm_out: Path, browser_launch_args: dict):
    workdir = rtcm_out / "browsers"
    workdir.mkdir(exist_ok=True)
    pool = BrowserPool(lab, far_end, workdir, browser_launch_args)
    yield pool
    pool.close()


class _Conditions:
    """Applies a cell's profile to the lab, and measures each profile's link once per run."""

    def __init__(self, lab: Lab, probes: int):
        self.lab = lab
        self.probes = probes
        self.checked: dict[str, linkcheck.LinkCheck] = {}

    def enter(self, cell: Cell) -> tuple[LinkRecord, "_ScheduleInCell | None"]:
        """Apply the cell's conditions; a schedule is checked on its first step, then started."""
        schedule = cell.profile if isinstance(cell.profile, Schedule) else None
        fixed = schedule.first if schedule else cell.profile
        if self.lab.applied is None or self.lab.applied.profile != fixed:
            self.lab.apply(fixed)
        applied = self.lab.applied
        measured = None
        if self.probes:
            if cell.profile.name not in self.checked:
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
        return record, _ScheduleInCell(self.lab, schedule)


class _ScheduleInCell:
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


@pytest.fixture(scope="session")
def _conditions(lab: Lab, rtcm_matrix: Matrix) -> _Conditions:
    return _Conditions(lab, rtcm_matrix.options.link_check_probes)


# --- per-cell fixtures --------------------------------------------------------------------------

@pytest.fixture
def cell(request: pytest.FixtureRequest, rtcm_matrix: Matrix, rtcm_out: Path, _conditions: _Conditions) -> CellRun:
    the_cell: Cell = request.param
    evidence = rtcm_out / "cells" / the_cell.id
    run = CellRun(the_cell, rtcm_matrix.options, evidence, link=None)
    request.node.stash[CELL_RUN] = run
    run.link, scheduled = _conditions.enter(the_cell)
    if scheduled:
        request.addfinalizer(lambda: scheduled.finish(run))
    return run


@pytest.fixture
def softphone(cell: CellRun, browsers: BrowserPool, far_end: FarEnd, browser_context_args: dict):
    try:
        browser = browsers.get(cell.cell.browser)
    except BrowserMissing as err:
        pytest.fail(str(err), pytrace=False)
    cell.browser_version = browser.version
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    phone = Softphone(page, far_end.url, f"ws://{far_end.lab.server_ip}:{8080}/ws")
    try:
        yield phone
    finally:
        with contextlib.suppress(Exception):
            cell.keep("events.json", phone.events())
        cell.keep("stats.json", phone.series)
        (cell.evidence_dir / "console.log").write_text("\n".join(phone.console))
        cell.keep_file("console", cell.evidence_dir / "console.log")
        with contextlib.suppress(Exception):
            context.close()


# --- results ------------------------------------------------------------------------------------

def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[RUN] = RunResult(
        rtcmatrix_version=_version(),
        matrix=str(session.config.getoption("--matrix") or DEFAULT_MATRIX),
        started_at=time.time(),
        host={"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    reports = item.stash.setdefault(REPORTS, {})
    reports[report.when] = report
    if report.when == "teardown" and "cell" in getattr(item, "fixturenames", ()):
        _finish_cell(item, reports)


def _finish_cell(item: pytest.Item, reports: dict) -> None:
    run = item.config.stash.get(RUN, None)
    spec = getattr(item, "callspec", None)
    cell: Cell | None = spec.params.get("cell") if spec else None
    if run is None or cell is None:
        return
    rec: CellRun | None = item.stash.get(CELL_RUN, None)
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(RUN, None)
    out = session.config.stash.get(OUT, None)
    if run is None or out is None or not run.cells:
        return
    run.finished_at = time.time()
    run.interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    from reports.html import write_html
    from reports.summary import write_markdown

    run.save(out / "results.json")
    write_html(run, out / "report.html")
    write_markdown(run, out / "summary.md")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtcmatrix")
    except PackageNotFoundError:
        return "0+source"

"""The rtcmatrix pytest plugin: matrix options, lab/far-end/browser fixtures, and the results.

It feels like pytest-playwright: a small option group, session-scoped fixtures, and
`browser_launch_args` / `browser_context_args` fixtures a user overrides in a conftest.
Each scenario test takes the `cell` fixture and is run once per browser x profile in the matrix.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from harness.cell import CellRun
from harness.engines import ENGINES, BrowserMissing
from harness.conditions import CellConditions
from harness.farend.handle import FarEnd
from harness.matrix import DEFAULT_MATRIX, Cell, Matrix, MatrixError, load
from harness.pool import BrowserPool
from harness.scenarios import SCENARIOS
from harness.metrics.process import ProcessSampler
from harness.softphone import Softphone
from harness import interrupts, workers
from impairments.lab import Lab
from reports.results import EngineFacts, RunResult

MATRIX = pytest.StashKey[Matrix]()
RUN = pytest.StashKey[RunResult]()
OUT = pytest.StashKey[Path]()
CELL_RUN = pytest.StashKey[CellRun]()
REPORTS = pytest.StashKey[dict]()
CURRENT = pytest.StashKey[pytest.Item]()
STARTUP = pytest.StashKey[float]()  # session fixtures' set-up time not yet charged to a cell


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtcmatrix", "rtcmatrix browser/network matrix")
    group.addoption("--matrix", default=None, help=f"matrix YAML (default: {DEFAULT_MATRIX.name})")
    group.addoption("--rtcm-browser", action="append", default=[], help="run only this browser (repeatable)")
    group.addoption("--rtcm-sdk", action="append", default=[], help="run only this SDK (repeatable)")
    group.addoption("--rtcm-profile", action="append", default=[],
                    help="run only this profile: a preset name or a YAML file (repeatable)")
    group.addoption("--rtcm-scenario", action="append", default=[], help="run only this scenario (repeatable)")
    group.addoption("--rtcm-out", default=None, help="write results.json and report.html here")
    group.addoption("--rtcm-backend", default=None, choices=["auto", "host", "uml"],
                    help="where netem runs (default: the matrix's option, else auto)")
    group.addoption("--rtcm-browser-path", action="append", default=[], metavar="NAME=PATH",
                    help="use this binary for a browser column or engine (repeatable)")
    group.addoption("--rtcm-browser-channel", action="append", default=[], metavar="NAME=CHANNEL",
                    help="use this Playwright channel for a browser column or engine (repeatable)")
    group.addoption("--rtcm-shard", default=None, metavar="K/N",
                    help="run only the K-th of N slices of the matrix (for N CI machines; join with rtcmatrix merge)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario(name): a feature probe run once per matrix cell")
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real lab, real browser)")
    config.addinivalue_line("markers", "lab: needs root and the lab network (namespaces, netem)")
    config.addinivalue_line("markers", "browser(name): needs this browser engine installed")
    config.addinivalue_line("markers", "lifecycle: the scenario sends its page to the background (a page that can be hidden and frozen)")
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, _terminate)
    interrupts.install(ignore_later=bool(workers.worker_id(config)))
    from harness import results_hooks  # it reads this module's keys

    if not config.pluginmanager.is_registered(results_hooks):
        config.pluginmanager.register(results_hooks, "rtcmatrix-results")
    _FULL_TRACE[0] = bool(config.getoption("fulltrace", False))


_MAIN_PID = os.getpid()
_FULL_TRACE = [False]


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo) -> None:
    """An interrupt is reported in one traceback entry, where it landed: pytest formats the whole
    stack (parsing each module on it) just to print one line without --full-trace, and Playwright's
    generated API alone is 15,000 lines: seconds of a Ctrl-C's 5, in every worker."""
    interrupts.handled()
    tb = excinfo.traceback
    if _FULL_TRACE[0] or len(tb) < 2:
        return
    visible = [e for e in tb if not e.ishidden(excinfo)]  # Playwright hides its own sync frames
    small = [e for e in visible if _size(e.path) < 100_000]
    keep = (small or visible or list(tb))[-1:]
    excinfo.traceback = type(tb)(keep)


def _size(path) -> int:
    try:
        return os.path.getsize(path)
    except (OSError, TypeError):
        return 0


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
                                        opt("--rtcm-scenario"), list(SCENARIOS), list(ENGINES),
                                        executables=pairs("--rtcm-browser-path", opt("--rtcm-browser-path")),
                                        channels=pairs("--rtcm-browser-channel", opt("--rtcm-browser-channel")),
                                        sdks=opt("--rtcm-sdk"))
        except MatrixError as err:
            raise pytest.UsageError(str(err)) from None
    return config.stash[MATRIX]


def _cells(config: pytest.Config) -> list[Cell]:
    """The cells this session runs: the matrix's, or its --rtcm-shard slice."""
    try:
        shard = workers.parse_shard(config.getoption("--rtcm-shard"))
    except MatrixError as err:
        raise pytest.UsageError(str(err)) from None
    return workers.shard_cells(_matrix(config).cells(), shard)


def pairs(flag: str, values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not value:
            raise MatrixError(f"{flag} {v!r}: give NAME=VALUE, e.g. {flag} firefox=/opt/firefox/firefox")
        out[name] = value
    return out


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
    cells = [c for c in _cells(metafunc.config) if c.scenario == name]
    metafunc.parametrize("cell", [pytest.param(c, id=c.id.removesuffix(f"-{c.scenario}")) for c in cells],
                         indirect=True, scope="function")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    if not any("cell" in getattr(i, "fixturenames", ()) for i in items):
        return
    matrix = _matrix(config)
    order = {c.id: n for n, c in enumerate(matrix.cells())}
    collected = {_scenario_of(i) for i in items if "cell" in getattr(i, "fixturenames", ())}
    missing = [s for s in matrix.scenarios if s not in collected]
    if missing:
        raise pytest.UsageError(f"{matrix.path}: scenarios: {', '.join(missing)} has no probe collected "
                                f"(a test marked @pytest.mark.scenario(NAME) under harness/scenarios)")
    # A scenario the matrix does not run is parametrized with nothing: drop it, do not report it skipped.
    empty = [i for i in items if "cell" in getattr(i, "fixturenames", ())
             and not isinstance(getattr(getattr(i, "callspec", None), "params", {}).get("cell"), Cell)]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]

    def key(item):
        spec = getattr(item, "callspec", None)
        cell = spec.params.get("cell") if spec else None
        return order.get(cell.id, -1) if isinstance(cell, Cell) else -1

    items.sort(key=key)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """`--dist loadgroup`: one worker runs a group's cells (one profile, SDK and browser) back to back."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return workers.scheduler(config, _cells(config), log)


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
def rtcm_session_dir(pytestconfig: pytest.Config, rtcm_out: Path) -> Path:
    """Where this session's lab, far end and browsers keep their logs: a worker's own folder in a parallel run."""
    wid = workers.worker_id(pytestconfig)
    return workers.worker_dir(rtcm_out, wid) if wid else rtcm_out


@pytest.fixture(scope="session")
def lab(pytestconfig: pytest.Config, rtcm_matrix: Matrix, rtcm_session_dir: Path):
    backend = pytestconfig.getoption("--rtcm-backend") or rtcm_matrix.options.backend
    the_lab = Lab(backend=backend, log_dir=rtcm_session_dir / "lab")
    # Also on unconfigure: a Ctrl-C can skip session teardown, never this.
    pytestconfig.add_cleanup(the_lab.close)
    with the_lab:
        run = pytestconfig.stash.get(RUN, None)
        if run is not None:
            run.lab = the_lab.describe()
        yield the_lab


@pytest.fixture(scope="session")
def reference_far_end(lab: Lab, rtcm_session_dir: Path, rtcm_matrix: Matrix, pytestconfig: pytest.Config):
    """rtcmatrix's own far end: the reference SDK's backend, and the web server of the test page for every SDK."""
    adapters = {name: [*sdk.scripts, sdk.adapter] for name, sdk in rtcm_matrix.sdks.items()}
    fe = FarEnd(lab, rtcm_session_dir / "farend", adapters=adapters, legacy_password=False)  # per-run credentials only
    pytestconfig.add_cleanup(fe.stop)
    fe.start()
    yield fe
    fe.stop()


@pytest.fixture(scope="session")
def far_end(reference_far_end: FarEnd) -> FarEnd:
    """The reference far end; a scenario's `far_end` is instead the backend of its cell's SDK."""
    return reference_far_end


@pytest.fixture(scope="session")
def sip_backends(lab: Lab, rtcm_session_dir: Path, reference_far_end: FarEnd, pytestconfig: pytest.Config):
    """SIP backends, one per SIP domain and set of workarounds, started when a cell first needs one."""
    from harness.backends.pool import SipBackends

    pool = SipBackends(lab, rtcm_session_dir / "sip", reference_far_end)
    pytestconfig.add_cleanup(pool.close)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def browser_launch_args() -> dict:
    """Extra `launch()` arguments for every engine; override in your conftest."""
    return {}


@pytest.fixture(scope="session")
def browser_context_args() -> dict:
    """Extra `new_context()` arguments; override in your conftest."""
    return {}


@pytest.fixture(scope="session")
def connect_options() -> dict:
    """A remote engine instead of a launched one: {"chromium": {"ws_endpoint": ...}}; override in your conftest."""
    return {}


@pytest.fixture(scope="session")
def browsers(lab: Lab, reference_far_end: FarEnd, rtcm_session_dir: Path, rtcm_matrix: Matrix,
             browser_launch_args: dict, connect_options: dict, pytestconfig: pytest.Config):
    workdir = rtcm_session_dir / "browsers"
    workdir.mkdir(exist_ok=True)
    pool = BrowserPool(lab, reference_far_end, workdir, rtcm_matrix.specs, browser_launch_args, connect_options)
    pytestconfig.add_cleanup(pool.close)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def _conditions(lab: Lab, rtcm_matrix: Matrix) -> CellConditions:
    return CellConditions(lab, rtcm_matrix.options.link_check_probes)


# --- per-cell fixtures --------------------------------------------------------------------------

@pytest.fixture
def cell(request: pytest.FixtureRequest, rtcm_matrix: Matrix, rtcm_out: Path, _conditions: CellConditions) -> CellRun:
    the_cell: Cell = request.param
    evidence = rtcm_out / "cells" / the_cell.id
    spec = rtcm_matrix.specs.get(the_cell.browser)
    options, sdk = rtcm_matrix.options, rtcm_matrix.sdks.get(the_cell.sdk)
    if sdk is not None and sdk.page:  # the SDK entry's page options win over the matrix's
        options = options.model_copy(update={"page": {**options.page, **sdk.page}})
    run = CellRun(the_cell, options, evidence, link=None, engine=spec.engine if spec else None)
    request.node.stash[CELL_RUN] = run
    with run.phase("conditions"):
        run.link, scheduled = _conditions.enter(the_cell, phase=run.phase)
    if scheduled:
        request.addfinalizer(lambda: scheduled.finish(run))
    return run


@pytest.fixture
def softphone(request: pytest.FixtureRequest, cell: CellRun, browsers: BrowserPool, far_end: FarEnd,
              browser_context_args: dict):
    """The cell's page in a fresh context; a test marked `lifecycle` gets one that can go to the background."""
    name = cell.cell.browser
    try:
        with cell.phase("browser"):
            browser = browsers.get(name)
        browser.trace = browser.driver == "playwright-cdp"  # a trace is kept for failed cells
        with cell.phase("context"):
            page = browser.new_page(browser_context_args,
                                    lifecycle=request.node.get_closest_marker("lifecycle") is not None)
    except BrowserMissing as err:
        pytest.fail(str(err), pytrace=False)
    cell.browser_version = browser.version
    phone = Softphone(page, far_end, phase=cell.phase, r0=cell.options.r0)
    if browser.process_roots:
        phone.processes = ProcessSampler(list(browser.process_roots)).start()
    try:
        yield phone
    finally:
        _keep_process_cost(cell, phone)
        _keep_page_evidence(request, cell, phone, browser.driver)
        run = request.config.stash.get(RUN, None)
        if run is not None and (name not in run.engines or not run.engines[name].capabilities):
            spec = browsers.spec(name)
            run.engines[name] = EngineFacts(name=name, engine=spec.engine, version=browser.version,
                                            driver=browser.driver, audio=browser.audio or spec.audio, device=spec.device,
                                            cpu_throttle=spec.cpu_throttle, executable=spec.executable,
                                            cpu_slowdown=getattr(browser, "cpu_slowdown", None),
                                            capabilities=phone.capabilities)
        with contextlib.suppress(Exception):
            page.close()


def _keep_process_cost(cell: CellRun, phone: Softphone) -> None:
    """The browser's CPU and memory in the states the probe went through, beside its other figures."""
    if phone.processes is None:
        return
    phone.processes.stop()
    figures = phone.processes.figures()
    figures |= {f"js_heap_{state}_mb": mb for state, mb in phone.js_heap_mb.items()}
    if any(k.startswith("process_") for k in figures):
        for name, value in figures.items():
            setattr(cell.metrics, name, value)
        cell.keep("process.json", {"roots": [p.pid for p in phone.processes.roots], "cores": phone.processes.cores,
                                   "interval_s": phone.processes.interval_s, "samples": phone.processes.samples})


def _keep_page_evidence(request: pytest.FixtureRequest, cell: CellRun, phone: Softphone, driver: str) -> None:
    """Events, stats and console always; a screenshot and a trace when the cell failed."""
    with contextlib.suppress(Exception):
        cell.keep("events.json", phone.events())
    cell.keep("stats.json", phone.series)
    console = cell.evidence_dir / "console.log"
    with contextlib.suppress(Exception):
        console.write_text("\n".join(phone.console()))
        cell.keep_file("console", console)
    call = request.node.stash.get(REPORTS, {}).get("call")
    if call is None or not call.failed:
        return
    with contextlib.suppress(Exception):
        cell.keep_file("screenshot", phone.page.screenshot(cell.evidence_dir / "screenshot.png"))
    save_trace = getattr(phone.page, "save_trace", None)
    if save_trace:
        with contextlib.suppress(Exception):
            if trace := save_trace(cell.evidence_dir / "trace.zip"):
                cell.keep_file("trace", trace)

"""The process sampler on processes whose cost is known: a busy loop costs a core, a sleeper
costs nothing, and memory it touches shows in USS and PSS; only samples in a state count."""

import contextlib
import subprocess
import sys
import time

import psutil

from harness.metrics.process import ProcessSampler, browser_roots

BUSY = "import time\nx = bytearray(80 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1\nwhile True: pass\n"
SLEEPY = "import time\nx = bytearray(80 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1\ntime.sleep(60)\n"
PARENT = ("import subprocess, sys, time\n"
          "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]])\ntime.sleep(60)\n")


def _spawn(code: str, via_parent: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-c", PARENT, code] if via_parent else [sys.executable, "-c", code]
    proc = subprocess.Popen(cmd)
    time.sleep(0.8)  # its 80 MB touched
    return proc


def _end(proc: subprocess.Popen) -> None:
    """The child and its own child: a busy grandchild left running skews every later figure."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
    proc.kill()
    proc.wait()


def _sample(proc: subprocess.Popen, state: str = "call", seconds: float = 1.5) -> dict:
    sampler = ProcessSampler([proc.pid]).start()
    try:
        with sampler.state(state):
            time.sleep(seconds)
    finally:
        sampler.stop()
        _end(proc)
    return sampler.figures()


def test_a_busy_child_costs_a_core_and_its_memory():
    figures = _sample(_spawn(BUSY, via_parent=True))  # the busy one is a grandchild: the whole tree counts
    assert 80 <= figures["cpu_call_pct"] <= 110, figures
    assert figures["cpu_call_machine_pct"] == round(figures["cpu_call_pct"] / psutil.cpu_count(), 2)
    assert figures["mem_call_uss_mb"] >= 80 and figures["mem_call_pss_mb"] >= 80, figures
    assert figures["mem_call_rss_mb"] >= figures["mem_call_uss_mb"]
    assert figures["process_call_samples"] >= 4
    assert figures["sampler_cpu_pct"] is not None and figures["sampler_cpu_pct"] < 20


def test_a_sleeping_child_costs_no_cpu_and_is_idle():
    figures = _sample(_spawn(SLEEPY), state="idle")
    assert figures["cpu_idle_pct"] < 5 and figures["mem_idle_uss_mb"] >= 80, figures
    assert "cpu_call_pct" not in figures  # no sample was taken on a call


def test_samples_outside_a_state_are_not_summarised():
    proc = _spawn(SLEEPY)
    sampler = ProcessSampler([proc.pid]).start()
    time.sleep(0.8)
    sampler.stop()
    _end(proc)
    assert sampler.samples and set(sampler.figures()) == {"sampler_cpu_pct"}


def test_roots_are_the_new_trees_not_their_children_or_helpers():
    before = set(psutil.pids())
    proc = _spawn(SLEEPY, via_parent=True)
    try:
        after = set(psutil.pids())
        roots = browser_roots(before, after)
        assert proc.pid in roots
        assert all(psutil.Process(r).ppid() not in after - before for r in roots)
        assert not [c.pid for c in psutil.Process(proc.pid).children() if c.pid in roots]
    finally:
        _end(proc)

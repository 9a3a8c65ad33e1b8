"""The lab a person opens by hand: `rtcmatrix lab up/exec/set/check/status/down`, and `doctor`."""

import subprocess
import sys

import pytest

from impairments import sweep, standing
from tests.labutil import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.lab]
CLI = [sys.executable, "-m", "harness.cli"]


def rtcm(*args, timeout=180):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                          env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def test_up_exec_set_check_down():
    name = "pytest-hand"
    before = set(sweep.our_namespaces())
    up = rtcm("lab", "up", "--name", name, "--profile", "3g")
    try:
        assert up.returncode == 0, up.stderr
        assert "198.18." in up.stdout and ("uml-netem" in up.stdout or "host-netem" in up.stdout)
        again = rtcm("lab", "up", "--name", name)
        assert again.returncode == 2 and "already up" in again.stderr
        data = standing.state(name)
        fetch = rtcm("lab", "exec", "--name", name, "--", sys.executable, "-c",
                     f"import urllib.request; print(urllib.request.urlopen('http://{data['server_ip']}:8080/').status)")
        assert fetch.returncode == 0 and fetch.stdout.strip() == "200", fetch.stderr
        server = rtcm("lab", "exec", "--name", name, "--side", "server", "--", "ip", "-br", "addr")
        assert data["server_ip"] in server.stdout
        # A delay-and-rate profile: its check is exact, where a loss check misses 1 time in 20 by design.
        assert rtcm("lab", "set", "--name", name, "--profile", "dsl").returncode == 0
        check = rtcm("lab", "check", "--name", name, "--probes", "1000")
        assert check.returncode == 0 and "uplink" in check.stdout
        assert "the link is as configured" in check.stdout, check.stdout
        bad = rtcm("lab", "set", "--name", name, "--profile", "no-such-profile")
        assert bad.returncode == 2 and "unknown profile" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        down = rtcm("lab", "down", "--name", name)
    assert down.returncode == 0
    assert wait_until(lambda: not (set(sweep.our_namespaces()) - before), 10)
    assert not standing.state(name)
    assert not list(standing.STANDING.glob(f"{name}*"))


def test_exec_without_a_lab_says_how_to_start_one():
    r = rtcm("lab", "exec", "--name", "nobody", "--", "true")
    assert r.returncode == 2 and "rtcmatrix lab up" in r.stderr


def test_doctor_reports_what_is_here():
    r = rtcm("doctor")
    assert "User-mode Linux router" in r.stdout and "browser chromium" in r.stdout
    assert r.returncode == 0 and "ready to run" in r.stdout


def test_down_returns_only_when_the_lab_is_gone_even_with_an_exec_running():
    name = "pytest-busy"
    before = set(sweep.our_namespaces())
    assert rtcm("lab", "up", "--name", name, "--profile", "ideal").returncode == 0
    busy = subprocess.Popen(CLI + ["lab", "exec", "--name", name, "--", "sleep", "60"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: any(sweep.pids_in_netns(n) for n in set(sweep.our_namespaces()) - before), 10)
        down = rtcm("lab", "down", "--name", name)
        assert down.returncode == 0, down.stderr
        assert not (set(sweep.our_namespaces()) - before), "lab down returned before its namespaces were gone"
        assert busy.wait(timeout=10) != 0  # the exec inside it was ended with the lab
    finally:
        if busy.poll() is None:
            busy.kill()
        rtcm("lab", "down", "--name", name)

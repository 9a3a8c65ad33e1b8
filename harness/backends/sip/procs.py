"""Processes of the SIP backend: started in a namespace, logged to a file, stopped for sure.

Every process is started with a run directory named `rtcm-sip-*` on its command line (its config
or pid file lives there), so `sweep_leftovers()` can find what a dead run left behind by cmdline
alone, and never touches a kamailio/rtpengine/baresip that is not rtcmatrix's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

RUN_PREFIX = "rtcm-sip-"
PROGRAMS = ("kamailio", "rtpengine", "baresip", "tcpdump")


class SipBackendError(RuntimeError):
    """A part of the SIP backend failed; the message names its log file."""


class Proc:
    """One child process (in its own session, so its whole group can be killed)."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, cwd: Path | None = None):
        self.name, self.cmd, self.log_path, self.cwd = name, cmd, log_path, cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.cwd, start_new_session=True)
        return self

    def alive(self) -> bool:
        return bool(self.popen) and self.popen.poll() is None

    def check(self) -> None:
        if self.popen and self.popen.poll() is not None:
            raise SipBackendError(f"{self.name} exited with {self.popen.returncode}; log: {self.log_path}")

    def stop(self, grace_s: float = 3.0) -> None:
        if not self.popen:
            return
        if self.popen.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, sig)
                try:
                    self.popen.wait(timeout=grace_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # kamailio forks children into the same group; make sure none outlived the main one
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen = None


def wait_for(predicate, timeout_s: float, proc: Proc | None = None, step_s: float = 0.02):
    """Poll until predicate() is truthy; raises SipBackendError if `proc` died meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc:
            proc.check()
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step_s)


def leftovers() -> list[psutil.Process]:
    """kamailio/rtpengine/baresip/tcpdump processes whose cmdline holds an rtcm-sip-* path."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if not cmd:
            continue
        prog = Path(cmd[0]).name
        if prog in PROGRAMS and any(RUN_PREFIX in arg for arg in cmd[1:]):
            found.append(proc)
    return found


def sweep_leftovers(grace_s: float = 2.0) -> list[int]:
    """Kill the SIP backend's processes left by any run (live runs too: call it when none is
    running, as `impairments.sweep` does for labs). Returns the pids that were signalled."""
    procs = leftovers()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace_s)
    for sock in Path("/run").glob(f"{RUN_PREFIX}*.ctl"):  # Kamailio's control socket (see kamailio.py)
        sock.unlink(missing_ok=True)
    return [p.pid for p in procs]

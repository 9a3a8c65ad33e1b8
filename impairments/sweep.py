"""Ownership records for running labs, and the sweep that removes what a dead run left behind.

Every lab writes `/run/rtcmatrix/labs/<id>.json` (owner pid and its start time) before it creates
anything. A namespace is ours only if its name starts with PREFIX; it is a leftover when its
record is missing or its owner is gone. Processes are found by the network namespace they
live in, so a browser, far end or UML guest of a dead run goes with its namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from pyroute2 import netns

PREFIX = "rtcm-"
PROBE = f"{PREFIX}probe-"  # detect.py's throw-away namespace, named after the pid that owns it
RUN_ROOT = Path(os.environ.get("RTCMATRIX_RUN_DIR", "/run/rtcmatrix"))
RECORDS = RUN_ROOT / "labs"
NETNS_DIR = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")  # `ip netns exec` bind-mounts these files over /etc
# Nothing listens on the namespace's own loopback port 53: every name outside the lab fails at
# once (measured: 4 ms), so no engine or SDK waits on a STUN, telemetry or vendor host.
RESOLVER = "# rtcmatrix: names outside the lab fail at once\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"


@dataclass
class Record:
    lab_id: str
    index: int
    pid: int
    started: float
    namespaces: list[str]

    @property
    def path(self) -> Path:
        return RECORDS / f"{self.lab_id}.json"

    def owner_alive(self) -> bool:
        """A zombie is dead: a killed worker of a parallel run stays one until something reaps it."""
        try:
            same = abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except psutil.Error:
            return False
        return same and alive(self.pid)

    def save(self) -> None:
        self.path.write_text(json.dumps(self.__dict__))


def records() -> list[Record]:
    """The labs on record, live or not."""
    out = []
    for path in sorted(RECORDS.glob("*.json")) if RECORDS.is_dir() else []:
        with contextlib.suppress(ValueError, TypeError, OSError):
            out.append(Record(**json.loads(path.read_text())))
    return out


@contextlib.contextmanager
def _locked():
    RECORDS.mkdir(parents=True, exist_ok=True)
    with open(RECORDS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def claim(lab_id: str, namespaces: list[str], slots: int) -> Record:
    """Record a new lab under the lock and give it a free address slot."""
    with _locked():
        taken = {r.index for r in records() if r.owner_alive()}
        free = next((i for i in range(slots) if i not in taken), None)
        if free is None:
            raise RuntimeError(f"all {slots} lab slots are in use; run `rtcmatrix lab down --all`")
        me = psutil.Process()
        record = Record(lab_id, free, me.pid, me.create_time(), namespaces)
        record.save()
        return record


def release(record: Record) -> None:
    with contextlib.suppress(FileNotFoundError):
        record.path.unlink()


def our_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(PREFIX))


def live_probe(name: str) -> bool:
    """A netem probe has no record: its owner is the pid in its name (another run's sweep must spare it)."""
    pid = name.removeprefix(PROBE)
    return name.startswith(PROBE) and pid.isdigit() and alive(int(pid))


def pids_in_netns(name: str) -> list[int]:
    try:
        target = os.stat(NETNS_DIR / name)
    except FileNotFoundError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            st = os.stat(entry / "ns" / "net")
            if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev):
                pids.append(int(entry.name))
    return pids


def kill_netns_processes(name: str, grace_s: float = 2.0) -> int:
    """SIGTERM everything living in the namespace, then SIGKILL what is still there."""
    pids = [p for p in pids_in_netns(name) if p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if alive(p)]
            time.sleep(0.05)
        if not pids:
            break
    return len(pids)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def remove_namespace(name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to touch namespace {name!r}: not ours")
    kill_netns_processes(name)
    with contextlib.suppress(FileNotFoundError, OSError):
        netns.remove(name)


def write_resolver(name: str) -> Path:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to write a resolver for namespace {name!r}: not ours")
    folder = NETNS_ETC / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resolv.conf").write_text(RESOLVER)
    (folder / "hosts").write_text("127.0.0.1 localhost\n")
    return folder


def remove_resolver(name: str) -> None:
    if name.startswith(PREFIX):
        shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def sweep(include_live: bool = False) -> list[str]:
    """Remove the namespaces and records of labs whose owner is gone; returns what was removed."""
    from impairments.nsutil import off_loop

    return off_loop(lambda: _sweep(include_live))


def _sweep(include_live: bool) -> list[str]:
    removed = []
    with _locked():
        live = set()
        for record in records():
            if record.owner_alive() and not include_live:
                live.update(record.namespaces)
            else:
                release(record)
                shutil.rmtree(RUN_ROOT / record.lab_id, ignore_errors=True)
        for name in our_namespaces():
            if name not in live and (include_live or not live_probe(name)):
                remove_namespace(name)
                removed.append(name)
        for folder in NETNS_ETC.glob(f"{PREFIX}*") if NETNS_ETC.is_dir() else []:
            if folder.name not in live and not (NETNS_DIR / folder.name).exists():
                shutil.rmtree(folder, ignore_errors=True)
        if not live:  # a SIP server that outlived its namespace (its run dir says rtcm-sip-)
            from harness.backends.sip.procs import sweep_leftovers

            removed += [f"sip pid {pid}" for pid in sweep_leftovers()]
    return removed

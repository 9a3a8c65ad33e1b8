"""Helpers for tests that look at what is running on the machine."""

from __future__ import annotations

import time

import psutil

from impairments import sweep


def our_processes(lab_id: str | None = None) -> list[str]:
    """UML guests, browsers and far ends that belong to rtcmatrix labs (by namespace or umid)."""
    found = []
    for name in sweep.our_namespaces():
        if lab_id is None or f"-{lab_id}-" in name:
            found += [f"{pid}@{name}" for pid in sweep.pids_in_netns(name)]
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "umid=rtcm-" in cmd and (lab_id is None or f"umid=rtcm-{lab_id}" in cmd):
            found.append(f"{proc.info['pid']}:uml")
    return found


def uml_pids() -> set[int]:
    """Running UML guests of any rtcmatrix lab (zombies excluded: they hold nothing)."""
    pids = set()
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and "umid=rtcm-" in " ".join(proc.info["cmdline"] or []):
            pids.add(proc.info["pid"])
    return pids


def wait_until(predicate, timeout_s: float, step_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()

"""Small helpers for doing one thing inside a named network namespace."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from pyroute2 import netns

T = TypeVar("T")


def run_in_netns(name: str, fn: Callable[[], T]) -> T:
    """Call fn on a throw-away thread that has entered the namespace.

    setns() moves only the calling thread, and sockets keep the namespace they were made in,
    so this is how one process opens sockets on both sides of the lab.
    """
    box: dict = {}

    def target():
        try:
            netns.setns(name)
            box["value"] = fn()
        except BaseException as err:  # handed back to the caller's thread
            box["error"] = err

    t = threading.Thread(target=target, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def write_sysctl(name: str, key: str, value: str) -> None:
    def write():
        with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
            f.write(value)

    run_in_netns(name, write)

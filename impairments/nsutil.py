"""Small helpers for doing one thing inside a named network namespace."""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

from pyroute2 import netns

T = TypeVar("T")


def off_loop(fn: Callable[[], T], netns_name: str | None = None) -> T:
    """Call fn on a throw-away thread, optionally inside a network namespace.

    Two reasons: setns() moves only the calling thread (and sockets keep the namespace they
    were made in), and pyroute2's sync API cannot run on a thread whose asyncio loop is already
    running, which is the case under Playwright's sync API.
    """
    box: dict = {}

    def target():
        try:
            if netns_name:
                netns.setns(netns_name)
            box["value"] = fn()
        except BaseException as err:  # handed back to the caller's thread
            box["error"] = err

    t = threading.Thread(target=target, name=f"netns-{netns_name or 'host'}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_in_netns(name: str, fn: Callable[[], T]) -> T:
    return off_loop(fn, name)


def write_sysctl(name: str, key: str, value: str) -> None:
    def write():
        with open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
            f.write(value)

    run_in_netns(name, write)

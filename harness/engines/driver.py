"""The Playwright driver, started inside the lab's client namespace.

Playwright reaches Firefox (BiDi) and a CDP-connected Chromium over WebSockets on 127.0.0.1, and
inside the client namespace that loopback is the namespace's own: the driver has to live there
too (measured: a driver outside gets ECONNREFUSED). Browsers it launches inherit the namespace,
so their only route is the lab link, and the sweep finds them by namespace after a crash.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from playwright._impl._driver import compute_driver_executable
from playwright.sync_api import Playwright, sync_playwright

_ENV_LOCK = threading.Lock()


def start_in_netns(netns: str, workdir: Path) -> Playwright:
    """Start a Playwright driver whose node process runs in `netns`; `.stop()` ends it."""
    node, _cli = compute_driver_executable()
    wrapper = workdir / "playwright-node-in-lab"
    # setsid: a terminal's Ctrl-C goes to its foreground process group; the driver and its
    # browsers must outlive it long enough for the run to wind down and record the interrupt.
    wrapper.write_text(f'#!/bin/sh\nexec setsid ip netns exec {netns} {node} "$@"\n')
    wrapper.chmod(0o755)
    handle = sync_playwright()
    with _ENV_LOCK:  # the driver path is read from the environment once, at start
        previous = os.environ.get("PLAYWRIGHT_NODEJS_PATH")
        os.environ["PLAYWRIGHT_NODEJS_PATH"] = str(wrapper)
        try:
            playwright = handle.start()
        finally:
            if previous is None:
                os.environ.pop("PLAYWRIGHT_NODEJS_PATH", None)
            else:
                os.environ["PLAYWRIGHT_NODEJS_PATH"] = previous
    return playwright

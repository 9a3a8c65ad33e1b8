"""What this host can do for the lab: host-kernel netem or not."""

from __future__ import annotations

import functools
import os

from pyroute2 import NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from impairments.netem import apply_link
from impairments.profile import Link
from impairments.sweep import PROBE


@functools.cache
def host_has_netem() -> bool:
    """Try netem on `lo` inside a throw-away namespace: the only test that cannot lie."""
    name = f"{PROBE}{os.getpid()}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            lo = ns.link_lookup(ifname="lo")[0]
            ns.link("set", index=lo, state="up")
            try:
                apply_link(ns, "lo", Link(delay_ms=1))
            except NetlinkError:
                return False
            return True
    finally:
        netns.remove(name)

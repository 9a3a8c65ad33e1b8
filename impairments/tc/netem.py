"""The netem qdisc, encoded completely.

pyroute2's own `sched_netem` leaves out the delay distribution table, the Gilbert-Elliott and
4-state loss models and 64-bit rates, and its `rate` keyword collides with the generic TCA_RATE
attribute. This module is a drop-in pyroute2 tc plugin: `tc('add', 'netem', index, netem=Link)`.
Parameters are checked by the `Link` model before anything reaches the kernel.
"""

from __future__ import annotations

import glob
import functools
from pathlib import Path

from pyroute2.netlink import nla
from pyroute2.netlink.rtnl import TC_H_ROOT
from pyroute2.netlink.rtnl.tcmsg import plugins
from pyroute2.netlink.rtnl.tcmsg.common import percent2u32, tick_in_usec

from impairments.profile import Link

parent = TC_H_ROOT
U32_MAX = 2**32 - 1
DIST_DIRS = ("/usr/lib/tc", "/usr/lib/*/tc", "/usr/lib64/tc", "/usr/share/tc")


class NetemError(ValueError):
    pass


@functools.cache
def distribution_table(name: str) -> tuple[int, ...]:
    """iproute2's tables (`<name>.dist`), the same ones `tc ... distribution NAME` loads."""
    for pattern in DIST_DIRS:
        for path in glob.glob(f"{pattern}/{name}.dist"):
            values = []
            for line in Path(path).read_text().splitlines():
                line = line.split("#", 1)[0]
                values += [int(v) for v in line.split()]
            if values:
                return tuple(values)
    raise NetemError(f"distribution {name!r}: no {name}.dist table found; install iproute2")


def _ticks(ms: float) -> int:
    return int(round(ms * 1000 * tick_in_usec))


def get_parameters(kwarg: dict) -> dict:
    link: Link = kwarg["netem"]
    opts: dict = {
        "delay": _ticks(link.delay_ms),
        "limit": link.queue_limit(),
        "loss": percent2u32(link.loss_pct),
        "gap": link.reorder_gap,
        "duplicate": percent2u32(link.duplicate_pct),
        "jitter": _ticks(link.jitter_ms),
        "attrs": [],
    }
    attrs = opts["attrs"]
    # Correlation, reorder, corrupt and rate go out even when zero: a netem changed in place
    # keeps any attribute it is not sent.
    attrs.append(["TCA_NETEM_CORR", {
        "delay_corr": percent2u32(link.delay_correlation_pct),
        "loss_corr": percent2u32(link.loss_correlation_pct),
        "dup_corr": 0,
    }])
    if link.distribution and link.distribution != "uniform":
        attrs.append(["TCA_NETEM_DELAY_DIST", {"value": distribution_table(link.distribution)}])
    if link.reorder_pct:
        opts["gap"] = link.reorder_gap or 1
    attrs.append(["TCA_NETEM_REORDER", {
        "prob_reorder": percent2u32(link.reorder_pct),
        "corr_reorder": percent2u32(link.reorder_correlation_pct),
    }])
    attrs.append(["TCA_NETEM_CORRUPT", {"prob_corrupt": percent2u32(link.corrupt_pct), "corr_corrupt": 0}])
    if link.gilbert_elliott:
        ge = link.gilbert_elliott
        # The kernel takes h (delivery while bad) and k1 (loss while good).
        attrs.append(["TCA_NETEM_LOSS", {"attrs": [["NETEM_LOSS_GE", {
            "p": percent2u32(ge.p_pct),
            "r": percent2u32(ge.r_pct),
            "h": U32_MAX - percent2u32(ge.bad_loss_pct),
            "k1": percent2u32(ge.good_loss_pct),
        }]]}])
    if link.four_state:
        fs = link.four_state
        attrs.append(["TCA_NETEM_LOSS", {"attrs": [["NETEM_LOSS_GI", {
            "p13": percent2u32(fs.p13_pct), "p31": percent2u32(fs.p31_pct), "p32": percent2u32(fs.p32_pct),
            "p14": percent2u32(fs.p14_pct), "p23": percent2u32(fs.p23_pct),
        }]]}])
    bytes_s = int(round(link.rate_kbit * 1000 / 8)) if link.rate_kbit else 0  # 0: unshaped
    attrs.append(["TCA_NETEM_RATE", {
        "rate": min(bytes_s, U32_MAX),
        "packet_overhead": link.rate_overhead_bytes,
        "cell_size": 0,
        "cell_overhead": 0,
    }])
    if bytes_s >= U32_MAX:
        attrs.append(["TCA_NETEM_RATE64", bytes_s])
    if link.slot:
        # netem cannot drop a slot in place; apply_link rebuilds the qdisc when one goes away.
        attrs.append(["TCA_NETEM_SLOT", {
            "min_delay": int(link.slot.min_delay_ms * 1_000_000),
            "max_delay": int((link.slot.max_delay_ms or link.slot.min_delay_ms) * 1_000_000),
            "max_packets": link.slot.max_packets,
            "max_bytes": link.slot.max_bytes,
            "dist_delay": 0,
            "dist_jitter": 0,
        }])
    return opts


class options(nla):
    nla_map = (
        ("TCA_NETEM_UNSPEC", "none"),
        ("TCA_NETEM_CORR", "netem_corr"),
        ("TCA_NETEM_DELAY_DIST", "netem_dist"),
        ("TCA_NETEM_REORDER", "netem_reorder"),
        ("TCA_NETEM_CORRUPT", "netem_corrupt"),
        ("TCA_NETEM_LOSS", "netem_loss"),
        ("TCA_NETEM_RATE", "netem_rate"),
        ("TCA_NETEM_ECN", "uint32"),
        ("TCA_NETEM_RATE64", "uint64"),
        ("TCA_NETEM_PAD", "hex"),
        ("TCA_NETEM_LATENCY64", "int64"),
        ("TCA_NETEM_JITTER64", "int64"),
        ("TCA_NETEM_SLOT", "netem_slot"),
        ("TCA_NETEM_SLOT_DIST", "hex"),
        ("TCA_NETEM_PRNG_SEED", "uint64"),
    )
    fields = (
        ("delay", "I"),
        ("limit", "I"),
        ("loss", "I"),
        ("gap", "I"),
        ("duplicate", "I"),
        ("jitter", "I"),
    )

    class netem_corr(nla):
        fields = (("delay_corr", "I"), ("loss_corr", "I"), ("dup_corr", "I"))

    class netem_reorder(nla):
        fields = (("prob_reorder", "I"), ("corr_reorder", "I"))

    class netem_corrupt(nla):
        fields = (("prob_corrupt", "I"), ("corr_corrupt", "I"))

    class netem_rate(nla):
        fields = (("rate", "I"), ("packet_overhead", "i"), ("cell_size", "I"), ("cell_overhead", "i"))

    class netem_dist(nla):
        """An array of s16: the inverse CDF scaled by NETEM_DIST_SCALE (8192)."""

        fields = (("value", "s"),)

        def encode(self):
            import struct

            table = self["value"]
            self["value"] = struct.pack(f"={len(table)}h", *table)
            try:
                nla.encode(self)
            finally:
                self["value"] = table

        def decode(self):
            nla.decode(self)

    class netem_slot(nla):
        """struct tc_netem_slot: times in ns; 0 packets or bytes means no cap."""

        fields = (("min_delay", "q"), ("max_delay", "q"), ("max_packets", "i"), ("max_bytes", "i"),
                  ("dist_delay", "q"), ("dist_jitter", "q"))

    class netem_loss(nla):
        nla_map = (
            ("NETEM_LOSS_UNSPEC", "none"),
            ("NETEM_LOSS_GI", "gimodel"),
            ("NETEM_LOSS_GE", "gemodel"),
        )

        class gimodel(nla):
            fields = (("p13", "I"), ("p31", "I"), ("p32", "I"), ("p14", "I"), ("p23", "I"))

        class gemodel(nla):
            fields = (("p", "I"), ("r", "I"), ("h", "I"), ("k1", "I"))


def register() -> None:
    """Make `tc(..., 'netem', ...)` use this module in every pyroute2 socket of the process."""
    import sys

    plugins["netem"] = sys.modules[__name__]

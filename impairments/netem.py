"""Apply a `Link` as a netem root qdisc through pyroute2.

The same functions run on the host kernel (inside the router namespace) and inside the
User-mode Linux router, so both backends configure packets with identical code.
"""

from __future__ import annotations

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from impairments.profile import Link
from impairments.tc import netem as netem_tc

netem_tc.register()

ROOT = 0xFFFFFFFF
HANDLE = 0x10000  # 1:


def _has_table(link: Link | None) -> bool:
    return bool(link and link.distribution and link.distribution != "uniform")


def apply_link(ipr: IPRoute, ifname: str, link: Link, previous: Link | None = None,
               index: int | None = None) -> dict:
    """Make the interface's root qdisc netem for `link`; returns what was sent.

    `replace` on the same handle changes a netem in place, so packets already queued keep
    flowing: deleting and re-adding would drop up to delay x rate packets at every change.
    netem cannot drop a delay distribution table or a slot in place, so leaving one rebuilds
    the qdisc.
    """
    index = [index] if index is not None else ipr.link_lookup(ifname=ifname)
    if not index:
        raise LookupError(f"no interface {ifname!r}")
    if previous is None and link.is_ideal():
        clear_root(ipr, index[0])  # nothing to impair yet: no qdisc at all
        return {}
    if (_has_table(previous) and previous.distribution != link.distribution) or \
            (previous and previous.slot and not link.slot):
        clear_root(ipr, index[0])
    try:
        ipr.tc("replace", "netem", index[0], handle=HANDLE, netem=link)
    except NetlinkError as err:
        if err.code != 22:  # EINVAL: a root qdisc of another kind is in the way
            raise
        clear_root(ipr, index[0])
        ipr.tc("add", "netem", index[0], handle=HANDLE, netem=link)
    return _sent(link)


def _sent(link: Link) -> dict:
    """What went to the kernel, readable: the options without the bulky distribution table."""
    opts = netem_tc.get_parameters({"netem": link})
    attrs = {name: value for name, value in opts.pop("attrs") if any(v for v in (value.values() if isinstance(value, dict) else [value]))}
    if "TCA_NETEM_DELAY_DIST" in attrs:
        attrs["TCA_NETEM_DELAY_DIST"] = f"{link.distribution} ({len(attrs['TCA_NETEM_DELAY_DIST']['value'])} entries)"
    return {**opts, **attrs}


def clear_root(ipr: IPRoute, index: int) -> None:
    try:
        ipr.tc("del", index=index, handle=0, parent=ROOT)
    except NetlinkError as err:
        if err.code not in (2, 22):  # nothing there to delete
            raise


def read_root(ipr: IPRoute, ifname: str) -> dict:
    """The netem options the kernel reports for the interface (what really is installed)."""
    index = ipr.link_lookup(ifname=ifname)[0]
    for msg in ipr.get_qdiscs(index=index):
        if msg.get_attr("TCA_KIND") == "netem" and msg["parent"] == ROOT:
            opts = msg.get_attr("TCA_OPTIONS")
            return {"kind": "netem", "limit": opts["limit"], "loss_u32": opts["loss"]}
    return {"kind": None}

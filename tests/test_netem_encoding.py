"""The netem netlink encoding, decoded back: what the kernel will read is what the profile says."""

import struct

from pyroute2.netlink.rtnl.tcmsg.common import tick_in_usec

from impairments.profile import Link
from impairments.tc import netem


def roundtrip(link: Link):
    opts = netem.get_parameters({"netem": link})
    msg = netem.options()
    msg.setvalue(opts)
    msg.encode()
    decoded = netem.options(msg.data)
    decoded.decode()
    return decoded


def test_delay_jitter_limit_in_ticks():
    d = roundtrip(Link(delay_ms=50, jitter_ms=10, limit_packets=5000))
    assert d["delay"] == int(50_000 * tick_in_usec)
    assert d["jitter"] == int(10_000 * tick_in_usec)
    assert d["limit"] == 5000


def test_rate_is_in_the_netem_attribute_not_tca_rate():
    d = roundtrip(Link(rate_kbit=330, rate_overhead_bytes=14))
    rate = d.get_attr("TCA_NETEM_RATE")
    assert rate["rate"] == 41250 and rate["packet_overhead"] == 14


def test_gilbert_elliott_uses_kernel_h_and_k1():
    d = roundtrip(Link(gilbert_elliott={"p_pct": 1, "r_pct": 25, "bad_loss_pct": 100, "good_loss_pct": 0}))
    ge = d.get_attr("TCA_NETEM_LOSS").get_attr("NETEM_LOSS_GE")
    assert ge["p"] == int((2**32 - 1) * 0.01)
    assert ge["r"] == int((2**32 - 1) * 0.25)
    assert ge["h"] == 0  # kernel h: delivery while bad; tc's 1-h = 100 % loss
    assert ge["k1"] == 0


def test_four_state_order_matches_kernel_struct():
    d = roundtrip(Link(four_state={"p13_pct": 2, "p31_pct": 70, "p32_pct": 5, "p23_pct": 60, "p14_pct": 1}))
    gi = d.get_attr("TCA_NETEM_LOSS").get_attr("NETEM_LOSS_GI")
    pct = lambda v: round(100 * v / (2**32 - 1), 3)  # noqa: E731
    assert [pct(gi[k]) for k in ("p13", "p31", "p32", "p14", "p23")] == [2, 70, 5, 1, 60]


def test_distribution_table_is_iproute2s():
    link = Link(delay_ms=50, jitter_ms=10, distribution="normal")
    opts = netem.get_parameters({"netem": link})
    table = dict(opts["attrs"])["TCA_NETEM_DELAY_DIST"]["value"]
    assert len(table) == 4096
    msg = netem.options()
    msg.setvalue(opts)
    msg.encode()
    packed = struct.pack(f"={len(table)}h", *table)
    assert packed in msg.data  # the whole table, as native s16, as the kernel reads it


def test_reorder_sets_gap_at_least_one():
    d = roundtrip(Link(delay_ms=10, reorder_pct=25))
    assert d["gap"] == 1 and d.get_attr("TCA_NETEM_REORDER")["prob_reorder"] > 0


def test_slot_in_nanoseconds():
    d = roundtrip(Link(slot={"min_delay_ms": 20, "max_delay_ms": 30, "max_packets": 8}))
    slot = d.get_attr("TCA_NETEM_SLOT")
    assert slot["min_delay"] == 20_000_000 and slot["max_delay"] == 30_000_000 and slot["max_packets"] == 8

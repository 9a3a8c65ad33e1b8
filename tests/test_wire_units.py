"""The wire tap's per-stream figures from packets whose timing is known: RFC 3550 jitter is 0 for
a steady stream and converges to the transit swing for one that alternates, loss counts the gaps,
and the RTP clock is read from the timestamps' pace."""

from types import SimpleNamespace

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.rtp import RTP

from harness.metrics.wire import add_wire_view, link_rtt_ms
from harness.wire import WireTap
from reports.results import LinkRecord, Metrics

CLIENT, SERVER = "198.18.0.2", "198.19.0.2"


def _tap(packets: list[tuple[float, int, int]], pt: int = 111, step: int = 960):
    """packets: (arrival s, sequence, frame index); timestamps advance `step` per frame."""
    tap = WireTap(SimpleNamespace(client_ip=CLIENT))
    for arrival, seq, frame in packets:
        pkt = Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=40000, dport=30000) / \
            RTP(version=2, payload_type=pt, sequence=seq, timestamp=frame * step, sourcesync=0x1234) / (b"x" * 60)
        pkt = Ether(bytes(pkt))
        pkt.time = arrival
        tap._packet(pkt)
    return tap.report().from_browser(CLIENT)[0]


def test_a_steady_stream_has_no_jitter_and_a_48k_clock():
    s = _tap([(10 + 0.02 * i, i, i) for i in range(100)])
    assert s.clock_hz == 48000 and s.jitter_ms == pytest.approx(0, abs=1e-3) and s.loss_pct == 0


def test_jitter_converges_to_the_transit_swing():
    swing = 0.008  # every other packet 8 ms later: |D| is 8 ms at every step
    s = _tap([(10 + 0.02 * i + swing * (i % 2), i, i) for i in range(300)])
    assert s.jitter_ms == pytest.approx(8.0, rel=0.02)


def test_gaps_are_loss_and_pcmu_has_its_static_clock():
    kept = [i for i in range(200) if i % 10]  # every tenth packet lost
    s = _tap([(10 + 0.02 * i, i, i) for i in kept], pt=0, step=160)
    assert s.clock_hz == 8000 and s.missing_seq == 19 and s.loss_pct == pytest.approx(100 * 19 / 199, abs=0.01)
    assert s.jitter_ms == pytest.approx(0, abs=1e-3)  # a lost packet is no transit change


def test_the_wire_view_uses_the_link_checks_rtt_for_its_mos():
    s = _tap([(10 + 0.02 * i + 0.004 * (i % 2), i, i) for i in range(200)])
    link = LinkRecord(backend="uml", configured={}, measured={"uplink": {"delay_ms_mean": 50.0},
                                                              "downlink": {"delay_ms_mean": 30.0}})
    m = add_wire_view(Metrics(rtt_ms=1.0), [s], link)
    assert link_rtt_ms(link) == 80.0 and m.link_rtt_ms == 80.0 and m.wire_packets == 200
    assert m.wire_jitter_ms == pytest.approx(4.0, rel=0.05) and m.wire_loss_pct == 0
    assert 4.0 < m.wire_mos < 4.45
    assert add_wire_view(Metrics(), [s], None).link_rtt_ms is None


def test_a_stun_check_the_browser_answers_is_a_round_trip():
    tap = WireTap(SimpleNamespace(client_ip=CLIENT))
    txid = bytes(range(12))
    cookie = bytes.fromhex("2112a442")
    for when, src, dst, kind in [(5.000, SERVER, CLIENT, b"\x00\x01"), (5.081, CLIENT, SERVER, b"\x01\x01")]:
        pkt = Ether(bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=1, dport=2) / (kind + b"\x00\x00" + cookie + txid)))
        pkt.time = when
        tap._packet(pkt)
    report = tap.report()
    assert report.stun_rtt_ms == [pytest.approx(81.0, abs=0.01)] and not report.streams
    m = add_wire_view(Metrics(), [], None, report.stun_rtt_ms)
    assert m.wire_rtt_ms == pytest.approx(81.0, abs=0.01) and m.wire_rtt_samples == 1

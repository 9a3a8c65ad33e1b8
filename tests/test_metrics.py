import pytest

from harness.metrics import mos, summarise


def test_mos_matches_the_field_formula():
    # Le = 100 + 2*5 + 10 = 120 < 160: R = 93.2 - 3 = 90.2; loss 1 % -> 87.7
    r = 87.7
    expected = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
    assert mos(100, 5, 1) == pytest.approx(expected)
    assert mos(0, 0, 0) == pytest.approx(4.4, abs=0.05)
    assert mos(1000, 100, 30) == 1.0


def _sample(t, rtt=None, jitter=0.004, lost=0, received=0, sent=0):
    entries = [
        {"type": "inbound-rtp", "kind": "audio", "jitter": jitter, "packetsLost": lost,
         "packetsReceived": received, "bytesReceived": received * 100},
        {"type": "outbound-rtp", "kind": "audio", "bytesSent": sent},
    ]
    if rtt is not None:
        entries.append({"type": "remote-inbound-rtp", "kind": "audio", "roundTripTime": rtt})
    return {"t": t, "entries": entries}


def test_summary_uses_rtcp_rtt_and_ignores_unmeasured_zeros():
    series = [_sample(0, rtt=0), _sample(1000, rtt=0.2, received=50, lost=0, sent=4000),
              _sample(2000, rtt=0.21, received=95, lost=5, sent=8000)]
    m = summarise(series)
    assert m.rtt_source == "remote-inbound-rtp.roundTripTime"
    assert m.rtt_ms == pytest.approx(205)
    assert m.packet_loss_pct == pytest.approx(5.0)
    assert m.bitrate_out_kbps == pytest.approx(32.0)
    assert m.mos is not None


def test_summary_falls_back_to_the_ice_pair():
    pair = {"type": "candidate-pair", "id": "p1", "nominated": True, "state": "succeeded", "currentRoundTripTime": 0.1}
    series = [{"t": 0, "entries": [pair]}, {"t": 1000, "entries": [pair]}]
    m = summarise(series)
    assert m.rtt_ms == pytest.approx(100) and m.rtt_source == "candidate-pair.currentRoundTripTime"


def test_rtp_sequence_span_survives_the_16_bit_wrap():
    from harness.wire import _seq_span

    assert _seq_span([10, 11, 13]) == 4
    assert _seq_span([65534, 65535, 0, 1]) == 4
    assert _seq_span([]) == 0

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


def test_the_mos_takes_the_r0_the_matrix_gives_the_calls_codec():
    codec = {"type": "codec", "id": "c1", "mimeType": "audio/opus"}
    series = [_sample(0, rtt=0.05), _sample(1000, rtt=0.05, received=50, sent=4000)]
    for s in series:
        s["entries"][1]["codecId"] = "c1"
        s["entries"].append(codec)
    g107, plivo = summarise(series), summarise(series, r0={"opus": 95.0})
    assert (g107.codec, g107.mos_r0, plivo.mos_r0) == ("opus", 93.2, 95.0)
    assert plivo.mos > g107.mos
    assert summarise(series, r0={"pcmu": 80.0}).mos == g107.mos  # another codec's R0 does not apply


def test_call_timing_reads_the_page_log_and_the_far_ends_clock():
    from harness.metrics.timing import add_call_timing, add_rtcp_rtt, add_signalling
    from reports.results import Metrics

    class Phone:
        login_s, called_at = 0.42, 100.0

        def events(self):
            return [{"type": "ringing", "t": 99_000}, {"type": "ringing", "t": 100_250}, {"type": "connected", "t": 100_400}]

    timeline = [{"active": False, "start_epoch": 100.1}, {"active": True, "start_epoch": 100.9, "arrived_epoch": 100.8}]
    m = add_call_timing(Metrics(), Phone(), timeline)
    assert (m.login_s, m.ringing_s, m.first_audio_s) == (0.42, 0.25, 0.8)
    add_rtcp_rtt(m, [[90.0, 400.0], [101.0, 41.0], [102.0, 43.0], [103.0, 45.0]], 100.5, 104.0)
    assert (m.rtcp_rtt_ms, m.rtcp_rtt_samples) == (43.0, 3)
    add_signalling(m, {"sentBytes": 1200, "receivedBytes": 900, "sentFrames": 3})
    assert (m.call_ws_sent_bytes, m.call_ws_received_bytes) == (1200, 900)

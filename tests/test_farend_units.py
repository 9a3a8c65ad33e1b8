"""The far end's pieces on their own: DTMF both ways, SDP reading, credentials, the listener's
media clock. No lab, no browser."""

import struct
import time
from fractions import Fraction

import numpy as np
import pytest
from av import AudioFrame

from harness.farend import dtmf, sdp
from harness.farend.auth import Credentials

RATE = 48_000


def _digits(parts, rate=RATE, mic_hz=440.0, noise=0.01, seed=1):
    x = np.concatenate(parts)
    t = np.arange(x.size) / rate
    return x + 0.25 * np.sin(2 * np.pi * mic_hz * t) + noise * np.random.default_rng(seed).standard_normal(x.size)


def test_inband_finds_every_digit_in_order_over_a_mic_tone():
    parts = [np.zeros(RATE // 4)]
    for d in "0123456789*#ABCD":
        parts += [dtmf.tone(d, 0.1, RATE), np.zeros(int(0.07 * RATE))]
    found = dtmf.detect_inband(_digits(parts), RATE)
    assert "".join(f["digit"] for f in found) == "0123456789*#ABCD"
    assert found[0]["start_s"] == pytest.approx(0.25, abs=0.015)
    assert all(80 <= f["duration_ms"] <= 120 for f in found)


def test_inband_says_nothing_about_a_tone_speech_like_noise_or_silence():
    t = np.arange(3 * RATE) / RATE
    assert dtmf.detect_inband(0.3 * np.sin(2 * np.pi * 440 * t), RATE) == []
    assert dtmf.detect_inband(0.1 * np.random.default_rng(2).standard_normal(3 * RATE), RATE) == []
    assert dtmf.detect_inband(np.zeros(RATE), RATE) == []
    # One tone of a pair is not a digit.
    assert dtmf.detect_inband(0.3 * np.sin(2 * np.pi * 770 * t), RATE) == []


def test_inband_keeps_repeated_digits_apart_and_ignores_blips():
    parts = [np.zeros(2000), dtmf.tone("5", 0.08, RATE), np.zeros(int(0.05 * RATE)), dtmf.tone("5", 0.08, RATE),
             np.zeros(int(0.05 * RATE)), dtmf.tone("7", 0.02, RATE), np.zeros(RATE // 10)]
    assert [f["digit"] for f in dtmf.detect_inband(_digits(parts), RATE)] == ["5", "5"]


def test_inband_works_at_8_khz_too():
    x = np.concatenate([np.zeros(800), dtmf.tone("9", 0.1, 8000), np.zeros(800)])
    assert [f["digit"] for f in dtmf.detect_inband(x, 8000)] == ["9"]


def _event(event, end, duration, volume=10):
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def test_rfc4733_one_digit_per_event_with_duration_and_end():
    dec = dtmf.Rfc4733Decoder(48000)
    t0 = time.time()
    for i, (ev, ts) in enumerate([(1, 1000), (11, 9000)]):
        for k in range(1, 6):
            dec.feed(_event(ev, False, 960 * k), ts, k == 1, t0 + i + k * 0.02)
        for _ in range(3):  # the end packet, sent three times
            dec.feed(_event(ev, True, 4800), ts, False, t0 + i + 0.12)
    got = dec.digits()
    assert [d["digit"] for d in got] == ["1", "#"]
    assert got[0]["duration_ms"] == pytest.approx(100.0) and got[0]["ended"] and got[0]["packets"] == 8
    assert got[0]["arrived_at"] == pytest.approx(t0 + 0.02)


def test_rfc4733_digit_without_end_packets_still_counts():
    dec = dtmf.Rfc4733Decoder(8000)
    dec.feed(_event(0, False, 160), 500, True, 1.0)
    dec.feed(_event(0, False, 320), 500, False, 1.02)
    dec.feed(b"\x00", 600, False, 1.03)  # too short to be an event: ignored
    got = dec.digits()
    assert [d["digit"] for d in got] == ["0"] and not got[0]["ended"] and got[0]["duration_ms"] == pytest.approx(40.0)


ANSWER = """v=0\r
o=- 1 1 IN IP4 0.0.0.0\r
s=-\r
t=0 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 0 110\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:110 telephone-event/48000\r
a=fmtp:110 0-15\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
a=rtpmap:96 VP8/90000\r
"""

OFFER = """v=0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0 126\r
a=rtpmap:111 opus/48000/2\r
a=fmtp:111 minptime=10;useinbandfec=1;maxaveragebitrate=16000\r
a=rtpmap:63 red/48000/2\r
a=rtpmap:126 telephone-event/8000\r
"""


def test_sdp_negotiated_codec_and_dtmf_payload_types():
    got = sdp.negotiated(ANSWER)
    assert got["codec"]["name"] == "PCMU" and got["codec"]["pt"] == 0 and got["codec"]["clock_rate"] == 8000
    assert got["dtmf"] == [{"pt": 110, "clock_rate": 48000}]
    assert sdp.negotiated(OFFER)["codec"]["params"]["useinbandfec"] == "1"
    assert sdp.max_average_bitrate(OFFER) == 16000 and sdp.max_average_bitrate(ANSWER) is None
    assert [c["name"] for c in sdp.audio_codecs(OFFER)] == ["opus", "red", "PCMU", "telephone-event"]


def test_credentials_passwords_tokens_and_reasons():
    c = Credentials("s3cret", legacy_password="rtcmatrix")
    other = Credentials("another")
    assert c.check("alice", c.password("alice")) == ("alice", None)
    assert c.check("alice", c.password("bob")) == (None, "bad password")
    assert c.check("alice", "rtcmatrix") == ("alice", None)
    assert Credentials("s3cret").check("alice", "rtcmatrix") == (None, "bad password")
    assert c.check(None, token=c.token("carol")) == ("carol", None)
    assert c.check("alice", token=c.token("alice"))[0] == "alice"
    assert c.check("alice", token=other.token("alice")) == (None, "invalid token (bad signature)")
    assert c.check("alice", token="x.y.z") == (None, "malformed token")
    assert c.check("alice", token=c.token("bob"))[1] == "token is for user 'bob', not 'alice'"
    assert c.check("alice", token=c.token("alice", ttl_s=-10))[1].startswith("token expired")
    assert c.check("alice", token=c.token("alice", ttl_s=5), now=time.time() + 10)[1].startswith("token expired")
    assert c.check("alice") == (None, "no password or token")
    assert c.check("", "pw") == (None, "no username")
    with pytest.raises(ValueError):
        Credentials("")


class _Track:
    """A stand-in received track: frames with given pts, then the end."""

    def __init__(self, frames):
        self.frames = list(frames)

    async def recv(self):
        from aiortc.mediastreams import MediaStreamError

        if not self.frames:
            raise MediaStreamError
        return self.frames.pop(0)


def _frame(pts, rate, hz=440.0, n=None, amp=0.3):
    n = n or rate // 50
    t = (pts + np.arange(n)) / rate
    pcm = (amp * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16).reshape(1, -1)
    f = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    f.sample_rate, f.pts, f.time_base = rate, pts, Fraction(1, rate)
    return f


@pytest.mark.parametrize("rate", [48000, 8000])
def test_listener_puts_frames_on_the_media_clock_and_fills_gaps(rate):
    import asyncio

    from harness.farend.listener import Listener

    step = rate // 50
    pts = [i * step for i in range(50)] + [i * step for i in range(60, 110)]  # a 200 ms hole after 1 s

    async def run():
        listener = Listener(_Track(_frame(p, rate) for p in pts))
        await listener.task
        return listener

    listener = asyncio.run(run())
    found = listener.findings()
    assert found["seconds"] == pytest.approx(2.2, abs=0.001)
    assert found["dominant_hz"] == pytest.approx(440, abs=3)
    assert found["longest_gap_s"] == pytest.approx(0.2, abs=0.021)
    timeline = listener.timeline(call_start=listener.anchor)
    assert [s["active"] for s in timeline] == [True, False, True]
    assert timeline[1]["media_start_s"] == pytest.approx(1.0, abs=0.021)

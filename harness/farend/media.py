"""The far end's media plumbing around aiortc (1.16): telephone events, received bitrate,
its own outgoing Opus bitrate, and a gate to mute what it sends.

aiortc does not offer telephone-event, and its decoder thread dies on the first event packet.
`enable_telephone_event()` adds the codec at 48 and 8 kHz; each offer keeps only the one whose
clock matches its first codec (`sdp.restrict_audio`: Chromium with both listed picks 8 kHz for
Opus, and with a 48 kHz one for PCMU stretches every digit 2.75 times). `RtpTap` takes event packets out of the receive path
before aiortc sees them and renumbers the audio packets after them, so the jitter buffer sees
no sequence hole (a hole stalls it ~220 ms per digit). The tap also swaps in
`LossTolerantJitterBuffer`, so that a packet lost on the link is 20 ms of silence in the recording,
not the ~100-240 ms that aiortc's own buffer throws away around it.
"""

from __future__ import annotations

import time

import numpy as np
from aiortc import RTCRtpCodecParameters
from aiortc.codecs import CODECS
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame

from harness.farend.dtmf import Rfc4733Decoder

TELEPHONE_EVENTS = [
    RTCRtpCodecParameters(mimeType="audio/telephone-event", clockRate=48000, payloadType=110, parameters={"0-15": None}),
    RTCRtpCodecParameters(mimeType="audio/telephone-event", clockRate=8000, payloadType=101, parameters={"0-15": None}),
]
# aiortc's Opus encoder runs at 96 kbit/s (~125 kbit/s on the wire), which congests slow links.
# 32 kbit/s is what browsers use for mono voice; a browser's maxaveragebitrate lowers it further.
OPUS_BITRATE = 32_000
SERIES_STEP_S = 1.0


def enable_telephone_event() -> None:
    """Both clocks; every offer is then cut to the one matching its first codec (sdp.restrict_audio),
    so no description ever lists both."""
    for codec in TELEPHONE_EVENTS:
        if not any(c.mimeType.lower() == "audio/telephone-event" and c.clockRate == codec.clockRate
                   for c in CODECS["audio"]):
            CODECS["audio"].append(codec)  # last, so it never becomes the send codec


def limit_opus(pc, bitrate: int) -> int | None:
    """Give every audio sender of `pc` an Opus encoder at `bitrate` before its first packet.
    aiortc creates its encoder lazily (on the first frame) unless one is already there; returns
    the bitrate set, or None when the negotiated codec is not Opus."""
    done = None
    for transceiver in pc.getTransceivers():
        codecs = getattr(transceiver, "_codecs", None) or []
        if transceiver.kind != "audio" or not codecs or codecs[0].mimeType.lower() != "audio/opus":
            continue
        encoder = OpusEncoder()
        encoder.codec.bit_rate = int(bitrate)
        sender = transceiver.sender
        if getattr(sender, "_RTCRtpSender__encoder", None) is None:
            sender._RTCRtpSender__encoder = encoder
            done = int(bitrate)
    return done


class LossTolerantJitterBuffer(JitterBuffer):
    """aiortc's audio jitter buffer, except that a lost packet costs 20 ms, not ~100 ms.

    aiortc's buffer waits at a hole until 16 packets are queued behind it, then throws away the
    hole *and the packets before it* and keeps the backlog full (measured in a simulation: 37 % of
    the packets received at 10 % loss never reached the decoder; 100-240 ms of silence per lost packet
    in the far end's recording). Here, once more packets than the prefetch are queued behind a
    hole, the hole is taken as lost: the packet at the head goes to the decoder and holes are
    skipped (audio: one packet is one frame). Late packets within the prefetch (80 ms) still fit."""

    def add(self, packet):
        pli, frame = super().add(packet)
        if frame is None and not self._is_video and self._origin is not None \
                and sum(p is not None for p in self._packets) > self._prefetch:
            while self._packets[self._origin % self._capacity] is None:
                self.remove(1)
            head = self._packets[self._origin % self._capacity]
            self.remove(1)
            frame = JitterFrame(data=head._data, timestamp=head.timestamp)
        return pli, frame


class RtpTap:
    """Sits in front of an RTCRtpReceiver: counts what arrives (payload types, bytes, per-second
    series), decodes telephone events, and hands the audio packets on."""

    def __init__(self, receiver, dtmf_pts: dict[int, int], started: float | None = None):
        self.receiver = receiver
        self.decoders = {pt: Rfc4733Decoder(clock) for pt, clock in dtmf_pts.items()}
        self.started = started or time.time()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.packets = 0
        self.payload_bytes = 0
        self.pts: dict[int, int] = {}
        self.series: dict[int, int] = {}  # second since `started` -> payload bytes
        self.offset = 0
        self._next = receiver._handle_rtp_packet
        receiver._handle_rtp_packet = self._handle
        if getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None) is not None:  # before the first packet
            receiver._RTCRtpReceiver__jitter_buffer = LossTolerantJitterBuffer(capacity=16, prefetch=4)

    async def _handle(self, packet, arrival_time_ms: int) -> None:
        now = time.time()
        self.first_at = self.first_at or now
        self.last_at = now
        self.packets += 1
        size = len(packet.payload)
        self.payload_bytes += size
        self.pts[packet.payload_type] = self.pts.get(packet.payload_type, 0) + 1
        second = int((now - self.started) / SERIES_STEP_S)
        self.series[second] = self.series.get(second, 0) + size
        decoder = self.decoders.get(packet.payload_type)
        if decoder is not None:
            decoder.feed(packet.payload, packet.timestamp, bool(packet.marker), now)
            self.offset = (self.offset + 1) & 0xFFFF
            return
        if self.offset:
            packet.sequence_number = (packet.sequence_number - self.offset) & 0xFFFF
        await self._next(packet, arrival_time_ms)

    def dtmf(self) -> list[dict]:
        out = []
        for pt, decoder in self.decoders.items():
            for d in decoder.digits():
                d["pt"] = pt
                d["clock_rate"] = decoder.clock_rate
                out.append(d)
        return sorted(out, key=lambda d: d["arrived_at"])

    def bitrate(self, recent_s: float = 3.0) -> dict:
        seconds = (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0
        now_s = int((time.time() - self.started) / SERIES_STEP_S)
        full = [(s, b) for s, b in sorted(self.series.items()) if s < now_s]  # complete seconds only
        recent = [b for s, b in full[-int(recent_s):]] if full else []
        return {
            "packets": self.packets,
            "payload_bytes": self.payload_bytes,
            "seconds": round(seconds, 3),
            "payload_kbps": round(self.payload_bytes * 8 / seconds / 1000, 2) if seconds > 0.5 else None,
            "recent_payload_kbps": round(sum(recent) * 8 / len(recent) / SERIES_STEP_S / 1000, 2) if recent else None,
            "pps": round(self.packets / seconds, 1) if seconds > 0.5 else None,
            "payload_types": {str(k): v for k, v in sorted(self.pts.items())},
            "series": [{"t_s": s * SERIES_STEP_S, "payload_kbps": round(b * 8 / SERIES_STEP_S / 1000, 2)}
                       for s, b in full],
        }


class GatedTrack(MediaStreamTrack):
    """Passes a source's audio through, or silence of the same shape while muted."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack):
        super().__init__()
        self.source = source
        self.muted = False
        self.log: list[dict] = []

    def set_muted(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            self.log.append({"muted": muted, "at": time.time()})

    async def recv(self) -> AudioFrame:
        frame = await self.source.recv()
        if not self.muted:
            return frame
        silent = AudioFrame.from_ndarray(np.zeros_like(frame.to_ndarray()), format=frame.format.name,
                                         layout=frame.layout.name)
        silent.sample_rate, silent.pts, silent.time_base = frame.sample_rate, frame.pts, frame.time_base
        return silent

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class RtcpRttTap:
    """Sits in front of an RTCRtpSender: the round trip of each receiver report the browser sends
    back about our audio (RFC 3550 6.4.1: now - LSR - DLSR). SRTCP hides these fields on the wire;
    the far end holds the keys. aiortc keeps only a smoothed figure, so each raw one is kept here."""

    def __init__(self, sender):
        self.sender = sender
        self.samples: list[tuple[float, float]] = []  # (when, rtt in ms)
        self._next = sender._handle_rtcp_packet
        sender._handle_rtcp_packet = self._handle

    async def _handle(self, packet) -> None:
        lsr = getattr(self.sender, "_RTCRtpSender__lsr", None)
        lsr_time = getattr(self.sender, "_RTCRtpSender__lsr_time", None)
        for report in getattr(packet, "reports", None) or []:
            if report.ssrc == self.sender._ssrc and lsr is not None and report.lsr == lsr and report.dlsr:
                now = time.time()
                self.samples.append((now, round(1000 * (now - lsr_time - report.dlsr / 65536), 2)))
        await self._next(packet)

    def between(self, start: float | None = None, end: float | None = None) -> list[float]:
        return [ms for at, ms in self.samples if (start is None or at >= start) and (end is None or at <= end)]


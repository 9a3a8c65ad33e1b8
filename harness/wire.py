"""What crossed the wire: a capture on the far end's side of the lab link.

The page can say anything; packets cannot. A `WireTap` listens on the server namespace's lab
interface with scapy and tells, per RTP stream (SSRC), how many packets arrived, at what bitrate,
with which payload type, how many sequence numbers are missing, its RFC 3550 interarrival jitter
as a receiver at this point would compute it, how much of each packet is media
payload (after the RTP header, its CSRCs and header extensions), and the IP TOS byte it carried
(DSCP and ECN). The lab's router forwards without rewriting TOS, so what arrives here is what the
browser marked.

SRTCP is encrypted, so the wire reads no RTT from RTCP. ICE's STUN checks are plain: a binding
request the far end sends leaves here, crosses the link, and the browser's answer comes back
through it, so the pair's times are the link's round trip plus the browser's reply time.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

from pydantic import BaseModel
from scapy.arch.linux import L2ListenSocket
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.rtp import RTP
from scapy.sendrecv import AsyncSniffer

from impairments.nsutil import run_in_netns

if TYPE_CHECKING:
    from impairments.lab import Lab


class RtpStream(BaseModel):
    ssrc: int
    src: str
    dst: str
    payload_type: int
    packets: int
    bytes: int
    seconds: float
    kbps: float
    missing_seq: int
    # Media payload: the UDP payload less the RTP header (12 bytes, 4 per CSRC, the header
    # extension). With SRTP it still holds the authentication tag (10 bytes for
    # AES_CM_128_HMAC_SHA1_80, 16 for AEAD_AES_*_GCM), which the wire cannot tell apart.
    payload_bytes: int = 0
    payload_kbps: float = 0.0
    tos: dict[str, int] = {}  # IP TOS byte (as a decimal string) -> packets
    dscp: int | None = None   # the most common DSCP (TOS >> 2)
    # The most common RTP timestamp step between consecutive sequence numbers (the frame length in
    # clock ticks: 960 for 20 ms Opus): rates per media second, whatever the sender's scheduling did.
    ts_step: int | None = None
    clock_hz: int | None = None  # the RTP clock, from the timestamps' pace (8000 for PCMU, 48000 for Opus)
    jitter_ms: float | None = None  # RFC 3550 6.4.1 interarrival jitter, the median of its running value

    @property
    def loss_pct(self) -> float:
        """Sequence numbers that never arrived, as % of those the stream covered."""
        sent = self.packets + self.missing_seq
        return round(100 * self.missing_seq / sent, 2) if sent else 0.0

    @property
    def dscps(self) -> dict[int, int]:
        """DSCP code point -> packets (ECN bits folded)."""
        out: dict[int, int] = {}
        for tos, n in self.tos.items():
            out[int(tos) >> 2] = out.get(int(tos) >> 2, 0) + n
        return out


class WireReport(BaseModel):
    packets: int
    udp_from_client: int
    streams: list[RtpStream]
    tcp_connections_from_client: int = 0  # SYNs: page loads, WebSocket signalling
    tcp_bytes_to_client: int = 0  # TCP payload toward the browser (pages, scripts, signalling)
    capture_cpu_pct: float | None = None  # the capture thread's own CPU, % of one core
    stun_rtt_ms: list[float] = []  # the far end's STUN binding requests answered by the browser

    def from_browser(self, client_ip: str) -> list[RtpStream]:
        return [s for s in self.streams if s.src == client_ip]


class WireTap:
    """Capture on the server side of the lab link while a call runs (`with WireTap(lab): ...`)."""

    def __init__(self, lab: "Lab"):
        self.lab = lab
        self._flows: dict[int, dict] = defaultdict(lambda: {"n": 0, "bytes": 0, "payload": 0, "seqs": set(),
                                                            "tos": defaultdict(int), "steps": defaultdict(int),
                                                            "arrivals": [], "prev": None, "first": None, "last": None})
        self._packets = 0
        self._udp_from_client = 0
        self._tcp_syns = 0
        self._tcp_bytes = 0
        self._stun_sent: dict[bytes, float] = {}
        self._stun_rtt: list[float] = []
        self._lock = threading.Lock()
        self._sniffer: AsyncSniffer | None = None
        self._sock = None
        self._started: float | None = None
        self.cpu_pct: float | None = None

    def __enter__(self) -> "WireTap":
        # The socket must be made inside the namespace; scapy's own thread then reads from it.
        self._sock = run_in_netns(self.lab.server_ns, lambda: L2ListenSocket(iface=self.lab.server_if, nofilter=1))
        self._sniffer = AsyncSniffer(opened_socket=self._sock, prn=self._packet, store=False)
        self._sniffer.start()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._sniffer:
            time.sleep(0.2)
            self.cpu_pct = _thread_cpu_pct(self._sniffer.thread, self._started)
            self._sniffer.stop()
            self._sniffer = None
        if self._sock:
            self._sock.close()
            self._sock = None

    def _packet(self, pkt) -> None:
        with self._lock:
            self._packets += 1
            if IP in pkt and TCP in pkt:
                self._tcp(pkt[IP], pkt[TCP])
                return
            if IP not in pkt or UDP not in pkt:
                return
            ip = pkt[IP]
            if ip.src == self.lab.client_ip:
                self._udp_from_client += 1
            payload = bytes(pkt[UDP].payload)
            if len(payload) >= 20 and payload[4:8] == STUN_COOKIE:
                self._stun(ip, payload, float(pkt.time))
                return
            # RTP (RFC 3550): version 2, and not RTCP (payload types 72-79 with the marker bit, RFC 5761).
            if len(payload) < 12 or payload[0] >> 6 != 2 or 72 <= (payload[1] & 0x7F) <= 79:
                return
            rtp = RTP(payload)
            flow = self._flows[rtp.sourcesync]
            now = float(pkt.time)
            flow.update(src=ip.src, dst=ip.dst, pt=rtp.payload_type)
            flow["n"] += 1
            flow["bytes"] += len(payload)
            flow["payload"] += max(0, len(payload) - _rtp_header_len(payload))
            flow["tos"][ip.tos] += 1
            prev = flow["prev"]
            if prev is not None and (rtp.sequence - prev[0]) & 0xFFFF == 1:
                flow["steps"][(rtp.timestamp - prev[1]) & 0xFFFFFFFF] += 1
            flow["prev"] = (rtp.sequence, rtp.timestamp)
            flow["seqs"].add(rtp.sequence)
            flow["arrivals"].append((now, rtp.timestamp))
            flow["first"] = flow["first"] or now
            flow["last"] = now

    def _stun(self, ip, payload: bytes, now: float) -> None:
        kind, txid = int.from_bytes(payload[:2], "big"), payload[8:20]
        if kind == 0x0001 and ip.dst == self.lab.client_ip:  # binding request toward the browser
            self._stun_sent[txid] = now
        elif kind == 0x0101 and ip.src == self.lab.client_ip and txid in self._stun_sent:  # its success answer
            self._stun_rtt.append(round(1000 * (now - self._stun_sent.pop(txid)), 3))

    def _tcp(self, ip, tcp) -> None:
        if ip.src == self.lab.client_ip and tcp.flags & 0x02 and not tcp.flags & 0x10:  # SYN, not SYN-ACK
            self._tcp_syns += 1
        elif ip.dst == self.lab.client_ip:
            self._tcp_bytes += len(bytes(tcp.payload))

    def report(self) -> WireReport:
        with self._lock:
            streams = []
            for ssrc, f in self._flows.items():
                seconds = (f["last"] - f["first"]) if f["n"] > 1 else 0.0
                seqs = f["seqs"]
                span = _seq_span(list(seqs))
                tos = dict(f["tos"])
                dscp = max(tos, key=tos.get) >> 2 if tos else None
                steps = f["steps"]
                clock = _clock_hz(f["arrivals"], f["pt"])
                streams.append(RtpStream(
                    ssrc=ssrc, src=f["src"], dst=f["dst"], payload_type=f["pt"], packets=f["n"], bytes=f["bytes"],
                    seconds=seconds, kbps=8 * f["bytes"] / seconds / 1000 if seconds else 0.0,
                    missing_seq=max(0, span - len(seqs)), payload_bytes=f["payload"],
                    payload_kbps=8 * f["payload"] / seconds / 1000 if seconds else 0.0,
                    tos={str(k): v for k, v in sorted(tos.items())}, dscp=dscp,
                    ts_step=max(steps, key=steps.get) if steps else None,
                    clock_hz=clock, jitter_ms=_jitter_ms(f["arrivals"], clock)))
            return WireReport(packets=self._packets, udp_from_client=self._udp_from_client, streams=streams,
                              tcp_connections_from_client=self._tcp_syns, tcp_bytes_to_client=self._tcp_bytes,
                              capture_cpu_pct=self.cpu_pct, stun_rtt_ms=list(self._stun_rtt))


def _thread_cpu_pct(thread: threading.Thread | None, since: float | None) -> float | None:
    """A live thread's CPU time since it started, as % of one core (its own clock, Linux)."""
    if thread is None or thread.ident is None or since is None or not thread.is_alive():
        return None
    try:
        used = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, AttributeError):
        return None
    wall = time.monotonic() - since
    return round(100 * used / wall, 2) if wall > 0 else None


STUN_COOKIE = bytes.fromhex("2112a442")  # RFC 5389's magic cookie
CLOCKS = (8000, 16000, 48000)  # audio RTP clocks (RFC 3551, RFC 7587 for Opus)
STATIC_CLOCKS = {0: 8000, 8: 8000, 9: 8000, 18: 8000}  # PCMU, PCMA, G722 (8 kHz by RFC 3551's erratum), G729


def _clock_hz(arrivals: list[tuple[float, int]], pt: int) -> int | None:
    """A stream's RTP clock: static payload types have one; a dynamic one is paced by its
    timestamps, which advance at the clock rate against the wall (snapped to a standard rate)."""
    if pt in STATIC_CLOCKS:
        return STATIC_CLOCKS[pt]
    if len(arrivals) < 10:
        return None
    (t0, ts0), (t1, ts1) = arrivals[0], arrivals[-1]
    if t1 - t0 < 0.5:
        return None
    pace = ((ts1 - ts0) & 0xFFFFFFFF) / (t1 - t0)
    best = min(CLOCKS, key=lambda c: abs(c - pace))
    return best if abs(best - pace) < 0.25 * best else None


JITTER_WARMUP = 48  # packets: the estimate starts at 0 here, mid-call; after 48 steps it is within 5 %


def _jitter_ms(arrivals: list[tuple[float, int]], clock_hz: int | None) -> float | None:
    """RFC 3550 6.4.1: J += (|D| - J) / 16, D the change in transit time between packets in
    arrival order, in timestamp units; returned in ms.

    The median of J over the capture (after its warm-up), not its last value: the browser's figure
    beside it is the median of the far end's receiver reports, each one J at that moment, and J swings
    with the sender's pacing (one CI run ended on 7.8 ms where the reports' median was 3.5)."""
    if not clock_hz or len(arrivals) < 2:
        return None
    j, running = 0.0, []
    for (r0, s0), (r1, s1) in zip(arrivals, arrivals[1:]):
        ds = (s1 - s0 + 2**31) % 2**32 - 2**31  # signed: a reordered packet steps back
        d = (r1 - r0) * clock_hz - ds
        j += (abs(d) - j) / 16
        running.append(j)
    settled = running[JITTER_WARMUP:] if len(running) > 2 * JITTER_WARMUP else running[-1:]
    return round(1000 * statistics.median(settled) / clock_hz, 3)


def _rtp_header_len(payload: bytes) -> int:
    """Bytes of RTP header (RFC 3550 5.1, 5.3.1): fixed part, CSRC list, header extension."""
    n = 12 + 4 * (payload[0] & 0x0F)
    if payload[0] & 0x10 and len(payload) >= n + 4:
        n += 4 + 4 * int.from_bytes(payload[n + 2:n + 4], "big")
    return min(n, len(payload))


def _seq_span(seqs: list[int]) -> int:
    """How many sequence numbers the stream covered, allowing for one 16-bit wrap."""
    if not seqs:
        return 0
    seqs = sorted(seqs)
    gaps = [b - a for a, b in zip(seqs, seqs[1:])]
    if gaps and max(gaps) > 32768:  # wrapped: the largest gap is the wrap point
        return 65536 - max(gaps) + 1
    return seqs[-1] - seqs[0] + 1

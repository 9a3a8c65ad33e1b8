"""What crossed the wire: a capture on the far end's side of the lab link.

The page can say anything; packets cannot. A `WireTap` listens on the server namespace's lab
interface with scapy and tells, per RTP stream (SSRC), how many packets arrived, at what bitrate,
with which payload type, how many sequence numbers are missing, how much of each packet is media
payload (after the RTP header, its CSRCs and header extensions), and the IP TOS byte it carried
(DSCP and ECN). The lab's router forwards without rewriting TOS, so what arrives here is what the
browser marked.
"""

from __future__ import annotations

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

    def from_browser(self, client_ip: str) -> list[RtpStream]:
        return [s for s in self.streams if s.src == client_ip]


class WireTap:
    """Capture on the server side of the lab link while a call runs (`with WireTap(lab): ...`)."""

    def __init__(self, lab: "Lab"):
        self.lab = lab
        self._flows: dict[int, dict] = defaultdict(lambda: {"n": 0, "bytes": 0, "payload": 0, "seqs": set(),
                                                            "tos": defaultdict(int), "steps": defaultdict(int),
                                                            "prev": None, "first": None, "last": None})
        self._packets = 0
        self._udp_from_client = 0
        self._tcp_syns = 0
        self._tcp_bytes = 0
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
            flow["first"] = flow["first"] or now
            flow["last"] = now

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
                streams.append(RtpStream(
                    ssrc=ssrc, src=f["src"], dst=f["dst"], payload_type=f["pt"], packets=f["n"], bytes=f["bytes"],
                    seconds=seconds, kbps=8 * f["bytes"] / seconds / 1000 if seconds else 0.0,
                    missing_seq=max(0, span - len(seqs)), payload_bytes=f["payload"],
                    payload_kbps=8 * f["payload"] / seconds / 1000 if seconds else 0.0,
                    tos={str(k): v for k, v in sorted(tos.items())}, dscp=dscp,
                    ts_step=max(steps, key=steps.get) if steps else None))
            return WireReport(packets=self._packets, udp_from_client=self._udp_from_client, streams=streams,
                              tcp_connections_from_client=self._tcp_syns, tcp_bytes_to_client=self._tcp_bytes,
                              capture_cpu_pct=self.cpu_pct)


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

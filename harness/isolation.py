"""Proof that nothing leaves the lab: every packet in the client namespace, and every packet on
the host that carries a lab address, captured while browsers run.

Inside the client namespace every packet must be to or from a lab address or loopback; on the
host, no packet may carry a lab source address (the lab has no way out, and this shows it).
Name lookups are listed too: they go to the namespace's own loopback, where nothing answers.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter

import socket

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from impairments.lab import LAB_NET
from impairments.nsutil import off_loop

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
ETH_P_ALL = 0x0003


class Capture:
    """All IPv4 packets on every interface of one namespace (None: the host's)."""

    def __init__(self, netns: str | None = None):
        self.netns = netns
        self.flows: Counter = Counter()
        self.lookups: Counter = Counter()
        self.igmp_groups: Counter = Counter()  # multicast groups something joined (IGMPv3 reports)
        self.packets = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def start(self) -> "Capture":
        # An unbound packet socket hears every interface of the namespace it was made in.
        self._sock = off_loop(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)),
                              self.netns)
        self._sock.settimeout(0.2)
        self._reader = threading.Thread(target=self._read, name="isolation-capture", daemon=True)
        self._reader.start()
        return self

    def stop(self) -> "Capture":
        self._stop.set()
        if self._reader:
            self._reader.join(timeout=5)
            self._reader = None
        if self._sock:
            self._sock.close()
            self._sock = None
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._packet(Ether(data))

    def _packet(self, pkt) -> None:
        if IP not in pkt:
            return
        ip = pkt[IP]
        with self._lock:
            self.packets += 1
            self.flows[(ip.src, ip.dst, ip.proto)] += 1
            if ip.proto == 2:
                raw = bytes(ip.payload)
                if len(raw) >= 16 and raw[0] == 0x22:  # IGMPv3 report: the first record's group
                    self.igmp_groups[str(ipaddress.ip_address(raw[12:16]))] += 1
            if DNS in pkt and pkt[DNS].qr == 0 and DNSQR in pkt:
                self.lookups[pkt[DNSQR].qname.decode(errors="replace").rstrip(".")] += 1

    def escaping(self) -> list[tuple[str, str, int, int]]:
        """Client side: flows with an end that is neither a lab address nor loopback."""
        inside = lambda a: ipaddress.ip_address(a) in LAB_NET or ipaddress.ip_address(a) in LOOPBACK  # noqa: E731
        with self._lock:
            return [(s, d, p, n) for (s, d, p), n in self.flows.items() if not (inside(s) and inside(d))]

    def with_lab_source(self) -> list[tuple[str, str, int, int]]:
        """Host side: flows whose source is a lab address."""
        with self._lock:
            return [(s, d, p, n) for (s, d, p), n in self.flows.items() if ipaddress.ip_address(s) in LAB_NET]

    def summary(self) -> dict:
        with self._lock:
            return {"packets": self.packets,
                    "flows": [{"src": s, "dst": d, "proto": p, "packets": n} for (s, d, p), n in self.flows.most_common()],
                    "lookups": dict(self.lookups), "igmp_groups": dict(self.igmp_groups)}

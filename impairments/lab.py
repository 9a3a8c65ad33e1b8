"""The lab network: client and server namespaces joined through an impairing router.

    client ns (browser)  --[uplink netem]-->  router  --+-->  server ns (far end)
                         <--[downlink netem]--          |

Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking space); the client namespace's only
route is the lab link, so a browser inside it cannot reach anything else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pyroute2 import IPRoute, NetNS, netns

from impairments import neighbours, sweep
from impairments.detect import host_has_netem
from impairments.nsutil import off_loop, write_sysctl
from impairments.profile import Profile
from impairments.routers.host import HostRouter
from impairments.uml.router import UmlRouter

Backend = Literal["auto", "host", "uml"]
LAB_NET = ipaddress.ip_network("198.18.0.0/15")
SLOTS = 256  # two /24s per lab
PREFIXLEN = 24
MTU = 1500


class LabError(RuntimeError):
    """The lab could not be built; the message says why and what to do."""


@dataclass
class Applied:
    """A profile as it was applied: what was asked, what netem was given, and when."""

    profile: Profile
    at: float
    took_s: float
    netem: dict = field(default_factory=dict)


def _subnets(index: int) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
    nets = list(LAB_NET.subnets(new_prefix=PREFIXLEN))
    return nets[2 * index], nets[2 * index + 1]


class Lab:
    """A running lab. Use it as a context manager: it always tears down what it built."""

    def __init__(self, backend: Backend = "auto", lab_id: str | None = None, log_dir: Path | None = None):
        self.requested_backend = backend
        self.lab_id = lab_id or secrets.token_hex(2)
        self.client_ns = f"{sweep.PREFIX}{self.lab_id}-client"
        self.server_ns = f"{sweep.PREFIX}{self.lab_id}-server"
        self.router_ns = f"{sweep.PREFIX}{self.lab_id}-router"
        self.client_if = f"rtcm{self.lab_id}-c"
        self.server_if = f"rtcm{self.lab_id}-s"
        self.run_dir = sweep.RUN_ROOT / self.lab_id
        self.log_dir = log_dir or self.run_dir
        self.router: HostRouter | UmlRouter | None = None
        self.record: sweep.Record | None = None
        self.applied: Applied | None = None
        self.started_s: float | None = None
        self.client_ip = self.server_ip = self.client_gw = self.server_gw = ""

    @property
    def namespaces(self) -> list[str]:
        return [self.client_ns, self.server_ns, self.router_ns]

    @property
    def backend(self) -> str:
        """Which netem really runs: `host-netem` or `uml-netem`."""
        return f"{self.router.kind}-netem" if self.router else "none"

    def __enter__(self) -> "Lab":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        off_loop(self._start)

    def _start(self) -> None:
        t0 = time.monotonic()
        sweep.sweep()
        backend = self._choose_backend()
        self.record = sweep.claim(self.lab_id, self.namespaces, SLOTS)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        client_net, server_net = _subnets(self.record.index)
        c_hosts, s_hosts = list(client_net.hosts()), list(server_net.hosts())
        self.client_gw, self.client_ip = str(c_hosts[0]), str(c_hosts[1])
        self.server_gw, self.server_ip = str(s_hosts[0]), str(s_hosts[1])
        for name in self.namespaces:
            netns.create(name)
        sweep.write_resolver(self.client_ns)
        if backend == "host":
            self._wire_host()
        else:
            self._wire_uml()
        self._address_end(self.client_ns, self.client_if, self.client_ip, self.client_gw)
        self._address_end(self.server_ns, self.server_if, self.server_ip, self.server_gw)
        if isinstance(self.router, UmlRouter):
            self.router.start({UmlRouter.client_if: self.client_gw, UmlRouter.server_if: self.server_gw}, PREFIXLEN)
        self._pin_neighbours()
        self._apply(Profile(name="ideal"))
        self.started_s = time.monotonic() - t0

    def _choose_backend(self) -> str:
        if self.requested_backend == "host" and not host_has_netem():
            raise LabError("backend 'host' asked for, but this kernel has no sch_netem; "
                           "use --backend uml (User-mode Linux) or auto")
        if self.requested_backend == "auto":
            return "host" if host_has_netem() else "uml"
        return self.requested_backend

    def _wire_host(self) -> None:
        rc, rs = f"rtcm{self.lab_id}-rc", f"rtcm{self.lab_id}-rs"
        with IPRoute() as ipr:
            for end, peer, ns in ((self.client_if, rc, self.client_ns), (self.server_if, rs, self.server_ns)):
                ipr.link("add", ifname=end, kind="veth", peer=peer)
                ipr.link("set", index=ipr.link_lookup(ifname=peer)[0], net_ns_fd=self.router_ns)
                ipr.link("set", index=ipr.link_lookup(ifname=end)[0], net_ns_fd=ns)
        self.router = HostRouter(self.router_ns, client_if=rc, server_if=rs)
        self.router.start({rc: self.client_gw, rs: self.server_gw}, PREFIXLEN)

    def _wire_uml(self) -> None:
        # UML opens the taps by name in its own namespace; once attached they can move on.
        with IPRoute() as ipr:
            for tap in (self.client_if, self.server_if):
                ipr.link("add", ifname=tap, kind="tuntap", mode="tap")
                ipr.link("set", index=ipr.link_lookup(ifname=tap)[0], net_ns_fd=self.router_ns)
        self.router = UmlRouter(self.router_ns, self.run_dir, f"{sweep.PREFIX}{self.lab_id}",
                                self.client_if, self.server_if, console_log=self.log_dir / "uml-console.log")
        self.router.boot()
        # Move the taps while the guest is silent (no addresses yet), so it never writes into a moving tap.
        with NetNS(self.router_ns) as ns:
            for tap, target in ((self.client_if, self.client_ns), (self.server_if, self.server_ns)):
                fd = os.open(sweep.NETNS_DIR / target, os.O_RDONLY)
                try:
                    ns.link("set", index=ns.link_lookup(ifname=tap)[0], net_ns_fd=fd)
                finally:
                    os.close(fd)

    def _pin_neighbours(self) -> None:
        """Each end and the router know each other's MAC: no ARP crosses netem (impairments/neighbours.py)."""
        def end_mac(ns_name: str, ifname: str) -> str:
            with NetNS(ns_name) as ns:
                return neighbours.mac(ns, ifname)

        router = self.router
        assert router is not None
        macs = router.macs()
        router.neighbours({router.client_if: [(self.client_ip, end_mac(self.client_ns, self.client_if))],
                           router.server_if: [(self.server_ip, end_mac(self.server_ns, self.server_if))]})
        for ns_name, ifname, gateway, side in ((self.client_ns, self.client_if, self.client_gw, router.client_if),
                                               (self.server_ns, self.server_if, self.server_gw, router.server_if)):
            with NetNS(ns_name) as ns:
                neighbours.add(ns, ifname, gateway, macs[side])

    def _address_end(self, ns_name: str, ifname: str, address: str, gateway: str) -> None:
        for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
            write_sysctl(ns_name, key, "1")
        with NetNS(ns_name) as ns:
            idx = ns.link_lookup(ifname=ifname)[0]
            ns.link("set", index=idx, mtu=MTU)
            ns.addr("add", index=idx, address=address, prefixlen=PREFIXLEN)
            ns.link("set", index=idx, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)

    def apply(self, profile: Profile) -> Applied:
        """Set both directions; returns what netem was given, timed."""
        return off_loop(lambda: self._apply(profile))

    def _apply(self, profile: Profile) -> Applied:
        if not self.router:
            raise LabError("the lab is not running")
        t0 = time.time()
        r = self.router
        both = r.apply_many({r.server_if: profile.uplink, r.client_if: profile.downlink})
        sent = {"uplink": both[r.server_if], "downlink": both[r.client_if]}
        self.applied = Applied(profile, at=t0, took_s=time.time() - t0, netem=sent)
        return self.applied

    def exec_prefix(self, side: Literal["client", "server"]) -> list[str]:
        return ["ip", "netns", "exec", self.client_ns if side == "client" else self.server_ns]

    def describe(self) -> dict:
        return {
            "lab_id": self.lab_id,
            "backend": self.backend,
            "namespaces": {"client": self.client_ns, "server": self.server_ns, "router": self.router_ns},
            "client_ip": self.client_ip,
            "server_ip": self.server_ip,
            "router_boot_s": self.router.boot_s if self.router else None,
            "start_s": self.started_s,
        }

    def close(self) -> None:
        off_loop(self._close)

    def _close(self) -> None:
        if self.router:
            with contextlib.suppress(Exception):
                self.router.stop()
            self.router = None
        for name in self.namespaces:
            sweep.remove_namespace(name)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        sweep.remove_resolver(self.client_ns)
        if self.record:
            sweep.release(self.record)
            self.record = None

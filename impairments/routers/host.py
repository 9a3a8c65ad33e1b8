"""The lab router as a plain namespace: for host kernels that have sch_netem."""

from __future__ import annotations

from pyroute2 import IPRoute

from impairments import neighbours
from impairments.netem import apply_link, read_root
from impairments.nsutil import run_in_netns, write_sysctl
from impairments.profile import Link


class HostRouter:
    """Forwards between two veths inside the router namespace; netem sits on each egress."""

    kind = "host"
    boot_s = 0.0

    def __init__(self, netns: str, client_if: str, server_if: str):
        self.netns = netns
        self.client_if = client_if
        self.server_if = server_if
        self.last: dict[str, Link] = {}

    def start(self, addresses: dict[str, str], prefixlen: int) -> None:
        write_sysctl(self.netns, "net.ipv4.ip_forward", "1")
        write_sysctl(self.netns, "net.ipv6.conf.all.disable_ipv6", "1")
        def up():
            with IPRoute() as ipr:
                for ifname, address in addresses.items():
                    idx = ipr.link_lookup(ifname=ifname)[0]
                    ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
                    ipr.link("set", index=idx, state="up")
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

        run_in_netns(self.netns, up)

    def macs(self) -> dict[str, str]:
        return self._in_router(lambda ipr: {i: neighbours.mac(ipr, i) for i in (self.client_if, self.server_if)})

    def neighbours(self, entries: dict[str, list[tuple[str, str]]]) -> None:
        self._in_router(lambda ipr: [neighbours.add(ipr, i, a, m) for i, pairs in entries.items() for a, m in pairs])

    def _in_router(self, fn):
        def call():
            with IPRoute() as ipr:
                return fn(ipr)

        return run_in_netns(self.netns, call)

    def apply(self, ifname: str, link: Link) -> dict:
        sent = self._in_router(lambda ipr: apply_link(ipr, ifname, link, self.last.get(ifname)))
        self.last[ifname] = link
        return sent

    def apply_many(self, links: dict[str, Link]) -> dict[str, dict]:
        return {ifname: self.apply(ifname, link) for ifname, link in links.items()}

    def read(self, ifname: str) -> dict:
        return self._in_router(lambda ipr: read_root(ipr, ifname))

    def stop(self) -> None:
        pass  # the router namespace goes with the lab

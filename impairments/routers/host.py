"""The lab router as a plain namespace: for host kernels that have sch_netem."""

from __future__ import annotations

from pyroute2 import NetNS

from impairments.netem import apply_link, read_root
from impairments.nsutil import write_sysctl
from impairments.profile import Link


class HostRouter:
    """Forwards between two veths inside the router namespace; netem sits on each egress."""

    kind = "host"
    boot_s = 0.0

    def __init__(self, netns: str, client_if: str, server_if: str):
        self.netns = netns
        self.client_if = client_if
        self.server_if = server_if
        self._ns: NetNS | None = None

    def start(self, addresses: dict[str, str], prefixlen: int) -> None:
        write_sysctl(self.netns, "net.ipv4.ip_forward", "1")
        write_sysctl(self.netns, "net.ipv6.conf.all.disable_ipv6", "1")
        self._ns = NetNS(self.netns)
        for ifname, address in addresses.items():
            idx = self._ns.link_lookup(ifname=ifname)[0]
            self._ns.addr("add", index=idx, address=address, prefixlen=prefixlen)
            self._ns.link("set", index=idx, state="up")
        self._ns.link("set", index=self._ns.link_lookup(ifname="lo")[0], state="up")

    def apply(self, ifname: str, link: Link) -> dict:
        assert self._ns
        return apply_link(self._ns, ifname, link)

    def read(self, ifname: str) -> dict:
        assert self._ns
        return read_root(self._ns, ifname)

    def stop(self) -> None:
        if self._ns:
            self._ns.close()
            self._ns = None

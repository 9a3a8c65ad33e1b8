"""Permanent neighbour (ARP) entries on the lab's two links.

Address resolution would otherwise cross netem like any packet: the first packets of a fresh lab
waited for it (40 ms probes on a 20 ms link), and under loss a lost ARP request holds the queue for
the kernel's 1 s retransmit and overflows it (26.5 % loss measured on a 5 % link in a CI run). The
impairment is the path between the browser and the far end, not its neighbour discovery, so each
end and the router know each other's link-layer address from the start.
"""

from __future__ import annotations

from pyroute2 import IPRoute

NUD_PERMANENT = 0x80


def mac(ipr: IPRoute, ifname: str) -> str:
    return ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0].get_attr("IFLA_ADDRESS")


def add(ipr: IPRoute, ifname: str, address: str, lladdr: str) -> None:
    ipr.neigh("replace", dst=address, lladdr=lladdr, ifindex=ipr.link_lookup(ifname=ifname)[0], state=NUD_PERMANENT)

"""Runs as PID 1's child inside the UML router; configures it with pyroute2 on request.

Requests arrive on the console one JSON object per line; each answer is one line starting
with MARKER so the host can tell it from kernel messages and console noise.
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys
import termios
import traceback

from pyroute2 import IPRoute

from impairments import neighbours
from impairments.netem import apply_link, clear_root, read_root
from impairments.profile import Link

MARKER = "@@rtcm "
LAST: dict[str, Link] = {}  # what each interface has now, for in-place changes
INDEX: dict[str, int] = {}  # the guest's interfaces never change; a lookup costs ms under UML
POWER_OFF = 0x4321FEDC


def _quiet_console() -> None:
    attrs = termios.tcgetattr(0)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(0, termios.TCSANOW, attrs)


def _links_up(ipr: IPRoute, req: dict) -> dict:
    """Open the taps (UML's vector driver attaches at ifup) without sending a single packet:
    IPv6 off and no address yet, so the host can still move the taps safely."""
    for scope in ("all", "default"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w") as f:
                f.write("1")
        except FileNotFoundError:  # a kernel built without IPv6 sends none
            pass
    for ifname in req["ifnames"] + ["lo"]:
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.link("set", index=idx, state="up", mtu=req.get("mtu", 1500))
    return {}


def _configure(ipr: IPRoute, req: dict) -> dict:
    for ifname, address in req["addresses"].items():
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=idx, address=address, prefixlen=req["prefixlen"])
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")
    return {}


def handle(ipr: IPRoute, req: dict) -> dict:
    op = req["op"]
    if op == "ping":
        return {}
    if op == "macs":
        return {"macs": {i: neighbours.mac(ipr, i) for i in req["ifnames"]}}
    if op == "neighbours":
        for ifname, entries in req["neighbours"].items():
            for address, lladdr in entries:
                neighbours.add(ipr, ifname, address, lladdr)
        return {}
    if op == "links_up":
        return _links_up(ipr, req)
    if op == "configure":
        return _configure(ipr, req)
    if op == "apply":
        link = Link.model_validate(req["link"])
        sent = apply_link(ipr, req["ifname"], link, LAST.get(req["ifname"]))
        LAST[req["ifname"]] = link
        return {"sent": sent}
    if op == "apply_many":  # both directions in one console round trip, so a schedule step lands at once
        sent = {}
        for ifname, raw in req["links"].items():
            link = Link.model_validate(raw)
            if ifname not in INDEX:
                INDEX[ifname] = ipr.link_lookup(ifname=ifname)[0]
            sent[ifname] = apply_link(ipr, ifname, link, LAST.get(ifname), index=INDEX[ifname])
            LAST[ifname] = link
        return {"sent": sent}
    if op == "clear":
        clear_root(ipr, ipr.link_lookup(ifname=req["ifname"])[0])
        return {}
    if op == "read":
        return {"qdisc": read_root(ipr, req["ifname"])}
    if op == "poweroff":
        sys.stdout.write(MARKER + json.dumps({"id": req.get("id"), "ok": True}) + "\n")
        sys.stdout.flush()
        ctypes.CDLL(None).reboot(POWER_OFF)
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    _quiet_console()
    ipr = IPRoute()
    # UML makes every allocation slow; a collection of the startup heap mid-request
    # would show as a late schedule step.
    gc.collect()
    gc.freeze()
    print(MARKER + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            req = json.loads(line)
            reply = {"id": req.get("id"), "ok": True, **handle(ipr, req)}
        except Exception as err:  # report every failure to the host, keep serving
            reply = {"id": None, "ok": False, "error": f"{type(err).__name__}: {err}",
                     "trace": traceback.format_exc(limit=3)}
            try:
                reply["id"] = json.loads(line).get("id")
            except ValueError:
                pass
        print(MARKER + json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

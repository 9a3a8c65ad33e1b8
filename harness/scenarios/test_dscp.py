"""DSCP marking: with `dscp` on (the SDK's default) the SDK asks for high network priority on its
audio sender, and the browser should mark its RTP packets with a DSCP code point to match.

Budget: about 2.5 s of media (one call, a 2 s capture).
The SDK's part is proven on the page (the sender's encodings carry networkPriority "high"); the
browser's part only on the wire: the IP TOS byte of every RTP packet of the browser's stream, read on
the far end's side of the lab link. A control packet marked EF from the client namespace, sent during
the same capture, shows the lab link carries a mark unchanged, so an unmarked stream is the browser's
doing. WebRTC maps sender priority to DSCP as very-low CS1 (8), low 0, medium AF42 (36), high EF (46)
(RFC 8837); Chromium applies the mark only where its socket layer does, which is platform-dependent.
"""

import socket
import time

import pytest

from harness.scenarios.common import open_for_calls, require_sdk
from harness.wire import WireTap
from impairments.nsutil import run_in_netns

pytestmark = [pytest.mark.scenario("dscp"), pytest.mark.slow, pytest.mark.lab]

CAPTURE_S = 2.0
EF = 46  # Expedited Forwarding (RFC 3246): what "high" priority audio maps to (RFC 8837 section 5)
CONTROL_SSRC = 0x52544D43  # "RTMC": the control packet's RTP SSRC, never a browser's by chance
CONTROL_PORT = 9  # discard: nothing listens, the far end's kernel just answers port-unreachable
MIN_PACKETS = 50  # 2 s of Opus at 20 ms is 100 packets


def _send_marked(lab, dscp: int, count: int = 5) -> None:
    """Send RTP-shaped UDP packets marked with `dscp` from the client namespace to the far end."""
    def send():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
            for seq in range(count):
                header = bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + (0).to_bytes(4, "big")
                s.sendto(header + CONTROL_SSRC.to_bytes(4, "big") + bytes(20), (lab.server_ip, CONTROL_PORT))
    run_in_netns(lab.client_ns, send)


def test_dscp(cell, softphone, far_end, lab):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "dscp", "dscp (sender network priority)")
    softphone.login()
    softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    with WireTap(lab) as tap:
        time.sleep(CAPTURE_S / 2)
        _send_marked(lab, EF)
        time.sleep(CAPTURE_S / 2)
    senders = softphone.page.evaluate("rtcm.probe.senders()")
    softphone.hangup()
    wire = tap.report()
    cell.keep("wire.json", wire.model_dump())
    sent = [s for s in wire.from_browser(lab.client_ip) if s.ssrc != CONTROL_SSRC]
    encodings = senders[0]["encodings"] if senders else []
    first = encodings[0] if encodings else {}
    # `priority` is in every engine's RTCRtpEncodingParameters; `networkPriority` (the one Chromium
    # marks DSCP from) only where the browser knows it: an engine without it drops it from the parameters.
    kept_network_priority = "networkPriority" in first
    cell.prove("page", "the SDK asked for high priority on its audio sender (dscp on)",
               first.get("priority") == "high" and first.get("networkPriority", "high") == "high",
               encodings=encodings, dscp_option=(info.get("options") or {}).get("dscp"),
               browser_kept_network_priority=kept_network_priority,
               wire_tos=[s.tos for s in sent])
    control = next((s for s in wire.streams if s.ssrc == CONTROL_SSRC), None)
    cell.prove("wire", "the lab link carries a DSCP mark unchanged (a control packet marked EF arrived marked EF)",
               control is not None and control.dscps == {EF: control.packets},
               control_tos=control.tos if control else None)
    cell.prove("wire", "the browser's RTP stream crossed the lab link",
               len(sent) == 1 and sent[0].packets >= MIN_PACKETS,
               streams=[{"ssrc": s.ssrc, "packets": s.packets, "tos": s.tos} for s in sent])
    stream = sent[0]
    dscps = stream.dscps
    figures = {"ssrc": stream.ssrc, "packets": stream.packets, "tos": stream.tos, "dscp": dscps,
               "network_priority": first.get("networkPriority")}
    if set(dscps) == {0}:
        missing = ("RTCRtpEncodingParameters.networkPriority (and DSCP marking of RTP)" if not kept_network_priority
                   else "DSCP marking of RTP from RTCRtpSender networkPriority")
        lacks = ("has no networkPriority (setParameters dropped it) and" if not kept_network_priority
                 else "keeps networkPriority high but")
        cell.behaviour = (f"the SDK asks for high priority; the browser sends its RTP unmarked "
                          f"(DSCP 0 on all {stream.packets} packets)")
        cell.not_supported("browser", missing,
                           f"the browser {lacks} sends its RTP with DSCP 0 (all {stream.packets} packets on the wire), "
                           "though the lab link carries EF marks", wire=figures, control_tos=control.tos,
                           encodings=encodings)
    cell.prove("wire", f"every RTP packet of the browser carries DSCP EF ({EF}), as networkPriority high asks",
               dscps == {EF: stream.packets}, **figures)
    cell.behaviour = f"RTP marked DSCP {EF} (EF) on all {stream.packets} packets, from networkPriority high"

"""Codec negotiation (Opus, PCMU): each codec asked for (`call(..., {codec})`) is the one negotiated
and the one on the wire.

Budget: two calls of about 1.5 s each (one per codec). Per call: the far end's SDP says which codec
and payload type the answer settled on; a capture on the lab link shows the payload type of the
browser's RTP (dynamic, as the SDP maps it, for Opus; 0 for PCMU); the far end must hear the
browser's 440 Hz tone through it. A codec the browser cannot encode (RTCRtpSender capabilities) is
not-supported by the browser; one the SDK does not offer (features().codecs) by the SDK.
"""

import time

import pytest

from harness.farend.audio import TONE_HZ
from harness.scenarios.common import far_end_wait, open_for_calls
from harness.wire import WireTap

pytestmark = [pytest.mark.scenario("codec"), pytest.mark.slow, pytest.mark.lab]

CODECS = {"opus": {"clock_rate": 48000, "static_pt": None}, "pcmu": {"clock_rate": 8000, "static_pt": 0}}
CAPTURE_S = 1.2
# The far end names a tone from half a second of audio. On wifi-congested (1 % loss) a PCMU call's
# media once started late enough that 1.2 s after connected it had less: wait for it, a little.
HEARD_MIN_S, HEARD_WAIT_S = 0.8, 3.0
TONE_TOLERANCE_HZ = 5.0
MIN_PACKETS = 40  # 20 ms packets: 60 in 1.2 s; fewer is a stream that barely flows
BROWSER_CODECS_JS = """() => (window.RTCRtpSender && RTCRtpSender.getCapabilities)
  ? RTCRtpSender.getCapabilities("audio").codecs.map((c) => c.mimeType.toLowerCase()) : []"""
CONNECTED_JS = """(id) => rtcm.events.find(e => (e.type === "connected" || e.type === "failed")
  && e.detail.callId === id) || null"""


def _offered_pt(sdp: str, name: str) -> int | None:
    """The payload type this SDP maps to the codec `name` (first one listed)."""
    for line in (sdp or "").replace("\r\n", "\n").split("\n"):
        if line.startswith("a=rtpmap:") and line.split(" ", 1)[-1].lower().startswith(name + "/"):
            return int(line[len("a=rtpmap:"):].split(" ", 1)[0])
    return None


def test_codec(cell, softphone, far_end, lab):
    info = open_for_calls(cell, softphone)
    offered = [c.lower() for c in (info.get("features") or {}).get("codecs") or []]
    browser = softphone.page.evaluate(BROWSER_CODECS_JS)
    softphone.login()
    figures, lacking = {}, []
    for name, want in CODECS.items():
        if f"audio/{name}" not in browser:
            lacking.append(("browser", f"{name.upper()} encoder", f"this browser cannot send {name.upper()} "
                            "(not in RTCRtpSender.getCapabilities('audio'))"))
            continue
        if name not in offered:
            lacking.append(("sdk", f"codec {name}", f"the SDK adapter {info.get('name')!r} does not offer {name}"))
            continue
        figures[name] = _one_codec(cell, softphone, far_end, lab, name, want)
    cell.keep("codec-figures.json", figures)
    if lacking:
        who, missing, why = lacking[0]
        cell.not_supported(who, missing, why + (f"; {', '.join(figures)} negotiated and heard" if figures else ""),
                           proven=figures, browser_codecs=browser, sdk_codecs=offered)


def _one_codec(cell, softphone, far_end, lab, name: str, want: dict) -> dict:
    call_id = softphone.call(far_end.callee, codec=name)
    found = softphone.page.wait_for(CONNECTED_JS, arg=call_id, timeout_s=cell.options.connect_timeout_s)
    cell.prove("page", f"the {name} call connected", found["type"] == "connected", event=found)
    with WireTap(lab) as tap:
        time.sleep(CAPTURE_S)
    wire = tap.report()
    sdp = far_end.sdp(call_id)
    enough = lambda s: ((s.get("heard") or {}).get("seconds") or 0) >= HEARD_MIN_S  # noqa: E731
    heard = far_end_wait(far_end, call_id, enough, HEARD_WAIT_S).get("heard") or {}
    softphone.hangup()
    far_end.wait_ended(call_id, 5)
    cell.keep(f"wire-{name}.json", wire.model_dump())
    cell.keep(f"sdp-{name}.json", sdp)

    codec = (sdp.get("negotiated") or {}).get("codec") or {}
    pt = codec.get("pt")
    mapped = _offered_pt(sdp.get("remote"), name)
    cell.prove("far-end", f"{name.upper()} was negotiated (the far end's answer)",
               (codec.get("name") or "").lower() == name and codec.get("clock_rate") == want["clock_rate"]
               and (want["static_pt"] is None or pt == want["static_pt"]) and pt == mapped,
               negotiated=codec.get("name"), pt=pt, clock_rate=codec.get("clock_rate"), browser_offer_pt=mapped,
               offer_order=[c.split(" ", 1)[-1] for c in (sdp.get("remote") or "").split("\n")
                            if c.startswith("a=rtpmap:")][:6])
    streams = wire.from_browser(lab.client_ip)
    media = max(streams, key=lambda s: s.packets, default=None)
    cell.prove("wire", f"the browser's RTP carries payload type {pt} ({name.upper()})",
               media is not None and media.payload_type == pt and media.packets >= MIN_PACKETS
               and all(s.payload_type == pt for s in streams),
               streams=[{"ssrc": s.ssrc, "pt": s.payload_type, "packets": s.packets, "kbps": round(s.kbps, 1)}
                        for s in streams], window_s=CAPTURE_S)
    hz = heard.get("dominant_hz")
    cell.prove("far-end", f"the far end hears the {TONE_HZ:g} Hz tone through {name.upper()}",
               hz is not None and abs(hz - TONE_HZ) < TONE_TOLERANCE_HZ
               and heard.get("codec_rates") == [want["clock_rate"]],
               dominant_hz=hz, codec_rates=heard.get("codec_rates"), heard_s=heard.get("seconds"),
               rms_dbfs=heard.get("rms_dbfs"), first_frame_after_s=heard.get("first_frame_after_s"))
    return {"pt": pt, "wire_pt": media.payload_type, "wire_kbps": round(media.kbps, 1), "dominant_hz": hz}

"""Bitrate cap (maxAverageBitrate): with `maxAverageBitrate=16000` the browser's Opus stream to the
far end must stay at or under 16 kbit/s, measured on the wire; an uncapped call in the same cell shows
that the cap is what made the difference.

Budget: about 7 s of media: two calls (capped, then uncapped), each 1 s to settle and a 2.5 s capture.
What is counted: the RTP payload of the browser's stream on the far end's side of the lab link, i.e.
the UDP payload less the RTP header (fixed part, CSRCs, header extensions) and less the SRTP
authentication tag of the negotiated cipher (10 bytes a packet for AES_CM_128_HMAC_SHA1_80, 16 for
AEAD_AES_*_GCM; the cipher is read from the browser's transport stats). That is the Opus payload the
cap is defined on (RFC 7587 `maxaveragebitrate`); IP/UDP/RTP/SRTP overhead is reported beside it.
The rate is taken per media second: mean payload per packet over the frame length the RTP timestamps
step by (960 ticks of Opus's 48 kHz RTP clock = 20 ms), so a browser starved of CPU by a busy host
(fewer packets per wall-clock second) neither hides nor fakes a cap; the wall-clock rate is reported too.
The far end's decrypted payload bitrate of the same call is the cross-check.
"""

import time

import pytest

from harness.scenarios.common import open_for_calls, require_sdk
from harness.wire import WireTap

pytestmark = [pytest.mark.scenario("bitrate-cap"), pytest.mark.slow, pytest.mark.lab]

CAP_BPS = 16000
SETTLE_S, CAPTURE_S = 1.0, 2.5
# Opus VBR holds its target as an average; over a 2.5 s window libopus lands within a few percent of it.
# 5 % over the cap is the tolerance: the uncapped calls here run at about twice the cap.
TOLERANCE = 0.05
# Past that, up to this much over, the cap took effect but did not hold: degraded (Firefox once sent
# 18.0 kbit/s on 3g in one window, 15.6 in the next run; uncapped it sends about 32).
OVERSHOOT = 0.25
DIFFERENCE = 1.3  # the uncapped call must send at least this much more payload than the capped one
# SRTP authentication tag per packet (RFC 3711, RFC 7714), by the cipher's name as getStats spells it
# (Chromium: SRTP_AES128_CM_HMAC_SHA1_80, Firefox: SRTP_AEAD_AES_128_GCM).
TAG_BYTES = (("GCM", 16), ("SHA1_80", 10), ("SHA1_32", 4))
HEADERS_BYTES = 20 + 8  # IPv4 + UDP
OPUS_CLOCK = 48000  # RFC 7587: Opus's RTP clock is 48 kHz whatever the audio bandwidth

CIPHER_JS = """async () => {
  const report = await window.rtcmatrixAdapter.getStats();
  let cipher = null;
  report && report.forEach((s) => { if (s.type === "transport" && s.srtpCipher) cipher = s.srtpCipher; });
  return cipher;
}"""


def _one_call(cell, softphone, far_end, lab, **options) -> dict:
    call_id = softphone.call(far_end.callee, **options)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(SETTLE_S)
    with WireTap(lab) as tap:
        time.sleep(CAPTURE_S)
    cipher = softphone.page.evaluate(CIPHER_JS)
    sdp = softphone.page.evaluate("rtcm.probe.sdp()")
    senders = softphone.page.evaluate("rtcm.probe.senders()")
    received = (far_end.call(call_id) or {}).get("received") or {}
    softphone.hangup()
    far_end.wait_ended(call_id, 5)
    softphone.page.wait_for("(id) => rtcm.events.some(e => e.type === 'ended' && e.detail.callId === id)",
                            arg=call_id, timeout_s=5)
    wire = tap.report()
    sent = wire.from_browser(lab.client_ip)
    stream = max(sent, key=lambda s: s.packets) if sent else None
    out = {"call_id": call_id, "cipher": cipher, "streams": len(sent), "received": received,
           "remote_sdp_cap": "maxaveragebitrate=%d" % CAP_BPS in ((sdp[0].get("remote") or "") if sdp else ""),
           "encodings": senders[0]["encodings"] if senders else [], "wire": wire.model_dump()}
    if stream and stream.seconds > 0:
        tag = next((n for key, n in TAG_BYTES if key in (cipher or "").upper()), None)
        out.update(packets=stream.packets, seconds=round(stream.seconds, 2), tag_bytes=tag,
                   rtp_payload_kbps=round(stream.payload_kbps, 2),
                   ip_kbps=round(stream.kbps + 8 * HEADERS_BYTES * stream.packets / stream.seconds / 1000, 2))
        out.update(ts_step=stream.ts_step, wall_pps=round(stream.packets / stream.seconds, 1))
        if tag is not None and stream.ts_step:
            per_packet = stream.payload_bytes / stream.packets - tag
            frame_s = stream.ts_step / OPUS_CLOCK
            out.update(opus_bytes_per_packet=round(per_packet, 1), frame_ms=round(1000 * frame_s, 1),
                       opus_kbps=round(8 * per_packet / frame_s / 1000, 2),
                       opus_wall_kbps=round(8 * per_packet * stream.packets / stream.seconds / 1000, 2))
    return out


def test_bitrate_cap(cell, softphone, far_end, lab):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "maxAverageBitrate", "maxAverageBitrate")
    softphone.login()
    # The capped call first: a cap that does not hold ends the probe before the second call.
    capped = _one_call(cell, softphone, far_end, lab, maxAverageBitrate=CAP_BPS)
    cell.keep("bitrate.json", {"capped": capped})
    cell.prove("wire", "the capped call's RTP from the browser crossed the lab link",
               capped["streams"] == 1 and capped.get("packets", 0) >= 25 * CAPTURE_S,
               streams=capped["streams"], packets=capped.get("packets"), seconds=capped.get("seconds"))
    cell.prove("page", "the negotiated SRTP cipher is known, so its tag can be left out of the payload",
               capped.get("tag_bytes") is not None, cipher=capped["cipher"], tag_bytes=capped.get("tag_bytes"))
    cell.prove("wire", "the RTP timestamps give the frame length", bool(capped.get("ts_step")),
               ts_step=capped.get("ts_step"))
    figures = {"cap_kbps": CAP_BPS / 1000, "opus_kbps": capped["opus_kbps"], "wall_kbps": capped["opus_wall_kbps"],
               "frame_ms": capped["frame_ms"], "bytes_per_packet": capped["opus_bytes_per_packet"],
               "ip_kbps": capped["ip_kbps"], "cipher": capped["cipher"],
               "far_end_kbps": capped["received"].get("recent_payload_kbps"),
               "remote_sdp_has_cap": capped["remote_sdp_cap"], "encodings": capped["encodings"]}
    held = capped["opus_kbps"] <= CAP_BPS / 1000 * (1 + TOLERANCE)
    cell.prove("wire", f"with maxAverageBitrate {CAP_BPS} the browser's Opus payload stays at or under "
                       f"{CAP_BPS / 1000:g} kbit/s (+{TOLERANCE:.0%}; up to +{OVERSHOOT:.0%} is degraded)",
               capped["opus_kbps"] <= CAP_BPS / 1000 * (1 + OVERSHOOT), **figures, held=held)
    free = _one_call(cell, softphone, far_end, lab)
    cell.keep("bitrate.json", {"capped": capped, "uncapped": free})
    cell.prove("wire", "the uncapped call's RTP from the browser crossed the lab link",
               free["streams"] == 1 and free.get("packets", 0) >= 25 * CAPTURE_S and free.get("opus_kbps") is not None,
               streams=free["streams"], packets=free.get("packets"), seconds=free.get("seconds"))
    cell.prove("wire", "without the cap the same browser sends clearly more: the cap made the difference",
               free["opus_kbps"] >= DIFFERENCE * capped["opus_kbps"], capped_opus_kbps=capped["opus_kbps"],
               uncapped_opus_kbps=free["opus_kbps"], uncapped_wall_kbps=free["opus_wall_kbps"],
               uncapped_ip_kbps=free["ip_kbps"], far_end_uncapped_kbps=free["received"].get("recent_payload_kbps"),
               ratio=round(free["opus_kbps"] / capped["opus_kbps"], 2) if capped["opus_kbps"] else None)
    far = capped["received"].get("recent_payload_kbps")
    cell.prove("far-end", "the far end received the capped stream at the rate the wire shows",
               far is not None and abs(far - capped["opus_kbps"]) <= 0.15 * capped["opus_kbps"],
               far_end_payload_kbps=far, wire_opus_kbps=capped["opus_kbps"])
    if not held:
        cell.degraded(f"Opus payload {capped['opus_kbps']:.1f} kbit/s over the {CAP_BPS / 1000:g} kbit/s cap "
                      f"(+{capped['opus_kbps'] / (CAP_BPS / 1000) - 1:.0%}, on the wire over {CAPTURE_S:g} s)")
    cell.behaviour = (f"Opus payload {capped['opus_kbps']:.1f} kbit/s with a {CAP_BPS / 1000:g} kbit/s cap "
                      f"({capped['ip_kbps']:.1f} kbit/s on the wire with headers); {free['opus_kbps']:.1f} kbit/s uncapped")

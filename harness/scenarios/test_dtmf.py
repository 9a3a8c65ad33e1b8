"""Support for DTMF: `0123456789*#` must arrive at the far end exact and in order, in both modes:
RFC 4733 (telephone-event packets from RTCDTMFSender, decoded by the far end's RTP tap) and in-band
(tone pairs mixed into the audio, found by the far end's Goertzel detector in what it heard).

Budget: about 5 s of media on one call: 0.5 s settling, 12 digits of 100 ms + 70 ms gap per mode
(~2 s each), 0.6 s for the last ones to land. Per digit, the latency from the page's `dtmfSent`
(when that tone starts) to its arrival at the far end is recorded. A mode the SDK does not offer
(features().dtmf) or the browser cannot do (no RTCDTMFSender, canInsertDTMF false, no AudioContext)
ends the cell as not-supported, naming who lacks it, once the other mode is proven; except that
where the SDK offers other modes and all of them work, what it does not offer is kept as evidence
and the row is supported (Plivo's SDK sends SIP INFO only, counted at the far end: a third mode,
tried where the SDK offers it).
On a link that loses packets, 11 of 12 digits exact and in order is degraded; fewer is failed.
On a lossless link anything but all 12 is failed.
"""

import re
import time

import pytest

from harness.scenarios.common import open_for_calls

pytestmark = [pytest.mark.scenario("dtmf"), pytest.mark.slow, pytest.mark.lab]

DIGITS = "0123456789*#"
DURATION_MS, GAP_MS = 100, 70
SETTLE_S, LAND_S = 0.5, 0.6
DEGRADED_MIN = len(DIGITS) - 1  # 11 of 12 under loss
LATENCY_BASIS = {  # what "arrival at the far end" means per mode
    "rfc4733": "first telephone-event packet's arrival",
    "info": "the SIP INFO (application/dtmf-relay) reaching the registrar",
    "inband": "tone onset on the far end's media clock (browser send time + smallest one-way delay seen)",
}


def _lossy(cell) -> bool:
    """Whether the cell's link loses packets (a schedule may: judge it as lossy)."""
    links = [getattr(cell.profile, d, None) for d in ("uplink", "downlink")]
    if any(link is None for link in links):
        return True
    return any(link.mean_loss_fraction > 0 or link.four_state is not None for link in links)


def _aligned(sent: str, got: str) -> list[tuple[int, int]]:
    """Longest common subsequence of the digits sent and received: (sent index, got index) pairs.
    Its length is how many digits arrived in order."""
    n, m = len(sent), len(got)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = best[i + 1][j + 1] + 1 if sent[i] == got[j] else max(best[i + 1][j], best[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if sent[i] == got[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _lacking(info: dict, phone, mode: str) -> tuple[str, str, str] | None:
    """(who, missing, why) when this mode cannot be used here, else None."""
    features = info.get("features") or {}
    if mode not in (features.get("dtmf") or []):
        return "sdk", f"DTMF mode {mode}", f"the SDK adapter {info.get('name')!r} does not offer {mode} DTMF"
    if mode == "rfc4733":
        if not phone.capabilities.get("RTCDTMFSender"):
            return "browser", "RTCDTMFSender", "this browser has no RTCDTMFSender (RFC 4733 DTMF)"
        senders = phone.page.evaluate("rtcm.probe.senders()")
        if not any(s.get("canInsertDTMF") for s in senders):
            return "browser", "RTCDTMFSender.canInsertDTMF", \
                "this browser's RTCDTMFSender cannot insert DTMF on the call (canInsertDTMF is false)"
    if mode == "inband" and not features.get("inbandDtmf"):
        return "browser", "AudioContext", "this browser has no Web Audio (AudioContext) to mix in-band tones"
    return None


def _telephone_event_clock(phone) -> dict:
    """The send codec's clock and the telephone-event clocks the remote description offers: a
    browser sends RFC 4733 only at its send codec's clock (an Opus call needs telephone-event/48000)."""
    media = phone.page.evaluate("rtcm.probe.media()")
    codec = next((m["codec"] for m in media if m.get("codec")), None) or {}
    remote = "\n".join(d.get("remote") or "" for d in phone.page.evaluate("rtcm.probe.sdp()"))
    clocks = sorted({int(c) for c in re.findall(r"^a=rtpmap:\d+ telephone-event/(\d+)", remote, re.M | re.I)})
    return {"send_codec": codec.get("mimeType"), "send_clock": codec.get("clockRate"), "remote_telephone_event": clocks}


def _modes(info: dict) -> tuple[str, ...]:
    """The media modes every SDK is asked for, plus SIP INFO where the SDK offers it (a signalling
    mode: SDKs such as Plivo's send DTMF only that way)."""
    offered = (info.get("features") or {}).get("dtmf") or []
    return ("rfc4733", "inband") + (("info",) if "info" in offered else ())


def _send(softphone, far_end, call_id: str, mode: str) -> dict:
    """Send the digits in one mode; what the page sent and what the far end received (new ones only)."""
    before = far_end.dtmf(call_id)
    asked = time.time()
    result = softphone.page.evaluate("([d, o]) => rtcm.sendDtmf(d, o)",
                                     [DIGITS, {"mode": mode, "durationMs": DURATION_MS, "gapMs": GAP_MS}])
    time.sleep(LAND_S)
    heard = far_end.dtmf(call_id)
    new = {m: heard.get(m, [])[len(before.get(m, [])):] for m in LATENCY_BASIS}
    sent = [e for e in softphone.events() if e["type"] == "dtmfSent" and e["detail"].get("mode") == mode
            and e["t"] / 1000 >= asked - 0.05]
    clocks = _telephone_event_clock(softphone) if mode == "rfc4733" else None
    return {"result": result, "sent": sent, "got": new[mode], "clocks": clocks,
            "crossed": [d | {"mode": m} for m, got in new.items() if m != mode for d in got], "far_end": heard}


def test_dtmf(cell, softphone, far_end):
    info = open_for_calls(cell, softphone)
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(SETTLE_S)
    modes = _modes(info)
    lacking = {m: why for m in modes if (why := _lacking(info, softphone, m))}
    runs = {m: _send(softphone, far_end, call_id, m) for m in modes if m not in lacking}
    cell.keep("farend-timeline.json", far_end.timeline(call_id))
    softphone.hangup()
    ended = far_end.wait_ended(call_id, 5)
    if ended.get("recording"):
        cell.keep_file("heard", ended["recording"])
    lossy = _lossy(cell)
    figures = {}
    for mode, run in runs.items():
        sent, got_list = run["sent"], run["got"]
        cell.keep(f"dtmf-{mode}.json", run)
        cell.prove("page", f"the SDK sent the digits as {mode}",
                   (run["result"] or {}).get("mode") == mode and len(sent) == len(DIGITS),
                   result=run["result"], dtmf_sent_events=len(sent))
        got = "".join(d["digit"] for d in got_list)
        pairs = _aligned(DIGITS, got)
        if mode == "rfc4733" and got != DIGITS:  # why: the browser sends RFC 4733 at its codec's clock only
            clocks = run["clocks"]
            cell.prove("page", "the answer offers telephone-event at the send codec's clock",
                       clocks["send_clock"] in clocks["remote_telephone_event"], **clocks)
        latency = [round(1000 * (got_list[j]["arrived_at"] - sent[i]["t"] / 1000)) for i, j in pairs if i < len(sent)]
        figures[mode] = {"heard": got, "in_order": len(pairs), "latency_ms": latency,
                         "mean_latency_ms": round(sum(latency) / len(latency)) if latency else None,
                         "max_latency_ms": max(latency) if latency else None, "latency_basis": LATENCY_BASIS[mode]}
        if latency and cell.metrics.dtmf_latency_ms is None:
            cell.metrics.dtmf_latency_ms = figures[mode]["mean_latency_ms"]
        exact = got == DIGITS
        enough = len(pairs) >= DEGRADED_MIN if lossy else exact
        cell.prove("far-end", f"the far end received {DIGITS} as {mode} DTMF, in order"
                   + ("" if exact or not lossy else f" (at least {DEGRADED_MIN} of {len(DIGITS)} under loss)"),
                   enough, sent=DIGITS, **figures[mode], durations_ms=[d.get("duration_ms") for d in got_list],
                   link_loses_packets=lossy)
        cell.prove("far-end", f"none of the {mode} digits arrived in another mode", not run["crossed"],
                   crossed=[(d["mode"], d["digit"]) for d in run["crossed"]])
        if not exact:
            extra = len(got) - len(pairs)
            cell.degraded(f"{len(pairs)} of {len(DIGITS)} DTMF digits ({mode}) in order under {cell.profile.name}"
                          + (f", {extra} extra" if extra else "") + f" (heard {got!r})")
    cell.keep("dtmf-figures.json", figures)
    if figures and all(w[0] == "sdk" for w in lacking.values()):
        # What the SDK does not offer is its design, not a gap of this cell: Plivo sends INFO only.
        cell.keep("dtmf-not-offered.json", {m: w[2] for m, w in lacking.items()})
        lacking = {}
    if lacking:
        mode, (who, missing, why) = next(iter(lacking.items()))
        cell.not_supported(who, missing, why + (f"; {', '.join(figures)} DTMF works" if figures else ""),
                           proven=figures, lacking={m: w[0] for m, w in lacking.items()})

"""WebRTC support detection (Plivo's onWebrtcNotSupported): is the SDK's own check right on this engine?

Where the page has RTCPeerConnection, `isSupported()` must be true and `webrtcNotSupported` must
never fire, and the engine must really call: a call placed through the SDK reaches the far end,
which hears the browser's tone. Where the page lacks it (Debian's WebKitGTK), `isSupported()` must
be false and the event must fire, naming the missing API (provoked, if the SDK waits for it, the way
an app meets it: by logging in). The harness's own capability probe, not the SDK, says which APIs
the page has. Detection that is right is `supported`, on either kind of engine.

Budget: one page load and, where WebRTC exists, one short call (about 1.5 s of media).
Does not use `open_for_calls`: that ends engines without WebRTC as not-supported, and here they are
the point.
"""

import time

import pytest

from harness.engines import PageTimeout
from harness.farend.audio import TONE_HZ

pytestmark = [pytest.mark.scenario("webrtc-support"), pytest.mark.slow, pytest.mark.lab]

EVENT_WAIT_S = 5.0
CALL_S = 1.0
TONE_TOLERANCE_HZ = 5.0
EVENT_JS = "() => rtcm.events.find(e => e.type === 'webrtcNotSupported') || null"
LOGIN_JS = """([server, username, password]) => rtcm.login({server, username, password})
  .then(() => ({ok: true}), (e) => ({ok: false, error: String(e && e.message || e)}))"""
APIS = ("RTCPeerConnection", "getUserMedia")  # what the harness's capability probe checks itself


def test_webrtc_support(cell, softphone, far_end):
    query = {"break": cell.options.break_} if cell.options.break_ else {}
    info = softphone.open("reference", **query)
    caps = softphone.capabilities
    cell.keep("adapter.json", {**info, "capabilities": caps})
    lacking = [api for api in APIS if not caps.get(api)]
    if caps.get("RTCPeerConnection"):
        _present(cell, softphone, far_end, info, lacking)
    else:
        _missing(cell, softphone, far_end, info, lacking)


def _present(cell, softphone, far_end, info: dict, lacking: list[str]) -> None:
    cell.prove("page", "isSupported() is true where the page has RTCPeerConnection", info.get("supported") is True,
               isSupported=info.get("supported"), page_lacks=lacking)
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(CALL_S)
    heard = (far_end.call(call_id) or {}).get("heard") or {}
    softphone.hangup()
    fired = [e for e in softphone.events() if e["type"] == "webrtcNotSupported"]
    cell.prove("far-end", f"the engine really calls: the far end heard its {TONE_HZ:g} Hz tone",
               heard.get("dominant_hz") is not None and abs(heard["dominant_hz"] - TONE_HZ) < TONE_TOLERANCE_HZ,
               dominant_hz=heard.get("dominant_hz"), call_id=call_id)
    cell.prove("page", "webrtcNotSupported never fired (page load, login, a call)", not fired, fired=fired)
    cell.behaviour = (f"stays silent: WebRTC present (isSupported() true, no webrtcNotSupported; "
                      f"a call was heard at {heard['dominant_hz']:.0f} Hz)")


def _missing(cell, softphone, far_end, info: dict, lacking: list[str]) -> None:
    cell.prove("page", "isSupported() is false where the page has no RTCPeerConnection",
               info.get("supported") is False, isSupported=info.get("supported"), page_lacks=lacking)
    event = softphone.page.evaluate(EVENT_JS)
    login = None
    if event is None:  # an SDK may only say so when asked to work
        creds = far_end.credentials("alice")
        login = softphone.page.evaluate(LOGIN_JS, [softphone.ws_url, "alice", creds["password"]])
        try:
            event = softphone.page.wait_for(EVENT_JS, timeout_s=EVENT_WAIT_S)
        except PageTimeout:
            event = None
    cell.keep("webrtc-not-supported.json", {"event": event, "login": login, "page_lacks": lacking,
                                            "far_end_logins": far_end.logins()})
    named = list((event or {}).get("detail", {}).get("missing") or [])
    cell.prove("page", "webrtcNotSupported fired", event is not None, event=event, login=login)
    wrong = [api for api in named if api in APIS and api not in lacking]
    cell.prove("page", "it names the missing API (RTCPeerConnection), and nothing the page has",
               "RTCPeerConnection" in named and not wrong, named=named, page_lacks=lacking, named_but_present=wrong)
    cell.behaviour = f"fires on this engine: {', '.join(named)} missing"

"""Move the browser to the background during a call: the page is hidden (window minimised),
then frozen (timers stop), then brought back. Does the call go on?

Firefox: hidden by another tab in front; it has no freezing to drive, and the behaviour says so.

Budget: about 11 s of media: 2 s in front, 4 s hidden, 3 s frozen, 2 s back in front.
The far end must keep hearing the browser's tone in each state, and the browser must keep
receiving: its own packet counters, read once it is back, cover the hidden and frozen spans.
"""

import time

import pytest

from harness.scenarios.common import open_for_calls

pytestmark = [pytest.mark.scenario("background"), pytest.mark.slow, pytest.mark.lab, pytest.mark.lifecycle]

FRONT_S, HIDDEN_S, FROZEN_S, AFTER_S = 2.0, 4.0, 3.0, 2.0
TONE_HZ, TONE_TOLERANCE_HZ = 440.0, 10.0
HEARD_SHARE = 0.9  # of the far end's 250 ms windows in a state
MIN_INBOUND_PPS = 25  # Opus at 20 ms is 50 packets a second

INBOUND_JS = """async () => {
  const report = await window.rtcmatrixAdapter.getStats();
  let n = null;
  report && report.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") n = s.packetsReceived; });
  return n;
}"""


def _heard(track: list[dict], start: float, end: float) -> tuple[float, int]:
    windows = [w for w in track if start <= w["epoch"] < end]
    hits = sum(w["hz"] is not None and abs(w["hz"] - TONE_HZ) < TONE_TOLERANCE_HZ for w in windows)
    return (hits / len(windows) if windows else 0.0), len(windows)


def test_background(cell, softphone, far_end):
    open_for_calls(cell, softphone)
    lifecycle = softphone.page.lifecycle
    if lifecycle is None:
        pytest.skip(f"the harness cannot background this engine's page ({softphone.page.driver}: no window "
                    "state, tab or freeze); measured where it can, on Chromium and Firefox")
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(FRONT_S)
    received_before = softphone.page.evaluate(INBOUND_JS)
    softphone.page.evaluate("() => { window.rtcmTicks = 0; setInterval(() => window.rtcmTicks++, 100); }")
    marks = {"hidden": time.time()}
    lifecycle.hide()
    states = {"hidden": softphone.page.evaluate("document.visibilityState")}
    time.sleep(HIDDEN_S)
    marks["frozen"] = time.time()
    ticks_before = softphone.page.evaluate("window.rtcmTicks")
    if lifecycle.can_freeze:
        lifecycle.freeze()
        time.sleep(FROZEN_S)
        lifecycle.resume()
    marks["resumed"] = time.time()
    ticks_frozen = softphone.page.evaluate("window.rtcmTicks") - ticks_before if lifecycle.can_freeze else None
    lifecycle.show()
    states["back"] = softphone.page.evaluate("document.visibilityState")
    received_after = softphone.page.evaluate(INBOUND_JS)
    seen = softphone.page.evaluate("rtcm.lifecycleEvents || null")
    time.sleep(AFTER_S)
    track = far_end.frequency(call_id)
    after_call = far_end.call(call_id) or {}
    sdk_events = [e for e in softphone.events() if e["t"] / 1000 >= marks["hidden"]
                  and e["type"] in ("unregistered", "registered", "interrupted", "ended", "failed")]
    softphone.hangup()
    cell.keep("background.json", {"marks": marks, "states": states, "page_events": seen, "sdk_events": sdk_events,
                                  "inbound_packets": [received_before, received_after], "far_end_after": after_call})
    cell.prove("page", "the page really went to the background and came back",
               states["hidden"] == "hidden" and states["back"] == "visible", **states)
    if lifecycle.can_freeze:
        cell.prove("page", "while frozen, the page's timers stopped", ticks_frozen <= 1,
                   timer_ticks=ticks_frozen, frozen_s=round(marks["resumed"] - marks["frozen"], 1))
    hidden, n_hidden = _heard(track, marks["hidden"] + 0.5, marks["frozen"])
    cell.prove("far-end", "the far end kept hearing the browser while its page was hidden",
               hidden >= HEARD_SHARE and n_hidden >= 8, share=round(hidden, 2), windows=n_hidden)
    if lifecycle.can_freeze:
        frozen, n_frozen = _heard(track, marks["frozen"] + 0.5, marks["resumed"])
        cell.prove("far-end", "the far end kept hearing the browser while its page was frozen",
                   frozen >= HEARD_SHARE and n_frozen >= 6, share=round(frozen, 2), windows=n_frozen)
    span = marks["resumed"] - marks["hidden"]
    got = None if None in (received_before, received_after) else received_after - received_before
    cell.prove("page", "the browser kept receiving the far end's audio through " +
               ("both states" if lifecycle.can_freeze else "the hidden span"),
               got is not None and got >= MIN_INBOUND_PPS * span, packets=got, seconds=round(span, 1))
    back, n_back = _heard(track, marks["resumed"] + 0.5, marks["resumed"] + AFTER_S)
    cell.prove("far-end", "the call is still up once the page is back, and the far end hears it",
               not after_call.get("ended_at") and back >= HEARD_SHARE and n_back >= 4,
               ended_by=after_call.get("ended_by"), end_reason=after_call.get("end_reason"), share=round(back, 2),
               windows=n_back, sdk_events=[e["type"] for e in sdk_events])
    if lifecycle.can_freeze:
        cell.behaviour = (f"Call continues (audio both ways while hidden {HIDDEN_S:g} s and frozen {FROZEN_S:g} s: "
                          f"far end heard the tone in {hidden:.0%} / {frozen:.0%} of it; {got} packets received)")
    else:
        cell.behaviour = (f"Call continues (audio both ways while hidden {HIDDEN_S:g} s behind another tab: far end "
                          f"heard the tone in {hidden:.0%} of it; {got} packets received); not frozen: "
                          f"{softphone.page.driver} has no page lifecycle to set")
    down = next((e["t"] for e in sdk_events if e["type"] == "unregistered"), None)
    up = next((e["t"] for e in sdk_events if e["type"] == "registered" and down and e["t"] >= down), None)
    if down:
        cell.behaviour += (f"; its signalling dropped when the page came back and the SDK logged in again "
                           f"{(up - down) / 1000:.1f} s later" if up else "; its signalling dropped and did not come back")

"""Hang up on page reload: during a call the page is reloaded; the far end must see the call end
within 2 s, hung up by the SDK.

Budget: about 2 s of media: 1.5 s of call (the far end must be hearing the browser, so a live
call is what ends), then the reload, then up to END_WITHIN_S for the far end to see the end.

How it ended is the far end's: `ended_by` "browser" (a bye, over the WebSocket or the SDK's
unload beacon) or "browser-logout" (the seed FAQ's own recipe: call logout() from onbeforeunload,
"this will terminate any ongoing calls"). A call the far end closes only because the page's
WebSocket went away (`signalling-closed`) counts as failed, however fast: the SDK did not hang
up, the far end merely cleaned up after a vanished client. That is what `break=unload` shows
(the browser closes the socket with 1001 and this far end ends the calls at once), but it is
luck, not a hang-up: a socket that dies without a close frame is kept for SESSION_GRACE_S (15 s)
so a reconnecting SDK can take its calls back, and a real service may keep the call up longer
still, with the other party listening to a dead line. The FAQ asks for an explicit hang-up.
"""

import time

import pytest

from harness.scenarios.common import open_for_calls, require_sdk

pytestmark = [pytest.mark.scenario("unload-hangup"), pytest.mark.slow, pytest.mark.lab]

CALL_S = 1.5
END_WITHIN_S = 2.0
HEARD_DBFS = -40.0
HUNG_UP = {"browser", "browser-logout"}  # the SDK's bye (WebSocket or beacon), or its logout

OLD_PAGE_JS = "() => { window.rtcmOldPage = true; setTimeout(() => location.reload(), 0); return location.href; }"
NEW_PAGE_JS = "() => window.rtcmOldPage === undefined && window.rtcm !== undefined && rtcm.attached === true"


def test_unload_hangup(cell, softphone, far_end):
    info = open_for_calls(cell, softphone)
    require_sdk(cell, info, "unloadHangup", "hang-up on page unload")
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(CALL_S)
    live = far_end.call(call_id) or {}
    heard = live.get("heard") or {}
    cell.prove("far-end", "before the reload the call is live: the far end hears the browser",
               not live.get("ended_at") and (heard.get("rms_dbfs") or -120) > HEARD_DBFS,
               rms_dbfs=heard.get("rms_dbfs") and round(heard["rms_dbfs"], 1), seconds=heard.get("seconds"))

    reloaded_at = time.time()
    url = softphone.page.evaluate(OLD_PAGE_JS)
    ended = far_end.wait_ended(call_id, END_WITHIN_S + 3.0)  # a little past the limit, to say how late
    softphone.page.wait_for(NEW_PAGE_JS, timeout_s=15)
    after = far_end.registrations()
    cell.keep("farend.json", ended)
    cell.keep("reload.json", {"url": url, "reloaded_at": reloaded_at, "registrations_after": sorted(after),
                              "new_page_events": [e["type"] for e in softphone.events()]})
    took = None if not ended.get("ended_at") else ended["ended_at"] - reloaded_at
    how = {"end_s": None if took is None else round(took, 3), "ended_by": ended.get("ended_by"),
           "end_reason": ended.get("end_reason")}
    cell.prove("far-end", f"the call ended at the far end within {END_WITHIN_S:g} s of the reload",
               took is not None and took <= END_WITHIN_S, **how)
    cell.prove("far-end", "the SDK hung it up (a bye or a logout), not the far end cleaning up a closed socket",
               ended.get("ended_by") in HUNG_UP, **how)
    cell.prove("far-end", "the reloaded page is no longer registered (the old session is gone)",
               "alice" not in after, registrations=sorted(after))
    if ended.get("recording"):
        cell.keep_file("heard", ended["recording"])

"""Reconnect after a network drop, with the SDK's keepalive made fast (a ping every 1 s, the link
declared dead after 3 s of silence):

(a) a blackout longer than the keepalive timeout (5 s) must log the SDK out (`unregistered`) and back
    in (`registered`, reconnect true) by itself, without a new `login()` call: the far end's login log
    shows the re-login (reconnect true) and its registrations a new session;
(b) then a short blip (1 s of 100 % loss both ways, under the keepalive timeout) during a call must
    leave the call and the registration alone: the far end keeps the same call, hears the browser's
    tone again after the blip, and sees no new login.

Budget: about 12 s of media: the 5 s blackout and the re-login (0.3-4 s after the link returns, the
SDK's backoff); then 2 s of call, the 1 s blip, 2.5 s after it.
Figures: time to notice the drop, time to re-register after the link returns, the audio gap at the far end.
The cell's own profile is restored after each trigger. A cell that runs a schedule is skipped: its
conditions change by themselves, and a drop on top of them would prove nothing.
"""

import time

import pytest

from harness.engines import PageTimeout
from harness.farend.audio import TONE_HZ
from harness.scenarios.common import open_for_calls, require_sdk
from impairments.profile import Profile
from impairments.schedule import Schedule

pytestmark = [pytest.mark.scenario("reconnect"), pytest.mark.slow, pytest.mark.lab]

KEEPALIVE_MS, KEEPALIVE_TIMEOUT_MS = 1000, 3000
BEFORE_S, BLIP_S, AFTER_BLIP_S = 2.0, 1.0, 2.5
BLACKOUT_S = 5.0
NOTICE_WITHIN_S = KEEPALIVE_TIMEOUT_MS / 1000 + 1.0  # the SDK checks every 250 ms; a second to spare
REREGISTER_WITHIN_S = 8.0  # backoff 250 ms doubling to 4 s, plus a TCP SYN retry after the link returns
HEARD_SHARE = 0.9
TONE_TOLERANCE_HZ = 10.0
GAP_TOLERANCE_S = 1.0  # what the far end may lose beyond the blip itself (jitter buffer refill, Opus start)


def _blackout(profile: Profile) -> Profile:
    return Profile(name=f"{profile.name}-blackout", both={"loss_pct": 100})


def _down(lab, profile: Profile, seconds: float) -> tuple[float, float]:
    """Cut the link for `seconds`; the cell's own profile is back whatever happens."""
    try:
        lab.apply(_blackout(profile))
        cut = time.time()
        time.sleep(seconds)
    finally:
        lab.apply(profile)
    return cut, time.time()


def _event_js(kind: str) -> str:
    return ("([since, extra]) => rtcm.events.find(e => e.type === '%s' && e.t >= since && "
            "(!extra || e.detail.reconnect === true)) || null" % kind)


def _wait_event(softphone, kind: str, since: float, reconnect: bool, timeout_s: float) -> dict | None:
    try:
        return softphone.page.wait_for(_event_js(kind), arg=[since * 1000, reconnect], timeout_s=timeout_s)
    except PageTimeout:
        return None


def _alice_logins(far_end, since: float) -> list[dict]:
    return [e for e in far_end.logins() if e["username"] == "alice" and e["at"] >= since]


def _timing(info: dict) -> tuple[float, float]:
    """(blackout, notice within) in seconds: the reference SDK's keepalive is set fast by the page;
    an SDK with its own fixed keepalive (features().keepalive, Plivo's 5 s + 2 s) gets a blackout
    past its own timeout, or the drop would go unnoticed by design."""
    ka = (info.get("features") or {}).get("keepalive") or {}
    if not ka:
        return BLACKOUT_S, NOTICE_WITHIN_S
    dead = (ka["intervalMs"] + ka["timeoutMs"]) / 1000
    return max(BLACKOUT_S, dead + 2.0), dead + 1.0


def test_reconnect(cell, softphone, far_end, lab):
    info = open_for_calls(cell, softphone, keepaliveMs=str(KEEPALIVE_MS), keepaliveTimeoutMs=str(KEEPALIVE_TIMEOUT_MS))
    require_sdk(cell, info, "reconnect", "automatic re-login after a network drop")
    blackout_s, notice_within_s = _timing(info)
    if isinstance(cell.profile, Schedule):
        pytest.skip(f"the cell runs the schedule {cell.profile.name!r}: a drop on top of changing conditions "
                    "would prove nothing; reconnect is measured on fixed profiles")
    profile = cell.profile
    softphone.login()
    cell.prove("far-end", "the browser is registered at the far end", far_end.wait_registered("alice", 5),
               registrations=far_end.registrations())
    first_session = far_end.registrations()["alice"]["session"]

    # (a) a blackout past the keepalive timeout: logged out, and back in by itself
    try:
        lab.apply(_blackout(profile))
        cut = time.time()
        down = _wait_event(softphone, "unregistered", cut, False, blackout_s + 1)
        noticed_s = round(down["t"] / 1000 - cut, 2) if down else None
        cell.prove("page", f"a {blackout_s:g} s blackout logs the SDK out (unregistered, will reconnect)",
                   down is not None and down["detail"].get("willReconnect") is True and noticed_s <= notice_within_s,
                   noticed_after_s=noticed_s, reason=down["detail"].get("reason") if down else None,
                   will_reconnect=down["detail"].get("willReconnect") if down else None,
                   notice_within_s=notice_within_s, keepalive=(info.get("features") or {}).get("keepalive"))
        time.sleep(max(0.0, cut + blackout_s - time.time()))
    finally:
        lab.apply(profile)
    restored = time.time()
    up = _wait_event(softphone, "registered", cut, True, REREGISTER_WITHIN_S)
    registered = far_end.wait_registered("alice", 2) if up else False
    registrations = far_end.registrations()
    relogins = _alice_logins(far_end, cut)
    events = [(e["type"], e["t"] / 1000 - cut, e["detail"]) for e in softphone.events()
              if e["type"] in ("registered", "unregistered", "loginFailed") and e["t"] >= cut * 1000]
    cell.keep("blackout.json", {"cut": cut, "restored": restored, "events": events, "logins": relogins,
                                "registrations": registrations})
    rereg_s = round(up["t"] / 1000 - restored, 2) if up else None
    cell.metrics.reconnect_s = rereg_s
    cell.prove("page", "the SDK logged back in by itself (registered, reconnect true), with no login() call",
               up is not None, registered_after_link_back_s=rereg_s, events=events)
    ok_logins = [e for e in relogins if e["ok"]]
    session = (registrations.get("alice") or {}).get("session")
    cell.prove("far-end", "the far end saw the re-login: one new login marked reconnect, and a new session",
               registered and len(ok_logins) == 1 and ok_logins[0]["reconnect"] is True
               and session == ok_logins[0]["session"] != first_session,
               logins=relogins, session=session, first_session=first_session)

    # (b) a short blip keeps the call and the registration (the re-registered SDK calls)
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    time.sleep(BEFORE_S)
    blip_at, blip_end = _down(lab, profile, BLIP_S)
    time.sleep(AFTER_BLIP_S)
    end = time.time()
    summary = far_end.call(call_id) or {}
    track = far_end.frequency(call_id)
    timeline = far_end.timeline(call_id)
    dropped_on_blip = softphone.page.evaluate(_event_js("unregistered"), [blip_at * 1000 - 100, False])
    relogins_on_blip = _alice_logins(far_end, blip_at)
    softphone.hangup()
    cell.keep("blip.json", {"blip_at": blip_at, "blip_end": blip_end, "end": end, "track": track,
                            "timeline": timeline, "summary": summary})
    after = [w for w in track if w["epoch"] and blip_end + 1.0 <= w["epoch"] < end]
    share = sum(w["hz"] is not None and abs(w["hz"] - TONE_HZ) < TONE_TOLERANCE_HZ for w in after) / max(len(after), 1)
    back = next((w["epoch"] for w in track if w["epoch"] and w["epoch"] >= blip_end and w["hz"] is not None
                 and abs(w["hz"] - TONE_HZ) < TONE_TOLERANCE_HZ), None)
    silent = [s for s in timeline if not s["active"] and s["start_epoch"] and s["end_epoch"]
              and s["end_epoch"] > blip_at - 0.5 and s["start_epoch"] < blip_end + 2.0]
    gap_s = round(sum(s["end_epoch"] - s["start_epoch"] for s in silent), 2)
    cell.prove("far-end", f"through a {BLIP_S:g} s blip the far end kept the same call",
               summary.get("call_id") == call_id and summary.get("ended_at") is None, state=summary.get("state"),
               ended_by=summary.get("ended_by"))
    cell.prove("far-end", f"after the blip the far end hears the browser's {TONE_HZ:g} Hz tone again",
               share >= HEARD_SHARE and len(after) >= 4, share=round(share, 2), windows=len(after),
               tone_back_after_s=None if back is None else round(back - blip_end, 2))
    cell.prove("far-end", "the far end's audio gap is the blip, not a dropped call",
               0 < gap_s <= BLIP_S + GAP_TOLERANCE_S, audio_gap_s=gap_s, blip_s=round(blip_end - blip_at, 2),
               silent_segments=[(round(s["start_epoch"] - blip_at, 2), round(s["end_epoch"] - blip_at, 2)) for s in silent])
    cell.prove("far-end", "the blip caused no re-login", not relogins_on_blip and dropped_on_blip is None,
               logins=relogins_on_blip, unregistered=dropped_on_blip)

    down_s = round(up["detail"]["downMs"] / 1000, 2) if up["detail"].get("downMs") is not None else None
    cell.behaviour = (f"a {BLIP_S:g} s blip kept the call and the login (far end's audio gap {gap_s:.1f} s); "
                      f"a {blackout_s:g} s blackout was noticed after {noticed_s:.1f} s and the SDK re-registered "
                      f"{rereg_s:.1f} s after the link came back, by itself (logged out {down_s} s)")

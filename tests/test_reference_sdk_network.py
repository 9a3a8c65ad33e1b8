"""The reference SDK under changing network conditions: it reconnects its signalling by itself
after a drop, and its quality monitor raises and clears Plivo's warnings when the link crosses
their thresholds (and stays quiet on a good link). Each probe turns red with its `break=`."""

from __future__ import annotations

import time

import pytest

from impairments.profile import Profile
from tests.test_reference_sdk import WORKS_OR_BROKEN, chromium, figure, opened, phone  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]

IDEAL = Profile(name="ideal")
DROP = Profile(name="drop", both={"loss_pct": 100})
SLOW = Profile(name="rtt-500", both={"delay_ms": 250})
LOSSY = Profile(name="loss-20", both={"loss_pct": 20})
# What each condition explains: the warning it must raise, and the ones it may drag along (the
# E-model's MOS falls under both: ~2.9 at 500 ms RTT, ~2.3 at 20 % loss).
CONDITIONS = {"rtt": (SLOW, "high_rtt", {"high_rtt", "low_mos"}),
              "loss": (LOSSY, "high_packetloss", {"high_packetloss", "low_mos"})}


@pytest.fixture
def ideal_after(lab):
    yield
    lab.apply(IDEAL)


@WORKS_OR_BROKEN
def test_signalling_reconnects_after_a_drop_without_login(phone, far_end, lab, ideal_after, broken):
    opened(phone, broken, "reconnect")
    phone.login()
    assert far_end.wait_registered("alice", 3)
    logins_before = len(far_end.logins())
    dropped_at = time.time()
    lab.apply(DROP)
    down = phone.wait_event("unregistered", 8)
    time.sleep(1.0)
    restored_at = time.time()
    lab.apply(IDEAL)
    try:
        up = phone.wait_event("registered", 12, after_ms=restored_at * 1000 - 5000, where="e.detail.reconnect")
    except AssertionError:
        up = None
    registered = phone.events("registered")
    ok = up is not None and len(registered) == 2 and registered[1]["detail"]["reconnect"] is True
    assert ok is not broken, [(e["type"], e["detail"]) for e in phone.events() if e["type"] in ("registered", "unregistered")]
    assert down["detail"]["willReconnect"] is (not broken)
    if ok:
        relogins = far_end.logins()[logins_before:]
        assert [entry["reconnect"] for entry in relogins if entry["ok"]] == [True]
        figure("reconnect", noticed_after_drop_s=round(down["t"] / 1000 - dropped_at, 2),
               registered_after_restore_s=round(up["t"] / 1000 - restored_at, 2),
               down_total_s=round(up["detail"]["downMs"] / 1000, 2), reason=down["detail"]["reason"])


def _warnings(phone, kind: str | None = None) -> list[dict]:
    return [e for e in phone.events("mediaMetrics") if kind is None or e["detail"]["type"] == kind]


@pytest.mark.parametrize("condition, broken", [("rtt", False), ("rtt", True), ("loss", False)],
                         ids=["rtt-works", "rtt-broken", "loss-works"])
def test_quality_warnings_rise_with_the_condition_and_clear_on_a_good_link(phone, far_end, lab, ideal_after,
                                                                           condition, broken):
    profile, kind, explained = CONDITIONS[condition]
    opened(phone, broken, "quality")
    phone.login()
    phone.connected_call()
    time.sleep(4.0)  # ideal link: analysis starts after 1 s, then 3 samples
    quiet = _warnings(phone)
    assert quiet == [], f"warnings on an ideal link: {quiet}"
    applied = time.time()
    lab.apply(profile)
    try:
        raised = phone.wait_event("mediaMetrics", 12, where=f"e.detail.type === '{kind}' && e.detail.active")
    except AssertionError:
        raised = None
    assert (raised is not None) is not broken, _warnings(phone)
    if broken:
        phone.js("rtcm.hangup()")
        return
    restored = time.time()
    lab.apply(IDEAL)
    cleared = phone.wait_event("mediaMetrics", 12, where=f"e.detail.type === '{kind}' && !e.detail.active")
    time.sleep(2.5)
    events = _warnings(phone)
    phone.js("rtcm.hangup()")
    by_type = {}
    for e in events:
        by_type.setdefault(e["detail"]["type"], []).append((e["detail"]["active"], round(e["t"] / 1000 - applied, 2)))
    figure(f"{kind} under {profile.name}", value=raised["detail"]["value"],
           raised_after_s=round(raised["t"] / 1000 - applied, 2), cleared_after_ideal_s=round(cleared["t"] / 1000 - restored, 2),
           all_warnings=by_type)
    assert raised["detail"]["group"] == "network"
    assert raised["detail"]["value"] > 400 if kind == "high_rtt" else raised["detail"]["value"] >= 10
    assert set(by_type) <= explained, by_type
    # Every warning that rose also cleared once the link was good again.
    for kind, changes in by_type.items():
        assert changes[-1][0] is False, (kind, changes)


@WORKS_OR_BROKEN
def test_no_audio_received_when_the_far_end_goes_silent(phone, far_end, broken):
    opened(phone, broken, "quality")
    phone.login()
    call_id = phone.connected_call()
    time.sleep(2.5)
    silenced = time.time()
    far_end.mute(call_id)
    try:
        raised = phone.wait_event("mediaMetrics", 8, where="e.detail.type === 'no_audio_received' && e.detail.active")
    except AssertionError:
        raised = None
    restored = time.time()
    far_end.unmute(call_id)
    assert (raised is not None) is not broken, _warnings(phone)
    if raised:
        cleared = phone.wait_event("mediaMetrics", 8, where="e.detail.type === 'no_audio_received' && !e.detail.active")
        assert raised["detail"]["desc"] == "remote_audio" and raised["detail"]["group"] == "audio"
        figure("no_audio_received", raised_after_far_end_mute_s=round(raised["t"] / 1000 - silenced, 2),
               cleared_after_unmute_s=round(cleared["t"] / 1000 - restored, 2))
    assert far_end.call(call_id)["far_end_mute_log"][0]["muted"] is True
    phone.js("rtcm.hangup()")

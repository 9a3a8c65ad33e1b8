"""The far end's ground truth can say no: it tells the browser's tone from silence."""

import time

import pytest

from harness.farend.audio import TONE_HZ
from harness.softphone import Softphone

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]


def test_far_end_hears_the_tone_then_silence_when_muted(lab, far_end, browsers):
    from impairments.profile import Profile

    lab.apply(Profile(name="ideal"))
    context = browsers.get("chromium").new_context()
    try:
        phone = Softphone(context.new_page(), far_end.url, far_end.ws_url)
        phone.open()
        phone.login()
        call_id = phone.call()
        phone.wait_for("connected")
        time.sleep(3)
        live = far_end.call(call_id)["heard"]
        phone.page.evaluate("rtcm.mute()")
        time.sleep(0.5)
        before = far_end.call(call_id)["heard"]["seconds"]
        time.sleep(3)
        after = far_end.call(call_id)["heard"]
        phone.hangup()
    finally:
        context.close()
    assert live["rms_dbfs"] > -30 and abs(live["dominant_hz"] - TONE_HZ) < 5
    # Energy of the muted stretch alone: total energy falls, and the far end kept receiving frames.
    assert after["seconds"] > before + 2
    assert after["rms_dbfs"] < live["rms_dbfs"] - 1.5
    assert after["longest_gap_s"] >= 2.0

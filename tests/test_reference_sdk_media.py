"""The reference SDK's speaker switching and page probes (see test_reference_sdk.py for the set-up).
Every other feature is proven, and shown red with its `break=`, by its row's test through
`rtcmatrix run` (tests/test_rows_*.py, tests/test_browser_columns.py)."""

from __future__ import annotations

import pytest

from tests.test_reference_sdk import (  # noqa: F401 (chromium, phone: fixtures)
    WORKS_OR_BROKEN, Phone, chromium, opened, phone)

pytestmark = [pytest.mark.slow, pytest.mark.lab, pytest.mark.browser("chromium")]


# --- encoder options -------------------------------------------------------------------------------------


# --- page unload, detection -------------------------------------------------------------------------------


# --- devices -----------------------------------------------------------------------------------------------


@WORKS_OR_BROKEN
def test_set_output_sets_the_sink_of_this_and_later_calls(phone, far_end, broken):
    opened(phone, broken, "output")
    phone.login()
    phone.connected_call()
    outputs = [d for d in phone.js("rtcm.devices()") if d["kind"] == "audiooutput" and d["deviceId"] != "default"]
    target = outputs[0]["deviceId"]
    phone.js("(id) => rtcm.setOutput(id)", target)
    first = phone.js("rtcm.probe.audio()")
    phone.js("rtcm.hangup()")
    phone.connected_call()
    later = [a for a in phone.js("rtcm.probe.audio()") if a["inDocument"]]
    phone.js("rtcm.hangup()")
    ok = [a["sinkId"] for a in first if a["inDocument"]] == [target] and [a["sinkId"] for a in later] == [target]
    assert phone.events("outputChanged")
    assert ok is not broken, {"first": first, "later": later}


def test_set_output_without_set_sink_id_says_not_supported(chromium, far_end):
    context = chromium.new_context()
    context.add_init_script("delete HTMLMediaElement.prototype.setSinkId;")
    phone = Phone(context, far_end)
    try:
        info = phone.open()
        assert info["features"]["setOutput"] is False
        with pytest.raises(Exception, match="not supported: setSinkId is missing"):
            phone.js("rtcm.setOutput('default')")
    finally:
        phone.close()


def test_console_and_errors_are_mirrored(phone):
    phone.open()
    phone.js("console.log('hello', {a: 1}); console.warn('careful'); setTimeout(() => { throw new Error('boom'); }, 0)")
    phone.page.wait_for_function("rtcm.errors.length > 0", timeout=3000)
    mirrored = [(c["level"], c["text"]) for c in phone.js("rtcm.console")]
    assert ("log", 'hello {"a":1}') in mirrored and ("warn", "careful") in mirrored
    assert any(level == "pageerror" and "boom" in text for level, text in mirrored)
    assert any("boom" in e for e in phone.js("rtcm.errors"))


def test_page_lifecycle_is_logged(phone):
    """The log itself (really hiding and freezing a page needs a windowed Chromium over CDP: the
    background scenario does that)."""
    phone.open()
    phone.js("() => { for (const t of ['visibilitychange', 'freeze', 'resume']) document.dispatchEvent(new Event(t)); }")
    seen = [e for e in phone.js("rtcm.lifecycleEvents") if e["type"] not in ("focus", "blur")]
    assert [e["type"] for e in seen] == ["pageshow", "visibilitychange", "freeze", "resume"], seen
    assert seen[1]["visibilityState"] == "visible"

"""Network rows end to end through `rtcmatrix run`: quality warnings raised and cleared by their own
triggers, reconnect after a blackout and through a blip, the bitrate cap on the wire, DSCP on the
wire; then the same rows with the SDK's features broken, to show each can fail.

The two runs are started together, each with its own lab (rowutil.run_side_by_side).
"""

import pytest

from tests.rowutil import proof, run_side_by_side

pytestmark = [pytest.mark.slow, pytest.mark.lab]
ROWS = ["quality-warnings", "reconnect", "bitrate-cap", "dscp"]
BROKEN = "quality,reconnect,bitrate,dscp"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_side_by_side(tmp_path_factory.mktemp("network"), {
        "rows": {"scenarios": ROWS, "browsers": ["chromium", "firefox", "webkit"],
                 "options": {"link_check_probes": 0, "stats_seconds": 2}},
        "broken": {"scenarios": ROWS, "browsers": ["chromium"],
                   "options": {"link_check_probes": 0, "stats_seconds": 2, "break": BROKEN}}},
        workers={"rows": 2})


# --- quality warnings -------------------------------------------------------------------------------

def test_chromium_raises_and_clears_each_warning(runs):
    cell = runs["rows"][("chromium", "quality-warnings")]
    assert cell["status"] == "supported", cell["reason"]
    assert proof(cell, "no quality warning fires on an ideal link")["ok"]
    assert proof(cell, "the far end heard the browser's tone clean")["ok"]
    for kind, limit in (("high_packetloss", 10), ("high_rtt", 400), ("no_audio_received", None), ("high_jitter", None)):
        if kind == "high_jitter" and "high_jitter not provoked" in cell["behaviour"]:
            continue  # 200 ms slots take the jitter only just past 30 ms: a reading under it is reported, not failed
        raised = proof(cell, f"{kind} is raised under its trigger")["details"]
        cleared = proof(cell, f"{kind} clears once its trigger is removed")["details"]
        assert 0 < raised["raised_after_s"] <= raised["within_s"] and 0 < cleared["cleared_after_s"] <= cleared["within_s"]
        if limit:
            assert proof(cell, f"{kind} reports a value past its threshold")["details"]["value"] >= limit
    assert proof(cell, "the far end really went silent and came back")["ok"]
    assert proof(cell, "every warning that was raised also cleared")["details"]["stuck"] == {}
    assert "high_rtt raised" in cell["behaviour"] and "no_audio_received raised" in cell["behaviour"]


def test_firefox_quality_warnings(runs):
    """Firefox's media-source stats carry no totalAudioEnergy: the SDK must treat that as unknown,
    not as a silent microphone (this row once caught it raising no_audio_received on an ideal link)."""
    cell = runs["rows"][("firefox", "quality-warnings")]
    assert cell["status"] == "supported", cell["reason"]
    quiet = proof(cell, "no quality warning fires on an ideal link")
    assert quiet["ok"] and "totalAudioEnergy" not in quiet["details"]["media_source_fields"]
    assert proof(cell, "the far end heard the browser's tone clean")["ok"]
    for kind in ("high_packetloss", "high_rtt", "no_audio_received"):
        assert f"{kind} raised" in cell["behaviour"], cell["behaviour"]
    assert "high_jitter raised" in cell["behaviour"] or "high_jitter not provoked" in cell["behaviour"]


# --- reconnect ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_reconnects_after_a_blackout_and_keeps_the_call_through_a_blip(runs, browser):
    cell = runs["rows"][(browser, "reconnect")]
    assert cell["status"] == "supported", cell["reason"]
    down = proof(cell, "a 5 s blackout logs the SDK out")["details"]
    assert down["reason"] == "keepalive timeout" and 1.5 <= down["noticed_after_s"] <= 4.0
    up = proof(cell, "the SDK logged back in by itself")["details"]
    assert 0 <= up["registered_after_link_back_s"] <= 8
    relogin = proof(cell, "the far end saw the re-login")["details"]
    assert [e["reconnect"] for e in relogin["logins"] if e["ok"]] == [True]
    assert relogin["session"] != relogin["first_session"]
    gap = proof(cell, "the far end's audio gap is the blip")["details"]
    assert 0.8 <= gap["audio_gap_s"] <= 2.0
    assert proof(cell, "after the blip the far end hears")["details"]["share"] >= 0.9
    assert proof(cell, "the blip caused no re-login")["details"]["logins"] == []
    assert cell["behaviour"].startswith("a 1 s blip kept the call")


# --- bitrate cap and DSCP ----------------------------------------------------------------------------

@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_bitrate_cap_holds_on_the_wire(runs, browser):
    """Chromium holds the cap (15.4-15.8 kbit/s measured). Firefox's encoder overshoots it by up to a
    quarter, more on delayed links: 14.8-16.9 kbit/s on ideal across runs here, 17.5-18.3 on 3g and
    wifi-congested. The row reports that as `degraded` with the figure; a cap that did not apply
    (32 kbit/s) is `failed`."""
    cell = runs["rows"][(browser, "bitrate-cap")]
    capped = proof(cell, "with maxAverageBitrate 16000")["details"]
    if browser == "firefox" and cell["status"] == "degraded":
        assert 16.8 < capped["opus_kbps"] <= 20 and "over the 16 kbit/s cap" in cell["reason"], cell["reason"]
    else:
        assert cell["status"] == "supported", cell["reason"]
        assert capped["opus_kbps"] <= 16.8
    assert 10 <= capped["opus_kbps"] and capped["frame_ms"] == 20.0 and capped["remote_sdp_has_cap"]
    assert capped["ip_kbps"] > capped["opus_kbps"] + 15  # 50 packets/s of IP/UDP/RTP/SRTP headers
    free = proof(cell, "without the cap")["details"]
    assert free["uncapped_opus_kbps"] >= 24 and free["ratio"] >= 1.5
    assert "far-end" in cell["proven_by"] and "wire" in cell["proven_by"]


def test_dscp_per_engine(runs):
    chromium = runs["rows"][("chromium", "dscp")]
    assert chromium["status"] == "supported", chromium["reason"]
    marked = proof(chromium, "every RTP packet of the browser carries DSCP EF")["details"]
    assert marked["dscp"] == {"46": marked["packets"]} and marked["network_priority"] == "high"
    assert proof(chromium, "the lab link carries a DSCP mark unchanged")["ok"]
    firefox = runs["rows"][("firefox", "dscp")]
    assert firefox["status"] == "not-supported" and firefox["lacking"].startswith("browser: RTCRtpEncodingParameters.networkPriority")
    assert proof(firefox, "the SDK asked for high priority")["details"]["browser_kept_network_priority"] is False
    assert proof(firefox, "the lab link carries a DSCP mark unchanged")["ok"]
    assert "DSCP 0" in firefox["reason"]


def test_webkit_column_is_truthful(runs):
    for row in ROWS:
        cell = runs["rows"][("webkit", row)]
        assert cell["status"] == "not-supported" and cell["lacking"] == "browser: RTCPeerConnection", (row, cell["reason"])


# --- the broken SDK turns each row red ----------------------------------------------------------------

def test_broken_sdk_turns_each_row_red(runs):
    broken = runs["broken"]
    quality = broken[("chromium", "quality-warnings")]
    assert quality["status"] == "failed" and "high_packetloss is raised under its trigger" in quality["reason"]
    reconnect = broken[("chromium", "reconnect")]
    assert reconnect["status"] == "failed" and "logs the SDK out (unregistered, will reconnect)" in reconnect["reason"]
    assert "will_reconnect=False" in reconnect["reason"]
    bitrate = broken[("chromium", "bitrate-cap")]
    assert bitrate["status"] == "failed" and "stays at or under 16 kbit/s" in bitrate["reason"]
    assert proof(bitrate, "with maxAverageBitrate 16000")["details"]["opus_kbps"] > 24
    dscp = broken[("chromium", "dscp")]  # chromium marked EF without the break (test_dscp_per_engine)
    assert dscp["status"] == "failed" and "asked for high priority" in dscp["reason"]

"""Media and signalling rows end to end through `rtcmatrix run`: mute, DTMF (both modes), X-PH-
headers, quality feedback, WebRTC support detection and codec negotiation on Chromium, Firefox and
WebKit over an ideal link; then the same rows with the reference SDK's features broken, to show that
each one can turn red."""

from pathlib import Path

import pytest

from tests.rowutil import proof, run_side_by_side

from harness.scenarios.test_headers import INVALID as INVALID_HEADERS, VALID as VALID_HEADERS

pytestmark = [pytest.mark.slow, pytest.mark.lab]
ROWS = ["mute", "dtmf", "headers", "feedback", "webrtc-support", "codec"]
CALLING = ["chromium", "firefox"]
DIGITS = "0123456789*#"
BREAKS = "mute,dtmf,headers,feedback,notsupported,codec"




@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    # The broken-SDK run uses the engines' own fake capture (no audio server to start): enough to
    # show each row fail.
    return run_side_by_side(tmp_path_factory.mktemp("media"), {
        "media": {"scenarios": ROWS, "browsers": ["chromium", "firefox", "webkit"],
                  "options": {"link_check_probes": 0, "stats_seconds": 2}},
        "broken": {"scenarios": ROWS, "browsers": ["chromium", "webkit"],
                   "options": {"link_check_probes": 0, "stats_seconds": 2, "audio": "fake", "break": BREAKS}}})


@pytest.fixture(scope="module")
def rows(runs):
    return runs["media"]




def _supported(cell: dict) -> None:
    assert cell["status"] == "supported", (cell["status"], cell["reason"])
    assert all(p["ok"] for p in cell["proofs"]) and "far-end" in cell["proven_by"]


@pytest.mark.parametrize("browser", CALLING)
def test_mute_edges_at_the_far_end(rows, browser):
    cell = rows[(browser, "mute")]
    _supported(cell)
    silent = proof(cell, "the far end hears silence within 500 ms")["details"]["mute_edge_ms"]
    back = proof(cell, "the far end hears the browser again within 500 ms")["details"]["unmute_edge_ms"]
    assert -50 <= silent <= 500 and -50 <= back <= 500, (silent, back)
    assert proof(cell, "it stays silent until unmute")["details"]["active_share"] <= 0.05


@pytest.mark.parametrize("browser", CALLING)
def test_dtmf_both_modes_exact_with_latency(rows, browser):
    cell = rows[(browser, "dtmf")]
    _supported(cell)
    for mode in ("rfc4733", "inband"):
        got = proof(cell, f"the far end received {DIGITS} as {mode} DTMF")["details"]
        assert got["heard"] == DIGITS and got["in_order"] == 12
        assert len(got["latency_ms"]) == 12 and 0 <= got["mean_latency_ms"] <= 500, got["latency_ms"]
        assert proof(cell, f"none of the {mode} digits arrived in another mode")["ok"]
        assert proof(cell, f"the SDK sent the digits as {mode}")["details"]["dtmf_sent_events"] == 12
    rfc = proof(cell, f"the far end received {DIGITS} as rfc4733 DTMF")["details"]
    assert all(80 <= d <= 130 for d in rfc["durations_ms"]), rfc["durations_ms"]  # Firefox rounds 100 up to 120


@pytest.mark.parametrize("browser", CALLING)
def test_only_valid_headers_arrive(rows, browser):
    cell = rows[(browser, "headers")]
    _supported(cell)
    assert proof(cell, "all 5 valid X-PH- headers arrived exactly")["details"]["arrived"] == VALID_HEADERS
    assert proof(cell, f"none of the {len(INVALID_HEADERS)} invalid headers arrived")["details"]["leaked"] == {}
    dropped = proof(cell, "the SDK reported exactly the invalid headers as dropped")["details"]["dropped"]
    assert sorted(dropped) == sorted(INVALID_HEADERS) and all(dropped.values())
    assert Path(cell["evidence"]["headers"]).exists()


@pytest.mark.parametrize("browser", CALLING)
def test_feedback_valid_stored_invalid_refused(rows, browser):
    cell = rows[(browser, "feedback")]
    _supported(cell)
    stored = proof(cell, "all 3 valid feedback entries are stored at the far end")["details"]["stored"]
    assert [s[0] for s in stored] == [3, 5, 1]
    refused = proof(cell, "the SDK refused each invalid feedback with a reason")["details"]["refused"]
    assert set(refused) == {"rating 0", "rating 6", "issues missing with a rating below 5", "an unknown issue"}
    assert all(errors for errors in refused.values())


def test_webrtc_detection_is_right_on_every_engine(rows):
    for browser in CALLING:
        cell = rows[(browser, "webrtc-support")]
        _supported(cell)
        assert cell["behaviour"].startswith("stays silent: WebRTC present"), cell["behaviour"]
    webkit = rows[("webkit", "webrtc-support")]
    assert webkit["status"] == "supported", webkit["reason"]
    assert webkit["behaviour"] == "fires on this engine: RTCPeerConnection missing"
    assert proof(webkit, "webrtcNotSupported fired")["ok"] and webkit["proven_by"] == ["page"]


@pytest.mark.parametrize("browser", CALLING)
def test_codecs_negotiated_and_on_the_wire(rows, browser):
    cell = rows[(browser, "codec")]
    _supported(cell)
    assert "wire" in cell["proven_by"]
    opus = proof(cell, "the browser's RTP carries payload type")["details"]["streams"][0]["pt"]
    assert 96 <= opus <= 127 and proof(cell, "OPUS was negotiated")["details"]["pt"] == opus
    pcmu = proof(cell, "PCMU was negotiated")["details"]
    assert pcmu["pt"] == 0 and pcmu["clock_rate"] == 8000
    assert proof(cell, "the browser's RTP carries payload type 0 (PCMU)")["ok"]
    for name in ("OPUS", "PCMU"):
        heard = proof(cell, f"the far end hears the 440 Hz tone through {name}")["details"]
        assert abs(heard["dominant_hz"] - 440) < 5


def test_webkit_calling_rows_are_not_supported_by_the_browser(rows):
    for row in ("mute", "dtmf", "headers", "feedback", "codec"):
        cell = rows[("webkit", row)]
        assert cell["status"] == "not-supported", (row, cell["reason"])
        assert cell["lacking"] == "browser: RTCPeerConnection", (row, cell["lacking"])


def test_broken_sdk_turns_each_row_red(runs):
    cells = runs["broken"]
    expect = {  # row -> what the failing proof says
        "mute": "the far end hears silence within 500 ms of rtcm.mute()",
        "dtmf": f"the far end received {DIGITS} as rfc4733 DTMF",
        "headers": "none of the 8 invalid headers arrived",
        "feedback": "all 3 valid feedback entries are stored at the far end",
        "codec": "PCMU was negotiated",
    }
    for row, claim in expect.items():
        cell = cells[("chromium", row)]
        assert cell["status"] == "failed" and claim in cell["reason"], (row, cell["reason"])
        assert not proof(cell, claim)["ok"]
    # notsupported makes isSupported() lie: harmless where WebRTC exists, red where it does not.
    assert cells[("chromium", "webrtc-support")]["status"] == "supported"
    webkit = cells[("webkit", "webrtc-support")]
    assert webkit["status"] == "failed" and "isSupported() is false" in webkit["reason"], webkit["reason"]
    for row in expect:  # and every calling row on WebKit: the SDK no longer says it cannot call
        assert cells[("webkit", row)]["status"] == "failed", (row, cells[("webkit", row)]["reason"])

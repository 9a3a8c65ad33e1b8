"""Call-control rows end to end through `rtcmatrix run`: receive a call, receive it with the page
in the background, hang up on reload. One run on every engine over an ideal link, then the same
rows with the SDK's `incoming` and `unload` broken, to show each turns red."""

import tempfile
from pathlib import Path

import pytest

from tests.rowutil import proof, run_side_by_side

pytestmark = [pytest.mark.slow, pytest.mark.lab]
ROWS = ["inbound-call", "incoming-background", "unload-hangup"]
NO_WEBRTC = "Not supported: this WebKit build has no WebRTC (RTCPeerConnection is undefined)"


def _chromium_temp_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("org.chromium.Chromium.*")}


@pytest.fixture(scope="module")
def temp_dirs_before():
    return _chromium_temp_dirs()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, temp_dirs_before):
    return run_side_by_side(tmp_path_factory.mktemp("calls"), {
        "calls": {"scenarios": ROWS, "browsers": ["chromium", "firefox", "webkit"],
                  "options": {"link_check_probes": 0, "stats_seconds": 2}},
        "broken": {"scenarios": ROWS, "browsers": ["chromium"],
                   "options": {"link_check_probes": 0, "stats_seconds": 2, "break": "incoming,unload"}}})


@pytest.fixture(scope="module")
def calls(runs):
    return runs["calls"]




@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_incoming_call_rings_and_talks_both_ways(calls, browser):
    cell = calls[(browser, "inbound-call")]
    assert cell["status"] == "supported", cell["reason"]
    assert {"far-end", "page", "speaker"} <= set(cell["proven_by"])
    ring = proof(cell, "the page rang")["details"]
    assert 0 <= ring["incoming_ms"] < 1000 and ring["detail"]["from"] == "rtcmatrix"
    tone = proof(cell, "the far end hears the browser's 440 Hz")["details"]
    assert tone["share"] >= 0.9 and 0 <= tone["ringing_ms"] < 1000 and 0 < tone["answer_to_far_end_ms"] < 5000
    speaker = proof(cell, "the browser played the far end's prompt")["details"]
    assert speaker["played_dbfs"] > -45 and speaker["ringing_dbfs"] < -60
    assert Path(cell["evidence"]["speaker-a"]).stat().st_size > 48_000
    assert proof(cell, "the far end saw the browser hang up")["ok"]


def test_chromium_rings_hidden_and_loses_the_call_placed_while_frozen(calls):
    """Measured, not assumed: hidden, it rings at once and answers; a frozen page's WebSocket is
    closed by Chromium on resume, and the far end drops the call that was waiting (see the row's
    docstring). The behaviour says so, with the figures."""
    cell = calls[("chromium", "incoming-background")]
    hidden = proof(cell, "the hidden page rang")["details"]
    assert hidden["visibilityState"] == "hidden" and hidden["incoming_ms"] < 1000
    assert proof(cell, "after the answer (hidden) the far end hears")["ok"]
    assert cell["behaviour"].startswith("Rings at once while hidden")
    frozen = proof(cell, "the call placed while the page was frozen")
    if frozen["ok"]:  # a far end (or browser) that keeps the call: then it must ring and answer when back
        assert cell["status"] == "supported", cell["reason"]
        assert "rings only when brought back" in cell["behaviour"] or "still rings" in cell["behaviour"]
    else:
        assert cell["status"] == "failed" and "the call was lost" in cell["behaviour"]
        assert frozen["details"]["rang_while_frozen"] is False and frozen["details"]["ended_by"] == "signalling-closed"


def test_firefox_rings_and_answers_hidden_behind_a_tab(calls):
    cell = calls[("firefox", "incoming-background")]
    assert cell["status"] == "supported", cell["reason"]
    hidden = proof(cell, "the far end heard ringing while the page was hidden")["details"]
    assert hidden["visibilityState"] == "hidden" and hidden["ringing_ms"] is not None
    assert proof(cell, "after the answer (hidden) the far end hears")["ok"]
    assert "not frozen: playwright-bidi has no page lifecycle to set" in cell["behaviour"]


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_reload_hangs_up_with_a_bye(calls, browser):
    cell = calls[(browser, "unload-hangup")]
    assert cell["status"] == "supported", cell["reason"]
    ended = proof(cell, "the call ended at the far end within 2 s")["details"]
    assert ended["end_s"] <= 2.0 and ended["ended_by"] == "browser" and ended["end_reason"] == "unload"


def test_webkit_column_is_truthful(calls):
    for row in ROWS:
        cell = calls[("webkit", row)]
        assert cell["status"] == "not-supported" and cell["reason"] == NO_WEBRTC


def test_broken_sdk_turns_each_row_red(runs):
    cells = runs["broken"]
    inbound = cells[("chromium", "inbound-call")]
    assert inbound["status"] == "failed" and "the page rang" in inbound["reason"]
    background = cells[("chromium", "incoming-background")]
    assert background["status"] == "failed" and "the hidden page rang" in background["reason"]
    unload = cells[("chromium", "unload-hangup")]
    # Without the SDK's bye the far end learns of the reload only when the media or the socket goes
    # away (about 2 s): late, or not a hang-up, and either way not the SDK's doing.
    assert unload["status"] == "failed"
    assert "the SDK hung it up" in unload["reason"] or "within 2 s of the reload" in unload["reason"]
    assert "ended_by='browser'" not in unload["reason"]


def test_the_backgrounding_chromium_leaves_nothing_behind(runs, temp_dirs_before):
    """The Chromium that rtcmatrix starts itself for backgrounding is shut down the way a user
    closes it: its profile goes, and its singleton socket leaves no folder in /tmp."""
    assert _chromium_temp_dirs() <= temp_dirs_before
    for run in runs.values():
        assert not list(run["_out"].glob("**/browsers/chromium-lifecycle-*")), "a lifecycle profile was left"

"""plivo-browser-sdk 2.2.21 and JsSIP 3.13.8, unmodified, through `rtcmatrix run`: the six calling
rows on Chromium and Firefox, on an ideal link and on 4g (45 ms, 10 ms jitter, 0.2 % loss), against Kamailio, rtpengine and
the SIP far end. Every cell must end in a proven verdict; the SDK defects the lab reproduces must
show as findings with their evidence, and the matching backend workaround must turn them green."""

import json
import re
import threading
from pathlib import Path

import pytest

from tests.rowutil import finish_matrix, proof, start_matrix

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.lab]

ROWS = ["outbound-call", "inbound-call", "mute", "dtmf", "headers", "reconnect"]
BROWSERS = ["chromium", "firefox"]
# 4g, not a rate-limited 3G: under 3g-lossy each Plivo cell spent 13 s loading the SDK's bundle
# into a fresh context before its row began (page-load measures that; these rows measure calls).
PROFILES = ["ideal", "4g"]
# Calls connect within 1.8 s here (JsSIP on Firefox over 4g the slowest): 5 s bounds the cells whose
# call never connects (Plivo on Firefox) without failing a slow one.
OPTIONS = {"link_check_probes": 0, "stats_seconds": 6, "connect_timeout_s": 5}
PROVEN_AT = {"far-end", "wire", "speaker"}


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """The rows' run (about 4 minutes on two workers) and the quality run beside it on one worker;
    when the quality run ends, the workaround run takes its place on one worker. (Started with the
    other two at once, its two tests failed once here, with four labs on two cores.)"""
    runs = {
        "run": start_matrix(tmp_path_factory.mktemp("sdks"), "sdk-rows", {
            "sdks": ["plivo", "jssip"], "browsers": BROWSERS, "profiles": PROFILES, "scenarios": ROWS,
            "options": OPTIONS}, workers=2),
        # matrices/sdks.yaml as a user runs it, narrowed to both SDKs' quality row on an ideal link, on
        # every column (WebKit's among them: it must say truthfully that neither SDK can call there).
        "quality": start_matrix(tmp_path_factory.mktemp("quality"), "quality", ROOT / "matrices" / "sdks.yaml",
                                args=["--sdk", "plivo", "--sdk", "jssip", "--scenario", "quality-warnings",
                                      "--profile", "ideal"]),
    }
    stop = threading.Event()

    def then_fixed():
        while runs["quality"][0].poll() is None:
            if stop.wait(0.5):
                return
        # Plivo with both workarounds, on the two rows its defects break.
        runs["fixed"] = start_matrix(tmp_path_factory.mktemp("fixed"), "workarounds", {
            "sdks": [{"name": "plivo-workarounds", "base": "plivo",
                      "workarounds": ["strip-telephone-event", "collapse-crcrlf"]}],
            "browsers": BROWSERS, "scenarios": ["outbound-call", "inbound-call"], "options": OPTIONS})

    later = threading.Thread(target=then_fixed)
    later.start()
    yield runs, later
    stop.set()
    later.join()
    for proc, _, _ in list(runs.values()):  # a run whose test failed first: stopped as Ctrl-C would, not left behind
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


@pytest.fixture(scope="module")
def run(started):
    return finish_matrix(started[0]["run"], timeout_s=1500)


@pytest.fixture(scope="module")
def quality(started, run):
    return finish_matrix(started[0]["quality"])


@pytest.fixture(scope="module")
def fixed(started, quality):
    runs, later = started
    later.join()
    return finish_matrix(runs["fixed"])


def _cell(run, sdk, browser, profile, row):
    return next(c for c in run["_run"]["cells"]
                if (c["sdk"], c["browser"], c["profile"], c["scenario"]) == (sdk, browser, profile, row))


def _answered(trace: str) -> bool:
    """Whether any INVITE in a cell's SIP trace got a 200 (the entries start 'rcv <time>' or 'snd <time>')."""
    for m in re.finditer(r"^SIP/2\.0 200[^\n]*\n(.*?)(?=^(?:rcv|snd) \d|\Z)", trace, re.M | re.S):
        if re.search(r"^CSeq:\s*\d+\s+INVITE", m.group(1), re.M | re.I):
            return True
    return False


def _trace(cell) -> str:
    with open(cell["evidence"]["sip-trace"], newline="") as f:  # keep \r as it was on the wire
        return f.read()


@pytest.mark.parametrize("sdk", ["plivo", "jssip"])
@pytest.mark.parametrize("profile", PROFILES)
def test_every_row_has_a_proven_verdict(run, sdk, profile):
    for browser in BROWSERS:
        for row in ROWS:
            c = _cell(run, sdk, browser, profile, row)
            where = f"{c['id']}: {c['status']} ({c['reason']})"
            assert c["status"] in ("supported", "degraded", "failed", "not-supported"), where
            if c["status"] in ("supported", "degraded"):
                assert PROVEN_AT & set(c["proven_by"]), where
            elif c["status"] == "not-supported":
                assert (c["lacking"] or "").split(":")[0] in ("sdk", "browser") and c["reason"], where
            else:  # the SIP trace, or where no SIP was sent (a page that never loaded) the page's own record
                assert c["reason"] and ({"sip-trace", "console"} & set(c["evidence"])), where


def test_plivo_incoming_call_fails_in_chromium_on_telephone_event(run, fixed):
    """Finding: the SDK's codec code leaves a=fmtp:101 without PT 101; Chromium rejects the offer
    with 488 and the app is never told (no failed event)."""
    c = _cell(run, "plivo", "chromium", "ideal", "inbound-call")
    assert c["status"] == "failed", c["reason"]
    assert "SIP/2.0 488" in _trace(c)
    events = json.loads(Path(c["evidence"]["events"]).read_text())
    assert not [e for e in events if e.get("type") == "failed"], events
    ok = _cell(fixed, "plivo-workarounds", "chromium", "ideal", "inbound-call")
    assert ok["status"] == "supported" and ok["workarounds"] == ["strip-telephone-event", "collapse-crcrlf"], ok
    assert proof(ok, "the far end hears the browser's 440 Hz")["ok"]


def test_plivo_outgoing_call_never_connects_from_firefox_on_crcrlf(run, fixed):
    """Finding: the SDK leaves \\r\\r\\n in its SDP; the far end rings and never answers."""
    c = _cell(run, "plivo", "firefox", "ideal", "outbound-call")
    assert c["status"] == "failed", c["reason"]
    trace = _trace(c)
    assert "\r\r\n" in trace and "SIP/2.0 180" in trace and not _answered(trace)
    ok = _cell(fixed, "plivo-workarounds", "firefox", "ideal", "outbound-call")
    assert ok["status"] == "supported", ok["reason"]
    assert abs(proof(ok, "what it heard is the browser's 440 Hz")["details"]["dominant_hz"] - 440) < 5


@pytest.mark.parametrize("browser", BROWSERS)
def test_the_calls_that_work_are_heard_at_the_far_end(run, browser):
    for sdk in ("jssip",) + (("plivo",) if browser == "chromium" else ()):
        c = _cell(run, sdk, browser, "ideal", "outbound-call")
        assert c["status"] == "supported", c["reason"]
        assert abs(proof(c, "what it heard is the browser's 440 Hz")["details"]["dominant_hz"] - 440) < 5
        assert proof(c, "the far end saw the browser hang up")["details"]["ended_by"] == "browser"
    plivo_dtmf = _cell(run, "plivo", "chromium", "ideal", "dtmf")
    if browser == "chromium":
        assert plivo_dtmf["status"] == "supported", plivo_dtmf["reason"]
        assert proof(plivo_dtmf, "the far end received 0123456789*# as info")["details"]["heard"] == "0123456789*#"


def test_plivo_sends_headers_the_seed_says_it_drops(run):
    """Finding: plivo-browser-sdk 2.2.21 puts X-PH- headers that break the FAQ's rules on the INVITE."""
    c = _cell(run, "plivo", "chromium", "ideal", "headers")
    assert c["status"] == "failed"
    leaked = proof(c, "none of the 8 invalid headers arrived")["details"]["leaked"]
    assert leaked and all(name.startswith("X-PH-") for name in leaked), leaked
    assert proof(c, "all 5 valid X-PH- headers arrived exactly")["ok"]


def test_jssip_reconnect_is_the_sdks_gap_not_the_browsers(run):
    c = _cell(run, "jssip", "chromium", "ideal", "reconnect")
    assert c["status"] == "not-supported" and c["lacking"].startswith("sdk:"), c


@pytest.mark.parametrize("sdk", ["plivo", "jssip"])
def test_the_webkit_column_is_truthful_for_the_real_sdks(quality, sdk):
    c = _cell(quality, sdk, "webkit", "ideal", "quality-warnings")
    assert c["status"] == "not-supported" and c["lacking"] == "browser: RTCPeerConnection", c["reason"]
    said = proof(c, "the SDK reports that this browser cannot call")
    assert said["ok"] and said["details"]["isSupported"] is False and said["details"]["webrtcNotSupported"], said


def test_the_sdks_matrix_reports_plivo_beside_the_seeds_two_tables(quality):
    html = (quality["_out"] / "report.html").read_text()
    assert "Plivo Browser SDK FAQ (../shared/seed) says: Supported" in html  # the first table, per cell
    assert "Plivo Browser SDK FAQ (../shared/seed) says: Max 7%" in html  # the second, beside CPU on call
    assert quality["_run"]["claims"]["plivo"]["performance"]["rtt_ms"]["chromium"] == "122ms"


def test_plivo_quality_warnings_rise_and_clear_on_chromium_only(quality):
    """On Chromium the SDK's own mediaMetrics (its fixed 5 s cycle) rise under each trigger and
    clear after it; on Firefox its analysis does not run (P:17300), though the seed says it does."""
    c = _cell(quality, "plivo", "chromium", "ideal", "quality-warnings")
    assert c["status"] in ("supported", "degraded", "failed"), c["reason"]
    raised = proof(c, "high_packetloss is raised under its trigger")
    assert raised["ok"] and raised["details"]["value"] >= 10, raised
    assert proof(c, "high_packetloss clears once its trigger is removed")["ok"]
    ff = _cell(quality, "plivo", "firefox", "ideal", "quality-warnings")
    assert ff["status"] == "not-supported" and ff["lacking"].startswith("sdk:"), ff
    # Measured where a call connects, not the adapter's word (20 % loss held through three of the SDK's
    # 5 s cycles, none raised); from Firefox no Plivo call connects without collapse-crcrlf, and it says so.
    if "not measured: no call connected" not in ff["reason"]:
        assert proof(ff, "the browser lost packets under the trigger")["details"]["packets_lost"] > 0
        silent = proof(ff, "the SDK raised none of its stats-based warnings")
        assert silent["ok"] and silent["details"]["seconds"] >= 20, silent

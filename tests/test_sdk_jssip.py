"""JsSIP 3.13.8 from npm, unmodified, in the matrix: the outbound-call row on Chromium and Firefox
through `rtcmatrix run`, against Kamailio, rtpengine and the SIP far end in the lab. Proven at the
far end (its recording holds the browser's 440 Hz, Kamailio saw the browser's BYE) and on the wire."""

import json
from pathlib import Path

import pytest

from tests.rowutil import proof, run_matrix

WEB = Path(__file__).resolve().parents[1] / "harness" / "web"

pytestmark = [pytest.mark.slow, pytest.mark.lab]


@pytest.fixture(scope="module")
def jssip(tmp_path_factory):
    return run_matrix(tmp_path_factory.mktemp("jssip"), "jssip", {
        "sdks": ["jssip"], "browsers": ["chromium", "firefox"], "scenarios": ["outbound-call"],
        "options": {"link_check_probes": 0, "stats_seconds": 8}})  # RTCP from the SIP far end: every 5 s


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_jssip_outbound_call_is_heard_at_the_sip_far_end(jssip, browser):
    cell = jssip[("jssip", browser, "outbound-call")]
    assert cell["status"] == "supported", cell["reason"]
    assert cell["id"] == f"jssip-{browser}-ideal-outbound-call"
    assert {"far-end", "wire"} <= set(cell["proven_by"])
    assert abs(proof(cell, "what it heard is the browser's 440 Hz")["details"]["dominant_hz"] - 440) < 5
    assert proof(cell, "the far end saw the browser hang up")["details"]["ended_by"] == "browser"
    backend = json.loads(Path(cell["evidence"]["backend"]).read_text())
    assert backend["ws_url"].startswith("ws://198.18.") and not backend["workarounds"], backend


def test_a_users_own_sdk_entry_runs_and_a_dead_uplink_turns_it_red(tmp_path):
    """A user's SDK (here JsSIP's adapter copied out of the harness, named in the matrix) loads and
    calls; with every packet from the browser lost the row must turn red, not pass."""
    adapter = tmp_path / "my-sip-sdk.js"
    adapter.write_text((WEB / "adapters" / "jssip.js").read_text())
    dead = tmp_path / "dead-uplink.yaml"
    dead.write_text("name: dead-uplink\nuplink: {loss_pct: 100}\n")
    cells = run_matrix(tmp_path, "mine", {
        "sdks": [{"name": "my-sip-sdk", "adapter": str(adapter), "scripts": [str(WEB / "build" / "jssip.js")],
                  "backend": "sip"}],
        "browsers": ["chromium"], "profiles": ["ideal", str(dead)], "scenarios": ["outbound-call"],
        "options": {"link_check_probes": 0, "stats_seconds": 4, "connect_timeout_s": 8}})
    run = cells["_run"]["cells"]
    ok = next(c for c in run if c["profile"] == "ideal")
    assert ok["sdk"] == "my-sip-sdk" and ok["status"] == "supported", ok["reason"]
    red = next(c for c in run if c["profile"] == "dead-uplink")
    assert red["status"] == "failed", red

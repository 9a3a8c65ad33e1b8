"""A user's own SDK entry in the matrix (an adapter and scripts named by path), against the SIP
backend. The built-in SDKs' rows are in test_sdk_rows.py."""

from pathlib import Path

import pytest

from tests.rowutil import run_matrix

WEB = Path(__file__).resolve().parents[1] / "harness" / "web"

pytestmark = [pytest.mark.slow, pytest.mark.lab]


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

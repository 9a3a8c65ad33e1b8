"""The wire's view of a call against the link check, under three impaired profiles (and ideal):
the loss and round trip the wire measured on the browser's uplink must agree with what the link
check measured of the same link, its jitter with what the far end reported to the browser, and
each cell keeps the browser's own figures beside them. The same calls' downlink perceptual score
(PESQ of the far end's prompt at the browser's speaker) falls as the loss grows."""

import math

import pytest

from tests.rowutil import run_matrix

pytestmark = [pytest.mark.slow, pytest.mark.lab]

PROFILES = ["ideal", "lossy-2", "lossy-10", "4g"]
BROWSERS = ["chromium", "firefox"]
# RFC 3550 jitter is the mean |change in transit| between packets: for independent delays with
# deviation sd that is 2 sd / sqrt(pi).
JITTER_PER_SD = 2 / math.sqrt(math.pi)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_matrix(tmp_path_factory.mktemp("wire"), "wire-agreement", {
        "browsers": BROWSERS, "profiles": PROFILES, "scenarios": ["outbound-call"],
        "options": {"stats_seconds": 10, "idle_seconds": 0}}, timeout_s=900)


def _cells(run):
    return [c for c in run["_run"]["cells"] if c["scenario"] == "outbound-call"]


def test_every_cell_shows_the_wire_the_link_check_and_the_browser(run):
    cells = _cells(run)
    assert {(c["browser"], c["profile"]) for c in cells} == {(b, p) for b in BROWSERS for p in PROFILES}
    for c in cells:
        m = c["metrics"]
        assert c["status"] == "supported", (c["id"], c["reason"])
        assert m["wire_packets"] and m["wire_packets"] >= 300, (c["id"], m)
        for name in ("wire_loss_pct", "wire_jitter_ms", "link_rtt_ms", "wire_mos", "rtt_ms"):
            assert m[name] is not None, (c["id"], name)


def test_wire_loss_agrees_with_the_link_check(run):
    for c in _cells(run):
        m, up = c["metrics"], c["link"]["measured"]["uplink"]
        p, n = max(up["loss_pct"], m["wire_loss_pct"]) / 100, m["wire_packets"]
        # two independent samples of one loss rate: 3.3 sd of their difference (99.9 %), at least 0.5 %
        allowed = max(0.5, 100 * 3.3 * math.sqrt(p * (1 - p) * (1 / n + 1 / up["sent"])))
        assert abs(m["wire_loss_pct"] - 100 * p) <= allowed, (c["id"], m["wire_loss_pct"], up["loss_pct"], allowed)


def test_wire_jitter_agrees_with_the_browsers_and_follows_the_link(run):
    """The far end's RTCP reports (the browser's remote-inbound-rtp jitter) are computed from the
    packets the wire saw, so the two must agree. Against the link: a link without jitter shows only
    the sender's own pacing, which the machine's load moves (2.3-3.9 ms measured alone, 5.4 ms in a
    CI run), so it has no fixed bound; the 4g link (10 ms configured) reads more than either link
    without jitter in the same run, and at least what the link check's delay spread implies. The
    link check's probes are closer together than RTP's 20 ms and netem keeps a rate-limited link in
    order, which narrows their spread (sd 4.3 ms measured for 10 ms configured), so that bound is a
    floor, not an estimate."""
    for c in _cells(run):
        m, up = c["metrics"], c["link"]["measured"]["uplink"]
        wire, browser = m["wire_jitter_ms"], m["uplink_jitter_ms"]
        assert browser is not None and abs(wire - browser) <= 0.35 * wire + 1.5, (c["id"], wire, browser)
        if c["link"]["configured"]["uplink"].get("jitter_ms"):
            assert wire >= 0.8 * JITTER_PER_SD * up["delay_ms_sd"], (c["id"], wire, up["delay_ms_sd"])
    for b in BROWSERS:
        jitter = {c["profile"]: c["metrics"]["wire_jitter_ms"] for c in _cells(run) if c["browser"] == b}
        assert jitter["4g"] > max(v for p, v in jitter.items() if p != "4g"), (b, jitter)


def test_wire_rtt_agrees_with_the_link_check(run):
    for c in _cells(run):
        m = c["metrics"]
        rtt = m["wire_rtt_ms"]
        if rtt is None:  # no STUN check fell in the window: the link check's RTT stands alone
            continue
        assert abs(rtt - m["link_rtt_ms"]) <= 0.15 * m["link_rtt_ms"] + 5, (c["id"], rtt, m["link_rtt_ms"])
    assert any(c["metrics"]["wire_rtt_ms"] is not None for c in _cells(run)), "no STUN round trip in any cell"


def test_perceptual_score_falls_with_loss(run):
    """Measured here (PESQ P.862.2 MOS-LQO, 8.5 s windows): chromium 4.33, 2.70, 1.53 and firefox
    4.22, 2.89, 1.57 across ideal, lossy-2 and lossy-10 (4g: 4.31 and 4.24)."""
    for b in BROWSERS:
        score = {c["profile"]: c["metrics"]["perceptual_mos"] for c in _cells(run) if c["browser"] == b}
        assert all(score[p] is not None for p in ("ideal", "lossy-2", "lossy-10")), (b, score)
        assert score["ideal"] > score["lossy-2"] > score["lossy-10"], (b, score)
        assert score["ideal"] > 3.0, (b, score)  # a clean call sounds clean
    cell = next(c for c in _cells(run) if c["profile"] == "ideal")
    assert cell["evidence"]["perceptual"] and cell["evidence"]["speaker-a"]

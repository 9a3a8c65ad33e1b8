"""The report's charts: inline SVG with nothing to fetch, a bar per browser for each headline metric,
the call's getStats series over time with the SDK's quality events, and hostile names kept as text."""

import json
import re
from pathlib import Path

from reports.charts import across_browsers, cell_timeline, series_points
from reports.html import write_html
from reports.results import CellResult, Metrics, RunResult

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def _series(seconds: int = 6) -> list[dict]:
    out = []
    for i in range(seconds + 1):
        out.append({"t": 1_000_000 + 1000 * i, "entries": [
            {"type": "remote-inbound-rtp", "kind": "audio", "roundTripTime": 0.1 + 0.01 * i},
            {"type": "inbound-rtp", "kind": "audio", "jitter": 0.004, "packetsLost": 5 * i,
             "packetsReceived": 45 * i, "bytesReceived": 4000 * i},
            {"type": "outbound-rtp", "kind": "audio", "bytesSent": 5000 * i}]})
    return out


def _cell(tmp_path: Path, browser: str, rtt: float) -> CellResult:
    stats, events = tmp_path / f"{len(browser)}-stats.json", tmp_path / f"{len(browser)}-events.json"
    stats.write_text(json.dumps(_series()))
    events.write_text(json.dumps([{"type": "mediaMetrics", "t": 1_002_000, "detail": {"type": "high_packetloss", "active": True}},
                                  {"type": "mediaMetrics", "t": 1_005_000, "detail": {"type": "high_packetloss", "active": False}}]))
    return CellResult(id=f"reference-{browser}-3g-outbound-call", browser=browser, profile="3g", scenario="outbound-call",
                      feature="make call", status="supported", metrics=Metrics(rtt_ms=rtt, mos=4.1),
                      evidence={"stats": str(stats), "events": str(events)})


def test_series_points_are_per_second_from_the_counters():
    points = series_points(_series())
    assert points["RTT (ms)"][0] == (1.0, 110.0)
    assert points["Loss (%)"][0] == (1.0, 10.0)  # 5 lost of 50 in each second
    assert points["Audio out (kbit/s)"][0] == (1.0, 40.0) and points["Audio in (kbit/s)"][0] == (1.0, 32.0)


def test_charts_are_inline_svg_with_nothing_to_fetch(tmp_path: Path):
    cells = [_cell(tmp_path, "chromium", 200.0), _cell(tmp_path, HOSTILE, 230.0)]
    bars = across_browsers(cells, ["chromium", HOSTILE])
    assert len(bars) == 2  # RTT and MOS: the only headline metrics these cells measured
    timeline = cell_timeline(cells[0])
    assert "quality warning raised" in timeline and "quality warning cleared" in timeline
    for svg in [*bars, timeline]:
        assert svg.startswith("<svg") and "<script" not in svg
        assert not re.search(r'(src|href)="https?:', svg)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bars[0] and HOSTILE not in bars[0]

    run = RunResult(rtcmatrix_version="0", matrix="charts", started_at=1.0, cells=cells)
    html = write_html(run, tmp_path / "report.html").read_text()
    assert html.count("<svg") == 4 and "<script" not in html and HOSTILE not in html
    assert cell_timeline(CellResult(id="x", browser="b", profile="p", scenario="s", feature="f",
                                    status="failed")) is None  # no series kept: no chart


def test_hostile_strings_stay_text_in_a_real_browser(tmp_path: Path):
    """A hostile SDK name, header, console line, behaviour and proof, as a page, an SDK, a far end or
    a dump could hand them over: the report, opened with scripts on in headless Chromium, runs
    none of it, raises no dialog, and shows each string as text."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs Debian's chromium (make setup installs it)")
    quote_break = "x' onmouseover='alert(3)"
    cell = CellResult.model_validate({**_cell(tmp_path, "chromium", 200.0).model_dump(),
        "sdk": HOSTILE, "status": "failed", "behaviour": f"Rings {HOSTILE}",
        "reason": f"console: {HOSTILE}", "evidence": {"console": str(tmp_path / "console.log")},
        "proofs": [{"by": "far-end", "claim": f"the headers that arrived: X-PH-Evil={HOSTILE}", "ok": False,
                    "details": {"headers": {"X-PH-Evil": HOSTILE, "X-PH-Quote": quote_break}}}]})
    (tmp_path / "console.log").write_text(HOSTILE)
    run = RunResult(rtcmatrix_version="0", matrix=f"m-{quote_break}.yaml", started_at=1.0, cells=[cell],
                    claims={HOSTILE: {"source": HOSTILE, "rows": {"outbound-call": {"chromium": f"Supported {HOSTILE}"}}}})
    report = write_html(run, tmp_path / "report.html")
    dialogs, elements = [], {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(report.as_uri())
            page.mouse.move(10, 10)
            for d in page.locator("details").all():
                d.evaluate("(e) => e.open = true")
            page.hover("body")
            elements = page.evaluate("""() => ({
                scripts: document.querySelectorAll('script').length,
                imgs: document.querySelectorAll('img').length,
                handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
                text: document.body.innerText })""")
        finally:
            browser.close()
    assert dialogs == [] and elements["scripts"] == 0 and elements["imgs"] == 0 and elements["handlers"] == 0
    assert HOSTILE in elements["text"] and quote_break in elements["text"]


def test_the_link_as_configured_beside_the_link_as_measured():
    from reports.charts import link_configured_and_measured
    from reports.results import LinkRecord

    def direction(delay, rate):
        return {"delay_ms": delay, "loss_pct": 1.0, "rate_kbit": rate}

    link = LinkRecord(backend="uml-netem", configured={"uplink": direction(100, 330), "downlink": direction(100, 780)},
                      measured={"uplink": {"delay_ms_mean": 103.6, "loss_pct": 0.8, "rate_kbit": 329.5},
                                "downlink": {"delay_ms_mean": 101.6, "loss_pct": 1.3, "rate_kbit": 779.0}})
    svgs = link_configured_and_measured(link)
    assert [re.search(r"<title>([^<]+)</title>", s).group(1) for s in svgs] == \
        ["Delay, one way (ms)", "Loss (%)", "Rate (kbit/s)"]
    assert "103.6" in svgs[0] and "779" in svgs[2] and all("<script" not in s for s in svgs)
    link.configured = {"uplink": direction(0, None), "downlink": direction(0, None)}
    assert len(link_configured_and_measured(link)) == 2  # no rate set: no rate chart
    assert link_configured_and_measured(LinkRecord(backend="uml-netem", configured={})) == []


def test_schedule_steps_on_the_calls_axis(tmp_path: Path):
    from reports.charts import schedule_steps
    from reports.results import LinkRecord

    cell = _cell(tmp_path, "chromium", 200.0)
    cell.link = LinkRecord(backend="uml-netem", configured={}, schedule={
        "name": "lift", "started_at": 999.0, "applied": [
            {"index": 0, "profile": "4g", "applied_s": 0.0}, {"index": 1, "profile": "doors", "applied_s": 3.5},
            {"index": 2, "profile": "3g", "applied_s": 60.0}]})
    # the series runs from t=1000 s to 1006 s: the first step is before it, the last after it
    assert schedule_steps(cell, 1_000_000, 1_006_000) == [(2.5, "doors")]
    assert "schedule step in netem" in cell_timeline(cell)

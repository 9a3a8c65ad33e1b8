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

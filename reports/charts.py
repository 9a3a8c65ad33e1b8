"""Charts for the HTML report, as inline SVG made by pygal: nothing is fetched when the report opens
(pygal's tooltip script comes from the web, so it is left out), and every label pygal writes is
XML-escaped by its serialiser, so a hostile browser or SDK name stays text. pygal also inlines its
config, labels included, as JSON in a <script>, where "</script>" in a name would end the element:
that script is taken out of every chart.

- per profile, one small bar chart per headline metric across the browsers;
- per cell, the call's getStats series over time (RTT, jitter, loss, bitrate) with the SDK's
  quality events and the schedule's steps (when netem had each) on the same axis;
- per profile, the link as configured beside the link as measured.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pygal
from pygal.style import Style

from reports.results import CellResult

STYLE = Style(background="white", plot_background="white", font_family="system-ui, sans-serif",
              label_font_size=11, major_label_font_size=11, legend_font_size=11, title_font_size=13)
CONFIG = {"js": [], "disable_xml_declaration": True, "style": STYLE, "explicit_size": True}
HEADLINE = [("RTT (ms)", "rtt_ms"), ("Jitter, downlink (ms)", "jitter_ms"), ("Loss, downlink (%)", "packet_loss_pct"),
            ("MOS", "mos"), ("CPU on call (% of a core)", "cpu_call_pct"), ("Memory on call (PSS MB)", "mem_call_pss_mb")]


SVG, XLINK = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", XLINK)


def _svg(chart, text: str | None = None) -> str:
    """The chart's SVG (or `text`, SVG it rendered) without any script element."""
    root = ET.fromstring(text if text is not None else chart.render(is_unicode=True))
    for parent in root.iter():
        for child in [c for c in parent if c.tag == f"{{{SVG}}}script"]:
            parent.remove(child)
    return ET.tostring(root, encoding="unicode")


def across_browsers(cells: list[CellResult], browsers: list[str]) -> list[str]:
    """One small bar chart per headline metric: the mean of each browser's cells that measured it."""
    charts = []
    for title, attr in HEADLINE:
        values = []
        for b in browsers:
            got = [getattr(c.metrics, attr) for c in cells if c.browser == b and getattr(c.metrics, attr) is not None]
            values.append(round(sum(got) / len(got), 2) if got else None)
        if all(v is None for v in values):
            continue
        chart = pygal.Bar(title=title, width=260, height=200, show_legend=False, print_values=True, truncate_label=-1,
                          **CONFIG)
        chart.x_labels = browsers
        chart.add(title, values)
        charts.append(_svg(chart))
    return charts


def _of(sample: dict, kind: str) -> dict | None:
    return next((e for e in sample.get("entries", []) if e.get("type") == kind and e.get("kind", "audio") == "audio"), None)


def series_points(series: list[dict]) -> dict[str, list[tuple[float, float]]]:
    """Per-second points from a getStats series: seconds since its first sample -> value."""
    if not series:
        return {}
    t0 = series[0]["t"]
    out: dict[str, list[tuple[float, float]]] = {"RTT (ms)": [], "Jitter (ms)": [], "Loss (%)": [],
                                                  "Audio out (kbit/s)": [], "Audio in (kbit/s)": []}
    for prev, cur in zip(series, series[1:]):
        x = round((cur["t"] - t0) / 1000, 2)
        dt = (cur["t"] - prev["t"]) / 1000
        remote = _of(cur, "remote-inbound-rtp")
        if remote and remote.get("roundTripTime"):
            out["RTT (ms)"].append((x, round(1000 * remote["roundTripTime"], 1)))
        inb, inb0 = _of(cur, "inbound-rtp"), _of(prev, "inbound-rtp")
        if inb and inb.get("jitter") is not None:
            out["Jitter (ms)"].append((x, round(1000 * inb["jitter"], 1)))
        if inb and inb0:
            lost = inb.get("packetsLost", 0) - inb0.get("packetsLost", 0)
            got = inb.get("packetsReceived", 0) - inb0.get("packetsReceived", 0)
            if got + lost > 0:
                out["Loss (%)"].append((x, round(100 * max(lost, 0) / (got + max(lost, 0)), 1)))
            if dt > 0:
                out["Audio in (kbit/s)"].append((x, round(8 * (inb.get("bytesReceived", 0) - inb0.get("bytesReceived", 0)) / dt / 1000, 1)))
        out_, out0 = _of(cur, "outbound-rtp"), _of(prev, "outbound-rtp")
        if out_ and out0 and dt > 0:
            out["Audio out (kbit/s)"].append((x, round(8 * (out_.get("bytesSent", 0) - out0.get("bytesSent", 0)) / dt / 1000, 1)))
    return {k: v for k, v in out.items() if v}


def quality_events(events: list[dict], t0: float) -> list[tuple[float, str, bool]]:
    """(seconds, warning name, raised) for the SDK's mediaMetrics events."""
    out = []
    for e in events:
        if e.get("type") != "mediaMetrics":
            continue
        d = e.get("detail") or {}
        out.append((round((e["t"] - t0) / 1000, 2), str(d.get("type") or d.get("name") or "warning"), d.get("active", True) is not False))
    return out


def cell_timeline(cell: CellResult) -> str | None:
    """The cell's call over time, or None when it kept no getStats series."""
    try:
        series = json.loads(Path(cell.evidence["stats"]).read_text()) if "stats" in cell.evidence else []
    except (OSError, ValueError):
        return None
    points = series_points(series)
    if not points:
        return None
    chart = pygal.XY(title="The call, from the browser's getStats", width=760, height=300, dots_size=2,
                     x_title="seconds", legend_at_bottom=True, **CONFIG)
    for name, pts in points.items():
        chart.add(name, pts)
    try:
        events = json.loads(Path(cell.evidence["events"]).read_text()) if "events" in cell.evidence else []
    except (OSError, ValueError):
        events = []
    marks = quality_events(events, series[0]["t"])
    for raised in (True, False):
        pts = [{"value": (x, 0), "label": name} for x, name, r in marks if r is raised]
        if pts:
            chart.add("quality warning raised" if raised else "quality warning cleared", pts, stroke=False, dots_size=5)
    steps = schedule_steps(cell, series[0]["t"], series[-1]["t"])
    if steps:
        chart.add("schedule step in netem", [{"value": (x, 0), "label": name} for x, name in steps], stroke=False,
                  dots_size=4)
    return _svg(chart)


def schedule_steps(cell: CellResult, first_ms: float, last_ms: float) -> list[tuple[float, str]]:
    """(seconds on the series' axis, profile) for each schedule step netem really had during the series."""
    schedule = cell.link.schedule if cell.link else None
    if not schedule or not schedule.get("started_at"):
        return []
    out = []
    for step in schedule.get("applied") or []:
        at_ms = 1000 * (schedule["started_at"] + step["applied_s"])
        if first_ms <= at_ms <= last_ms:
            out.append((round((at_ms - first_ms) / 1000, 2), str(step["profile"])))
    return out


def sparkline(values: list[float | None], title: str) -> str:
    """A small line of one figure across runs (None where a run did not measure it)."""
    chart = pygal.Line(title=title, **CONFIG)
    chart.add(title, values)
    return _svg(chart, chart.render_sparkline(width=160, height=36, is_unicode=True, style=STYLE, js=[],
                                              disable_xml_declaration=True))


def link_configured_and_measured(link) -> list[str]:
    """Per direction, the delay and loss the profile asked for beside what the link check measured
    (a rate too, where one was set): one small bar chart each."""
    if not link or not link.measured:
        return []
    charts = []
    for title, conf_key, meas_key in (("Delay, one way (ms)", "delay_ms", "delay_ms_mean"),
                                      ("Loss (%)", "loss_pct", "loss_pct"), ("Rate (kbit/s)", "rate_kbit", "rate_kbit")):
        configured = [link.configured[d].get(conf_key) for d in ("uplink", "downlink")]
        measured = [link.measured[d].get(meas_key) for d in ("uplink", "downlink")]
        if conf_key == "rate_kbit" and not any(configured):
            continue
        chart = pygal.Bar(title=title, width=260, height=200, print_values=True, legend_at_bottom=True, **CONFIG)
        chart.x_labels = ["uplink", "downlink"]
        chart.add("configured", [None if v is None else round(v, 2) for v in configured])
        chart.add("measured", [None if v is None else round(v, 2) for v in measured])
        charts.append(_svg(chart))
    return charts

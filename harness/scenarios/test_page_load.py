"""Page load and network usage, the seed's "Network usage" row: what loading the SDK's page costs.

Budget: one page load, no call (about 1 s on ideal). The page's own timing (Navigation and Resource
Timing) is checked against the wire: the bytes it says it loaded must have crossed the lab link.
"""

import pytest

from harness.wire import WireTap

pytestmark = [pytest.mark.scenario("page-load"), pytest.mark.slow, pytest.mark.lab]

TIMING_JS = """() => {
  const nav = performance.getEntriesByType("navigation")[0] || {};
  const res = performance.getEntriesByType("resource");
  const all = [nav, ...res].filter((e) => e.name);
  const sum = (k) => all.reduce((s, e) => s + (e[k] || 0), 0);
  const origin = performance.timeOrigin;
  return {
    dom_content_loaded_ms: nav.domContentLoadedEventEnd || null,
    load_ms: nav.loadEventEnd || null,
    finish_ms: all.length ? Math.max(...all.map((e) => e.responseEnd || 0)) : null,
    requests: all.length,
    transferred: sum("transferSize"),
    decoded: sum("decodedBodySize"),
    encoded: sum("encodedBodySize"),
    entries: all.map((e) => ({name: e.name, type: e.initiatorType || "navigation", transfer: e.transferSize,
                              encoded: e.encodedBodySize, end_ms: e.responseEnd})),
    time_origin: origin,
  };
}"""
WIRE_SHARE = 0.9  # headers and TCP overhead only add: the wire must carry at least the bodies


def test_page_load(cell, softphone, lab):
    with WireTap(lab) as tap:
        softphone.open()
        softphone.page.wait_for("() => document.readyState === 'complete'", timeout_s=15)
        timing = softphone.page.evaluate(TIMING_JS)
    wire = tap.report()
    cell.keep("page-timing.json", {**timing, "driver_requests": getattr(softphone.page, "requests", None)})
    cell.keep("wire.json", wire.model_dump())
    m = cell.metrics
    m.page_requests = timing["requests"]
    m.page_transferred_kb = round(timing["transferred"] / 1024, 2) if timing["transferred"] else None
    m.page_resources_kb = round(timing["decoded"] / 1024, 2)
    m.dom_content_loaded_ms, m.load_ms, m.finish_ms = timing["dom_content_loaded_ms"], timing["load_ms"], timing["finish_ms"]
    m.page_wire_kb = round(wire.tcp_bytes_to_client / 1024, 2)
    cell.prove("page", "the browser timed its page load", bool(timing["load_ms"]) and timing["requests"] > 0,
               dom_content_loaded_ms=timing["dom_content_loaded_ms"], load_ms=timing["load_ms"],
               requests=timing["requests"])
    body = timing["encoded"] or timing["decoded"]
    cell.prove("wire", "what the page loaded crossed the lab link",
               wire.tcp_connections_from_client > 0 and wire.tcp_bytes_to_client >= WIRE_SHARE * body > 0,
               wire_bytes_to_browser=wire.tcp_bytes_to_client, page_body_bytes=body,
               connections=wire.tcp_connections_from_client)
    cell.behaviour = (f"{timing['requests']} requests, {m.page_resources_kb:.0f} KB of resources; "
                      f"DOMContentLoaded {timing['dom_content_loaded_ms']:.0f} ms, load {timing['load_ms']:.0f} ms, "
                      f"finish {timing['finish_ms']:.0f} ms")

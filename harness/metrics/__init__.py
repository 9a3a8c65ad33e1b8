"""Where a cell's figures come from, one module per source: the browser's getStats (`getstats`),
the machine's view of the browser's processes (`process`), and the wire's view of its uplink (`wire`)."""

from harness.metrics.getstats import R0, mos, rtt_series, summarise
from harness.metrics.process import ProcessSampler, browser_roots

__all__ = ["R0", "mos", "rtt_series", "summarise", "ProcessSampler", "browser_roots"]

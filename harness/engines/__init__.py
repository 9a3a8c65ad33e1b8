"""Browser engines: one module each, one interface (`base.Engine`) for all.

A matrix column (`BrowserSpec`) names an engine plus options (device, CPU throttle, binary);
`engine(name)` returns the recipe that launches it inside the lab.
"""

from __future__ import annotations

from harness.engines.base import BrowserMissing, BrowserSpec, Engine, LaunchContext, Page, PageTimeout, RunningBrowser
from harness.engines.chromium import Chromium
from harness.engines.firefox import Firefox

ENGINES: dict[str, Engine] = {"chromium": Chromium(), "firefox": Firefox()}
try:
    from harness.engines.webkit import WebKit

    ENGINES["webkit"] = WebKit()
except ImportError:  # pragma: no cover - the module is part of the package
    pass

# What the page itself can do, read in every engine (evidence for "not supported" verdicts).
CAPABILITIES_JS = """() => ({
  RTCPeerConnection: typeof RTCPeerConnection === "function",
  getUserMedia: !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
  setSinkId: typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype,
  selectAudioOutput: !!(navigator.mediaDevices && navigator.mediaDevices.selectAudioOutput),
  RTCDTMFSender: typeof RTCDTMFSender === "function",
  getSupportedConstraints: !!(navigator.mediaDevices && navigator.mediaDevices.getSupportedConstraints),
  audioConstraints: (navigator.mediaDevices && navigator.mediaDevices.getSupportedConstraints)
    ? ["echoCancellation", "noiseSuppression", "autoGainControl", "voiceIsolation", "deviceId", "channelCount",
       "sampleRate", "latency"].filter((k) => navigator.mediaDevices.getSupportedConstraints()[k]) : [],
  performanceMemory: !!(performance && performance.memory),
  userAgent: navigator.userAgent,
  // A fixed piece of script work, timed: shows a column's CPU throttle (cpu_throttle) taking effect. The
  // quickest of five runs after a warm-up: the first run pays for the JIT, and a busy host only adds time.
  scriptWorkMs: (() => { const runs = []; let x = 0;
                         for (let k = 0; k < 6; k++) { const t0 = performance.now();
                           for (let i = 0; i < 2e6; i++) x += Math.sqrt(i);
                           if (k > 0) runs.push(performance.now() - t0); }
                         return x > 0 ? Math.round(Math.min(...runs) * 10) / 10 : null; })(),
})"""


def engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise BrowserMissing(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


__all__ = ["BrowserMissing", "BrowserSpec", "CAPABILITIES_JS", "ENGINES", "Engine", "LaunchContext", "Page",
           "PageTimeout", "RunningBrowser", "engine"]

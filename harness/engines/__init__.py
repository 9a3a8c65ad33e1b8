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
})"""


def engine(name: str) -> Engine:
    try:
        return ENGINES[name]
    except KeyError:
        raise BrowserMissing(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None


__all__ = ["BrowserMissing", "BrowserSpec", "CAPABILITIES_JS", "ENGINES", "Engine", "LaunchContext", "Page",
           "PageTimeout", "RunningBrowser", "engine"]

/* The page-side half of the harness: wraps whatever adapter is loaded, keeps a timestamped
 * event log and a getStats series that the Python side reads with page.evaluate. */
(function () {
  "use strict";
  const KEEP = new Set(["outbound-rtp", "inbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp",
                        "candidate-pair", "media-source", "transport", "codec", "local-candidate", "remote-candidate"]);
  const rtcm = { events: [], stats: [], errors: [], timer: null, callId: null };
  const adapter = window.rtcmatrixAdapter;
  const log = (type, detail) => rtcm.events.push({ type, t: Date.now(), detail: detail || {} });

  window.addEventListener("error", (e) => rtcm.errors.push(String(e.message)));
  window.addEventListener("unhandledrejection", (e) => rtcm.errors.push(String(e.reason)));

  if (!adapter) {
    rtcm.errors.push("no window.rtcmatrixAdapter: the adapter script did not load or did not register");
  } else {
    for (const ev of ["registered", "loginFailed", "disconnected", "calling", "ringing", "connected",
                      "ended", "failed", "interrupted", "muted", "unmuted"]) {
      adapter.on(ev, (d) => log(ev, d));
    }
  }

  async function sample() {
    const report = await adapter.getStats();
    if (!report) return;
    const entries = [];
    report.forEach((s) => { if (KEEP.has(s.type)) entries.push(Object.assign({}, s)); });
    rtcm.stats.push({ t: Date.now(), entries });
  }

  Object.assign(rtcm, {
    adapterInfo: () => ({ name: adapter && adapter.name, version: adapter && adapter.version,
                          supported: !!(adapter && adapter.isSupported()) }),
    login: (opts) => adapter.login(opts),
    async call(destination, opts) { rtcm.callId = await adapter.call(destination, opts || {}); return rtcm.callId; },
    hangup: () => adapter.hangup(),
    mute: () => adapter.mute(),
    unmute: () => adapter.unmute(),
    startStats(intervalMs) {
      clearInterval(rtcm.timer);
      rtcm.timer = setInterval(() => sample().catch((e) => rtcm.errors.push("getStats: " + e)), intervalMs || 1000);
    },
    stopStats() { clearInterval(rtcm.timer); rtcm.timer = null; },
    takeStats() { const s = rtcm.stats; rtcm.stats = []; return s; },
  });
  window.rtcm = rtcm;
  log("page-ready", { userAgent: navigator.userAgent });
})();

/* The page-side half of the harness: wraps whatever adapter is loaded (as window.rtcm), keeps a
 * timestamped event log, a getStats series, a mirror of the console, and SDK-independent probes
 * of the page's peer connections and audio elements that the Python side reads with
 * page.evaluate. Loaded before the SDK (so the probes see every RTCPeerConnection); index.html
 * calls rtcm._attach() once the adapter has loaded. See ADAPTER.md. */
(function () {
  "use strict";
  const KEEP = new Set(["outbound-rtp", "inbound-rtp", "remote-inbound-rtp", "remote-outbound-rtp",
                        "candidate-pair", "media-source", "transport", "codec", "local-candidate", "remote-candidate"]);
  const EVENTS = ["registered", "loginFailed", "unregistered", "disconnected", "incomingCall", "calling", "ringing",
                  "connected", "ended", "failed", "interrupted", "muted", "unmuted", "mediaMetrics",
                  "webrtcNotSupported", "dtmfSent", "inputChanged", "outputChanged"];
  const NOT_OPTIONS = new Set(["name", "username", "password", "token", "server", "to"]);
  const CONSOLE_MAX = 2000;
  const rtcm = { events: [], stats: [], errors: [], console: [], lifecycleEvents: [], timer: null, callId: null,
                 attached: false, pageOptions: {}, options: null };
  const log = (type, detail) => rtcm.events.push({ type, t: Date.now(), detail: detail || {} });

  // --- console mirror (engines driven over WebDriver have no console events) -----------------
  const text = (a) => {
    if (a instanceof Error) return `${a.name}: ${a.message}`;
    if (typeof a === "string") return a;
    try { return JSON.stringify(a); } catch (e) { return String(a); }
  };
  const mirror = (level, message) => {
    rtcm.console.push({ level, t: Date.now(), text: message });
    if (rtcm.console.length > CONSOLE_MAX) rtcm.console.shift();
  };
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    const original = console[level].bind(console);
    console[level] = (...args) => { mirror(level, args.map(text).join(" ")); original(...args); };
  }
  window.addEventListener("error", (e) => {
    rtcm.errors.push(String(e.message));
    mirror("pageerror", `${e.message} (${e.filename || "?"}:${e.lineno || "?"})`);
  });
  window.addEventListener("unhandledrejection", (e) => {
    rtcm.errors.push(String(e.reason));
    mirror("unhandledrejection", text(e.reason));
  });

  // --- page lifecycle (backgrounding, freezing): [{type, t, visibilityState}] ---------------------
  const lifecycle = (e) => rtcm.lifecycleEvents.push({ type: e.type, t: Date.now(), visibilityState: document.visibilityState });
  for (const type of ["visibilitychange", "freeze", "resume"]) document.addEventListener(type, lifecycle);
  for (const type of ["pagehide", "pageshow", "focus", "blur"]) window.addEventListener(type, lifecycle);

  // --- probes: what the page really does, whatever the SDK says ------------------------------
  const peers = [];
  if (typeof window.RTCPeerConnection === "function") {
    const Native = window.RTCPeerConnection;
    class Tracked extends Native { constructor(...args) { super(...args); peers.push(this); } }
    window.RTCPeerConnection = Tracked;
  }
  // Signalling as the page exchanged it, whatever the SDK: bytes and frames over every WebSocket.
  const ws = { sentBytes: 0, receivedBytes: 0, sentFrames: 0, receivedFrames: 0, opened: 0 };
  const size = (d) => typeof d === "string" ? new TextEncoder().encode(d).length : (d && (d.byteLength ?? d.size)) || 0;
  if (typeof window.WebSocket === "function") {
    const NativeWS = window.WebSocket;
    class TrackedWS extends NativeWS {
      constructor(...args) {
        super(...args);
        ws.opened += 1;
        this.addEventListener("message", (e) => { ws.receivedFrames += 1; ws.receivedBytes += size(e.data); });
      }
      send(data) { ws.sentFrames += 1; ws.sentBytes += size(data); return super.send(data); }
    }
    window.WebSocket = TrackedWS;
  }
  const elements = new Set();
  if (window.HTMLMediaElement) {
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function (...args) { elements.add(this); return play.apply(this, args); };
  }
  const open = (all) => peers.filter((p) => all || p.connectionState !== "closed");

  rtcm.probe = {
    websocket: () => Object.assign({}, ws),
    peers: (all) => open(all).map((p) => ({ connectionState: p.connectionState, signalingState: p.signalingState })),
    sdp: (all) => open(all).map((p) => ({ local: p.localDescription && p.localDescription.sdp,
                                          remote: p.remoteDescription && p.remoteDescription.sdp })),
    senders: (all) => open(all).flatMap((p) => p.getSenders().filter((s) => s.track && s.track.kind === "audio").map((s) => {
      const settings = s.track.getSettings ? s.track.getSettings() : {};
      const processing = {};
      for (const k of ["echoCancellation", "noiseSuppression", "autoGainControl"]) if (k in settings) processing[k] = settings[k];
      return { trackId: s.track.id, label: s.track.label, deviceId: settings.deviceId || null, enabled: s.track.enabled, processing,
               readyState: s.track.readyState, encodings: (s.getParameters().encodings || []).map((e) => Object.assign({}, e)),
               canInsertDTMF: !!(s.dtmf && s.dtmf.canInsertDTMF) };
    })),
    audio: () => [...new Set([...document.querySelectorAll("audio"), ...elements])].map((el) => ({
      sinkId: el.sinkId === undefined ? null : el.sinkId, paused: el.paused, muted: el.muted,
      hasStream: !!el.srcObject, inDocument: document.contains(el) })),
    async media(all) {
      const out = [];
      for (const p of open(all)) {
        const r = await p.getStats();
        const m = { inbound: null, outbound: null, remoteInbound: null, codec: null };
        r.forEach((s) => {
          if (s.kind && s.kind !== "audio") return;
          if (s.type === "inbound-rtp") m.inbound = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived, totalAudioEnergy: s.totalAudioEnergy, audioLevel: s.audioLevel, jitter: s.jitter, packetsLost: s.packetsLost };
          if (s.type === "outbound-rtp") { m.outbound = { packetsSent: s.packetsSent, bytesSent: s.bytesSent, targetBitrate: s.targetBitrate }; if (r.get(s.codecId)) m.codec = Object.assign({}, r.get(s.codecId)); }
          if (s.type === "remote-inbound-rtp") m.remoteInbound = { roundTripTime: s.roundTripTime, fractionLost: s.fractionLost, jitter: s.jitter };
        });
        out.push(m);
      }
      return out;
    },
  };

  // --- options from the page URL (for hand use): ?name=reference&dtmfMode=inband&break=dtmf ----
  function pageOptions() {
    const out = {};
    for (const [k, v] of new URLSearchParams(location.search)) {
      if (NOT_OPTIONS.has(k)) continue;
      if (k === "audioConstraints") {
        try { out[k] = JSON.parse(v); } catch (e) { rtcm.errors.push(`audioConstraints in the URL is not JSON: ${v}`); }
      } else if (k === "codecs" || k === "break") out[k] = v.split(",").map((s) => s.trim()).filter(Boolean);
      else if (v === "true" || v === "false") out[k] = v === "true";
      else if (/^-?\d+(\.\d+)?$/.test(v)) out[k] = Number(v);
      else out[k] = v;
    }
    return out;
  }

  function adapter(method) {
    const a = window.rtcmatrixAdapter;
    if (!a) throw new Error("no window.rtcmatrixAdapter: the adapter script did not load or did not register");
    if (!rtcm.attached) rtcm._attach();
    if (method && typeof a[method] !== "function") throw new Error(`not supported by the SDK adapter: ${method}()`);
    return a;
  }

  rtcm._attach = function () {
    if (rtcm.attached) return;
    const a = window.rtcmatrixAdapter;
    if (!a) {
      rtcm.errors.push("no window.rtcmatrixAdapter: the adapter script did not load or did not register");
      return;
    }
    rtcm.attached = true;
    for (const ev of EVENTS) a.on(ev, (d) => log(ev, d));
    rtcm.pageOptions = pageOptions();
    if (typeof a.configure === "function") {
      try { rtcm.options = a.configure(rtcm.pageOptions); } catch (e) { rtcm.errors.push(`configure: ${e}`); }
    }
    log("page-ready", { userAgent: navigator.userAgent, options: rtcm.pageOptions });
  };

  async function sample() {
    const report = await adapter("getStats").getStats();
    if (!report) return;
    const entries = [];
    report.forEach((s) => { if (KEEP.has(s.type)) entries.push(Object.assign({}, s)); });
    rtcm.stats.push({ t: Date.now(), entries });
  }

  const pass = (method) => (...args) => adapter(method)[method](...args);

  Object.assign(rtcm, {
    adapterInfo() {
      const a = window.rtcmatrixAdapter;
      let features = null;
      try { features = a && typeof a.features === "function" ? a.features() : null; } catch (e) { features = { error: String(e) }; }
      return { name: a && a.name, version: a && a.version, supported: !!(a && a.isSupported()), features,
               options: rtcm.options, pageOptions: rtcm.pageOptions };
    },
    features: () => { const a = adapter(); return typeof a.features === "function" ? a.features() : null; },
    configure: pass("configure"),
    login: pass("login"),
    logout: pass("logout"),
    async call(destination, opts) { rtcm.callId = await adapter("call").call(destination, opts || {}); return rtcm.callId; },
    async answer(opts) { rtcm.callId = await adapter("answer").answer(opts || {}); return rtcm.callId; },
    reject: pass("reject"),
    hangup: pass("hangup"),
    mute: pass("mute"),
    unmute: pass("unmute"),
    sendDtmf: pass("sendDtmf"),
    devices: pass("devices"),
    setInput: pass("setInput"),
    setOutput: pass("setOutput"),
    feedback: pass("feedback"),
    eventsOf: (type) => rtcm.events.filter((e) => e.type === type),
    startStats(intervalMs) {
      clearInterval(rtcm.timer);
      rtcm.timer = setInterval(() => sample().catch((e) => rtcm.errors.push("getStats: " + e)), intervalMs || 1000);
    },
    stopStats() { clearInterval(rtcm.timer); rtcm.timer = null; },
    takeStats() { const s = rtcm.stats; rtcm.stats = []; return s; },
  });
  window.rtcm = rtcm;
})();

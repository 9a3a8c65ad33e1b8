/* The adapter for plivo-browser-sdk (npm "plivo-browser-sdk", dist/plivobrowsersdk.js served
 * unmodified before this file). Its backend is the SIP stack in Plivo mode (harness/backends/sip):
 * Kamailio answers for phone.plivo.com, which the SDK hard-codes, and registrationDomainSocket
 * points the SDK at the lab's Kamailio instead of Plivo's cloud.
 *
 * The SDK's own events are mapped to the contract's (../ADAPTER.md) and nothing is patched: a
 * defect of the SDK shows as a failed or silent call, which is the point of testing it. */
(function () {
  "use strict";
  const handlers = {};
  const emit = (event, detail) => (handlers[event] || []).forEach((fn) => fn(detail || {}));
  let options = { dtmfMode: "info", enableTracking: true, dscp: true };
  let plivo = null;           // one Plivo instance per page: the SDK refuses a second one
  let client = null;
  let username = null;
  let everLoggedIn = false;
  let downAt = null;
  let current = null;         // call id of the call the user is on
  let onCalling = null;       // resolves the pending call() when the SDK says onCalling
  const incoming = new Map(); // call id -> Plivo's callUUID, for calls that ring
  const sdkClass = () => window.Plivo && (window.Plivo.default || window.Plivo);
  // Plivo's own check (P:17300): the quality analysis runs where its browser detection says Chrome.
  const isChrome = () => !!window.chrome && /Chrome\//.test(navigator.userAgent) && !/Firefox\//.test(navigator.userAgent);

  const supported = () => typeof window.RTCPeerConnection === "function" && !!navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === "function" && typeof window.WebSocket === "function";
  /* The SIP Call-ID the far end sees; the SDK keeps its JsSIP session in _currentSession. */
  const sessionOf = (s) => s && s.session;
  const callIdOf = (s) => (s && ((s.session && s.session._request && s.session._request.call_id) || s.sipCallID || s.callUUID)) || null;
  const pc = () => { const r = client && client.getPeerConnection(); return r && r.status === "success" ? r.pc : null; };
  const userOf = (name) => String(name || "").replace(/^sip:/, "").split("@")[0];

  function watchMedia(callId) {
    /* `connected` is media flowing: the SDK's onMediaConnected misses calls whose ICE connected
     * before it attached its handler (a finding of the lab), so the adapter watches the pc. */
    let sent = false;
    const check = () => {
      const p = pc();
      if (!p || sent || current !== callId) return;
      if ("connectionState" in p ? p.connectionState === "connected" : ["connected", "completed"].includes(p.iceConnectionState)) {
        sent = true; emit("connected", { callId }); return;
      }
      p.addEventListener("iceconnectionstatechange", check, { once: true });
      p.addEventListener("connectionstatechange", check, { once: true });
    };
    check();
    const p = pc();
    if (p) {
      p.addEventListener("iceconnectionstatechange", () => {
        if (sent && ["disconnected", "failed"].includes(p.iceConnectionState)) {
          emit("interrupted", { callId, reason: `ICE ${p.iceConnectionState}` });
        }
      });
    }
  }

  function wire(c) {
    c.on("onLogin", () => {
      const reconnect = everLoggedIn;
      emit("registered", { username, reconnect, downMs: reconnect && downAt !== null ? Date.now() - downAt : null });
      everLoggedIn = true; downAt = null;
    });
    c.on("onLoginFailed", (reason) => emit("loginFailed", { reason: String(reason) }));
    c.on("onLogout", () => emit("unregistered", { reason: "logout", willReconnect: false }));
    c.on("onConnectionChange", (info) => {
      // After a drop the SDK says disconnected, then connected; onLogin does not repeat (P:820).
      const state = info && info.state;
      if (state === "disconnected" && everLoggedIn && downAt === null) {
        downAt = Date.now();
        emit("unregistered", { reason: (info && info.reason) || "connection lost", willReconnect: true });
      } else if (state === "connected" && downAt !== null) {
        emit("registered", { username, reconnect: true, downMs: Date.now() - downAt });
        downAt = null;
      }
    });
    c.on("onCalling", () => { const r = onCalling; onCalling = null; if (r) r(); });
    c.on("onCallRemoteRinging", () => emit("ringing", { callId: current }));
    c.on("onCallAnswered", () => watchMedia(current));
    c.on("onCallTerminated", (hangup, info) => {
      const id = current;
      const by = hangup && hangup.originator === "local" ? "local" : "remote";
      emit("ended", { callId: id, by, reason: (hangup && (hangup.reason || hangup.cause)) || (info && info.reason) || "" });
      current = null;
    });
    c.on("onCallFailed", (cause, info) => {
      const id = (info && info.callUUID && [...incoming].find(([, u]) => u === info.callUUID)?.[0]) || current;
      emit("failed", { callId: id, reason: String(cause) });
      if (current === id) current = null;
    });
    c.on("onIncomingCall", (caller, headers, info) => {
      const callId = info && info.callUUID;  // the backend sets X-Calluuid to the SIP Call-ID
      incoming.set(callId, info.callUUID);
      emit("incomingCall", { callId, from: userOf(caller), to: username, headers: headers || {} });
    });
    c.on("onIncomingCallCanceled", (info) => info && incoming.delete(info.callUUID));
    c.on("mediaMetrics", (m) => {
      // The contract's units: a number, and loss in percent (the SDK gives a string, loss as a fraction).
      const n = Number(m.value);
      const value = Number.isFinite(n) ? (m.type === "high_packetloss" ? Math.round(n * 1000) / 10 : n) : m.value;
      emit("mediaMetrics", Object.assign({ callId: current }, m, { value, sdkValue: m.value }));
    });
    c.on("onWebrtcNotSupported", () => emit("webrtcNotSupported", { missing: ["RTCPeerConnection"], source: "sdk: onWebrtcNotSupported" }));
  }

  function make(server) {
    const P = sdkClass();
    if (!P) throw new Error("plivo-browser-sdk is not loaded (run make setup)");
    plivo = new P({
      registrationDomainSocket: [server], debug: options.debug || "ERROR", permOnClick: true,
      enableTracking: !!options.enableTracking, dscp: !!options.dscp, closeProtection: false,
      audioConstraints: options.audioConstraints || {}, allowMultipleIncomingCalls: false,
      ...(options.maxAverageBitrate ? { maxAverageBitrate: Number(options.maxAverageBitrate) } : {}),
      ...(options.codecs ? { codecs: [].concat(options.codecs).map((x) => String(x).toUpperCase()) } : {}),
    });
    client = plivo.client;
    wire(client);
  }

  function once(events) {
    return new Promise((resolve) => {
      let done = false;
      for (const ev of events) on(ev, (detail) => { if (!done) { done = true; resolve({ ev, detail }); } });
    });
  }
  const deadline = (ms, why) => new Promise((_, reject) => setTimeout(() => reject(new Error(why)), ms));
  function on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); }

  function live() {
    if (!client || !client._currentSession) throw new Error("no active call");
    return client._currentSession;
  }

  window.rtcmatrixAdapter = {
    name: "plivo",
    version: "plivo-browser-sdk 2.2.21",

    configure(opts) {
      options = Object.assign({}, options, opts || {});
      return Object.assign({}, options);
    },

    isSupported: supported,
    features: () => ({
      dtmf: ["info"], codecs: ["opus", "pcmu"], qualityWarnings: isChrome(), feedback: false,
      incoming: true, reconnect: true, unloadHangup: false, headers: "X-PH-", maxAverageBitrate: true, dscp: true,
      setInput: true, setOutput: !!(window.HTMLMediaElement && "setSinkId" in HTMLMediaElement.prototype),
      codecPreferences: false, inbandDtmf: false,
      // OPTIONS to admin@ every 5 s idle (4 s in a call), 2 s to answer (P:17967-17999)
      keepalive: { intervalMs: 5000, timeoutMs: 2000 },
      // its stats cycle is fixed: every 5 s, from 5 s after the answer (field.md)
      qualitySampling: { intervalMs: 5000, delayMs: 5000 },
      notes: { qualityWarnings: "plivo-browser-sdk 2.2.21 runs its stats analysis on Chrome only (P:17300)",
               dtmf: "SIP INFO application/dtmf-relay only; its INBAND mode plays a local file" },
    }),

    async login({ server, username: user, password }) {
      if (!supported()) {
        const missing = ["RTCPeerConnection", "getUserMedia", "WebSocket"].filter((n) =>
          n === "getUserMedia" ? !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) : typeof window[n] !== "function");
        emit("webrtcNotSupported", { missing, source: "adapter: its own check before the SDK is made" });
        throw new Error(`this browser cannot run plivo-browser-sdk: missing ${missing.join(", ")}`);
      }
      if (!client) make(server);
      username = user;
      const result = Promise.race([once(["registered", "loginFailed"]), deadline(15000, "login: the SDK said neither onLogin nor onLoginFailed in 15 s")]);
      if (client.login(user, password) === false) throw new Error("the SDK refused to log in (see the page's console)");
      const { ev, detail } = await result;
      if (ev === "loginFailed") throw new Error(`login failed: ${detail.reason}`);
    },
    async logout() { if (client) client.logout(); },

    async call(destination, { headers, audioConstraints } = {}) {
      const wanted = headers || {};
      // Read by the SDK when it builds the call's getUserMedia (the harness turns processing off).
      client.options.audioConstraints = audioConstraints || options.audioConstraints || true;
      const failed = once(["failed"]);
      const sdkCalling = new Promise((resolve) => { onCalling = resolve; });
      if (client.call(destination, wanted) === false) throw new Error("the SDK refused to call (see the page's console)");
      const outcome = await Promise.race([sdkCalling.then(() => null), failed,
                                          deadline(15000, "call: the SDK said neither onCalling nor onCallFailed in 15 s")]);
      if (outcome && outcome.ev === "failed") throw new Error(`call failed: ${outcome.detail.reason}`);
      const s = client._currentSession;
      current = callIdOf(s);
      const req = sessionOf(s) && s.session._request;
      const sent = {}, dropped = [];
      for (const [name, value] of Object.entries(wanted)) {
        const got = req && req.getHeader ? req.getHeader(name) : undefined;
        if (got !== undefined && got !== null) sent[name] = got;
        else dropped.push({ name, value, reason: "the SDK did not put it on the INVITE (it sends X-PH- headers only)" });
      }
      emit("calling", { callId: current, to: destination, headers: sent, droppedHeaders: dropped });
      return current;
    },
    async answer(opts) {
      const o = opts || {};
      const id = o.callId || [...incoming.keys()].pop();
      if (!id || !incoming.has(id)) throw new Error("no incoming call to answer");
      const uuid = incoming.get(id);
      incoming.delete(id);
      current = id;
      if (o.audioConstraints) client.options.audioConstraints = o.audioConstraints;
      if (client.answer(uuid) === false) throw new Error("the SDK refused to answer (see the page's console)");
      watchMedia(id);
      return id;
    },
    async reject() {
      const id = [...incoming.keys()].pop();
      if (!id) throw new Error("no incoming call to reject");
      const uuid = incoming.get(id);
      incoming.delete(id);
      client.reject(uuid);
    },
    async hangup() { if (client && client._currentSession) client.hangup(); },

    async mute() { live(); client.mute(); emit("muted", { callId: current }); },
    async unmute() { live(); client.unmute(); emit("unmuted", { callId: current }); },
    async sendDtmf(digits, opts) {
      const o = opts || {};
      const mode = o.mode || options.dtmfMode;
      if (mode !== "info") throw new Error(`not supported by the SDK adapter: ${mode} DTMF (plivo-browser-sdk sends SIP INFO only)`);
      const s = sessionOf(live());
      const gap = o.gapMs || 70;
      const tones = String(digits).replace(/,/g, "");
      // dtmfSent when the SDK's JsSIP session sends each INFO (newDTMF), not when it was asked:
      // the SDK paces the digits itself.
      let sentCount = 0, allSent;
      const done = new Promise((r) => { allSent = r; });
      const onDtmf = (e) => {
        if (e.originator !== "local") return;
        emit("dtmfSent", { callId: current, digit: e.dtmf.tone, mode: "info", durationMs: e.dtmf.duration });
        if (++sentCount >= tones.length) allSent();
      };
      if (s) s.on("newDTMF", onDtmf);
      try {
        for (const d of String(digits)) {
          if (d === ",") { await new Promise((r) => setTimeout(r, 2000)); continue; }
          client.sendDtmf(d);
          await new Promise((r) => setTimeout(r, 100 + gap));
        }
        await Promise.race([done, new Promise((r) => setTimeout(r, 1000 * tones.length))]);
      } finally {
        if (s) s.removeListener("newDTMF", onDtmf);
      }
      return { mode: "info", digits, sent: sentCount, gapMs: gap };
    },

    async devices() {
      return (await navigator.mediaDevices.enumerateDevices())
        .filter((d) => d.kind === "audioinput" || d.kind === "audiooutput")
        .map((d) => ({ kind: d.kind, deviceId: d.deviceId, label: d.label }));
    },
    async setInput(deviceId) {
      client.audio.microphoneDevices.set(deviceId);
      const label = ((await navigator.mediaDevices.enumerateDevices()).find((d) => d.deviceId === deviceId) || {}).label;
      emit("inputChanged", { callId: current, deviceId, label });
    },
    async setOutput(deviceId) {
      if (!(window.HTMLMediaElement && "setSinkId" in HTMLMediaElement.prototype)) throw new Error("not supported: setSinkId is missing");
      client.audio.speakerDevices.set(deviceId);
      emit("outputChanged", { deviceId });
    },

    async getStats() { const p = pc(); return p ? p.getStats() : null; },
    on,
  };
})();

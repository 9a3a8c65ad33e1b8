/* The adapter for JsSIP (npm "jssip", bundled unmodified by `make setup` into build/jssip.js and
 * served before this file). The worked example of ../ADAPTER.md: a SIP-over-WebSocket SDK whose
 * backend is Kamailio + rtpengine + a SIP far end (harness/backends/sip). */
(function () {
  "use strict";
  const handlers = {};
  const emit = (event, detail) => (handlers[event] || []).forEach((fn) => fn(detail || {}));
  let options = { dtmfMode: "info" };
  let ua = null;
  let domain = null;
  let session = null;         // the call the user is on
  let ringing = null;         // an incoming call not yet answered
  let everRegistered = false;
  let downAt = null;
  let output = null;          // the sink chosen with setOutput
  const audio = document.createElement("audio");
  audio.autoplay = true;
  document.addEventListener("DOMContentLoaded", () => document.body.appendChild(audio));

  const supported = () => typeof window.RTCPeerConnection === "function" && !!navigator.mediaDevices &&
    typeof navigator.mediaDevices.getUserMedia === "function" && typeof window.WebSocket === "function";
  const callIdOf = (s) => (s && s._request && s._request.call_id) || null;
  const headersOf = (request) => {
    const out = {};
    if (!request || !request.headers) return out;
    for (const [name, values] of Object.entries(request.headers)) {
      if (/^x-/i.test(name)) out[name] = values.map((v) => v.raw).join(", ");
    }
    return out;
  };
  const constraintsOf = (opts) => ({ audio: (opts && opts.audioConstraints) || true, video: false });
  const CALL_OPTIONS = { pcConfig: { iceServers: [] }, rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false } };

  function current() {
    if (!session || session.isEnded()) throw new Error("no active call");
    return session;
  }

  /* Wire one session's events to the contract's. */
  function track(s, outgoing) {
    const id = () => callIdOf(s);
    let connectedSent = false;
    const connected = () => {
      const pc = s.connection;
      // connectionState includes DTLS: ICE alone is connected before media can flow (Firefox: ~1.4 s)
      const media = pc && ("connectionState" in pc ? pc.connectionState === "connected"
                                                   : ["connected", "completed"].includes(pc.iceConnectionState));
      if (!connectedSent && media && s.isEstablished()) { connectedSent = true; session = s; emit("connected", { callId: id() }); }
    };
    const watch = (pc) => {
      pc.addEventListener("track", (e) => {
        audio.srcObject = e.streams[0] || new MediaStream([e.track]);
        if (output && audio.setSinkId) audio.setSinkId(output).catch(() => {});
        audio.play().catch(() => {});
      });
      const onState = () => {
        connected();
        if (connectedSent && ["disconnected", "failed"].includes(pc.iceConnectionState)) {
          emit("interrupted", { callId: id(), reason: `ICE ${pc.iceConnectionState}` });
        }
      };
      pc.addEventListener("iceconnectionstatechange", onState);
      pc.addEventListener("connectionstatechange", onState);
    };
    if (s.connection) watch(s.connection);
    s.on("peerconnection", (e) => watch(e.peerconnection));
    s.on("progress", () => { if (outgoing) emit("ringing", { callId: id() }); });
    s.on("confirmed", connected);
    s.on("accepted", connected);
    s.on("muted", () => emit("muted", { callId: id() }));
    s.on("unmuted", () => emit("unmuted", { callId: id() }));
    s.on("newDTMF", (e) => {  // JsSIP reports the INFO it sends; RFC 2833 tones are seen on the sender
      if (e.originator === "local" && options.dtmfMode === "info") {
        emit("dtmfSent", { callId: id(), digit: e.dtmf.tone, mode: "info", durationMs: e.dtmf.duration });
      }
    });
    s.on("ended", (e) => {
      emit("ended", { callId: id(), by: e.originator === "local" ? "local" : "remote", reason: e.cause });
      if (session === s) session = null;
    });
    s.on("failed", (e) => {
      if (ringing === s) ringing = null;
      emit("failed", { callId: id(), reason: `${e.cause}${e.message && e.message.status_code ? ` (${e.message.status_code} ${e.message.reason_phrase})` : ""}` });
      if (session === s) session = null;
    });
  }

  window.rtcmatrixAdapter = {
    name: "jssip",
    version: window.JsSIP ? JsSIP.version : "not loaded",

    configure(opts) {
      options = Object.assign({}, options, opts || {});
      return Object.assign({}, options);
    },

    isSupported: supported,
    features: () => ({
      dtmf: ["info", "rfc4733"], codecs: ["opus", "pcmu", "pcma"], qualityWarnings: false, feedback: false,
      incoming: true, unloadHangup: false, headers: "X-",
      // JsSIP re-registers when its WebSocket closes, but it has no keepalive of its own, so it
      // cannot notice a drop that leaves the socket open.
      reconnect: false, maxAverageBitrate: false, dscp: false,
      setInput: true, setOutput: !!(window.HTMLMediaElement && "setSinkId" in HTMLMediaElement.prototype),
      codecPreferences: false, inbandDtmf: false,
      notes: { reconnect: "JsSIP 3.13.8 has no keepalive of its own: it cannot notice a drop that leaves its WebSocket open, and re-registers only after the socket closes" },
    }),

    async login({ server, username, password }) {
      if (!supported()) {
        const missing = ["RTCPeerConnection", "getUserMedia", "WebSocket"].filter((n) =>
          n === "getUserMedia" ? !(navigator.mediaDevices && navigator.mediaDevices.getUserMedia) : typeof window[n] !== "function");
        emit("webrtcNotSupported", { missing, source: "adapter: its own check (JsSIP has no such event)" });
        throw new Error(`this browser cannot run JsSIP: missing ${missing.join(", ")}`);
      }
      if (ua) { ua.stop(); ua = null; }
      domain = options.domain || new URL(server).hostname;
      ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(server)], uri: `sip:${username}@${domain}`, password,
        register: true, session_timers: false, user_agent: `JsSIP ${JsSIP.version} (rtcmatrix)`,
        connection_recovery_min_interval: 1, connection_recovery_max_interval: 4,
      });
      ua.on("disconnected", (e) => {
        if (!everRegistered) return;
        if (downAt === null) downAt = Date.now();
        emit("unregistered", { reason: e.error ? "connection lost" : "connection closed", willReconnect: true });
      });
      ua.on("registered", () => {
        const reconnect = everRegistered && downAt !== null;
        emit("registered", { username, reconnect, downMs: reconnect ? Date.now() - downAt : null });
        everRegistered = true; downAt = null;
      });
      ua.on("newRTCSession", (e) => {
        if (e.originator !== "remote") return;
        const s = e.session;
        ringing = s;
        track(s, false);
        emit("incomingCall", { callId: e.request.call_id, from: e.request.from.uri.user, to: e.request.to.uri.user,
                               headers: headersOf(e.request) });
      });
      await new Promise((resolve, reject) => {
        ua.once("registered", resolve);
        ua.once("registrationFailed", (e) => {
          const reason = e.response ? `${e.response.status_code} ${e.response.reason_phrase}` : e.cause;
          emit("loginFailed", { reason });
          reject(new Error(`registration failed: ${reason}`));
        });
        ua.start();
      });
    },
    async logout() {
      if (!ua) return;
      const u = ua; ua = null;
      await new Promise((resolve) => { u.once("unregistered", resolve); u.unregister(); setTimeout(resolve, 2000); });
      u.stop();
      emit("unregistered", { reason: "logout", willReconnect: false });
    },

    async call(destination, { audioConstraints, headers, dtmfMode } = {}) {
      if (dtmfMode) options.dtmfMode = dtmfMode;
      const extraHeaders = Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`);
      const s = ua.call(`sip:${destination}@${domain}`, Object.assign({}, CALL_OPTIONS, {
        mediaConstraints: constraintsOf({ audioConstraints }), extraHeaders }));
      session = s;
      track(s, true);
      emit("calling", { callId: callIdOf(s), to: destination, headers: headers || {}, droppedHeaders: [] });
      return callIdOf(s);
    },
    async answer(opts) {
      const s = ringing;
      if (!s) throw new Error("no incoming call to answer");
      ringing = null;
      session = s;
      s.answer(Object.assign({}, CALL_OPTIONS, { mediaConstraints: constraintsOf(opts) }));
      return callIdOf(s);
    },
    async reject(reason) {
      const s = ringing;
      if (!s) throw new Error("no incoming call to reject");
      ringing = null;
      s.terminate({ status_code: 486, reason_phrase: reason || "Busy Here" });
    },
    async hangup() { if (session && !session.isEnded()) session.terminate(); },

    async mute() { current().mute({ audio: true }); },
    async unmute() { current().unmute({ audio: true }); },
    async sendDtmf(digits, opts) {
      const o = opts || {};
      const mode = o.mode || options.dtmfMode;
      if (mode === "inband") throw new Error("not supported by the SDK adapter: in-band DTMF");
      options.dtmfMode = mode;
      const duration = o.durationMs || 100, gap = o.gapMs || 70;
      const s = current();
      const sender = mode === "rfc4733" && s.connection.getSenders().find((x) => x.dtmf);
      let toneCount = 0, tonesDone;
      const allTones = new Promise((r) => { tonesDone = r; });
      const onTone = (e) => {
        if (!e.tone) return;
        emit("dtmfSent", { callId: callIdOf(s), digit: e.tone, mode, durationMs: duration });
        if (++toneCount >= digits.replace(/,/g, "").length) tonesDone();
      };
      if (sender) sender.dtmf.addEventListener("tonechange", onTone);
      s.sendDTMF(digits, { duration, interToneGap: gap, transportType: mode === "rfc4733" ? "RFC2833" : "INFO" });
      // JsSIP queues the tones and sends them on its own clock; resolve when the last one is due.
      await new Promise((r) => setTimeout(r, digits.length * (duration + gap) + 200));
      // the browser paces RFC 4733 tones itself, often slower than asked: wait for the last one
      if (sender) await Promise.race([allTones, new Promise((r) => setTimeout(r, 1000 * digits.length))]);
      if (sender) sender.dtmf.removeEventListener("tonechange", onTone);
      return { mode, digits, durationMs: duration, gapMs: gap };
    },

    async devices() {
      return (await navigator.mediaDevices.enumerateDevices())
        .filter((d) => d.kind === "audioinput" || d.kind === "audiooutput")
        .map((d) => ({ kind: d.kind, deviceId: d.deviceId, label: d.label }));
    },
    async setInput(deviceId) {
      const pc = current().connection;
      const stream = await navigator.mediaDevices.getUserMedia({ audio: { deviceId: { exact: deviceId } }, video: false });
      const t = stream.getAudioTracks()[0];
      const sender = pc.getSenders().find((x) => x.track && x.track.kind === "audio");
      const old = sender.track;
      await sender.replaceTrack(t);
      if (old) old.stop();
      emit("inputChanged", { callId: callIdOf(session), deviceId, label: t.label });
    },
    async setOutput(deviceId) {
      if (!audio.setSinkId) throw new Error("not supported: setSinkId is missing");
      output = deviceId;
      await audio.setSinkId(deviceId);
      emit("outputChanged", { deviceId });
    },

    async getStats() { return session && session.connection ? session.connection.getStats() : null; },
    on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); },
  };
})();

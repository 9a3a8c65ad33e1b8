/* rtc-voice, part 4 of 4: the client. The reference browser voice SDK that rtcmatrix tests
 * against: WebSocket signalling with keepalive and automatic reconnection, one
 * RTCPeerConnection per call, non-trickle ICE. Users plug their own SDK in through an adapter
 * (see ../ADAPTER.md). Needs rtc-voice-util.js, rtc-voice-quality.js and rtc-voice-call.js first.
 *
 * Options (new VoiceClient(options)); Plivo's names where they have one (field.md):
 *   server             ws:// URL of the signalling server (or given to login)
 *   audioConstraints   merged over {echoCancellation, noiseSuppression, autoGainControl: true}
 *   maxAverageBitrate  Opus bit/s, 8000-48000 (Plivo's range); unset: the browser's default
 *   dscp               true (default): sender networkPriority/priority "high"
 *   codecs             ["OPUS", "PCMU"] (default): offered in this order, nothing else
 *   dtmfMode           "rfc4733" (default) or "inband"
 *   permOnClick        false (default): ask for the microphone at login; true: only when a call starts
 *   enableTracking     true (default): the quality monitor (mediaMetrics)
 *   statsIntervalMs    5000, analysisDelayMs 5000 (Plivo's); tests use 1000/1000
 *   keepaliveMs        2000: a ping this often; keepaliveTimeoutMs 6000: silence this long = dead link
 *   connectTimeoutMs   4000 per attempt; reconnectMinMs 250 doubling to reconnectMaxMs 4000 (+-20 %)
 *   break              names from RtcVoice.util.BREAKS: switch one feature off (for probes)
 */
(function (global) {
  "use strict";
  const RV = global.RtcVoice;
  const U = RV.util;

  const DEFAULTS = {
    server: null, iceServers: [], audioConstraints: {}, maxAverageBitrate: null, dscp: true,
    codecs: ["OPUS", "PCMU"], dtmfMode: "rfc4733", permOnClick: false, enableTracking: true,
    statsIntervalMs: 5000, analysisDelayMs: 5000, keepaliveMs: 2000, keepaliveTimeoutMs: 6000,
    connectTimeoutMs: 4000, reconnectMinMs: 250, reconnectMaxMs: 4000, break: [],
  };

  class VoiceClient extends RV.Emitter {
    constructor(options) {
      super();
      this.options = Object.assign({}, DEFAULTS, options || {});
      if (this.options.maxAverageBitrate) {
        this.options.maxAverageBitrate = Math.max(8000, Math.min(48000, Number(this.options.maxAverageBitrate)));
      }
      this.breaks = U.parseBreaks(this.options.break);
      this.iceServers = this.options.iceServers;
      this.server = this.options.server;
      this.ws = null;
      this.username = null;
      this.registered = false;
      this.calls = new Map();
      this.inputDeviceId = null;
      this.outputDeviceId = null;
      this._creds = null;
      this._wanted = false;       // logged in by the user (and not logged out): reconnect on drops
      this._attempt = 0;
      this._downSince = null;
      this._pending = new Map();  // feedback acks by call id
      if (!VoiceClient.isSupported(this.breaks)) {
        setTimeout(() => this.emit("webrtcNotSupported", { missing: U.missingApis() }), 0);
      }
      if (!this.breaks.has("unload")) {
        const bye = () => this._unload();
        global.addEventListener("pagehide", bye);
        global.addEventListener("beforeunload", bye);
      }
    }

    static isSupported(breaks) {
      if (breaks && breaks.has && breaks.has("notsupported")) return true;
      return U.missingApis().length === 0;
    }

    features() {
      const proto = global.HTMLMediaElement && HTMLMediaElement.prototype;
      const caps = global.RTCRtpSender && RTCRtpSender.getCapabilities ? RTCRtpSender.getCapabilities("audio").codecs : [];
      const has = (n) => caps.some((c) => c.mimeType.toLowerCase() === "audio/" + n);
      return {
        dtmf: ["rfc4733", "inband"], codecs: ["opus", "pcmu"].filter(has), qualityWarnings: true, feedback: true,
        incoming: true, reconnect: true, unloadHangup: true, headers: "X-PH-",
        maxAverageBitrate: true, dscp: true, setInput: true,
        setOutput: !!(proto && "setSinkId" in proto),
        codecPreferences: !!(global.RTCRtpTransceiver && "setCodecPreferences" in RTCRtpTransceiver.prototype),
        inbandDtmf: typeof global.AudioContext === "function",
        breaks: [...this.breaks],
      };
    }

    // --- registration -----------------------------------------------------------------------
    login(username, password, token) {
      if (!VoiceClient.isSupported(this.breaks)) {
        const missing = U.missingApis();
        this.emit("webrtcNotSupported", { missing });
        return Promise.reject(new Error(`WebRTC not supported: missing ${missing.join(", ")}`));
      }
      if (!this.server) return Promise.reject(new Error("no signalling server: pass options.server"));
      this._creds = { username, password, token };
      this._wanted = true;
      return new Promise((resolve, reject) => {
        this._loginWaiter = { resolve, reject };
        this._connect(false);
      }).then((r) => {
        if (!this.options.permOnClick) this._primeMic();
        return r;
      });
    }

    _primeMic() {
      navigator.mediaDevices.getUserMedia({ audio: true, video: false })
        .then((s) => s.getTracks().forEach((t) => t.stop()))
        .catch((e) => console.warn(`rtc-voice: microphone permission: ${e}`));
    }

    _connect(reconnect) {
      const ws = (this.ws = new WebSocket(this.server));
      let opened = false;
      const timer = setTimeout(() => { if (!this.registered) this._dropped(ws, "connect timeout"); }, this.options.connectTimeoutMs);
      ws.onopen = () => {
        opened = true;
        this._heard = Date.now();
        const c = this._creds;
        this._send({ type: "login", username: c.username, password: c.password, token: c.token, reconnect });
      };
      ws.onmessage = (ev) => {
        this._heard = Date.now();
        let m;
        try { m = JSON.parse(ev.data); } catch (e) { return console.warn("rtc-voice: bad message " + ev.data); }
        if (m.type === "login_ok") { clearTimeout(timer); this._registered(m, reconnect); }
        else if (m.type === "login_failed") { clearTimeout(timer); this._loginFailed(m.reason || "refused"); }
        else this._onMessage(m);
      };
      ws.onerror = () => {};
      ws.onclose = (ev) => { clearTimeout(timer); this._dropped(ws, opened ? `connection closed (${ev.code})` : "signalling unreachable"); };
    }

    _registered(m, reconnect) {
      const downMs = this._downSince ? Date.now() - this._downSince : null;
      this.username = m.username;
      this.registered = true;
      this._attempt = 0;
      this._downSince = null;
      this._startKeepalive();
      this.emit("registered", { username: m.username, reconnect: !!reconnect, downMs });
      if (this._loginWaiter) { this._loginWaiter.resolve({ username: m.username }); this._loginWaiter = null; }
    }

    _loginFailed(reason) {
      this._wanted = false;
      this.emit("loginFailed", { reason });
      if (this._loginWaiter) { this._loginWaiter.reject(new Error(reason)); this._loginWaiter = null; }
      this._close(4001, "login failed");
    }

    _startKeepalive() {
      clearInterval(this._keepalive);
      let n = 0;
      this._keepalive = setInterval(() => {
        if (Date.now() - this._heard > this.options.keepaliveTimeoutMs) return this._dropped(this.ws, "keepalive timeout");
        if (Date.now() - (this._pinged || 0) >= this.options.keepaliveMs) { this._pinged = Date.now(); this._send({ type: "ping", id: ++n }); }
      }, 250);
    }

    /* Close a socket (this one by default) and forget it; its handlers go first, so it can
     * no longer touch the client (a late close must not hit the next login's socket). */
    _close(code, reason, ws) {
      const sock = ws || this.ws;
      if (sock === this.ws) { clearInterval(this._keepalive); this.ws = null; }
      if (sock) {
        sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
        try { sock.close(code, reason); } catch (e) { /* already closed */ }
      }
    }

    /* A socket went away (closed, timed out, or its keepalive went silent). */
    _dropped(ws, reason) {
      if (ws !== this.ws) return;
      this._close(4000, reason.slice(0, 100));
      const was = this.registered;
      this.registered = false;
      if (this._loginWaiter && !was && this._attempt === 0) {
        // The first login never got through: that is a failed login, not a drop.
        this._wanted = false;
        this.emit("loginFailed", { reason });
        this._loginWaiter.reject(new Error(reason));
        this._loginWaiter = null;
        return;
      }
      if (was) {
        this._downSince = Date.now();
        const again = this._wanted && !this.breaks.has("reconnect");
        this.emit("unregistered", { reason, willReconnect: again });
        for (const c of this.calls.values()) c.emitBoth("interrupted", { reason: "signalling lost" });
      }
      if (this._wanted && !this.breaks.has("reconnect")) {
        const base = Math.min(this.options.reconnectMaxMs, this.options.reconnectMinMs * 2 ** this._attempt);
        const wait = base * (0.8 + 0.4 * Math.random());
        this._attempt += 1;
        clearTimeout(this._retry);
        this._retry = setTimeout(() => { if (this._wanted && !this.registered) this._connect(true); }, wait);
      } else if (!this._wanted) {
        for (const c of [...this.calls.values()]) c._end("signalling-closed", reason);
      }
    }

    logout() {
      this._wanted = false;
      clearTimeout(this._retry);
      for (const c of [...this.calls.values()]) c.hangup("logout");
      this._send({ type: "logout" });
      const was = this.registered;
      this.registered = false;
      const ws = this.ws;
      clearInterval(this._keepalive);
      if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      this.ws = null;
      setTimeout(() => this._close(1000, "logout", ws), 50);  // let the logout message go first
      if (was) this.emit("unregistered", { reason: "logout", willReconnect: false });
      return Promise.resolve();
    }

    _send(m) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(m)); return true; }
      return false;
    }

    _onMessage(m) {
      if (m.type === "pong" || m.type === "logged_out") return;
      if (m.type === "incoming") return this._incoming(m);
      if (m.type === "feedback_ok") {
        const p = this._pending.get(m.callId || "");
        if (p) { this._pending.delete(m.callId || ""); p(); }
        return;
      }
      const call = m.callId && this.calls.get(m.callId);
      if (call) call._onSignal(m).catch((e) => call._fail(String((e && e.message) || e)));
      else if (m.type === "error") console.warn(`rtc-voice: far end says: ${m.reason}`);
    }

    // --- calls --------------------------------------------------------------------------------
    call(to, options) {
      const call = new RV.Call(this, { direction: "outgoing", to, options });
      this.calls.set(call.id, call);
      call._startOutgoing().catch((e) => call._fail(String((e && e.message) || e)));
      return call;
    }

    _incoming(m) {
      if (this.breaks.has("incoming")) return;
      if (this.calls.has(m.callId)) { this._send({ type: "ringing", callId: m.callId }); return; }  // offered again after a reconnect
      const call = new RV.Call(this, { direction: "incoming", callId: m.callId, to: m.to, from: m.from,
                                       offer: m.sdp, headers: m.headers });
      this.calls.set(call.id, call);
      this._send({ type: "ringing", callId: call.id });
      this.emit("incomingCall", { callId: call.id, from: m.from, to: m.to, headers: m.headers || {} });
    }

    async answer(callId, opts) {
      const call = this._find(callId, "incoming");
      try { return await call.answer(opts); }
      catch (e) {
        this._send({ type: "reject", callId: call.id, reason: `answer failed: ${e.message || e}` });
        call._fail(String(e.message || e));
        throw e;
      }
    }

    reject(callId, reason) { this._find(callId, "incoming").reject(reason); }

    _find(callId, state) {
      const calls = [...this.calls.values()].filter((c) => (!callId || c.id === callId) && (!state || c.state === state));
      if (!calls.length) throw new Error(callId ? `no ${state || ""} call ${callId}` : `no ${state || "active"} call`);
      return calls[calls.length - 1];
    }

    _unload() {
      for (const call of this.calls.values()) {
        if (call._unloaded || !call.active) continue;
        call._unloaded = true;
        const bye = { type: "bye", callId: call.id, reason: "unload" };
        this._send(bye);
        try { navigator.sendBeacon(this.server.replace(/^ws/, "http").replace(/\/ws$/, "/beacon"), JSON.stringify(bye)); }
        catch (e) { /* no beacon: the WebSocket bye is all there is */ }
      }
    }

    // --- devices --------------------------------------------------------------------------------
    async devices() {
      const list = await navigator.mediaDevices.enumerateDevices();
      return list.filter((d) => d.kind === "audioinput" || d.kind === "audiooutput")
        .map((d) => ({ kind: d.kind, deviceId: d.deviceId, label: d.label }));
    }

    async setInput(deviceId) {
      const active = [...this.calls.values()].filter((c) => c.active && c.mic);
      if (this.breaks.has("input")) { this.emit("inputChanged", { deviceId, callId: active.length ? active[0].id : null }); return; }
      this.inputDeviceId = deviceId;
      if (!active.length) this.emit("inputChanged", { deviceId, callId: null });
      for (const c of active) await c.setInput(deviceId);
    }

    async setOutput(deviceId) {
      if (!(global.HTMLMediaElement && "setSinkId" in HTMLMediaElement.prototype)) {
        throw new Error("not supported: setSinkId is missing");
      }
      if (!this.breaks.has("output")) {
        this.outputDeviceId = deviceId;
        for (const c of this.calls.values()) if (c.audio) await c.audio.setSinkId(deviceId);
      }
      this.emit("outputChanged", { deviceId });
    }

    // --- quality feedback -----------------------------------------------------------------------
    async feedback(callId, input) {
      if (this.breaks.has("feedback")) return { ok: true, errors: [], sent: false };
      const v = U.validateFeedback(input);
      if (!v.ok) return { ok: false, errors: v.errors };
      const key = callId || "";
      const acked = new Promise((resolve, reject) => {
        this._pending.set(key, resolve);
        setTimeout(() => reject(new Error("the far end did not acknowledge the feedback within 5 s")), 5000);
      });
      if (!this._send(Object.assign({ type: "feedback", callId }, v.value))) {
        this._pending.delete(key);
        return { ok: false, errors: ["not connected to the signalling server"] };
      }
      await acked;
      return Object.assign({ ok: true, errors: [], sent: true, callId }, v.value);
    }
  }

  RV.VoiceClient = VoiceClient;
  RV.DEFAULTS = DEFAULTS;
  RV.version = "0.2.0";
})(window);

/* rtc-voice: the reference browser voice SDK that rtcmatrix tests against.
 * A deliberately ordinary softphone library: WebSocket signalling, one RTCPeerConnection per call,
 * non-trickle ICE. Users plug their own SDK in through an adapter (see ../ADAPTER.md). */
(function (global) {
  "use strict";

  class Emitter {
    constructor() { this._handlers = {}; }
    on(event, fn) { (this._handlers[event] = this._handlers[event] || []).push(fn); return this; }
    off(event, fn) { this._handlers[event] = (this._handlers[event] || []).filter((f) => f !== fn); }
    emit(event, detail) { for (const fn of this._handlers[event] || []) { try { fn(detail); } catch (e) { console.error(e); } } }
  }

  const DEFAULT_AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

  class Call extends Emitter {
    constructor(client, to, options) {
      super();
      this.client = client;
      this.to = to;
      this.id = options.callId || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
      this.options = options;
      this.state = "new";
      this.pc = null;
      this.localStream = null;
      this.audio = null;
    }

    _set(state, detail) {
      if (this.state === state) return;
      this.state = state;
      this.emit(state, Object.assign({ callId: this.id }, detail || {}));
      this.client.emit("call:" + state, Object.assign({ callId: this.id }, detail || {}));
    }

    async _start() {
      const constraints = { audio: Object.assign({}, DEFAULT_AUDIO, this.options.audioConstraints || {}), video: false };
      this.localStream = await navigator.mediaDevices.getUserMedia(constraints);
      this.pc = new RTCPeerConnection({ iceServers: this.client.iceServers });
      for (const track of this.localStream.getTracks()) this.pc.addTrack(track, this.localStream);
      this.pc.ontrack = (ev) => {
        this.audio = document.createElement("audio");
        this.audio.autoplay = true;
        this.audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
        document.body.appendChild(this.audio);
        this.audio.play().catch(() => {});
      };
      const watch = () => {
        const s = this.pc.connectionState || this.pc.iceConnectionState;
        if (s === "connected" || s === "completed") this._set("connected");
        else if (s === "failed") this._fail("ice-failed");
        else if (s === "disconnected") this.emit("interrupted", { callId: this.id });
      };
      this.pc.onconnectionstatechange = watch;
      this.pc.oniceconnectionstatechange = watch;
      await this.pc.setLocalDescription(await this.pc.createOffer());
      await new Promise((resolve) => {
        if (this.pc.iceGatheringState === "complete") return resolve();
        const done = () => { if (this.pc.iceGatheringState === "complete") resolve(); };
        this.pc.addEventListener("icegatheringstatechange", done);
        setTimeout(resolve, 3000);
      });
      this._set("calling");
      this.client._send({ type: "invite", callId: this.id, to: this.to, sdp: this.pc.localDescription.sdp,
                          headers: this.options.headers || {} });
    }

    async _onSignal(m) {
      if (m.type === "ringing") this._set("ringing");
      else if (m.type === "answer") await this.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
      else if (m.type === "call_failed") this._fail(m.reason || "rejected");
      else if (m.type === "bye") this._end("remote");
    }

    _fail(reason) { this._set("failed", { reason }); this._cleanup(); }
    _end(by) { if (this.state !== "ended") { this._set("ended", { by }); this._cleanup(); } }

    _cleanup() {
      if (this.localStream) this.localStream.getTracks().forEach((t) => t.stop());
      if (this.pc) this.pc.close();
      if (this.audio) this.audio.remove();
      this.client.calls.delete(this.id);
    }

    hangup() { this.client._send({ type: "bye", callId: this.id }); this._end("local"); }
    mute() { this.localStream.getAudioTracks().forEach((t) => (t.enabled = false)); this.emit("muted", { callId: this.id }); }
    unmute() { this.localStream.getAudioTracks().forEach((t) => (t.enabled = true)); this.emit("unmuted", { callId: this.id }); }
    getStats() { return this.pc ? this.pc.getStats() : Promise.resolve(null); }
  }

  class VoiceClient extends Emitter {
    constructor(options) {
      super();
      this.server = options.server;
      this.iceServers = options.iceServers || [];
      this.ws = null;
      this.username = null;
      this.calls = new Map();
    }

    static isSupported() { return typeof RTCPeerConnection === "function" && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia); }

    login(username, password) {
      if (!VoiceClient.isSupported()) { this.emit("webrtcNotSupported", {}); return Promise.reject(new Error("WebRTC not supported")); }
      return new Promise((resolve, reject) => {
        this.ws = new WebSocket(this.server);
        this.ws.onopen = () => this._send({ type: "login", username, password });
        this.ws.onerror = () => { this.emit("loginFailed", { reason: "signalling unreachable" }); reject(new Error("signalling unreachable")); };
        this.ws.onclose = () => { for (const c of [...this.calls.values()]) c._end("signalling-closed"); this.emit("disconnected", {}); };
        this.ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          if (m.type === "login_ok") { this.username = m.username; this.emit("registered", { username: m.username }); resolve(); }
          else if (m.type === "login_failed") { this.emit("loginFailed", { reason: m.reason }); reject(new Error(m.reason)); }
          else if (m.type === "logged_out") this.emit("unregistered", {});
          else if (m.callId && this.calls.has(m.callId)) this.calls.get(m.callId)._onSignal(m);
        };
      });
    }

    logout() { this._send({ type: "logout" }); }

    call(to, options) {
      const call = new Call(this, to, options || {});
      this.calls.set(call.id, call);
      call._start().catch((e) => call._fail(String(e && e.message || e)));
      return call;
    }

    _send(m) { if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m)); }
  }

  global.RtcVoice = { VoiceClient, Call, version: "0.1.0" };
})(window);

/* rtc-voice, part 3 of 4: one call (placed or received): media, codecs, bitrate, DSCP, DTMF
 * both ways, devices, and the quality monitor. */
(function (global) {
  "use strict";
  const RV = global.RtcVoice;
  const U = RV.util;

  const DEFAULT_AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  const ROWS = [697, 770, 852, 941];
  const COLS = [1209, 1336, 1477, 1633];
  const KEYPAD = ["123A", "456B", "789C", "*0#D"];
  const TERMINAL = new Set(["ended", "failed"]);
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

  function tonePair(digit) {
    for (let r = 0; r < 4; r++) {
      const c = KEYPAD[r].indexOf(digit);
      if (c >= 0) return [ROWS[r], COLS[c]];
    }
    throw new Error(`not a DTMF digit: '${digit}'`);
  }

  /* In-band DTMF: the microphone and the tone pairs mixed with Web Audio into the track we send
   * (the microphone stays audible between and under the tones). */
  class InbandMixer {
    constructor(micTrack, level) {
      this.ac = new AudioContext();
      this.dest = this.ac.createMediaStreamDestination();
      this.dest.channelCount = 1;
      this.tones = this.ac.createGain();
      this.tones.connect(this.dest);
      this.level = level;
      this.src = null;
      this.setMic(micTrack);
      this.ac.resume().catch(() => {});
    }
    setMic(track) {
      if (this.src) this.src.disconnect();
      this.src = this.ac.createMediaStreamSource(new MediaStream([track]));
      this.src.connect(this.dest);
    }
    get track() { return this.dest.stream.getAudioTracks()[0]; }
    tone(digit, at, seconds) {
      const g = this.ac.createGain();
      const ramp = 0.003;
      g.gain.setValueAtTime(0, at);
      g.gain.linearRampToValueAtTime(this.level, at + ramp);
      g.gain.setValueAtTime(this.level, at + seconds - ramp);
      g.gain.linearRampToValueAtTime(0, at + seconds);
      g.connect(this.tones);
      const oscs = tonePair(digit).map((f) => {
        const o = this.ac.createOscillator();
        o.frequency.value = f;
        o.connect(g);
        o.start(at);
        o.stop(at + seconds + 0.01);
        return o;
      });
      oscs[1].onended = () => g.disconnect();
    }
    close() { this.ac.close().catch(() => {}); }
  }

  class Call extends RV.Emitter {
    constructor(client, { direction, to, from, callId, options, offer, headers }) {
      super();
      this.client = client;
      this.direction = direction || "outgoing";
      this.to = to;
      this.from = from || null;
      this.id = callId || U.uuid();
      this.options = Object.assign({}, client.options, options || {});
      this.headers = headers || {};
      this.offer = offer || null;
      this.state = this.direction === "incoming" ? "incoming" : "new";
      this.pc = this.mic = this.mixer = this.sender = this.transceiver = this.audio = this.monitor = null;
      this.muted = false;
      this.times = { created: Date.now() };
    }

    get breaks() { return this.client.breaks; }
    get active() { return !TERMINAL.has(this.state); }

    emitBoth(event, detail) {
      const d = Object.assign({ callId: this.id }, detail || {});
      this.emit(event, d);
      this.client.emit(event, d);
    }

    _set(state, detail) {
      if (this.state === state) return;
      this.state = state;
      this.times[state] = Date.now();
      this.emitBoth(state, detail);
    }

    // --- media ------------------------------------------------------------------------------
    _constraints(deviceId) {
      const audio = Object.assign({}, DEFAULT_AUDIO, this.options.audioConstraints || {});
      const dev = deviceId || this.client.inputDeviceId;
      if (dev) audio.deviceId = { exact: dev };
      return { audio, video: false };
    }

    async _openMic() {
      this.mic = (await navigator.mediaDevices.getUserMedia(this._constraints())).getAudioTracks()[0];
      if (this.breaks.has("background")) {
        this._onVisibility = () => { if (this.mic) this.mic.enabled = document.visibilityState === "visible" && !this.muted; };
        document.addEventListener("visibilitychange", this._onVisibility);
      }
      if (this.options.dtmfMode === "inband" && typeof AudioContext === "function") this._ensureMixer();
    }

    _sendTrack() { return this.mixer ? this.mixer.track : this.mic; }

    _ensureMixer() {
      if (!this.mixer) this.mixer = new InbandMixer(this.mic, this.options.inbandLevel || 0.3);
      return this.mixer;
    }

    _applyMute() {
      if (this.breaks.has("mute")) return;
      if (this.mic) this.mic.enabled = !this.muted;
      if (this.mixer) this.mixer.track.enabled = !this.muted;
    }

    _newPc() {
      const pc = (this.pc = new RTCPeerConnection({ iceServers: this.client.iceServers }));
      pc.ontrack = (ev) => this._onTrack(ev);
      const watch = () => {
        const s = pc.connectionState || pc.iceConnectionState;
        if (s === "connected" || s === "completed") this._connected();
        else if (s === "failed") this._fail("ice-failed");
        else if (s === "disconnected") this.emitBoth("interrupted", { reason: "ice disconnected" });
      };
      pc.onconnectionstatechange = watch;
      pc.oniceconnectionstatechange = watch;
      return pc;
    }

    _onTrack(ev) {
      if (this.audio) return;
      const el = (this.audio = document.createElement("audio"));
      el.autoplay = true;
      el.dataset.rtcVoiceCall = this.id;
      el.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      document.body.appendChild(el);
      const sink = this.client.outputDeviceId;
      if (sink && el.setSinkId && !this.breaks.has("output")) {
        el.setSinkId(sink).catch((e) => console.warn(`rtc-voice: setSinkId(${sink}) failed: ${e}`));
      }
      el.play().catch(() => {});
    }

    _connected() {
      if (this.state === "connected" || !this.active) return;
      this._set("connected");
      if (this.options.enableTracking && !this.breaks.has("quality")) {
        this.monitor = new RV.QualityMonitor(this, {
          intervalMs: this.options.statsIntervalMs, delayMs: this.options.analysisDelayMs,
          emit: (d) => this.emitBoth("mediaMetrics", d) });
        this.monitor.start();
      }
    }

    _codecPrefs(transceiver) {
      const want = this.options.codec ? [this.options.codec] : this.options.codecs;
      if (this.breaks.has("codec") || !want || !want.length || !transceiver.setCodecPreferences) return;
      const caps = RTCRtpReceiver.getCapabilities("audio").codecs;
      const chosen = [];
      for (const name of want) chosen.push(...caps.filter((c) => c.mimeType.toLowerCase() === "audio/" + String(name).toLowerCase()));
      if (!chosen.length) throw new Error(`none of the codecs ${want.join(", ")} is offered by this browser`);
      chosen.push(...caps.filter((c) => /telephone-event/i.test(c.mimeType)));
      transceiver.setCodecPreferences(chosen);
    }

    async _applySender() {
      if (!this.sender) return;
      const p = this.sender.getParameters();
      if (!p.encodings || !p.encodings.length) p.encodings = [{}];
      const br = this.options.maxAverageBitrate;
      if (br && !this.breaks.has("bitrate")) p.encodings[0].maxBitrate = br;
      if (this.options.dscp && !this.breaks.has("dscp")) {
        p.encodings[0].networkPriority = "high";
        p.encodings[0].priority = "high";
      }
      try { await this.sender.setParameters(p); } catch (e) { console.warn(`rtc-voice: setParameters: ${e}`); }
    }

    /* maxAverageBitrate in both descriptions: the remote one caps this browser's Opus encoder,
     * the one we send tells the far end what we want to receive. */
    _bitrateSdp(sdp) {
      const br = this.options.maxAverageBitrate;
      return br && !this.breaks.has("bitrate") ? U.setOpusParam(sdp, "maxaveragebitrate", Math.round(br)) : sdp;
    }

    _gathered() {
      const pc = this.pc;
      return new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
        setTimeout(resolve, 3000);
      });
    }

    _useSender(sender) {
      this.sender = sender;
      this.transceiver = this.pc.getTransceivers().find((t) => t.sender === sender) || null;
    }

    // --- placing and receiving ----------------------------------------------------------------------
    async _startOutgoing() {
      const filtered = this.breaks.has("headers")
        ? { valid: Object.assign({}, this.options.headers || {}), dropped: [] }
        : U.filterHeaders(this.options.headers);
      await this._openMic();
      const pc = this._newPc();
      this._useSender(pc.addTrack(this._sendTrack(), new MediaStream([this.mic])));
      if (this.breaks.has("call")) await this.sender.replaceTrack(null);
      this._codecPrefs(this.transceiver);
      await pc.setLocalDescription(await pc.createOffer());
      await this._gathered();
      this._applyMute();
      await this._applySender();
      this.localSdp = this._bitrateSdp(pc.localDescription.sdp);
      this._set("calling", { to: this.to, headers: filtered.valid, droppedHeaders: filtered.dropped });
      this.client._send({ type: "invite", callId: this.id, to: this.to, sdp: this.localSdp, headers: filtered.valid });
    }

    async answer(opts) {
      if (this.direction !== "incoming" || this.state !== "incoming") throw new Error(`call ${this.id} is not an incoming call waiting for an answer`);
      Object.assign(this.options, opts || {});
      this.state = "answering";
      await this._openMic();
      const pc = this._newPc();
      this.remoteSdp = this._bitrateSdp(this.offer);
      await pc.setRemoteDescription({ type: "offer", sdp: this.remoteSdp });
      this._useSender(pc.addTrack(this._sendTrack(), new MediaStream([this.mic])));
      if (this.transceiver) { this.transceiver.direction = "sendrecv"; this._codecPrefs(this.transceiver); }
      await pc.setLocalDescription(await pc.createAnswer());
      await this._gathered();
      this._applyMute();
      await this._applySender();
      this.localSdp = this._bitrateSdp(pc.localDescription.sdp);
      this.client._send({ type: "accept", callId: this.id, sdp: this.localSdp });
      return this.id;
    }

    reject(reason) {
      if (this.state !== "incoming") throw new Error(`call ${this.id} is not ringing here`);
      const why = reason || "rejected";
      this.client._send({ type: "reject", callId: this.id, reason: why });
      this._end("local", `rejected: ${why}`);
    }

    async _onSignal(m) {
      if (m.type === "ringing" && this.direction === "outgoing") this._set("ringing");
      else if (m.type === "answer") {
        this.remoteSdp = this._bitrateSdp(m.sdp);
        await this.pc.setRemoteDescription({ type: "answer", sdp: this.remoteSdp });
        await this._applySender();
      } else if (m.type === "call_failed") this._fail(m.reason || "rejected");
      else if (m.type === "bye" || m.type === "cancel") this._end("remote", m.reason);
    }

    // --- controls ---------------------------------------------------------------------------
    hangup(reason) {
      if (!this.active) return;
      if (this.state === "incoming") return this.reject(reason || "hangup");
      this.client._send({ type: "bye", callId: this.id, reason: reason || "hangup" });
      this._end("local", reason);
    }

    mute() { this.muted = true; this._applyMute(); this.emitBoth("muted"); }
    unmute() { this.muted = false; this._applyMute(); this.emitBoth("unmuted"); }

    async sendDtmf(digits, opts) {
      const o = opts || {};
      digits = String(digits).toUpperCase();
      if (!U.DTMF_DIGITS.test(digits)) throw new Error(`not DTMF digits: '${digits}' (0-9, A-D, *, #, and ',' for a 2 s pause)`);
      const durationMs = clamp(o.durationMs || 100, 40, 6000);
      const gapMs = clamp(o.gapMs || 70, 30, 6000);
      let mode = o.mode || this.options.dtmfMode || "rfc4733";
      if (mode !== "rfc4733" && mode !== "inband") throw new Error(`dtmf mode must be 'rfc4733' or 'inband', not '${mode}'`);
      if (!this.sender || this.state !== "connected") throw new Error("sendDtmf needs a connected call");
      let fallback = false;
      if (mode === "rfc4733" && !(this.sender.dtmf && this.sender.dtmf.canInsertDTMF)) { mode = "inband"; fallback = true; }
      if (this.breaks.has("dtmf")) {
        for (const digit of digits) if (digit !== ",") this.emitBoth("dtmfSent", { digit, mode, durationMs });
        return { digits, mode };
      }
      return mode === "rfc4733" ? this._dtmf4733(digits, durationMs, gapMs) : this._dtmfInband(digits, durationMs, gapMs, fallback);
    }

    _dtmf4733(digits, durationMs, gapMs) {
      const dtmf = this.sender.dtmf;
      return new Promise((resolve) => {
        let timer = null;
        const done = () => { dtmf.removeEventListener("tonechange", on); clearTimeout(timer); resolve({ digits, mode: "rfc4733" }); };
        const on = (e) => {
          if (!e.tone) return done();
          if (e.tone !== ",") this.emitBoth("dtmfSent", { digit: e.tone, mode: "rfc4733", durationMs });
        };
        dtmf.addEventListener("tonechange", on);
        timer = setTimeout(done, digits.length * (durationMs + gapMs + 2000) + 2000);
        dtmf.insertDTMF(digits, durationMs, gapMs);
      });
    }

    async _dtmfInband(digits, durationMs, gapMs, fallback) {
      if (typeof AudioContext !== "function") throw new Error("in-band DTMF needs Web Audio (AudioContext is missing)");
      const mixer = this._ensureMixer();
      if (this.sender.track !== mixer.track) await this.sender.replaceTrack(mixer.track);
      this._applyMute();
      await mixer.ac.resume();
      const ac = mixer.ac;
      let at = ac.currentTime + 0.05;
      const waits = [];
      for (const digit of digits) {
        if (digit === ",") { at += 2; continue; }
        mixer.tone(digit, at, durationMs / 1000);
        const delay = Math.max(0, (at - ac.currentTime) * 1000);
        waits.push(new Promise((r) => setTimeout(() => {
          this.emitBoth("dtmfSent", { digit, mode: "inband", durationMs, fallback });
          r();
        }, delay)));
        at += (durationMs + gapMs) / 1000;
      }
      await Promise.all(waits);
      await new Promise((r) => setTimeout(r, durationMs));
      return { digits, mode: "inband", fallback };
    }

    async setInput(deviceId) {
      if (this.breaks.has("input")) { this.emitBoth("inputChanged", { deviceId }); return; }
      const track = (await navigator.mediaDevices.getUserMedia(this._constraints(deviceId))).getAudioTracks()[0];
      const old = this.mic;
      this.mic = track;
      if (this.mixer) this.mixer.setMic(track);
      else if (this.sender) await this.sender.replaceTrack(track);
      this._applyMute();
      if (old && old !== track) old.stop();
      this.emitBoth("inputChanged", { deviceId, label: track.label });
    }

    getStats() { return this.pc ? this.pc.getStats() : Promise.resolve(null); }

    // --- ending -----------------------------------------------------------------------------
    _fail(reason) { if (this.active) { this._set("failed", { reason }); this._cleanup(); } }
    _end(by, reason) { if (this.active) { this._set("ended", { by, reason: reason || null }); this._cleanup(); } }

    _cleanup() {
      if (this._onVisibility) document.removeEventListener("visibilitychange", this._onVisibility);
      if (this.monitor) this.monitor.stop();
      if (this.mic) this.mic.stop();
      if (this.mixer) this.mixer.close();
      if (this.pc) this.pc.close();
      if (this.audio) this.audio.remove();
      this.client.calls.delete(this.id);
    }
  }

  RV.Call = Call;
  RV.InbandMixer = InbandMixer;
})(window);

/* The adapter for the reference SDK (rtc-voice). Copy this file to plug in another SDK:
 * the contract and a checklist are in ../ADAPTER.md. */
(function () {
  "use strict";
  const EVENTS = ["registered", "loginFailed", "unregistered", "incomingCall", "calling", "ringing", "connected",
                  "ended", "failed", "interrupted", "muted", "unmuted", "mediaMetrics", "webrtcNotSupported",
                  "dtmfSent", "inputChanged", "outputChanged"];
  const handlers = {};
  const emit = (event, detail) => (handlers[event] || []).forEach((fn) => fn(detail || {}));
  let options = {};
  let client = null;
  let call = null;

  function makeClient(server) {
    const c = new RtcVoice.VoiceClient(Object.assign({}, options, server ? { server } : {}));
    for (const ev of EVENTS) c.on(ev, (d) => emit(ev, d));
    // "disconnected" is the old name of "unregistered"; kept for harnesses that still listen for it.
    c.on("unregistered", (d) => emit("disconnected", d));
    return c;
  }

  function current() {
    if (!call || !call.active) throw new Error("no active call");
    return call;
  }

  window.rtcmatrixAdapter = {
    name: "rtc-voice",
    version: RtcVoice.version,

    /* SDK options (see rtc-voice.js); applied to the next login, or at once while logged out. */
    configure(opts) {
      options = Object.assign({}, options, opts || {});
      if (!client || !client.registered) client = makeClient(client && client.server);
      return Object.assign({}, RtcVoice.DEFAULTS, client.options);
    },

    isSupported: () => RtcVoice.VoiceClient.isSupported(client ? client.breaks : RtcVoice.util.parseBreaks(options.break)),
    features: () => (client || makeClient()).features(),

    async login({ server, username, password, token }) {
      if (client && client.registered) { await client.logout(); client = null; }
      if (!client) client = makeClient(server);
      else client.server = server;
      await client.login(username, password, token);
    },
    async logout() { if (client) await client.logout(); },

    async call(destination, { audioConstraints, headers, codec, dtmfMode, maxAverageBitrate, dscp } = {}) {
      const opts = { headers: headers || {} };
      for (const [k, v] of Object.entries({ audioConstraints, codec, dtmfMode, maxAverageBitrate, dscp })) {
        if (v !== undefined) opts[k] = v;
      }
      call = client.call(destination, opts);
      return call.id;
    },
    async answer(opts) {
      const o = opts || {};
      const id = await client.answer(o.callId, o);
      call = client.calls.get(id) || call;
      return id;
    },
    async reject(reason) { client.reject(null, reason); },
    async hangup() { if (call) call.hangup(); },

    async mute() { current().mute(); },
    async unmute() { current().unmute(); },
    async sendDtmf(digits, opts) { return current().sendDtmf(digits, opts || {}); },

    devices: () => client.devices(),
    setInput: (deviceId) => client.setInput(deviceId),
    setOutput: (deviceId) => client.setOutput(deviceId),

    async feedback(input) {
      const i = input || {};
      return client.feedback(i.callId || (call && call.id) || null, i);
    },

    async getStats() { return call && call.pc ? call.getStats() : null; },
    on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); },
  };

  // Track the call the user is on: an answered incoming call becomes the current one.
  window.rtcmatrixAdapter.on("connected", (d) => { if (client && client.calls.get(d.callId)) call = client.calls.get(d.callId); });
})();

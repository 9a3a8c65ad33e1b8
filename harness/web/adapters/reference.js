/* The adapter for the reference SDK (rtc-voice). Copy this file to plug in another SDK:
 * the contract is described in ../ADAPTER.md. */
(function () {
  "use strict";
  let client = null;
  let call = null;
  const handlers = {};
  const emit = (event, detail) => (handlers[event] || []).forEach((fn) => fn(detail || {}));

  window.rtcmatrixAdapter = {
    name: "rtc-voice",
    version: RtcVoice.version,

    isSupported: () => RtcVoice.VoiceClient.isSupported(),

    async login({ server, username, password }) {
      client = new RtcVoice.VoiceClient({ server });
      client.on("registered", (d) => emit("registered", d));
      client.on("loginFailed", (d) => emit("loginFailed", d));
      client.on("disconnected", (d) => emit("disconnected", d));
      await client.login(username, password);
    },

    async call(destination, { audioConstraints, headers } = {}) {
      call = client.call(destination, { audioConstraints, headers });
      for (const ev of ["calling", "ringing", "connected", "ended", "failed", "interrupted", "muted", "unmuted"]) {
        call.on(ev, (d) => emit(ev, d));
      }
      return call.id;
    },

    async hangup() { if (call) call.hangup(); },
    async mute() { call.mute(); },
    async unmute() { call.unmute(); },
    async getStats() { return call ? call.getStats() : null; },

    on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); },
  };
})();

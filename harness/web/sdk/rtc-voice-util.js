/* rtc-voice, part 1 of 4: shared pieces. Load order: rtc-voice-util.js, rtc-voice-quality.js,
 * rtc-voice-call.js, rtc-voice.js (see ../index.html). Numbers and rules come from
 * /work/shared/notes/field.md (Plivo browser SDK v2 and its FAQ), cited where used. */
(function (global) {
  "use strict";
  const RV = (global.RtcVoice = global.RtcVoice || {});

  class Emitter {
    constructor() { this._handlers = {}; }
    on(event, fn) { (this._handlers[event] = this._handlers[event] || []).push(fn); return this; }
    off(event, fn) { this._handlers[event] = (this._handlers[event] || []).filter((f) => f !== fn); }
    emit(event, detail) {
      for (const fn of this._handlers[event] || []) { try { fn(detail); } catch (e) { console.error(e); } }
    }
  }

  /* Each name switches off exactly one feature, so a probe can be shown to turn red. */
  const BREAKS = {
    call: "calls connect but carry no microphone audio (the sender's track is removed)",
    background: "the microphone goes quiet while the page is hidden",
    dtmf: "sendDtmf sends nothing (but still reports dtmfSent)",
    mute: "mute/unmute emit their events but leave the microphone track enabled",
    headers: "extra headers are sent as given, without the X-PH- rules",
    input: "setInput reports inputChanged but keeps the old microphone",
    output: "setOutput reports outputChanged but never calls setSinkId",
    quality: "the quality monitor never runs (no mediaMetrics)",
    reconnect: "a dropped WebSocket is not reconnected",
    bitrate: "maxAverageBitrate is ignored",
    dscp: "dscp is ignored (no networkPriority/priority on the sender)",
    codec: "codec preferences are ignored (the browser's default order is offered)",
    feedback: "feedback() claims success without validating or sending",
    incoming: "incoming offers are ignored (no incomingCall, no ringing)",
    unload: "no hang-up when the page unloads",
    notsupported: "isSupported() says true and webrtcNotSupported never fires",
  };

  function parseBreaks(value) {
    const list = Array.isArray(value) ? value : String(value || "").split(",");
    const out = new Set();
    for (const raw of list) {
      const name = String(raw).trim().toLowerCase();
      if (!name) continue;
      if (!(name in BREAKS)) console.error(`rtc-voice: unknown break '${name}'; known: ${Object.keys(BREAKS).join(", ")}`);
      else out.add(name);
    }
    return out;
  }

  /* Extra headers, the seed FAQ's rules (field.md): name "X-PH-" + a field that starts with an
   * upper-case letter, the rest lower-case letters or digits, 24 characters at most; value only
   * A-Za-z0-9 and %, 1 to 48 characters. Pairs that break a rule are not sent. */
  const HEADER_NAME = /^X-PH-[A-Z][a-z0-9]*$/;
  const HEADER_VALUE = /^[A-Za-z0-9%]+$/;

  function filterHeaders(headers) {
    const valid = {};
    const dropped = [];
    for (const [name, value] of Object.entries(headers || {})) {
      let reason = null;
      if (!HEADER_NAME.test(name)) reason = "name must be X-PH- then an upper-case letter, then lower-case letters or digits";
      else if (name.length > 24) reason = "name longer than 24 characters";
      else if (typeof value !== "string" && typeof value !== "number") reason = "value must be a string";
      else if (!HEADER_VALUE.test(String(value))) reason = "value may only hold A-Z, a-z, 0-9 and %";
      else if (String(value).length > 48) reason = "value longer than 48 characters";
      if (reason) dropped.push({ name, value, reason });
      else valid[name] = String(value);
    }
    return { valid, dropped };
  }

  /* Quality feedback (Plivo's sendQualityFeedback): rating 1-5; issues required unless the
   * rating is 5, each from this list (field.md); an optional note up to 280 characters. */
  const FEEDBACK_ISSUES = ["AUDIO_LAG", "BROKEN_AUDIO", "CALL_DROPPED", "ECHO", "ONE_WAY_AUDIO",
                           "ROBOTIC_AUDIO", "DIGITS_NOT_CAPTURED", "HIGH_CONNECT_TIME"];
  const NOTE_MAX = 280;

  function validateFeedback(input) {
    const { rating, issues, note } = input || {};
    const errors = [];
    if (!Number.isInteger(rating) || rating < 1 || rating > 5) errors.push("rating must be an integer from 1 to 5");
    let list = issues == null ? [] : issues;
    if (!Array.isArray(list)) { errors.push("issues must be a list"); list = []; }
    list = list.map((i) => String(i).toUpperCase());
    const unknown = list.filter((i) => !FEEDBACK_ISSUES.includes(i));
    if (unknown.length) errors.push(`unknown issues: ${unknown.join(", ")} (known: ${FEEDBACK_ISSUES.join(", ")})`);
    if (rating !== 5 && Number.isInteger(rating) && list.length === 0) errors.push("issues are required unless the rating is 5");
    if (note != null && typeof note !== "string") errors.push("note must be a string");
    else if (note && note.length > NOTE_MAX) errors.push(`note longer than ${NOTE_MAX} characters`);
    return { ok: errors.length === 0, errors, value: { rating, issues: list, note: note || "" } };
  }

  /* E-model as WebRTC tools simplify it (field.md): Le = RTT + 2*jitter + 10 ms;
   * R = R0 - Le/40 below 160 ms, else R0 - (Le - 120)/10; R -= 2.5 * loss%; R0 95 for Opus (Plivo),
   * 93.2 otherwise (ITU-T G.107); MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R), clamped to 1..4.5. */
  function mos({ rttMs, jitterMs, lossPct, codec }) {
    if (rttMs == null) return null;
    const r0 = /opus/i.test(codec || "") ? 95 : 93.2;
    const le = rttMs + 2 * (jitterMs || 0) + 10;
    let r = le < 160 ? r0 - le / 40 : r0 - (le - 120) / 10;
    r -= 2.5 * (lossPct || 0);
    r = Math.max(0, Math.min(100, r));
    const m = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
    return Math.max(1, Math.min(4.5, m));
  }

  /* SDP: set a parameter in the fmtp line of every Opus payload type (adding the line if needed). */
  function setOpusParam(sdp, key, value) {
    const pts = [...sdp.matchAll(/a=rtpmap:(\d+) opus\/48000/gi)].map((m) => m[1]);
    let out = sdp;
    for (const pt of pts) {
      const line = new RegExp(`a=fmtp:${pt} ([^\\r\\n]*)`);
      const m = out.match(line);
      if (m) {
        const params = m[1].split(";").map((p) => p.trim()).filter((p) => p && !p.toLowerCase().startsWith(key.toLowerCase() + "="));
        params.push(`${key}=${value}`);
        out = out.replace(line, `a=fmtp:${pt} ${params.join(";")}`);
      } else {
        out = out.replace(new RegExp(`(a=rtpmap:${pt} opus/48000[^\\r\\n]*\\r?\\n)`, "i"), `$1a=fmtp:${pt} ${key}=${value}\r\n`);
      }
    }
    return out;
  }

  function missingApis() {
    const missing = [];
    if (typeof global.RTCPeerConnection !== "function") missing.push("RTCPeerConnection");
    if (!(global.navigator && navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) missing.push("getUserMedia");
    if (typeof global.WebSocket !== "function") missing.push("WebSocket");
    return missing;
  }

  const DTMF_DIGITS = /^[0-9A-D#*,]+$/i;

  RV.Emitter = Emitter;
  RV.util = { BREAKS, parseBreaks, filterHeaders, FEEDBACK_ISSUES, validateFeedback, mos, setOpusParam,
              missingApis, DTMF_DIGITS, uuid: () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()) };
})(window);

/* rtc-voice, part 2 of 4: the call-quality monitor (enableTracking).
 *
 * Plivo's warnings (field.md): stats every 5 s, analysis from 5 s into the call; a warning is
 * raised (mediaMetrics, active: true) when 2 of the last 3 samples are past its threshold and
 * cleared (active: false) when 2 of the last 3 are back within it. Sampling is an option here
 * (statsIntervalMs, analysisDelayMs; tests use 1000/1000).
 *   high_rtt         RTT > 400 ms (remote-inbound-rtp roundTripTime, else the candidate pair's)
 *   high_jitter      jitter > 30 ms; desc "local" (what we receive) or "remote" (what the far end reports)
 *   high_packetloss  loss >= 10 % with Opus, >= 2 % otherwise (the worse of received loss over the
 *                    interval and the far end's fractionLost)
 *   low_mos          E-model MOS < 3.5 (RtcVoice.util.mos; R0 95 for Opus)
 *   no_audio_received  desc "remote_audio": no received audio energy (or no packets) over the interval;
 *                    desc "local_audio": the microphone's energy did not change while not muted
 */
(function (global) {
  "use strict";
  const RV = (global.RtcVoice = global.RtcVoice || {});

  const THRESHOLDS = { rttMs: 400, jitterMs: 30, lossOpusPct: 10, lossOtherPct: 2, mos: 3.5 };
  const WINDOW = 3;
  const NEEDED = 2;
  // totalAudioEnergy grows by level^2 per second (level 0..1): 1e-6/s is a level under -60 dBFS.
  const SILENT_ENERGY = 1e-6;

  class QualityMonitor {
    constructor(call, { intervalMs = 5000, delayMs = 5000, emit }) {
      this.call = call;
      this.intervalMs = intervalMs;
      this.delayMs = delayMs;
      this.emitFn = emit;
      this.history = {};   // key -> [bool, ...] (last WINDOW samples)
      this.active = {};    // key -> bool
      this.prev = null;
      this.samples = [];
      this.timer = null;
      this.startTimer = null;
    }

    start() {
      this.stop();
      this.startTimer = setTimeout(() => {
        this.tick();
        this.timer = setInterval(() => this.tick(), this.intervalMs);
      }, this.delayMs);
    }

    stop() { clearTimeout(this.startTimer); clearInterval(this.timer); this.timer = this.startTimer = null; }

    async tick() {
      const pc = this.call.pc;
      if (!pc || pc.connectionState === "closed") return this.stop();
      let report;
      try { report = await pc.getStats(); } catch (e) { return; }
      const s = this.read(report);
      this.samples.push(s);
      if (this.samples.length > 60) this.samples.shift();
      this.judge(s);
    }

    read(report) {
      let inb = null, rin = null, out = null, src = null, pair = null, transport = null;
      report.forEach((x) => {
        if (x.kind && x.kind !== "audio") return;
        if (x.type === "inbound-rtp") inb = x;
        else if (x.type === "remote-inbound-rtp") rin = x;
        else if (x.type === "outbound-rtp") out = x;
        else if (x.type === "media-source") src = x;
        else if (x.type === "transport") transport = x;
      });
      if (transport && transport.selectedCandidatePairId) pair = report.get(transport.selectedCandidatePairId);
      const codec = out && out.codecId && report.get(out.codecId) ? report.get(out.codecId).mimeType : "";
      const now = { t: Date.now(), codec,
                    rttMs: rin && rin.roundTripTime != null ? rin.roundTripTime * 1000
                      : pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null,
                    jitterLocalMs: inb && inb.jitter != null ? inb.jitter * 1000 : null,
                    jitterRemoteMs: rin && rin.jitter != null ? rin.jitter * 1000 : null,
                    remoteFractionLostPct: rin && rin.fractionLost != null ? rin.fractionLost * 100 : null,
                    packetsReceived: inb ? inb.packetsReceived || 0 : null,
                    packetsLost: inb ? Math.max(0, inb.packetsLost || 0) : null,
                    inEnergy: inb ? inb.totalAudioEnergy || 0 : null,
                    // Firefox's media-source has no totalAudioEnergy: unknown, not silent.
                    micEnergy: src && src.totalAudioEnergy != null ? src.totalAudioEnergy : null };
      const p = this.prev;
      this.prev = now;
      if (p && now.packetsReceived != null && p.packetsReceived != null) {
        const got = now.packetsReceived - p.packetsReceived;
        const lost = now.packetsLost - p.packetsLost;
        now.localLossPct = got + lost > 0 ? (100 * Math.max(0, lost)) / (got + lost) : 0;
        now.packetsInInterval = got;
        now.inEnergyDelta = now.inEnergy - p.inEnergy;
        now.intervalS = (now.t - p.t) / 1000;
      }
      if (p && now.micEnergy != null && p.micEnergy != null) {
        now.micEnergyDelta = now.micEnergy - p.micEnergy;
        now.intervalS = (now.t - p.t) / 1000;
      }
      const losses = [now.localLossPct, now.remoteFractionLostPct].filter((v) => v != null);
      now.lossPct = losses.length ? Math.max(...losses) : null;
      const jitters = [now.jitterLocalMs, now.jitterRemoteMs].filter((v) => v != null);
      now.mos = RV.util.mos({ rttMs: now.rttMs, jitterMs: jitters.length ? Math.max(...jitters) : 0,
                              lossPct: now.lossPct || 0, codec });
      return now;
    }

    judge(s) {
      const opus = /opus/i.test(s.codec || "opus");
      const lossLimit = opus ? THRESHOLDS.lossOpusPct : THRESHOLDS.lossOtherPct;
      const checks = [
        ["high_rtt", "network", "", s.rttMs, s.rttMs != null && s.rttMs > THRESHOLDS.rttMs],
        ["high_jitter", "network", "local", s.jitterLocalMs, s.jitterLocalMs != null && s.jitterLocalMs > THRESHOLDS.jitterMs],
        ["high_jitter", "network", "remote", s.jitterRemoteMs, s.jitterRemoteMs != null && s.jitterRemoteMs > THRESHOLDS.jitterMs],
        ["high_packetloss", "network", "", s.lossPct, s.lossPct != null && s.lossPct >= lossLimit],
        ["low_mos", "network", "", s.mos, s.mos != null && s.mos < THRESHOLDS.mos],
      ];
      if (s.inEnergyDelta != null) {
        checks.push(["no_audio_received", "audio", "remote_audio", s.inEnergyDelta,
                     s.packetsInInterval === 0 || s.inEnergyDelta <= SILENT_ENERGY * s.intervalS]);
      }
      if (s.micEnergyDelta != null && !this.call.muted) {
        checks.push(["no_audio_received", "audio", "local_audio", s.micEnergyDelta,
                     s.micEnergyDelta <= SILENT_ENERGY * (s.intervalS || 1)]);
      }
      for (const [type, group, desc, value, bad] of checks) {
        const key = type + ":" + desc;
        const h = (this.history[key] = (this.history[key] || []).concat([bad]).slice(-WINDOW));
        const badCount = h.filter(Boolean).length;
        if (!this.active[key] && badCount >= NEEDED) this.fire(key, type, group, desc, value, true);
        else if (this.active[key] && h.length - badCount >= NEEDED) this.fire(key, type, group, desc, value, false);
      }
    }

    fire(key, type, group, desc, value, active) {
      this.active[key] = active;
      const rounded = typeof value === "number" ? Math.round(value * 1000) / 1000 : value;
      this.emitFn({ group, level: "warning", type, value: rounded, active, desc, stream: desc || null,
                    callId: this.call.id });
    }

    activeWarnings() { return Object.keys(this.active).filter((k) => this.active[k]); }
  }

  RV.QualityMonitor = QualityMonitor;
  RV.QUALITY_THRESHOLDS = THRESHOLDS;
})(window);

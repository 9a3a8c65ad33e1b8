"""Call-quality metrics tracking: the SDK's quality warnings (`mediaMetrics`, Plivo's names and
thresholds) on the cell's own link, then each warning against its own trigger, raised
(`active: true`) while the trigger is on and cleared (`active: false`) once it is removed:

  high_packetloss     20 % loss each way (>= 10 % with Opus)
  high_rtt            +250 ms each way (RTT 500 ms > 400; the browser's RTT comes from RTCP, ~5 s updates)
  no_audio_received   the far end mutes its outgoing audio (desc remote_audio), then unmutes
  high_jitter         netem slots: packets held and delivered in bursts every 200 ms each way (how Wi-Fi
                      and LTE aggregation deliver), in order. A reorder-free link can hardly do more:
                      with 20 ms packets the RFC 3550 jitter is at most 2 x 20 = 40 ms (a packet can
                      arrive at most 20 ms "early", and early and late balance out), and plain netem
                      jitter made reorder-free by a rate (120 +/- 100 ms) measured 21-29 ms and plain
                      (reordering) jitter 15-32 ms, mostly under the 30 ms threshold; 200 ms slots measured
                      31-35 ms in Chromium and 25-34 ms in Firefox (simulated 32-41): just past it.
                      So high_jitter is judged against the browser's own jitter during the trigger: a
                      warning is owed when 2 of 3 of its samples were clearly past 30 ms (33); when
                      they were not, the trigger did not bite, and the cell says so instead of failing.

The page is opened with fast sampling (stats every 1 s from 1 s into the call), so the 2-of-3
hysteresis takes 2-3 s where Plivo's 5 s sampling takes 10-15 s.

Budget: about 30 s of media, the longest row: 4 s on the cell's own link, then per warning the
time it takes to rise (2-3 s; 4-7 s for high_rtt, which waits for RTCP) and to clear (1-4 s).
A warning that fires on an ideal link, does not rise under its trigger, is raised and never clears, or
rises under another warning's trigger (other than low_mos, which the E-model drags along) fails the
cell. Each trigger is put on top of the cell's own profile and the cell's profile is restored
afterwards; a cell that runs a schedule only reports what fired on its own conditions (the triggers
would fight the schedule).
"""

import time

import pytest

from harness.engines import PageTimeout
from harness.farend.audio import TONE_HZ
from harness.scenarios.common import open_for_calls, require_sdk
from harness.softphone import CallFailed
from impairments.profile import Link, Profile, Slot
from impairments.schedule import Schedule

pytestmark = [pytest.mark.scenario("quality-warnings"), pytest.mark.slow, pytest.mark.lab]

SAMPLING = {"statsIntervalMs": "1000", "analysisDelayMs": "1000"}
OWN_S = 4.0  # analysis starts 1 s in, then three 1 s samples: enough for 2 of 3
THRESHOLDS = {"high_rtt": 400.0, "high_packetloss": 10.0, "high_jitter": 30.0}  # Plivo's (field.md), Opus
# What each trigger adds, and how long its warning may take to rise and to clear (ADAPTER.md's
# measured ranges, plus margin: RTT waits for the browser's RTCP, up to ~5 s between updates).
RAISE_S = {"high_rtt": 12.0, "high_packetloss": 6.0, "no_audio_received": 6.0, "high_jitter": 8.0}
CLEAR_S = {"high_rtt": 10.0, "high_packetloss": 6.0, "no_audio_received": 6.0, "high_jitter": 8.0}
RTT_ADD_MS, LOSS_PCT = 250.0, 20.0
SLOT_MS = 200.0
# My ~1 s stats samples are not the SDK's own: a warning is owed only when the browser's jitter was
# clearly past the threshold (10 % over), so a borderline reading does not fail the SDK.
JITTER_OWED_MS = 33.0
# Warnings a trigger may drag along: the E-model's MOS falls under each network trigger
# (about 2.8 at 500 ms RTT, 1.8-2.3 at 20 % loss).
SIDE = {"high_rtt": {"low_mos"}, "high_packetloss": {"low_mos"}, "high_jitter": {"low_mos"},
        "no_audio_received": set()}
SETTLE_S = 5.0  # at most, after the last trigger: side warnings clear too
STATS_BASED = ("high_packetloss", "high_rtt", "high_jitter", "low_mos", "no_audio_received")  # field.md's
ORDER = ("high_packetloss", "high_rtt", "no_audio_received", "high_jitter")  # the quickest to rise first
DESC = {"high_rtt": "", "high_packetloss": "", "no_audio_received": "remote_audio", "high_jitter": None}  # None: either
WHERE = {"high_rtt": f"+{RTT_ADD_MS:g} ms each way", "high_packetloss": f"{LOSS_PCT:g} % loss each way",
         "no_audio_received": "the far end muted", "high_jitter": f"{SLOT_MS:g} ms delivery slots each way"}
ALL_CLEAR_JS = """(own) => {
  const last = {};
  for (const e of rtcm.events) if (e.type === "mediaMetrics") last[e.detail.type + ":" + (e.detail.desc || "")] = e.detail.active;
  return Object.keys(last).every((k) => !last[k] || own.includes(k));
}"""
MEDIA_SOURCE_JS = """async () => {
  const report = await window.rtcmatrixAdapter.getStats();
  let fields = null;
  report && report.forEach((s) => { if (s.type === "media-source" && s.kind === "audio") fields = Object.keys(s).sort(); });
  return fields;
}"""


def _plus(link: Link, kind: str) -> Link:
    base = link.model_dump()
    if kind == "high_rtt":
        base["delay_ms"] = link.delay_ms + RTT_ADD_MS
    elif kind == "high_packetloss":
        base.update(loss_pct=max(link.loss_pct, LOSS_PCT), gilbert_elliott=None, four_state=None)
    elif kind == "high_jitter":
        base.update(slot=Slot(min_delay_ms=SLOT_MS), reorder_pct=0, reorder_gap=0, reorder_correlation_pct=0)
    return Link(**base)


def _restore(lab, profile: Profile, kind: str) -> None:
    """Back to the cell's own profile. netem cannot drop a slot in place: the qdisc is rebuilt, which
    drops what it holds (200 ms of packets, enough to raise high_packetloss). So the slot is first
    shrunk to 1 us in place, which releases the queue, and only then removed."""
    if kind == "high_jitter":
        tiny = Slot(min_delay_ms=0.001)
        lab.apply(Profile(name=f"{profile.name}-unslot"[:64],
                          uplink=Link(**{**profile.uplink.model_dump(), "slot": tiny}),
                          downlink=Link(**{**profile.downlink.model_dump(), "slot": tiny})))
        time.sleep(0.3)
    lab.apply(profile)


def _trigger(profile: Profile, kind: str) -> Profile:
    return Profile(name=f"{profile.name}-{kind}"[:64], uplink=_plus(profile.uplink, kind),
                   downlink=_plus(profile.downlink, kind))


def _find_js() -> str:
    return ("([kind, desc, active, since]) => rtcm.events.find(e => e.type === 'mediaMetrics'"
            " && e.detail.type === kind && (desc === null || (e.detail.desc || '') === desc)"
            " && e.detail.active === active && e.t >= since) || null")


def _wait(softphone, kind: str, active: bool, since: float, timeout_s: float, desc: dict = DESC) -> dict | None:
    try:
        return softphone.page.wait_for(_find_js(), arg=[kind, desc[kind], active, since * 1000], timeout_s=timeout_s)
    except PageTimeout:
        return None


def _wait_sampling(softphone, kind: str, since: float, timeout_s: float, desc: dict = DESC) -> tuple[dict | None, list[dict]]:
    """Wait for `kind` to be raised, sampling the browser's own stats about once a second."""
    samples, deadline = [], time.time() + timeout_s
    while True:
        raised = _wait(softphone, kind, True, since, min(1.0, max(0.05, deadline - time.time())), desc)
        samples.append({"t_s": round(time.time() - since, 2),
                        **_stats((softphone.page.evaluate("rtcm.probe.media()") or [{}])[0])})
        if raised or time.time() >= deadline:
            return raised, samples


def _earned(samples: list[dict]) -> set[str]:
    """Side warnings the browser's own figures during a trigger justify: on 3g (100 ms each way) the
    jitter trigger's 200 ms slots took the RTT to 430-570 ms, past high_rtt's 400."""
    out = set()
    if any((x["rtt_ms"] or 0) > THRESHOLDS["high_rtt"] for x in samples):
        out.add("high_rtt")
    if any(100 * (x["remote_fraction_lost"] or 0) >= THRESHOLDS["high_packetloss"] for x in samples):
        out.add("high_packetloss")
    if any(max(x["jitter_local_ms"] or 0, x["jitter_remote_ms"] or 0) > THRESHOLDS["high_jitter"] for x in samples):
        out.add("high_jitter")
    return out


def _warnings(softphone) -> list[dict]:
    return [e for e in softphone.events() if e["type"] == "mediaMetrics"]


def _fired(events: list[dict]) -> dict[str, list]:
    """type:desc -> [(active, t, value)] in order."""
    out: dict[str, list] = {}
    for e in events:
        d = e["detail"]
        out.setdefault(f"{d['type']}:{d.get('desc') or ''}", []).append((d["active"], e["t"] / 1000, d["value"]))
    return out


def _stats(media: dict) -> dict:
    """What the browser measured: RTT, jitter both ways, loss."""
    inbound, remote = media.get("inbound") or {}, media.get("remoteInbound") or {}
    ms = lambda v: None if v is None else round(1000 * v, 1)  # noqa: E731
    return {"rtt_ms": ms(remote.get("roundTripTime")), "jitter_local_ms": ms(inbound.get("jitter")),
            "jitter_remote_ms": ms(remote.get("jitter")), "remote_fraction_lost": remote.get("fractionLost"),
            "packets_lost": inbound.get("packetsLost")}


def _is_ideal(profile) -> bool:
    return isinstance(profile, Profile) and profile.uplink.is_ideal() and profile.downlink.is_ideal()


def _timing(info: dict) -> tuple[float, dict, dict]:
    """(own-link seconds, raise and clear limits): the page sets the reference SDK's sampling to 1 s;
    an SDK with a fixed cycle (features().qualitySampling, Plivo's 5 s from 5 s after answer) gets
    limits that grow with it, since its 2-of-3 hysteresis needs two or three of its samples."""
    sampling = (info.get("features") or {}).get("qualitySampling")
    if not sampling:
        return OWN_S, RAISE_S, CLEAR_S
    every, delay = sampling["intervalMs"] / 1000, sampling["delayMs"] / 1000
    extra = 2 * every + 2
    return delay + 3 * every, {k: v + extra for k, v in RAISE_S.items()}, {k: v + extra for k, v in CLEAR_S.items()}


def _measure_absence(cell, softphone, far_end, lab, info: dict) -> None:
    """The adapter says its SDK raises no warning on this engine though it has a quality monitor
    (Plivo: Chrome only). Not taken on its word: the loss trigger is held for as long as the SDK's
    own cycle needs to raise it, and every mediaMetrics event is looked for. Ends the cell."""
    if not isinstance(cell.profile, Profile):
        return  # a schedule's own conditions: the plain not-supported below
    own_s, _, _ = _timing(info)
    hold_s = own_s + 2
    note = ((info.get("features") or {}).get("notes") or {}).get("qualityWarnings")
    softphone.login()
    try:
        softphone.call(far_end.callee)
        softphone.wait_for("connected", cell.options.connect_timeout_s)
    except CallFailed as no_call:  # e.g. Plivo from Firefox without collapse-crcrlf: nothing to measure on
        cell.keep("quality-absence.json", {"measured": False, "why": str(no_call)})
        softphone.hangup()
        cell.not_supported("sdk", "call-quality warnings (mediaMetrics)",
                           f"the SDK adapter {info.get('name')!r} does not offer them here ({note or ''}); not measured: "
                           f"no call connected ({no_call})")
    on = time.time()
    lab.apply(_trigger(cell.profile, "high_packetloss"))
    try:
        time.sleep(hold_s)
        stats = _stats((softphone.page.evaluate("rtcm.probe.media()") or [{}])[0])
    finally:
        lab.apply(cell.profile)
    events = _warnings(softphone)
    softphone.hangup()
    cell.keep("quality-absence.json", {"trigger": WHERE["high_packetloss"], "held_s": round(time.time() - on, 1),
                                       "browser_stats": stats, "mediaMetrics": events})
    cell.prove("page", f"the browser lost packets under the trigger ({WHERE['high_packetloss']})",
               (stats.get("packets_lost") or 0) > 0, **stats)
    stats_based = [e for e in events if e["detail"]["type"] in STATS_BASED]
    others = sorted({f"{e['detail']['type']} ({e['detail'].get('desc') or e['detail'].get('value')})" for e in events
                     if e["detail"]["type"] not in STATS_BASED})
    cell.prove("page", f"the SDK raised none of its stats-based warnings in {hold_s:g} s under it, as its adapter "
                       "says", not stats_based, raised=stats_based, other_warnings=others, seconds=hold_s)
    cell.not_supported("sdk", "call-quality warnings (mediaMetrics)",
                       f"the SDK raised none of {', '.join(STATS_BASED)} in {hold_s:g} s of "
                       f"{WHERE['high_packetloss']} on this browser (it lost {stats.get('packets_lost')} packets)"
                       + (f"; it did raise {', '.join(others)}" if others else "") + (f"; {note}" if note else ""),
                       browser_stats=stats)


def test_quality_warnings(cell, softphone, far_end, lab):
    info = open_for_calls(cell, softphone, **SAMPLING)
    features = info.get("features") or {}
    if not features.get("qualityWarnings") and features.get("qualitySampling"):
        _measure_absence(cell, softphone, far_end, lab, info)
    require_sdk(cell, info, "qualityWarnings", "call-quality warnings (mediaMetrics)")
    own_s, raise_s, clear_s = _timing(info)
    # The desc values are the reference SDK's; another SDK names its own (Plivo: mosRemoteMeasures, ...).
    desc = DESC if info.get("name") == "rtc-voice" else {k: None for k in DESC}  # the reference adapter
    softphone.login()
    call_id = softphone.call(far_end.callee)
    softphone.wait_for("connected", cell.options.connect_timeout_s)
    started = time.time()
    time.sleep(own_s)
    own = _fired(_warnings(softphone))
    own_active = sorted(k for k, changes in own.items() if changes[-1][0])
    own_raised = sorted(k for k, changes in own.items() if any(a for a, _, _ in changes))
    heard = (far_end.call(call_id) or {}).get("heard") or {}
    media_source = softphone.page.evaluate(MEDIA_SOURCE_JS)
    cell.keep("own-conditions.json", {"profile": cell.profile.name, "warnings": own, "heard": heard,
                                      "media_source_fields": media_source})
    # Checks are proven in this order at the end, so that every trigger is measured even when the
    # ideal-link check failed; a warning that does not rise at all ends the probe at once (proving
    # what came before first), as nothing after it would be measured any better. Every check is
    # recorded; the cell fails on the first that did not hold.
    checks: list[tuple[str, str, bool, dict]] = []

    def check(by: str, claim: str, ok: bool, **details) -> None:
        checks.append((by, claim, bool(ok), details))

    def prove_all() -> None:
        """Record every check, then fail on the first that did not hold: a side warning under one
        trigger must not hide whether the warning itself rose and cleared."""
        first: AssertionError | None = None
        while checks:
            by, claim, ok, details = checks.pop(0)
            try:
                cell.prove(by, claim, ok, **details)
            except AssertionError as failed:
                first = first or failed
        if first is not None:
            raise first

    if _is_ideal(cell.profile):
        check("far-end", "the far end heard the browser's tone clean on the ideal link (the ground truth for "
                         "'no warning')",
              heard.get("dominant_hz") is not None and abs(heard["dominant_hz"] - TONE_HZ) < 10
              and (heard.get("longest_gap_s") or 0) < 0.2,
              dominant_hz=heard.get("dominant_hz"), rms_dbfs=heard.get("rms_dbfs"), longest_gap_s=heard.get("longest_gap_s"))
        check("page", "no quality warning fires on an ideal link", not own_raised, warnings=own, seconds=own_s,
              media_source_fields=media_source, far_end_heard_dbfs=heard.get("rms_dbfs"))
    elif own_raised:
        values = {k: [v for a, _, v in own[k] if a] for k in own_raised}
        past = {k: all((v >= THRESHOLDS[k.split(":")[0]]) if k.startswith("high_packetloss") else
                       (v > THRESHOLDS[k.split(":")[0]]) for v in vs)
                for k, vs in values.items() if k.split(":")[0] in THRESHOLDS}
        check("page", "each warning the cell's own link raised reports a value past its threshold",
              all(past.values()), values=values, thresholds=THRESHOLDS, profile=cell.profile.name)
    if isinstance(cell.profile, Schedule):
        softphone.hangup()
        cell.behaviour = f"on the schedule {cell.profile.name}: {', '.join(own_raised) or 'no warning'} in the first {own_s:g} s"
        prove_all()
        pytest.skip(f"the cell runs the schedule {cell.profile.name!r}: its conditions change by themselves, so the "
                    f"in-cell triggers are skipped (fired in its first {own_s:g} s: {own_raised or 'none'})")
    profile: Profile = cell.profile

    figures: dict[str, dict] = {}
    for kind in ORDER:
        busy = [k for k in own_active if k.split(":")[0] == kind and (desc[kind] is None or k == f"{kind}:{desc[kind]}")]
        if busy:
            figures[kind] = {"skipped": f"{busy[0]} is already raised by the cell's own link: its clear cannot be shown"}
            continue
        on = time.time()
        try:
            if kind == "no_audio_received":
                far_end.mute(call_id)
            else:
                lab.apply(_trigger(profile, kind))
            raised, samples = _wait_sampling(softphone, kind, on, raise_s[kind], desc)
        finally:
            off = time.time()
            if kind == "no_audio_received":
                far_end.unmute(call_id)
            else:
                _restore(lab, profile, kind)
        cleared = _wait(softphone, kind, False, off, clear_s[kind], desc) if raised else None
        figures[kind] = {"raised_after_s": round(raised["t"] / 1000 - on, 2) if raised else None,
                         "cleared_after_s": round(cleared["t"] / 1000 - off, 2) if cleared else None,
                         "value": raised["detail"]["value"] if raised else None,
                         "desc": raised["detail"].get("desc") if raised else None,
                         "trigger_s": round(off - on, 2), "browser_stats": samples}
        until = (cleared["t"] / 1000) if cleared else time.time()
        figures[kind]["side"] = sorted({f"{e['detail']['type']}:{e['detail'].get('desc') or ''}" for e in _warnings(softphone)
                                        if on * 1000 <= e["t"] <= until * 1000 and e["detail"]["active"]
                                        and e["detail"]["type"] != kind})
        earned = _earned(samples)
        check("page", f"the {kind} trigger raised no other warning (but low_mos, or one the browser's own figures "
                      "put past its threshold)",
              not [k for k in figures[kind]["side"] if k.split(":")[0] not in SIDE[kind] | earned],
              side=figures[kind]["side"], earned_by_the_browsers_figures=sorted(earned))
        if kind == "high_jitter" and raised is None:
            # Owed only if the browser itself measured clearly past 30 ms in 2 of 3 consecutive samples.
            over = [max(x["jitter_local_ms"] or 0, x["jitter_remote_ms"] or 0) > JITTER_OWED_MS for x in samples]
            owed = any(sum(over[i:i + 3]) >= 2 for i in range(max(1, len(over) - 2)))
            check("page", f"high_jitter is raised when the browser's own jitter passed {JITTER_OWED_MS:g} ms in 2 of 3 "
                          "samples", not owed, **figures[kind])
            figures[kind]["not_provoked"] = True
            continue
        check("page", f"{kind} is raised under its trigger ({WHERE[kind]})", raised is not None,
              within_s=raise_s[kind], **figures[kind])
        if raised is None:
            softphone.hangup()
            cell.keep("warnings.json", {"events": _warnings(softphone), "figures": figures, "started": started})
            prove_all()
        limit = THRESHOLDS.get(kind)
        if raised and limit is not None:
            value = raised["detail"]["value"]
            check("page", f"{kind} reports a value past its threshold ({limit:g})",
                  value >= limit if kind == "high_packetloss" else value > limit, value=value)
        if raised:
            check("page", f"{kind} clears once its trigger is removed", cleared is not None,
                  within_s=clear_s[kind], **figures[kind])

    try:
        softphone.page.wait_for(ALL_CLEAR_JS, arg=[f"{k}" for k in own_active], timeout_s=SETTLE_S)
    except PageTimeout:
        pass  # judged below
    events = _warnings(softphone)
    mute_log = (far_end.call(call_id) or {}).get("far_end_mute_log") or []
    softphone.hangup()
    history = _fired(events)
    cell.keep("warnings.json", {"events": events, "figures": figures, "started": started})
    if "skipped" not in figures["no_audio_received"]:
        check("far-end", "the far end really went silent and came back (its mute log)",
              [m["muted"] for m in mute_log] == [True, False], mute_log=mute_log)
    # Warnings the cell's own link keeps up are that link's doing; any other must have cleared.
    stuck = {k: changes for k, changes in history.items() if changes[-1][0] is True and k not in own_active}
    check("page", "every warning that was raised also cleared once its trigger was gone", not stuck,
          stuck=stuck, history=history)

    done = {k: f for k, f in figures.items() if f.get("raised_after_s") is not None and f.get("cleared_after_s") is not None}
    parts = [f"{k} raised {f['raised_after_s']:.1f} s / cleared {f['cleared_after_s']:.1f} s" for k, f in done.items()]
    jitter = figures["high_jitter"]
    if jitter.get("not_provoked"):
        peak = max((max(x["jitter_local_ms"] or 0, x["jitter_remote_ms"] or 0) for x in jitter["browser_stats"]), default=0)
        parts.append(f"high_jitter not provoked ({SLOT_MS:g} ms delivery slots took the browser's jitter only to "
                     f"{peak:g} ms; a reorder-free link caps it near 40 ms)")
    if own_raised:
        where = "the ideal link" if _is_ideal(profile) else f"the cell's own link ({profile.name})"
        parts.insert(0, f"on {where}: {', '.join(own_raised)}")
    cell.behaviour = "; ".join(parts)
    prove_all()

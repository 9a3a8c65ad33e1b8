"""The SIP backend as a scenario's `far_end`: the same questions the reference far end answers
(was this call answered, what did it hear and when, which digits arrived, who hung up), asked of
Kamailio's trace and the SIP far end's recording. The test page itself is still served by
rtcmatrix's own far end."""

from __future__ import annotations

import re

from harness.audio.analysis import heard
from harness.audio.arrivals import Arrivals
from harness.backends.sip.backend import FAREND_PORT, SipBackend
from harness.backends.sip.procs import wait_for
from harness.backends.sip.truth import read_growing_wav


def x_headers(text: str) -> dict[str, str]:
    """X- headers of a SIP message as they arrived, names in their own case (the trace's parsed
    headers are lower-cased for lookups)."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^(X-[^:\s]+)\s*:(.*)$", head, re.M | re.I)}


class SipFarEnd:
    def __init__(self, backend: SipBackend, page_url: str):
        self.backend = backend
        self.url = page_url  # where the test page is served
        self.arrivals = Arrivals(lambda: backend.farend.recordings() if backend.farend else [])
        self._mute_log: dict[str, list[dict]] = {}

    def __getattr__(self, name: str):  # ws_url, credentials, describe, registrations, sdp, mute, ...
        return getattr(self.backend, name)

    @property
    def callee(self) -> str:
        return self.backend.far_end_user

    @property
    def caller(self) -> str:
        return self.backend.far_end_user

    def _audio(self, call_id: str):
        path = self.backend._recording_path(call_id)
        x, rate = read_growing_wav(path) if path else (None, 0)
        return (None, 0, path) if x is None else (x, rate, path)

    def heard(self, call_id: str) -> dict | None:
        """What the far end recorded on this call, summarised as the reference far end does."""
        x, rate, path = self._audio(call_id)
        return None if x is None else {**heard(x, rate), "recording": str(path)}

    def timeline(self, call_id: str, frame_s: float = 0.02, silence_dbfs: float = -50) -> list[dict]:
        """Active and silent runs of what the far end heard, on wall time (start_epoch, end_epoch);
        stretches where no audio arrived at all are silent runs of their own (`arrived: False`)."""
        path = self.backend._recording_path(call_id)
        out = self.backend.timeline(call_id, frame_s, silence_dbfs)
        if not path:
            return out
        gaps = self.arrivals.gaps(path)
        for seg in out:
            seg["start_epoch"] = self.arrivals.epoch(path, seg["start_s"])
            seg["end_epoch"] = self.arrivals.epoch(path, seg["end_s"])
        for at, start, end in gaps:  # a run that spans a gap is two runs, one each side of it
            for seg in [g for g in out if g["start_s"] < at < g["end_s"]]:
                out.append({**seg, "start_s": at, "start_epoch": end})
                seg.update(end_s=at, end_epoch=start)
            out.append({"start_s": at, "end_s": at, "active": False, "dbfs": None, "arrived": False,
                        "start_epoch": start, "end_epoch": end})
        return sorted(out, key=lambda seg: (seg["start_epoch"] or 0, seg["start_s"]))

    def frequency(self, call_id: str, window_s: float = 0.25) -> list[dict]:
        path = self.backend._recording_path(call_id)
        out = self.backend.frequency(call_id, window_s)
        for w in out:
            w["epoch"] = self.arrivals.epoch(path, w["t"]) if path else None
        return out

    def mute(self, call_id: str, muted: bool = True) -> dict:
        """The far end stops (or resumes) its tone; logged per call, as the reference far end does."""
        got = self.backend.mute(call_id, muted)
        self._mute_log.setdefault(call_id, []).append({"muted": got["muted"], "at": got["at"]})
        return got

    def unmute(self, call_id: str) -> dict:
        return self.mute(call_id, False)

    def dtmf(self, call_id: str) -> dict:
        """Digits that arrived, per mode, as the reference far end lists them."""
        got = self.backend.dtmf(call_id)
        by_mode: dict[str, list] = {"rfc4733": [], "inband": [], "info": []}
        for e in got["events"]:
            by_mode[e["mode"]].append({"digit": e["digit"], "arrived_at": e["t"], "duration_ms": None})
        return {**by_mode, "digits": got["digits"]}

    def call(self, call_id: str) -> dict | None:
        c = self.backend.call(call_id)
        if c is None:
            return None
        invite = next((m for m in self.backend.sip_messages(call_id) if m.method == "INVITE" and m.status is None), None)
        delivered = next((m for m in self.backend._at_farend(call_id)
                          if m.method == "INVITE" and m.status is None and m.dst[1] == FAREND_PORT), None)
        ts = {k: c.get(f"{k}_at") for k in ("ringing", "answered", "ended") if c.get(f"{k}_at")}
        return {**c, "heard": self.heard(call_id) if c.get("answered_at") else None,
                "invited_at": invite.time if invite else None, "timestamps": ts,
                "headers": x_headers(delivered.text) if delivered else {},
                "far_end_mute_log": self._mute_log.get(call_id, []),
                "ended_by": self.ended_by(call_id), "recording": self.backend._recording_path(call_id)}

    def logins(self) -> list[dict]:
        """Each login the registrar saw, as the reference far end lists them: a REGISTER's final
        answer on a new connection (a refresh on the same one is not a login). `reconnect`: the
        UA logged in before on another connection (same REGISTER Call-ID, as SIP UAs keep it)."""
        messages = self.backend.trace.refresh()
        finals = {(m.call_id, m.headers.get("cseq", "")): m for m in messages
                  if m.tag == "snd" and m.method == "REGISTER" and m.status and m.status >= 200
                  and m.status not in (401, 407)}
        out, seen = [], {}  # REGISTER Call-ID -> connections it logged in on
        for m in messages:
            if m.tag != "rcv" or m.method != "REGISTER" or m.status is not None:
                continue
            final = finals.get((m.call_id, m.headers.get("cseq", "")))
            if final is None:
                continue
            session = f"{m.src[0]}:{m.src[1]}"
            before = seen.setdefault(m.call_id, [])
            if session in before:
                continue
            user = re.search(r"sip:([^@;>]+)@", m.headers.get("to", ""))
            out.append({"username": user.group(1) if user else None, "at": final.time, "ok": final.status == 200,
                        "status": final.status, "session": session, "reconnect": bool(before)})
            if final.status == 200:
                before.append(session)
        return out

    def registrations(self) -> dict[str, dict]:
        """Registered users -> their newest login's connection ("session") and the registrar's contacts."""
        contacts = self.backend.registrations()
        latest = {}
        for e in self.logins():
            if e["ok"]:
                latest[e["username"]] = e["session"]
        out = {}
        for aor, cs in contacts.items():
            user = aor.split("@")[0].removeprefix("sip:")
            out[user] = {"session": latest.get(user), "contacts": cs}
        return out

    def wait_registered(self, user: str, timeout_s: float = 10.0) -> bool:
        return bool(wait_for(lambda: user in self.registrations(), timeout_s, step_s=0.1))

    def trace_text(self, since: float) -> str:
        """Every SIP message Kamailio received or sent since `since` (a cell's start), as text."""
        return "\n\n".join(m.render() for m in self.backend.trace.refresh() if m.time >= since)

    def ended_by(self, call_id: str) -> str | None:
        """Who sent the first BYE, from Kamailio's own trace: the far end UA, or the browser."""
        bye = next((m for m in self.backend.sip_messages(call_id)
                    if m.tag == "rcv" and m.method == "BYE" and m.status is None), None)
        if bye is None:
            return None
        return "far-end" if bye.src[1] == FAREND_PORT else "browser"

    def wait_ended(self, call_id: str, timeout_s: float = 10.0) -> dict:
        self.backend.wait_ended(call_id, timeout_s)
        return self.call(call_id) or {}

    def wait_answered(self, call_id: str, timeout_s: float = 10.0) -> dict:
        self.backend.wait_answered(call_id, timeout_s)
        return self.call(call_id) or {}

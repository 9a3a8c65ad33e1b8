"""`SipBackend`: Kamailio + rtpengine + a baresip far end in the lab's server namespace, and the
ground truth of every call (state, headers, SDP, DTMF, what the far end heard), keyed by SIP Call-ID."""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.backends.sip import baresip, kamailio, rtpengine, truth
from harness.backends.sip.procs import RUN_PREFIX, Proc, SipBackendError, leftovers, wait_for
from harness.sdks import WORKAROUNDS

if TYPE_CHECKING:
    from impairments.lab import Lab

PLIVO_DOMAIN = "phone.plivo.com"
FAREND_USER = "farend"
FAREND_PORT = 5080  # the far end UA's own port on the server IP: never "myself" to Kamailio
FAREND_CTRL_PORT = 4444


class SipBackend:
    """A SIP registrar/proxy for browser SDKs (ws) and SIP UAs (udp), with an auto-answering far end.

    Credentials: one random password per run, valid for any user name (`credentials(user)`).
    The far end is the registered user `farend` (`far_end_uri`); it answers at once, plays
    1000 Hz and records what it hears. Calls are keyed by the SIP Call-ID header.
    """

    def __init__(self, lab: "Lab", workdir: Path, domain: str | None = None,
                 workarounds: set[str] | frozenset[str] = frozenset(), plivo: bool | None = None):
        unknown = set(workarounds) - set(WORKAROUNDS)
        if unknown:
            raise ValueError(f"unknown workarounds {sorted(unknown)}; known: {sorted(WORKAROUNDS)}")
        self.lab, self.workdir = lab, Path(workdir)
        self.domain = domain or lab.server_ip
        self.workarounds = frozenset(workarounds)
        self.plivo = (self.domain == PLIVO_DOMAIN) if plivo is None else plivo
        self.password = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        # every config/pid path holds this rtcm-sip-* name, so a sweep can find our processes by cmdline
        self.rundir = self.workdir / f"{RUN_PREFIX}{lab.lab_id}-{secrets.token_hex(3)}"
        self.rtpengine: rtpengine.Rtpengine | None = None
        self.kamailio: kamailio.Kamailio | None = None
        self.farend: baresip.Baresip | None = None
        self.tcpdump: Proc | None = None
        self.trace = truth.SipTrace(self.rundir)
        self.timings: dict[str, float] = {}
        self._muted = False
        self._rec_of: dict[str, Path] = {}

    # --- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> "SipBackend":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "SipBackend":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        ns, ip, prefix = self.lab.server_ns, self.lab.server_ip, self.lab.exec_prefix("server")
        pcap = self.rundir / "sip.pcap"
        self.tcpdump = Proc("tcpdump", prefix + ["tcpdump", "-i", "any", "-U", "-Z", "root", "-s", "0", "-w", str(pcap),
                                                 f"port {kamailio.UDP_PORT} or port {kamailio.WS_PORT} or port {FAREND_PORT}"],
                            self.rundir / "tcpdump.log").start()
        t = time.monotonic()
        self.rtpengine = rtpengine.Rtpengine(prefix, ns, ip, self.rundir).start()
        self.timings["rtpengine_ready_s"] = time.monotonic() - t
        t = time.monotonic()
        self.kamailio = kamailio.Kamailio(prefix, ns, ip, self.rundir, self.domain, self.password, FAREND_PORT,
                                          self.plivo, set(self.workarounds)).start()
        self.timings["kamailio_ready_s"] = time.monotonic() - t
        t = time.monotonic()
        self.farend = baresip.Baresip(prefix, ns, self.rundir / "farend", ip=ip, sip_port=FAREND_PORT, proxy=ip,
                                      user=FAREND_USER, domain=self.domain, password=self.password, tone_hz=1000,
                                      ctrl_port=FAREND_CTRL_PORT, answermode="auto", name="farend").start()
        if not wait_for(lambda: FAREND_USER in self.registrations(), 5, step_s=0.05):
            raise SipBackendError(f"far end not in Kamailio's location table; log: {self.kamailio.log_path}")
        self.timings["farend_registered_s"] = time.monotonic() - t
        if not wait_for(pcap.exists, 3):
            raise SipBackendError(f"tcpdump wrote no {pcap}; log: {self.tcpdump.log_path}")

    def stop(self) -> None:
        for part in (self.farend, self.kamailio, self.rtpengine, self.tcpdump):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stop the rest whatever happens
                    pass
        # belt and braces: anything still running with our run dir on its cmdline
        for proc in leftovers():
            if any(str(self.rundir) in arg for arg in proc.cmdline()):
                proc.kill()

    # --- addresses --------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://{self.lab.server_ip}:{kamailio.WS_PORT}"

    @property
    def sip_domain(self) -> str:
        return self.domain

    @property
    def far_end_user(self) -> str:
        return FAREND_USER

    @property
    def far_end_uri(self) -> str:
        return f"sip:{FAREND_USER}@{self.domain}"

    @property
    def pcap(self) -> Path:
        return self.rundir / "sip.pcap"

    def credentials(self, user: str = "alice") -> dict:
        """The run's password works for any user name (REGISTER 401 -> 200; INVITE 407 -> on)."""
        return {"username": user, "password": self.password}

    def describe(self) -> dict:
        return {"kind": "sip", "kamailio": kamailio.version(), "rtpengine": rtpengine.version(),
                "baresip": baresip.version(), "domain": self.domain, "ws_url": self.ws_url,
                "udp": f"{self.lab.server_ip}:{kamailio.UDP_PORT}", "far_end_uri": self.far_end_uri,
                "plivo": self.plivo, "workarounds": sorted(self.workarounds),
                "rundir": str(self.rundir), "timings": dict(self.timings)}

    # --- registrations ----------------------------------------------------------------------
    def registrations(self) -> dict[str, list[dict]]:
        assert self.kamailio, "not started"
        return self.kamailio.registrations()

    def wait_registered(self, user: str, timeout_s: float = 10.0) -> bool:
        return bool(wait_for(lambda: user in self.registrations(), timeout_s, step_s=0.1))

    # --- calls ------------------------------------------------------------------------------
    def _events(self, call_id: str | None = None) -> list[dict]:
        assert self.farend, "not started"
        return [e for e in list(self.farend.ctrl.events) if call_id is None or e.get("id") == call_id]

    def _at_farend(self, call_id: str) -> list[truth.SipMessage]:
        """The call's SIP messages on the far end's leg (to or from its port)."""
        return [m for m in self.trace.of_call(call_id)
                if FAREND_PORT in (m.src[1], m.dst[1]) and self.lab.server_ip in (m.src[0], m.dst[0])]

    def calls(self) -> list[dict]:
        ids = list(dict.fromkeys(e["id"] for e in self._events() if e.get("id") and e.get("class") == "call"))
        return [c for c in (self.call(i) for i in ids) if c]

    def call(self, call_id: str) -> dict | None:
        events = self._events(call_id)
        legs = self._at_farend(call_id)
        if not events and not legs:
            return None
        first = {e["type"]: e for e in reversed(events)}
        invite = next((m for m in legs if m.method == "INVITE" and m.status is None), None)
        state = "ringing"
        if "CALL_ESTABLISHED" in first:
            state = "answered"
        if "CALL_CLOSED" in first:
            state = "ended"
        direction = (events[0].get("direction") if events else None) or \
            ("outgoing" if invite and invite.src[1] == FAREND_PORT else "incoming")
        sdp = self.sdp(call_id)
        return {
            "call_id": call_id, "direction": direction, "state": state,
            "peer": events[0].get("peeruri") if events else None,
            "ringing_at": (first.get("CALL_INCOMING") or first.get("CALL_RINGING") or {}).get("at")
                          or (invite.time if invite else None),
            "answered_at": first.get("CALL_ESTABLISHED", {}).get("at"),
            "ended_at": first.get("CALL_CLOSED", {}).get("at"),
            "end_reason": first.get("CALL_CLOSED", {}).get("param"),
            "headers": dict(invite.headers) if invite else {},
            "codec": _codec(sdp["answer"]),
            "muted": self._muted if state == "answered" else False,
        }

    def _wait_state(self, call_id: str, states: tuple[str, ...], timeout_s: float) -> dict:
        got = wait_for(lambda: (c := self.call(call_id)) and c["state"] in states and c, timeout_s, step_s=0.05)
        return got or self.call(call_id) or {}

    def wait_answered(self, call_id: str, timeout_s: float = 10.0) -> dict:
        return self._wait_state(call_id, ("answered", "ended"), timeout_s)

    def wait_ended(self, call_id: str, timeout_s: float = 10.0) -> dict:
        return self._wait_state(call_id, ("ended",), timeout_s)

    def _require_live(self, call_id: str) -> None:
        c = self.call(call_id)
        if not c or c["state"] == "ended":
            raise SipBackendError(f"no live call {call_id!r} at the far end")
        live = [x for x in self.calls() if x["state"] != "ended"]
        if len(live) > 1:  # baresip's menu commands act on its current call only
            raise SipBackendError(f"{len(live)} live calls at the far end; commands reach only one")

    def hangup(self, call_id: str) -> None:
        """The far end hangs up (BYE, or CANCEL/decline if still ringing)."""
        self._require_live(call_id)
        self.farend.command("hangup")

    def mute(self, call_id: str, muted: bool = True) -> dict:
        """Stop (or resume) the far end's tone on the call; what it sends becomes silence."""
        self._require_live(call_id)
        if muted != self._muted:
            data = str(self.farend.command("mute").get("data", ""))
            self._muted = "un-muted" not in data and "unmuted" not in data
        return {"call_id": call_id, "muted": self._muted, "at": time.time()}

    def unmute(self, call_id: str) -> dict:
        return self.mute(call_id, False)

    def originate(self, to_user: str, headers: dict | None = None, timeout_s: float = 5.0) -> str:
        """The far end calls `sip:<to_user>@<domain>` through Kamailio; `headers` are added to the
        INVITE (by Kamailio, from a one-shot htable entry). Returns the SIP Call-ID."""
        assert self.farend and self.kamailio, "not started"
        if headers:
            self.kamailio.set_originate_headers(to_user, headers)
        t0 = time.time() - 0.05
        self.farend.command("dial", f"sip:{to_user}@{self.domain}")

        def sent():
            for m in self.trace.refresh():
                if (m.time >= t0 and m.method == "INVITE" and m.status is None and m.tag == "rcv"
                        and m.src == (self.lab.server_ip, FAREND_PORT) and f"sip:{to_user}@" in m.first_line):
                    return m.call_id
            return None
        call_id = wait_for(sent, timeout_s, step_s=0.05)
        if not call_id:
            raise SipBackendError(f"the far end's INVITE to {to_user} never reached Kamailio; "
                                  f"log: {self.farend.log_path}")
        return call_id

    # --- evidence ---------------------------------------------------------------------------
    def sip_messages(self, call_id: str) -> list[truth.SipMessage]:
        return self.trace.of_call(call_id)

    def sip_trace(self, call_id: str) -> list[str]:
        """Every message of the call as Kamailio received ('rcv') or sent ('snd') it, in order."""
        return [m.render() for m in self.sip_messages(call_id)]

    def sdp(self, call_id: str) -> dict:
        """Offer and answer on the far end's leg (after rtpengine rewrote them)."""
        legs = self._at_farend(call_id)
        offer = next((m.body for m in legs if m.method == "INVITE" and m.status is None and m.body.strip()), None)
        answer = next((m.body for m in legs if m.method == "INVITE" and m.status and 180 <= m.status < 300
                       and m.body.strip()), None)
        return {"offer": offer, "answer": answer}

    def _recording_path(self, call_id: str) -> Path | None:
        """sndfile names files by time: the far end's n-th answered call owns its n-th *-dec.wav."""
        if call_id in self._rec_of:
            return self._rec_of[call_id]
        answered = sorted((c["answered_at"], c["call_id"]) for c in self.calls() if c["answered_at"])
        files = self.farend.recordings() if self.farend else []
        taken = set(self._rec_of.values())
        for at, cid in answered:
            if cid in self._rec_of:
                continue
            free = [f for f in files if f not in taken and baresip.recording_started(f) >= at - 2]
            if not free:
                break
            self._rec_of[cid] = free[0]
            taken.add(free[0])
        return self._rec_of.get(call_id)

    def recording(self, call_id: str, path: Path) -> Path:
        src = self._recording_path(call_id)
        if not src:
            raise SipBackendError(f"no far-end recording for call {call_id!r}")
        shutil.copyfile(src, path)
        return Path(path)

    def frequency(self, call_id: str, window_s: float = 0.25) -> list[dict]:
        src = self._recording_path(call_id)
        return truth.frequency(src, window_s) if src else []

    def timeline(self, call_id: str, frame_s: float = 0.02, silence_dbfs: float = -50) -> list[dict]:
        src = self._recording_path(call_id)
        return truth.timeline(src, frame_s, silence_dbfs) if src else []

    def dtmf(self, call_id: str) -> dict:
        """Digits the far end got: baresip's DTMF events, each marked 'info' when a SIP INFO
        dtmf-relay with that digit reached it within a second, else 'rfc4733'."""
        infos = truth.dtmf_infos([m for m in self._at_farend(call_id) if m.dst[1] == FAREND_PORT])
        used: set[int] = set()
        events = []
        for e in self._events(call_id):
            if e.get("type") != "CALL_DTMF_START":
                continue
            digit, mode = str(e.get("param", "")), "rfc4733"
            for i, (t, d) in enumerate(infos):
                if i not in used and d == digit and abs(t - e["at"]) < 1.0:
                    used.add(i)
                    mode = "info"
                    break
            events.append({"digit": digit, "t": e["at"], "mode": mode})
        for i, (t, d) in enumerate(infos):  # an INFO that baresip did not report still reached it
            if i not in used:
                events.append({"digit": d, "t": t, "mode": "info"})
        events.sort(key=lambda e: e["t"])
        return {"digits": "".join(e["digit"] for e in events), "events": events}


def _codec(sdp: str | None) -> str | None:
    """The first audio codec of an SDP (the one an answer chose), e.g. 'opus/48000/2'."""
    if not sdp:
        return None
    m = re.search(r"^m=audio \d+ \S+ (\d+)", sdp, re.M)
    if not m:
        return None
    pt = m.group(1)
    rtpmap = re.search(rf"^a=rtpmap:{pt} (\S+)", sdp, re.M)
    return rtpmap.group(1) if rtpmap else {"0": "PCMU/8000", "8": "PCMA/8000"}.get(pt, pt)

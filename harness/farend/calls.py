"""One call at the far end and the ground truth it can tell about it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harness.farend.dtmf import detect_inband
from harness.farend.listener import SILENCE_DBFS, WINDOW_S, Listener
from harness.farend.media import GatedTrack, RtcpRttTap, RtpTap

RATE = 48_000


class CallError(Exception):
    """A request the far end refuses: `status` is the HTTP status for the control API."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Call:
    call_id: str
    user: str
    to: str
    headers: dict
    invited_at: float
    pc: Any
    origin: str = "browser"            # who placed the call: "browser" or "far-end"
    caller: str | None = None          # the far end's "from" on calls it originates
    session: Any = None                # the signalling session that carries the call now
    listener: Listener | None = None
    tap: RtpTap | None = None
    rtcp: RtcpRttTap | None = None
    out_track: GatedTrack | None = None
    state: str = "new"
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None
    reject_reason: str | None = None
    states: list = field(default_factory=list)
    timestamps: dict = field(default_factory=dict)
    remote_sdp: str | None = None
    local_sdp: str | None = None
    negotiated: dict = field(default_factory=dict)
    sent_opus_bitrate: int | None = None
    feedback: list = field(default_factory=list)
    recording: str | None = None

    def mark(self, what: str, at: float | None = None) -> None:
        self.timestamps.setdefault(what, at or time.time())

    @property
    def start(self) -> float:
        """Times "from the call's start" count from the invite (received or sent)."""
        return self.invited_at

    def rfc4733(self) -> list[dict]:
        if not self.tap:
            return []
        out = []
        for d in self.tap.dtmf():
            d["t_s"] = round(d["arrived_at"] - self.start, 4)
            out.append(d)
        return out

    def inband(self) -> list[dict]:
        if not self.listener:
            return []
        out = []
        for d in detect_inband(self.listener.audio(), RATE):
            e = self.listener.epoch(d["start_s"])
            out.append({"digit": d["digit"], "media_start_s": d["start_s"], "media_end_s": d["end_s"],
                        "duration_ms": d["duration_ms"], "arrived_at": e,
                        "ended_at": self.listener.epoch(d["end_s"]),
                        "t_s": round(e - self.start, 4) if e else None})
        return out

    def summary(self) -> dict:
        heard = self.listener.findings() if self.listener else None
        return {
            "call_id": self.call_id,
            "user": self.user,
            "to": self.to,
            "from": self.caller,
            "origin": self.origin,
            "headers": self.headers,
            "state": self.state,
            "states": self.states,
            "invited_at": self.invited_at,
            "timestamps": self.timestamps,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
            "end_reason": self.end_reason,
            "reject_reason": self.reject_reason,
            "heard": heard,
            "codec": self.negotiated.get("codec"),
            "dtmf_payload_types": self.negotiated.get("dtmf", []),
            "sent_opus_bitrate": self.sent_opus_bitrate,
            "received": self.tap.bitrate() if self.tap else None,
            # [when, ms]: each receiver report's round trip (now - LSR - DLSR), for the audio we send
            "rtcp_rtt_ms": [list(s) for s in self.rtcp.samples] if self.rtcp else [],
            "dtmf": {"rfc4733": [{"digit": d["digit"], "arrived_at": d["arrived_at"], "t_s": d["t_s"],
                                  "duration_ms": d["duration_ms"], "ended": d["ended"]} for d in self.rfc4733()]},
            "far_end_muted": bool(self.out_track and self.out_track.muted),
            "far_end_mute_log": self.out_track.log if self.out_track else [],
            "feedback": self.feedback,
            "recording": self.recording,
        }

    def heavy_truth(self, frame_s: float = WINDOW_S, window_s: float = 0.25,
                    silence_dbfs: float = SILENCE_DBFS) -> dict:
        """The parts computed over the whole recording (safe to run off the event loop): the energy
        timeline, the frequency track and the in-band DTMF."""
        return {
            "call_start": self.start,
            "timeline": self.listener.timeline(self.start, frame_s, silence_dbfs) if self.listener else [],
            "frequency": self.listener.frequency(self.start, window_s, silence_dbfs) if self.listener else [],
            "dtmf": {"inband": self.inband()},
        }

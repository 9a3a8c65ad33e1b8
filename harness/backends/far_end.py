"""The SIP backend as a scenario's `far_end`: the same questions the reference far end answers
(was this call answered, what did it hear, who hung up), asked of Kamailio's trace and the SIP
far end's recording. The test page itself is still served by rtcmatrix's own far end."""

from __future__ import annotations

from harness.audio.analysis import heard
from harness.backends.sip.backend import FAREND_PORT, SipBackend
from harness.backends.sip.truth import read_growing_wav


class SipFarEnd:
    def __init__(self, backend: SipBackend, page_url: str):
        self.backend = backend
        self.url = page_url  # where the test page is served

    def __getattr__(self, name: str):  # ws_url, credentials, describe, registrations, dtmf, sdp, mute, ...
        return getattr(self.backend, name)

    @property
    def callee(self) -> str:
        return self.backend.far_end_user

    def heard(self, call_id: str) -> dict | None:
        """What the far end recorded on this call, summarised as the reference far end does."""
        path = self.backend._recording_path(call_id)
        x, rate = read_growing_wav(path) if path else (None, 0)
        if x is None:
            return None
        return {**heard(x, rate), "recording": str(path)}

    def call(self, call_id: str) -> dict | None:
        c = self.backend.call(call_id)
        if c is None:
            return None
        return {**c, "heard": self.heard(call_id) if c.get("answered_at") else None,
                "ended_by": self.ended_by(call_id), "recording": self.backend._recording_path(call_id)}

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

"""A real SIP stack in the lab's server namespace: Kamailio (registrar/proxy, ws and udp), rtpengine
(WebRTC <-> RTP) and baresip (the far end UA), with per-call ground truth. See backend.SipBackend."""

from harness.backends.sip.backend import FAREND_USER, PLIVO_DOMAIN, WORKAROUNDS, SipBackend
from harness.backends.sip.procs import SipBackendError, sweep_leftovers

__all__ = ["SipBackend", "SipBackendError", "sweep_leftovers", "FAREND_USER", "PLIVO_DOMAIN", "WORKAROUNDS"]

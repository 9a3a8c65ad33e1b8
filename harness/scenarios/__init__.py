"""The scenario catalogue: one feature probe each, written as pytest tests in this folder.

A scenario's name is what matrices and `--scenario` use; its feature is the row label of the
report's feature table (the seed FAQ's wording where it has the row).
"""

SCENARIOS: dict[str, str] = {
    "outbound-call": "Make outbound call",
    "inbound-call": "Receive incoming call",
    "mute": "Mute and unmute",
    "dtmf": "Support for DTMF",
    "quality-warnings": "Call-quality metrics tracking",
    "devices": "Microphone and speaker toggling",
    "background": "Move browser to background during ongoing call",
    "incoming-background": "Receive incoming call when browser is in background",
    "interruption": "Incoming PSTN call during ongoing SDK call",
    "echo": "Echo cancellation and noise reduction",
    "reconnect": "Reconnect after a network drop",
    "bitrate-cap": "Bitrate cap (maxAverageBitrate)",
    "dscp": "DSCP marking",
    "unload-hangup": "Hang up on page reload",
    "headers": "Custom X-PH- headers",
    "feedback": "Call quality feedback",
    "webrtc-support": "WebRTC support detection (onWebrtcNotSupported)",
    "codec": "Codec negotiation (Opus, PCMU)",
    "page-load": "Page load and network usage",
}

"""Just enough SDP reading for the far end's ground truth: which audio codec a call uses,
with its payload type and fmtp, and which payload type carries RFC 4733 telephone events."""

from __future__ import annotations

import re

NON_MEDIA = {"telephone-event", "cn", "red", "rtx"}


def audio_section(sdp: str) -> list[str]:
    """The lines of the first m=audio section (empty when there is none)."""
    lines = [ln.strip() for ln in sdp.replace("\r\n", "\n").split("\n") if ln.strip()]
    out: list[str] = []
    inside = False
    for ln in lines:
        if ln.startswith("m="):
            if inside:
                break
            inside = ln.startswith("m=audio")
        if inside:
            out.append(ln)
    return out


def audio_codecs(sdp: str) -> list[dict]:
    """The m=audio payload types in the order listed: {pt, name, clock_rate, channels, fmtp}."""
    section = audio_section(sdp)
    if not section:
        return []
    pts = [int(p) for p in section[0].split()[3:] if p.isdigit()]
    rtpmap: dict[int, tuple[str, int, int]] = {}
    fmtp: dict[int, str] = {}
    for ln in section[1:]:
        m = re.match(r"a=rtpmap:(\d+) ([^/\s]+)/(\d+)(?:/(\d+))?", ln)
        if m:
            rtpmap[int(m[1])] = (m[2], int(m[3]), int(m[4] or 1))
        m = re.match(r"a=fmtp:(\d+) (.*)", ln)
        if m:
            fmtp[int(m[1])] = m[2].strip()
    out = []
    for pt in pts:
        name, clock, channels = rtpmap.get(pt, (_static_name(pt), 8000, 1))
        out.append({"pt": pt, "name": name, "clock_rate": clock, "channels": channels, "fmtp": fmtp.get(pt, "")})
    return out


def _static_name(pt: int) -> str:
    return {0: "PCMU", 8: "PCMA", 9: "G722", 13: "CN"}.get(pt, f"pt{pt}")


def fmtp_params(fmtp: str) -> dict[str, str]:
    out = {}
    for part in fmtp.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip()
        elif part.strip():
            out[part.strip().lower()] = ""
    return out


def negotiated(answer_sdp: str) -> dict:
    """What an answer settles: the first media codec (the one both sides send) and the
    telephone-event payload types. Keys: codec {mime, name, clock_rate, pt, fmtp, params}, dtmf [..]."""
    codecs = audio_codecs(answer_sdp)
    media = [c for c in codecs if c["name"].lower() not in NON_MEDIA]
    dtmf = [{"pt": c["pt"], "clock_rate": c["clock_rate"]} for c in codecs if c["name"].lower() == "telephone-event"]
    first = media[0] if media else None
    codec = None
    if first:
        codec = {"mime": f"audio/{first['name']}", "name": first["name"], "clock_rate": first["clock_rate"],
                 "pt": first["pt"], "fmtp": first["fmtp"], "params": fmtp_params(first["fmtp"])}
    return {"codec": codec, "dtmf": dtmf}


def opus_param(sdp: str, key: str) -> str | None:
    """An Opus fmtp parameter as listed in this SDP (e.g. maxaveragebitrate), or None."""
    for c in audio_codecs(sdp):
        if c["name"].lower() == "opus":
            return fmtp_params(c["fmtp"]).get(key.lower())
    return None


def max_average_bitrate(sdp: str) -> int | None:
    value = opus_param(sdp, "maxaveragebitrate")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def restrict_audio(sdp: str, keep: list[str] | None = None) -> str:
    """Rewrite the m=audio section of an offer: keep only the media codecs named in `keep` (in that
    order; None keeps all, in their order) and only the telephone-event whose clock matches the
    first media codec (or, when none matches, the first one offered: Firefox offers only an 8 kHz
    event next to Opus, and it is the only way it can send RFC 4733). Chromium given a telephone-event
    at another clock than its send codec stretches every RFC 4733 digit (PCMU with a 48 kHz event:
    2.75 times as long)."""
    codecs = audio_codecs(sdp)
    media = [c for c in codecs if c["name"].lower() not in NON_MEDIA]
    if keep is not None:
        wanted = [k.lower() for k in keep]
        media = sorted((c for c in media if c["name"].lower() in wanted), key=lambda c: wanted.index(c["name"].lower()))
    if not media:
        return sdp
    clock = media[0]["clock_rate"]
    offered = [c for c in codecs if c["name"].lower() == "telephone-event"]
    events = [c for c in offered if c["clock_rate"] == clock] or offered
    kept = [c["pt"] for c in media] + [c["pt"] for c in events[:1]]
    kept += [c["pt"] for c in codecs if c["name"].lower() == "cn" and c["clock_rate"] == clock and keep is None]
    dropped = {c["pt"] for c in codecs} - set(kept)
    out, inside = [], False
    eol = "\r\n" if "\r\n" in sdp else "\n"
    for ln in sdp.replace("\r\n", "\n").split("\n"):
        if ln.startswith("m="):
            inside = ln.startswith("m=audio")
            if inside:
                head = ln.split()[:3]
                ln = " ".join(head + [str(pt) for pt in kept])
        elif inside:
            m = re.match(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)", ln)
            if m and int(m[1]) in dropped:
                continue
        out.append(ln)
    return eol.join(out)

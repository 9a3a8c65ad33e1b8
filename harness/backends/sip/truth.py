"""Ground truth from evidence files: Kamailio's sipdump text trace, and baresip's recordings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.audio import analysis

SEP = "\n===================="
BODY = "\n~~~~~~~~~~~~~~~~~~~~\n"
END = "||||||||||||||||||||"


@dataclass
class SipMessage:
    tag: str  # "rcv" (Kamailio received it) or "snd" (Kamailio sent it)
    time: float
    proto: str
    src: tuple[str, int]
    dst: tuple[str, int]
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    @property
    def first_line(self) -> str:
        return self.text.split("\r\n", 1)[0].split("\n", 1)[0]

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id", "")

    @property
    def method(self) -> str:
        """The request's method, or for a reply its CSeq method."""
        if self.first_line.startswith("SIP/2.0"):
            return self.headers.get("cseq", " ").split()[-1]
        return self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        m = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(m.group(1)) if m else None

    def render(self) -> str:
        """The message as evidence: who sent it to whom over what, when, then its text as it was."""
        return f"{self.tag} {self.time:.6f} {self.proto} {self.src[0]}:{self.src[1]} -> {self.dst[0]}:{self.dst[1]}\n{self.text}"


def _parse_one(chunk: str) -> SipMessage | None:
    if BODY not in chunk:
        return None
    meta, text = chunk.split(BODY, 1)
    text = text.rsplit(END, 1)[0].rstrip("\n") if END in text else None
    if text is None:
        return None  # still being written
    info = dict(re.findall(r"^(\w+): (.*)$", meta, re.M))
    try:
        msg = SipMessage(info["tag"], float(info["time"]), info.get("proto", ""),
                         (info.get("srcip", ""), int(info.get("srcport", 0))),
                         (info.get("dstip", ""), int(info.get("dstport", 0))), text)
    except (KeyError, ValueError):
        return None
    head, _, msg.body = text.replace("\r\n", "\n").partition("\n\n")
    for line in head.split("\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            key = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "c": "content-type",
                   "l": "content-length"}.get(name.strip().lower(), name.strip().lower())
            msg.headers.setdefault(key, value.strip())
    if "\r\n\r\n" in text:
        msg.body = text.split("\r\n\r\n", 1)[1]
    return msg


class SipTrace:
    """Reads (incrementally) every rtcm-sipdump-*.data file of a run."""

    def __init__(self, rundir: Path):
        self.rundir = rundir
        self._offsets: dict[Path, int] = {}
        self.messages: list[SipMessage] = []

    def refresh(self) -> list[SipMessage]:
        for path in sorted(self.rundir.glob("rtcm-sipdump-*.data")):
            start = self._offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read().decode("utf-8", "replace")
            last = data.rfind(END)
            if last < 0:
                continue
            done = data[: last + len(END)]
            self._offsets[path] = start + len(done.encode("utf-8"))
            for chunk in done.split(SEP):
                msg = _parse_one(chunk)
                if msg:
                    self.messages.append(msg)
        self.messages.sort(key=lambda m: m.time)
        return self.messages

    def of_call(self, call_id: str) -> list[SipMessage]:
        return [m for m in self.refresh() if m.call_id == call_id]


def read_growing_wav(path: Path):
    """sndfile completes the WAV header only at call end; analysis.read_wav takes a size of 0 or
    past the end as 'until end of file', and we make sure that is what it sees."""
    data = Path(path).read_bytes()
    if len(data) < 44:
        return None, 0
    try:
        return analysis.read_wav(path)
    except ValueError:
        return None, 0


def frequency(path: Path, window_s: float = 0.25, silence_dbfs: float = -50.0) -> list[dict]:
    x, rate = read_growing_wav(path)
    if x is None:
        return []
    n = int(round(window_s * rate))
    out = []
    for t, hz in analysis.frequency_track(x, rate, window_s, silence_dbfs):
        i = int(t * rate)
        out.append({"t": round(t, 3), "hz": None if hz is None else round(hz, 1),
                    "dbfs": round(analysis.dbfs(x[i:i + n]), 1)})
    return out


def timeline(path: Path, frame_s: float = 0.02, silence_dbfs: float = -50.0) -> list[dict]:
    x, rate = read_growing_wav(path)
    return [] if x is None else analysis.energy_segments(x, rate, frame_s, silence_dbfs)


def dtmf_infos(messages: list[SipMessage]) -> list[tuple[float, str]]:
    """Digits in SIP INFO application/dtmf-relay (Signal=) requests."""
    out = []
    for m in messages:
        if m.method == "INFO" and m.status is None and "dtmf" in m.headers.get("content-type", ""):
            sig = re.search(r"Signal\s*=\s*(\S+)", m.body)
            if sig:
                out.append((m.time, sig.group(1)))
    return out

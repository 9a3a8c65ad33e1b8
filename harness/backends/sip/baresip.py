"""baresip driven over ctrl_tcp: the far end UA (auto-answer, plays a tone, records what it hears)
and, in tests, a caller in the client namespace."""

from __future__ import annotations

import itertools
import re
import json
import socket
import subprocess
import threading
import time
import wave
from pathlib import Path

import numpy as np

from harness.backends.sip.procs import Proc, SipBackendError, wait_for
from impairments.nsutil import off_loop

HERE = Path(__file__).parent
READY_TIMEOUT_S = 10


def version() -> str:
    try:
        out = subprocess.run(["baresip", "-h"], capture_output=True, text=True, timeout=5)
        return (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def tone_wav(path: Path, hz: float, seconds: float = 300.0, rate: int = 48000, amplitude: float = 0.5) -> Path:
    """A 48 kHz stereo 16-bit sine: what baresip's aufile needs for Opus. baresip hangs up when its
    source file ends ("audio error (end of file)"), so the file bounds a far-end call: 5 minutes,
    past the longest row (Plivo's quality row, about 2 minutes on its 5 s cycle). One second is made
    and repeated, seamless for a whole number of Hz."""
    t = np.arange(rate) / rate
    second = np.repeat((amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2"), 2).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        for _ in range(int(seconds)):
            w.writeframes(second)
    return path


class Ctrl:
    """ctrl_tcp: netstring-framed JSON. Responses match by token; events are kept in order."""

    def __init__(self, netns: str, port: int):
        self.netns, self.port = netns, port
        self.sock: socket.socket | None = None
        self.events: list[dict] = []
        self.listeners: list = []
        self._responses: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._tokens = itertools.count(1)
        self._reader: threading.Thread | None = None

    def connect(self) -> bool:
        sock = off_loop(lambda: socket.socket(), self.netns)
        sock.settimeout(0.3)
        try:
            sock.connect(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            return False
        sock.settimeout(None)
        self.sock = sock
        self._reader = threading.Thread(target=self._read, name=f"baresip-ctrl-{self.port}", daemon=True)
        self._reader.start()
        return True

    def _read(self) -> None:
        buf = b""
        while self.sock:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b":" in buf:
                head, rest = buf.split(b":", 1)
                if not head.isdigit():  # resync on garbage
                    buf = rest
                    continue
                n = int(head)
                if len(rest) < n + 1:
                    break
                body, buf = rest[:n], rest[n + 1:]
                try:
                    msg = json.loads(body)
                except ValueError:
                    continue
                self._dispatch(msg)
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, msg: dict) -> None:
        msg["at"] = time.time()
        with self._cond:
            if msg.get("response"):
                self._responses[str(msg.get("token"))] = msg
            elif msg.get("event"):
                self.events.append(msg)
                for fn in list(self.listeners):
                    fn(msg)
            self._cond.notify_all()

    def command(self, command: str, params: str = "", timeout_s: float = 5.0) -> dict:
        if not self.sock:
            raise SipBackendError("baresip ctrl_tcp not connected")
        token = str(next(self._tokens))
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SipBackendError(f"baresip: no answer to {command!r} within {timeout_s} s")
                self._cond.wait(left)
            return self._responses.pop(token)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader:
            self._reader.join(timeout=2)


class Baresip:
    """One baresip UA with one account, in a namespace."""

    def __init__(self, exec_prefix: list[str], netns: str, confdir: Path, *, ip: str, sip_port: int, proxy: str,
                 user: str, domain: str, password: str, tone_hz: float, ctrl_port: int = 4444,
                 answermode: str = "auto", dtmfmode: str = "rtpevent", rtp_ports: tuple[int, int] = (32000, 32199),
                 name: str = "baresip"):
        self.netns, self.confdir, self.user, self.name = netns, confdir, user, name
        self.ip, self.sip_port = ip, sip_port
        self.rec_dir = confdir / "heard"
        self.wav = confdir / f"tone-{int(tone_hz)}hz.wav"
        self.tone_hz = tone_hz
        self.log_path = confdir.parent / f"{name}.log"
        # Both relative to baresip's cwd (the conf dir): it cuts config values near 100 characters, and
        # a run under a long output path lost its tone that way (aufile opened "tone-1000hz.").
        self.fields = dict(ip=ip, sip_port=sip_port, wav=self.wav.name, rec_dir="heard/", ctrl_port=ctrl_port,
                           rtp_min=rtp_ports[0], rtp_max=rtp_ports[1], user=user, domain=domain,
                           password=password, proxy=proxy, answermode=answermode, dtmfmode=dtmfmode)
        self.ctrl = Ctrl(netns, ctrl_port)
        self.proc = Proc(name, exec_prefix + ["baresip", "-f", str(confdir)], self.log_path, cwd=confdir)

    def start(self, wait_registered: bool = True) -> "Baresip":
        self.confdir.mkdir(parents=True, exist_ok=True)
        self.rec_dir.mkdir(exist_ok=True)
        tone_wav(self.wav, self.tone_hz)
        for src, dst in (("baresip.config", "config"), ("baresip.accounts", "accounts")):
            (self.confdir / dst).write_text((HERE / src).read_text().format(**self.fields))
        self.proc.start()
        if not wait_for(self.ctrl.connect, READY_TIMEOUT_S, self.proc, step_s=0.05):
            raise SipBackendError(f"{self.name}: ctrl_tcp not listening within {READY_TIMEOUT_S} s; "
                                  f"log: {self.log_path}")
        if wait_registered and not wait_for(self.registered, READY_TIMEOUT_S, self.proc, step_s=0.05):
            raise SipBackendError(f"{self.name}: {self.user} not registered within {READY_TIMEOUT_S} s; "
                                  f"log: {self.log_path}")
        return self

    def registered(self) -> bool:
        """REGISTER answered 200 (the event may precede our ctrl connection: the log has it too)."""
        if any(e.get("type") == "REGISTER_OK" for e in self.ctrl.events):
            return True
        return re.search(rf"^{re.escape(self.user)}@\S+: \{{[^}}]*\}} 200 OK", self.log(), re.M) is not None

    def command(self, command: str, params: str = "", timeout_s: float = 5.0) -> dict:
        return self.ctrl.command(command, params, timeout_s)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def recordings(self) -> list[Path]:
        """What it heard, oldest first (sndfile names them dump-<local time>-dec.wav)."""
        return sorted(self.rec_dir.glob("dump-*-dec.wav"))


    def stop(self) -> None:
        if self.ctrl.sock and self.proc.alive():
            try:
                self.ctrl.command("quit", timeout_s=1)
            except SipBackendError:
                pass
            wait_for(lambda: not self.proc.alive(), 1.0)
        self.ctrl.close()
        self.proc.stop()


def recording_started(path: Path) -> float:
    m = re.search(r"dump-(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)", path.name)
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%d-%H-%M-%S")) if m else path.stat().st_mtime

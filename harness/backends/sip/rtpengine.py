"""rtpengine in userspace (no kernel module, no config file): bridges WebRTC (ICE, DTLS-SRTP,
rtcp-mux) to plain RTP for the far end. Kamailio talks to it over the ng protocol on loopback."""

from __future__ import annotations

import secrets
import socket
import subprocess
from pathlib import Path

from harness.backends.sip.procs import Proc, SipBackendError, wait_for
from impairments.nsutil import off_loop

NG_PORT = 2223
PORT_MIN, PORT_MAX = 30000, 30199  # the far end's own RTP ports are elsewhere (32000-)
READY_TIMEOUT_S = 10


def version() -> str:
    try:
        out = subprocess.run(["rtpengine", "--version"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


class Rtpengine:
    def __init__(self, exec_prefix: list[str], netns: str, ip: str, rundir: Path):
        self.netns, self.ip, self.rundir = netns, ip, rundir
        self.log_path = rundir / "rtpengine.log"
        cmd = exec_prefix + [
            "rtpengine", "--config-file=none", "--foreground", "--log-stderr", "--table=-1",
            f"--interface={ip}", f"--listen-ng=127.0.0.1:{NG_PORT}",
            f"--port-min={PORT_MIN}", f"--port-max={PORT_MAX}", "--delete-delay=0",
            # the pid file puts the rtcm-sip-* run dir on the cmdline, for sweep_leftovers()
            f"--pidfile={rundir / 'rtpengine.pid'}",
        ]
        self.proc = Proc("rtpengine", cmd, self.log_path)

    def start(self) -> "Rtpengine":
        self.proc.start()
        if not wait_for(self.ping, READY_TIMEOUT_S, self.proc, step_s=0.05):
            raise SipBackendError(f"rtpengine did not answer an ng ping within {READY_TIMEOUT_S} s; "
                                  f"log: {self.log_path}")
        return self

    def ng(self, bencoded: bytes, timeout_s: float = 0.5) -> bytes | None:
        sock = off_loop(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), self.netns)
        try:
            sock.settimeout(timeout_s)
            cookie = secrets.token_hex(4).encode()
            sock.sendto(cookie + b" " + bencoded, ("127.0.0.1", NG_PORT))
            data = sock.recv(65535)
            return data.split(b" ", 1)[1] if data.startswith(cookie + b" ") else None
        except OSError:
            return None
        finally:
            sock.close()

    def ping(self) -> bool:
        return self.ng(b"d7:command4:pinge") == b"d6:result4:ponge"

    def stop(self) -> None:
        self.proc.stop()

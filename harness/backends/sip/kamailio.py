"""Kamailio: writes the per-run defines next to the kamailio.cfg template, starts it, asks it over
kamcmd (registrations, originate headers)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

from harness.backends.sip.procs import Proc, SipBackendError, wait_for
from impairments.nsutil import off_loop

TEMPLATE = Path(__file__).with_name("kamailio.cfg")
UDP_PORT, WS_PORT = 5060, 8088  # 8080 is the test page server's
READY_TIMEOUT_S = 10


def version() -> str:
    try:
        out = subprocess.run(["kamailio", "-v"], capture_output=True, text=True, timeout=5).stdout
        return out.splitlines()[0].replace("version: ", "").strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _substdef(name: str, value: str) -> str:
    if "!" in value or "\n" in value:
        raise ValueError(f"{name}: unusable value {value!r}")
    return f'#!substdef "!{name}!{value}!g"\n'


class Kamailio:
    def __init__(self, exec_prefix: list[str], netns: str, ip: str, rundir: Path, domain: str, password: str,
                 farend_port: int, plivo: bool, workarounds: set[str]):
        self.exec_prefix, self.netns, self.ip, self.rundir = exec_prefix, netns, ip, rundir
        self.cfg = rundir / "kamailio.cfg"
        self.log_path = rundir / "kamailio.log"
        # A unix socket path may be 104 bytes at most; the run dir can be deeper than that.
        self.ctl = Path("/run") / f"{rundir.name}.ctl"
        defs = "".join([
            _substdef("RTCM_IP", ip), _substdef("RTCM_DOMAIN", domain), _substdef("RTCM_PASSWORD", password),
            _substdef("RTCM_RUNDIR", str(rundir)), _substdef("RTCM_CTL", str(self.ctl)),
            _substdef("RTCM_UDP_PORT", str(UDP_PORT)), _substdef("RTCM_WS_PORT", str(WS_PORT)),
            _substdef("RTCM_FAREND_PORT", str(farend_port)),
            _substdef("RTCM_OFFER_TO_WS",
                      "codec-strip-telephone-event" if "strip-telephone-event" in workarounds else ""),
        ])
        if domain != ip:
            defs += "#!define WITH_ALIAS\n"
        if plivo:
            defs += "#!define WITH_PLIVO\n"
        if "collapse-crcrlf" in workarounds:
            defs += "#!define WITH_COLLAPSE_CRCRLF\n"
        self.defs = defs
        # -DD: stay in the foreground (children still fork); -E: log to stderr, i.e. our log file
        self.proc = Proc("kamailio", exec_prefix + ["kamailio", "-DD", "-E", "-f", str(self.cfg),
                                                    "-P", str(rundir / "kamailio.pid"), "-m", "64", "-M", "8"],
                         self.log_path, cwd=rundir)

    def start(self) -> "Kamailio":
        shutil.copyfile(TEMPLATE, self.cfg)
        (self.rundir / "rtcm-defs.cfg").write_text(self.defs)
        check = subprocess.run(["kamailio", "-c", "-f", str(self.cfg)], capture_output=True, text=True,
                               cwd=self.rundir, timeout=20)
        if check.returncode:
            self.log_path.write_text(check.stdout + check.stderr)
            raise SipBackendError(f"kamailio.cfg does not parse; log: {self.log_path}")
        self.proc.start()
        if not wait_for(self._bound, READY_TIMEOUT_S, self.proc, step_s=0.02):
            raise SipBackendError(f"kamailio not bound to {self.ip}:{UDP_PORT}/{WS_PORT} within "
                                  f"{READY_TIMEOUT_S} s; log: {self.log_path}")
        return self

    def _bound(self) -> bool:
        def probe():
            s = socket.socket()
            s.settimeout(0.2)
            try:
                s.connect((self.ip, WS_PORT))
                return True
            except OSError:
                return False
            finally:
                s.close()
        return self.ctl.exists() and off_loop(probe, self.netns)

    def rpc(self, *args: str) -> str:
        out = subprocess.run(self.exec_prefix + ["kamcmd", "-s", f"unix:{self.ctl}", *args],
                             capture_output=True, text=True, timeout=10)
        if out.returncode:
            raise SipBackendError(f"kamcmd {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    def registrations(self) -> dict[str, list[dict]]:
        """AOR -> contacts [{contact, expires, received, user_agent}] from `ul.dump`."""
        out: dict[str, list[dict]] = {}
        aor = None
        contact: dict | None = None
        for line in self.rpc("ul.dump").splitlines():
            m = re.match(r"\s*([\w-]+):\s*(.*)$", line)
            if not m:
                continue
            key, value = m.group(1), m.group(2).strip()
            if key == "AoR":
                aor = value
                out.setdefault(aor, [])
            elif key == "Address" and aor:
                contact = {"contact": value}
                out[aor].append(contact)
            elif contact is not None and key in ("Expires", "Received", "User-Agent", "Socket"):
                contact[key.lower().replace("-", "_")] = value
        return {k: v for k, v in out.items() if v}

    def set_originate_headers(self, user: str, headers: dict[str, str]) -> None:
        block = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # "s:" keeps kamcmd from reading the value as a typed (int/"x:y") argument
        self.rpc("htable.sets", "orig", user, "s:" + block)

    def stop(self) -> None:
        self.proc.stop()
        self.ctl.unlink(missing_ok=True)

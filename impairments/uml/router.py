"""The lab router as a User-mode Linux guest: real netem on a host kernel that has none.

UML boots with the host filesystem as a read-only root, attaches to two taps, and runs
`impairments.uml.agent` with the project's own Python, so pyroute2 configures netem inside
the guest exactly as it does on a host kernel.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from impairments.profile import Link
from impairments.uml import fpguard
from impairments.uml.agent import MARKER

UML_BINARY = "linux.uml"
# The router stands in for the network, which never shares a CPU with the browser under test; on a
# busy 2-core host an unprioritised guest held probes 4-6 ms and a schedule step 150 ms in CI runs.
ROUTER_NICE = -10
MODULES = (
    "kernel/net/sched/sch_netem.ko",
    "kernel/net/sched/sch_tbf.ko",
    "kernel/net/sched/sch_htb.ko",
)
BOOT_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 15.0


class RouterError(RuntimeError):
    pass


def uml_binary() -> str | None:
    return shutil.which(UML_BINARY)


def uml_modules_dir() -> Path | None:
    root = Path("/usr/lib/uml/modules")
    versions = sorted(root.iterdir()) if root.is_dir() else []
    return versions[-1] if versions else None


def busybox() -> str | None:
    return shutil.which("busybox")


def _init_script(project_root: Path, modules: Path, bb: str) -> str:
    insmods = "\n".join(f"{bb} insmod {modules / m} 2>/dev/null" for m in MODULES)
    return f"""#!{bb} sh
{bb} mount -t proc proc /proc
{bb} mount -t sysfs sys /sys
{bb} mount -t devtmpfs dev /dev 2>/dev/null
{insmods}
cd {project_root}
export PYTHONDONTWRITEBYTECODE=1 PYTHONPATH={project_root} PATH=/usr/sbin:/usr/bin:/sbin:/bin
{sys.executable} -u -m impairments.uml.agent
echo "{MARKER}{{\"exit\": $?}}"
{bb} poweroff -f
"""


class UmlRouter:
    """One UML guest forwarding between a client-side and a server-side tap."""

    kind = "uml"
    # Inside the guest the taps appear as these interfaces.
    client_if = "vec0"
    server_if = "vec1"

    def __init__(self, netns: str, run_dir: Path, umid: str, client_tap: str, server_tap: str,
                 console_log: Path | None = None):
        self.netns = netns
        self.run_dir = run_dir
        self.umid = umid
        self.client_tap = client_tap
        self.server_tap = server_tap
        self.proc: subprocess.Popen | None = None
        self._replies: queue.Queue = queue.Queue()
        self._next_id = 0
        self._lock = threading.Lock()
        self.boot_s: float | None = None
        self.console_log = console_log or run_dir / "uml-console.log"

    def boot(self) -> None:
        """Start the guest and attach its taps; it sends nothing until `start` gives it addresses."""
        binary, modules, bb = uml_binary(), uml_modules_dir(), busybox()
        if not (binary and modules and bb):
            raise RouterError("User-mode Linux router needs packages user-mode-linux and busybox-static "
                              "(apt-get install user-mode-linux busybox-static, or `make setup`)")
        project_root = Path(__file__).resolve().parents[2]
        init = self.run_dir / "uml-init.sh"
        init.write_text(_init_script(project_root, modules, bb))
        init.chmod(0o755)
        cmd = [
            "nice", "-n", str(ROUTER_NICE), sys.executable, str(Path(__file__).with_name("fpguard.py")),
            "ip", "netns", "exec", self.netns, binary,
            "mem=256M", "rootfstype=hostfs", "rootflags=/", "ro", f"init={init}",
            f"vec0:transport=tap,ifname={self.client_tap}",
            f"vec1:transport=tap,ifname={self.server_tap}",
            "con0=fd:0,fd:1", "con=null", "ssl=null", "quiet",
            f"uml_dir={self.run_dir}", f"umid={self.umid}", f"GLIBC_TUNABLES={fpguard.GUEST_TUNABLES}",
        ]
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        threading.Thread(target=self._read_console, daemon=True, name=f"uml-{self.umid}").start()
        self._wait_for(lambda r: r.get("ready"), BOOT_TIMEOUT_S, "boot")
        self.request("links_up", ifnames=[self.client_if, self.server_if])
        self.boot_s = time.monotonic() - started

    def start(self, addresses: dict[str, str], prefixlen: int) -> None:
        """Address the guest's interfaces and start forwarding (after the taps found their homes)."""
        self.request("configure", addresses=addresses, prefixlen=prefixlen)

    def _read_console(self) -> None:
        assert self.proc and self.proc.stdout
        with open(self.console_log, "a") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                at = line.find(MARKER)
                if at >= 0:
                    try:
                        self._replies.put(json.loads(line[at + len(MARKER):]))
                    except ValueError:
                        pass
        self._replies.put({"eof": True})

    def _wait_for(self, match, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                reply = self._replies.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise RouterError(f"UML router: no answer to {what} within {timeout:.0f} s; "
                                  f"console log: {self.console_log}") from None
            if reply.get("eof"):
                raise RouterError(f"UML router exited during {what}; console log: {self.console_log}")
            if match(reply):
                return reply

    def request(self, op: str, **fields) -> dict:
        with self._lock:
            if not self.proc or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc else None
                raise RouterError(f"UML router is not running (exit status {code}); console log: {self.console_log}")
            self._next_id += 1
            rid = self._next_id
            assert self.proc.stdin
            self.proc.stdin.write(json.dumps({"id": rid, "op": op, **fields}) + "\n")
            self.proc.stdin.flush()
            reply = self._wait_for(lambda r: r.get("id") == rid, REQUEST_TIMEOUT_S, op)
        if not reply.get("ok"):
            raise RouterError(f"UML router failed to {op}: {reply.get('error')}")
        return reply

    def apply(self, ifname: str, link: Link) -> dict:
        return self.request("apply", ifname=ifname, link=link.model_dump(mode="json"))["sent"]

    def apply_many(self, links: dict[str, Link]) -> dict[str, dict]:
        return self.request("apply_many", links={i: l.model_dump(mode="json") for i, l in links.items()})["sent"]

    def macs(self) -> dict[str, str]:
        return self.request("macs", ifnames=[self.client_if, self.server_if])["macs"]

    def neighbours(self, entries: dict[str, list[tuple[str, str]]]) -> None:
        self.request("neighbours", neighbours=entries)

    def read(self, ifname: str) -> dict:
        return self.request("read", ifname=ifname)["qdisc"]

    def stop(self) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            try:
                self.request("poweroff")
            except (RouterError, OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=5)
        self.proc = None

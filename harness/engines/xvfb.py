"""Processes of our own inside a lab namespace: a private X server (WebKitGTK's MiniBrowser has no
headless mode), a thread that lives in the namespace, and stopping a process tree for good.

Why this shape (measured on this machine):
- Xvfb runs inside the lab's client namespace (`ip netns exec`), so the project's sweep, which
  kills every process in an `rtcm-*` namespace, also removes it after a crash.
- Display numbers: X clients dial the abstract socket `@/tmp/.X11-unix/X<n>`, which is private to
  each network namespace, but `/tmp/.X11-unix/X<n>` is one file for everybody, and this Xvfb
  writes no `/tmp/.X<n>-lock`. With `-displayfd` alone, Xvfbs in two labs both take `:0` and
  the second replaces the first one's socket file. So each Xvfb gets a number nobody holds:
  from 100 up, no socket file, and a `/tmp/.X<n>-lock` created with O_EXCL (the classic X lock,
  holding our pid; a dead pid's lock is taken over). `-displayfd` is kept as the ready signal.
- Xvfb writes the number and the newline in separate writes: the pipe must stay open until the
  newline has arrived, or Xvfb dies with "Cannot write display number to fd".
- A WebDriver server inside the namespace listens on the namespace's own loopback: only a thread
  that has entered the namespace can dial it (`NetnsWorker`; sockets keep their thread's namespace).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import psutil
from pyroute2 import netns as pyroute2_netns

T = TypeVar("T")

APT_FIX = "apt-get install xvfb"


class XvfbError(RuntimeError):
    """Xvfb did not come up; the message carries the tail of its log."""


def xvfb_binary() -> str | None:
    return shutil.which("Xvfb")


def netns_prefix(netns: str | None) -> list[str]:
    """`ip netns exec <ns>` also binds /etc/netns/<ns>/resolv.conf, as for the other engines."""
    return ["ip", "netns", "exec", netns] if netns else []


DISPLAYS = range(100, 400)


def _pid_alive(lock: Path) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return psutil.pid_exists(int(lock.read_text().strip()))
    return False


def claim_display(numbers: range = DISPLAYS, skip: set[int] | None = None) -> tuple[int, Path]:
    """A display number no X server (in any namespace) holds, and its lock file, now ours."""
    for n in numbers:
        if n in (skip or set()) or Path(f"/tmp/.X11-unix/X{n}").exists():
            continue
        lock = Path(f"/tmp/.X{n}-lock")
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            except FileExistsError:
                if _pid_alive(lock):
                    break
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()  # a dead owner's lock
                continue
            os.write(fd, f"{os.getpid():>10}\n".encode())
            os.close(fd)
            return n, lock
    raise XvfbError(f"no free X display number in {numbers.start}..{numbers.stop - 1}")


class Xvfb:
    """One X server; `display` (":N") once started. Use as a context manager or start()/stop()."""

    def __init__(self, netns: str | None, log: Path, screen: str = "1280x800x24"):
        self.netns, self.log, self.screen = netns, log, screen
        self.proc: subprocess.Popen | None = None
        self.lock: Path | None = None
        self.display = ""

    def start(self, timeout_s: float = 10.0, attempts: int = 3) -> "Xvfb":
        binary = xvfb_binary()
        if binary is None:
            from harness.engines.base import BrowserMissing

            raise BrowserMissing(f"Xvfb is not installed (WebKitGTK needs an X server); `{APT_FIX}`")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        tried: set[int] = set()
        for attempt in range(attempts):
            n, self.lock = claim_display(skip=tried)
            tried.add(n)
            try:
                self._start(binary, n, timeout_s)
                return self
            except XvfbError:
                self.stop()
                if attempt == attempts - 1:
                    raise
            except BaseException:
                self.stop()
                raise
        return self

    def _start(self, binary: str, n: int, timeout_s: float) -> None:
        read_fd, write_fd = os.pipe()
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [*netns_prefix(self.netns), binary, f":{n}", "-displayfd", str(write_fd), "-screen", "0",
                     self.screen, "-nolisten", "tcp", "-noreset"],
                    pass_fds=[write_fd], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            os.close(write_fd)
            write_fd = -1
            self.display = ":" + self._read_display(read_fd, timeout_s)
        finally:
            if write_fd >= 0:
                os.close(write_fd)
            os.close(read_fd)

    def _read_display(self, fd: int, timeout_s: float) -> str:
        buf = b""
        deadline = time.monotonic() + timeout_s
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise XvfbError(f"Xvfb gave no display number within {timeout_s:g} s: {self._log_tail()}")
            chunk = os.read(fd, 64)
            if not chunk:
                raise XvfbError(f"Xvfb exited before it was ready: {self._log_tail()}")
            buf += chunk
        return buf.decode().strip()

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-4:])
        return "(no log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate and wait: nothing of ours is left in the namespace afterwards; the lock goes too."""
        proc, self.proc = self.proc, None
        lock, self.lock = self.lock, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if lock is not None:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def __enter__(self) -> "Xvfb":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class NetnsWorker:
    """One thread inside a network namespace; every call on it makes its sockets there."""

    def __init__(self, netns: str):
        self.netns = netns
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"webdriver-{netns}",
                                        initializer=pyroute2_netns.setns, initargs=(netns, 0))  # 0: never create
        here = self.call(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        if here != os.stat(f"/run/netns/{netns}").st_ino:
            self.shutdown()
            raise RuntimeError(f"the WebDriver thread did not enter namespace {netns}")

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = 120.0) -> T:
        return self._pool.submit(fn, *args).result(timeout=timeout_s)

    def free_port(self) -> int:
        def pick() -> int:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]
        return self.call(pick)

    def wait_listening(self, port: int, proc: subprocess.Popen, timeout_s: float) -> None:
        def probe() -> bool:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                return True
            return False
        deadline = time.monotonic() + timeout_s
        while not self.call(probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the WebDriver server did not listen on 127.0.0.1:{port} in {self.netns}")
            time.sleep(0.02)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still alive; a zombie counts as gone (it holds nothing, and its parent reaps it)."""
    alive = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


def stop_tree(proc: subprocess.Popen, extra: list[psutil.Process], timeout_s: float = 5.0) -> None:
    """Terminate a process group we started and its descendants (also those seen earlier, which
    may have been reparented); return once all are gone. Measured: ~0.2 s for a WebKit page."""
    procs = list(extra)
    with contextlib.suppress(psutil.Error):
        procs += psutil.Process(proc.pid).children(recursive=True)
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, timeout_s)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for p in _gone(procs):
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and (proc.poll() is None or _gone(procs)):
            time.sleep(0.02)
        if proc.poll() is not None and not _gone(procs):
            return
    proc.wait()

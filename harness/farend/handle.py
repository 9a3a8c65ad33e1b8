"""`FarEnd`: the harness's handle on the far-end process inside the lab's server namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from harness.farend import audio

if TYPE_CHECKING:
    from impairments.lab import Lab

PORT = 8080
READY_TIMEOUT_S = 20


class FarEndError(RuntimeError):
    pass


class FarEnd:
    """Starts the far end in the lab, and asks it what it heard."""

    def __init__(self, lab: "Lab", workdir: Path, adapters: dict[str, Path] | None = None):
        self.lab = lab
        self.workdir = workdir
        self.adapters = adapters or {}
        self.control = workdir / "farend.sock"
        self.evidence = workdir / "heard"
        self.log_path = workdir / "farend.log"
        self.proc: subprocess.Popen | None = None
        self._http: httpx.Client | None = None
        self.prompt = workdir / "prompt.wav"

    @property
    def url(self) -> str:
        return f"http://{self.lab.server_ip}:{PORT}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.lab.server_ip}:{PORT}/ws"

    def start(self) -> "FarEnd":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.evidence.mkdir(exist_ok=True)
        audio.prompt(self.prompt)
        self.control.unlink(missing_ok=True)
        cmd = self.lab.exec_prefix("server") + [
            sys.executable, "-m", "harness.farend.server",
            "--host", self.lab.server_ip, "--port", str(PORT),
            "--control", str(self.control), "--prompt", str(self.prompt),
            "--evidence", str(self.evidence),
        ] + [f"--adapter={name}={path}" for name, path in self.adapters.items()]
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        self._http = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.control)),
                                  base_url="http://farend", timeout=10)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FarEndError(f"far end exited with {self.proc.returncode}; log: {self.log_path}")
            if self.control.exists():
                try:
                    if self._http.get("/health").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        raise FarEndError(f"far end not ready within {READY_TIMEOUT_S} s; log: {self.log_path}")

    def get(self, path: str) -> object:
        assert self._http, "far end not started"
        r = self._http.get(path)
        r.raise_for_status()
        return r.json()

    def call(self, call_id: str) -> dict | None:
        assert self._http, "far end not started"
        r = self._http.get(f"/calls/{call_id}")
        return None if r.status_code == 404 else r.raise_for_status().json()

    def wait_ended(self, call_id: str, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            summary = self.call(call_id) or {}
            if summary.get("ended_at") or time.monotonic() > deadline:
                return summary
            time.sleep(0.1)

    def hangup(self, call_id: str) -> None:
        assert self._http
        self._http.post(f"/calls/{call_id}/hangup").raise_for_status()

    def stop(self) -> None:
        if self._http:
            self._http.close()
            self._http = None
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

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
from harness.farend.auth import DEFAULT_TTL_S, LEGACY_ENV, LEGACY_PASSWORD, SECRET_ENV, Credentials, new_secret

if TYPE_CHECKING:
    from impairments.lab import Lab

PORT = 8080
READY_TIMEOUT_S = 20


class FarEndError(RuntimeError):
    pass


class FarEnd:
    """Starts the far end in the lab, and asks it what it heard."""

    def __init__(self, lab: "Lab", workdir: Path, adapters: dict[str, list[Path]] | None = None,
                 legacy_password: bool = True, opus_bitrate: int | None = None):
        """`legacy_password`: also accept the old fixed `server.PASSWORD` for any user (until the
        harness logs in with `credentials()`). `opus_bitrate`: the far end's own Opus bit/s."""
        self.secret = new_secret()
        self.legacy_password = LEGACY_PASSWORD if legacy_password else ""
        self._credentials = Credentials(self.secret, self.legacy_password)
        self.opus_bitrate = opus_bitrate
        self.lab = lab
        self.workdir = workdir
        self.adapters = adapters or {}
        self.control = workdir / "farend.sock"
        self.evidence = workdir / "heard"
        self.log_path = workdir / "farend.log"
        self.proc: subprocess.Popen | None = None
        self._http: httpx.Client | None = None
        self.prompt = workdir / "prompt.wav"

    callee = "echo"  # who a probe dials for an answered call
    caller = "rtcmatrix"  # who the browser sees calling when the far end originates

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
        ] + [f"--adapter={name}={','.join(map(str, files))}" for name, files in self.adapters.items()]
        if self.opus_bitrate:
            cmd.append(f"--opus-bitrate={int(self.opus_bitrate)}")
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
               SECRET_ENV: self.secret, LEGACY_ENV: self.legacy_password}
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
        """The far end hangs up (and tells the browser with a bye)."""
        assert self._http
        self._http.post(f"/calls/{call_id}/hangup").raise_for_status()

    # --- credentials ------------------------------------------------------------------------
    def credentials(self, username: str = "alice", ttl_s: float = DEFAULT_TTL_S) -> dict:
        """Per-run login for `rtcm.login`: {username, password, token}; either one logs in."""
        return self._credentials.for_user(username, ttl_s)

    def token(self, username: str = "alice", ttl_s: float = DEFAULT_TTL_S) -> str:
        """A signed token; a negative ttl_s gives one that has already expired."""
        return self._credentials.token(username, ttl_s)

    # --- control ---------------------------------------------------------------------------
    def post(self, path: str, body: dict | None = None) -> dict:
        assert self._http, "far end not started"
        r = self._http.post(path, json=body or {})
        if r.status_code >= 400:
            raise FarEndError(f"POST {path}: {r.status_code} {r.text}")
        return r.json()

    def calls(self) -> list[dict]:
        return self.get("/calls")

    def truth(self, call_id: str, frame_s: float = 0.02, window_s: float = 0.25, silence_dbfs: float = -50) -> dict:
        """Summary plus the energy timeline, the frequency track and DTMF (RFC 4733 and in-band)."""
        return self.get(f"/calls/{call_id}/truth?frame_s={frame_s}&window_s={window_s}&silence_dbfs={silence_dbfs}")

    def timeline(self, call_id: str, frame_s: float = 0.02, silence_dbfs: float = -50) -> list[dict]:
        return self.get(f"/calls/{call_id}/timeline?frame_s={frame_s}&silence_dbfs={silence_dbfs}")["segments"]

    def frequency(self, call_id: str, window_s: float = 0.25) -> list[dict]:
        return self.get(f"/calls/{call_id}/frequency?window_s={window_s}")["track"]

    def dtmf(self, call_id: str) -> dict:
        return self.get(f"/calls/{call_id}/dtmf")

    def sdp(self, call_id: str) -> dict:
        return self.get(f"/calls/{call_id}/sdp")

    def recording(self, call_id: str, path: Path) -> Path:
        """What the far end heard so far, as a WAV at `path`."""
        assert self._http, "far end not started"
        r = self._http.get(f"/calls/{call_id}/recording.wav")
        r.raise_for_status()
        Path(path).write_bytes(r.content)
        return Path(path)

    def mute(self, call_id: str, muted: bool = True) -> dict:
        """Silence (or restore) the far end's outgoing audio on a call."""
        return self.post(f"/calls/{call_id}/mute", {"muted": muted})

    def unmute(self, call_id: str) -> dict:
        return self.mute(call_id, False)

    def originate(self, to: str, from_: str = "rtcmatrix", headers: dict | None = None, codec: str | None = None,
                  ring_timeout_s: float = 30.0) -> str:
        """Call the browser user `to` (logged in); returns the call id. Its answer or rejection
        shows in `call(id)["timestamps"]` and `reject_reason`."""
        out = self.post("/originate", {"to": to, "from": from_, "headers": headers or {}, "codec": codec,
                                       "ring_timeout_s": ring_timeout_s})
        return out["call_id"]

    def wait_answered(self, call_id: str, timeout_s: float = 10.0) -> dict:
        """Until the browser answers, rejects, or the call ends; returns the summary."""
        deadline = time.monotonic() + timeout_s
        while True:
            summary = self.call(call_id) or {}
            ts = summary.get("timestamps") or {}
            if "answered" in ts or "rejected" in ts or summary.get("ended_at") or time.monotonic() > deadline:
                return summary
            time.sleep(0.05)

    def registrations(self) -> dict:
        return self.get("/registrations")

    def wait_registered(self, username: str, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if username in self.registrations():
                return True
            time.sleep(0.05)
        return False

    def logins(self) -> list[dict]:
        return self.get("/logins")

    def feedback(self, call_id: str | None = None) -> list[dict]:
        got = self.get("/feedback")
        return [f for f in got if call_id is None or f.get("callId") == call_id]

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

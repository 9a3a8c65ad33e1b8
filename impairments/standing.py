"""A standing lab: kept up after `rtcmatrix lab up` returns, for a person to poke at.

A detached process owns the lab (the UML router's console belongs to its owner) and takes
requests on a Unix socket: set a profile, run the link check, describe, go down. It is an
ordinary lab owner, so if it is killed the next run's sweep removes what it left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path

from impairments import linkcheck, sweep
from impairments.lab import Lab
from impairments.presets import resolve
from impairments.profile import Profile

STANDING = sweep.RUN_ROOT / "standing"
UP_TIMEOUT_S = 60


class StandingError(RuntimeError):
    pass


def _paths(name: str) -> tuple[Path, Path, Path]:
    return STANDING / f"{name}.json", STANDING / f"{name}.sock", STANDING / f"{name}.log"


def state(name: str) -> dict | None:
    """The standing lab's description, or None when no live lab has that name."""
    path, _, _ = _paths(name)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(data["pid"], 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return data


def names() -> list[str]:
    return sorted(p.stem for p in STANDING.glob("*.json") if state(p.stem)) if STANDING.is_dir() else []


def request(name: str, op: str, timeout_s: float = 120, **fields) -> dict:
    _, sock_path, _ = _paths(name)
    if not state(name):
        raise StandingError(f"no standing lab named {name!r}; start one with `rtcmatrix lab up`")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(sock_path))
        s.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        reply = json.loads(s.makefile().readline() or "{}")
    if not reply.get("ok"):
        raise StandingError(reply.get("error", f"{op} failed"))
    return reply


def up(name: str, profile_spec: str, far_end: bool = True, backend: str = "auto") -> dict:
    """Start the owner process and wait until its lab is ready."""
    if state(name):
        raise StandingError(f"a lab named {name!r} is already up; `rtcmatrix lab down --name {name}` first")
    resolve(profile_spec)  # bad input fails here, before anything is built
    STANDING.mkdir(parents=True, exist_ok=True)
    path, _, log_path = _paths(name)
    cmd = [sys.executable, "-m", "impairments.standing", "--name", name, "--profile", profile_spec,
           "--backend", backend] + ([] if far_end else ["--no-far-end"])
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StandingError(f"the lab did not come up:\n{log_path.read_text()[-2000:]}")
        data = state(name)
        if data and data.get("ready"):
            return data
        time.sleep(0.1)
    proc.terminate()
    raise StandingError(f"the lab did not come up within {UP_TIMEOUT_S} s; log: {log_path}")


def down(name: str, timeout_s: float = 30) -> bool:
    data = state(name)
    if not data:
        return False
    with contextlib.suppress(StandingError, OSError):
        request(name, "down", timeout_s=5)
    deadline = time.monotonic() + timeout_s
    namespaces = list((data.get("namespaces") or {}).values())

    def standing() -> bool:  # the state file goes first; the lab is gone when its owner and namespaces are
        return bool(state(name)) or sweep.alive(data["pid"]) or any(Path(f"/run/netns/{n}").exists()
                                                                     for n in namespaces)
    while standing() and time.monotonic() < deadline:
        time.sleep(0.05)
    if standing():
        os.kill(data["pid"], signal.SIGKILL)
        sweep.sweep()
    path, sock, log = _paths(name)
    for leftover in (path, sock, log):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(STANDING / name, ignore_errors=True)
    return True


# --- the owner process ------------------------------------------------------------------------

class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        owner: _Owner = self.server.owner  # type: ignore[attr-defined]
        try:
            req = json.loads(self.rfile.readline())
            reply = {"ok": True, **owner.handle(req)}
        except Exception as err:  # every failure goes back to the person at the terminal
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        self.wfile.write((json.dumps(reply, default=str) + "\n").encode())


class _Owner:
    def __init__(self, lab: Lab, name: str, far_end_url: str | None):
        self.lab, self.name, self.far_end_url = lab, name, far_end_url
        self.stop = False
        self.runner = None

    def describe(self) -> dict:
        applied = self.lab.applied
        return {**self.lab.describe(), "name": self.name, "pid": os.getpid(), "far_end": self.far_end_url,
                "profile": applied.profile.model_dump(mode="json") if applied else None,
                "applied_at": applied.at if applied else None}

    def handle(self, req: dict) -> dict:
        op = req.get("op")
        if op == "describe":
            return self.describe()
        if op == "set":
            self._stop_schedule()
            body = req["profile"]
            if "steps" in body:
                from impairments.schedule import Schedule, ScheduleRunner

                self.runner = ScheduleRunner(self.lab, Schedule.model_validate(body))
                self.runner.start()
                return {"schedule": body.get("name")}
            applied = self.lab.apply(Profile.model_validate(body))
            return {"netem": applied.netem, "took_s": applied.took_s}
        if op == "check":
            running = self.runner.schedule.name if self.runner and not self.runner.done else None
            return {"check": linkcheck.check(self.lab, probes=int(req.get("probes", 1000))).model_dump(mode="json"),
                    "schedule_running": running}
        if op == "down":
            self.stop = True
            return {}
        raise ValueError(f"unknown request {op!r}")

    def _stop_schedule(self) -> None:
        if self.runner:
            self.runner.stop()
            self.runner = None


def serve(name: str, profile_spec: str, far_end: bool, backend: str) -> None:
    path, sock_path, _ = _paths(name)
    profile = resolve(profile_spec)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Lab(backend=backend, log_dir=STANDING / name) as lab:
        fe = None
        if far_end:
            from harness.farend.handle import FarEnd

            fe = FarEnd(lab, STANDING / name / "farend").start()
        owner = _Owner(lab, name, fe.url if fe else None)
        try:
            if hasattr(profile, "steps"):
                owner.handle({"op": "set", "profile": profile.model_dump(mode="json")})
            else:
                lab.apply(profile)
            sock_path.unlink(missing_ok=True)
            with socketserver.UnixStreamServer(str(sock_path), _Handler) as server:
                server.owner = owner  # type: ignore[attr-defined]
                server.timeout = 0.2
                path.write_text(json.dumps({**owner.describe(), "ready": True}))
                while not (owner.stop or stop["now"]):
                    server.handle_request()
        finally:
            owner._stop_schedule()
            path.unlink(missing_ok=True)
            sock_path.unlink(missing_ok=True)
            if fe:
                fe.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description="owner of a standing rtcmatrix lab (started by `rtcmatrix lab up`)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--no-far-end", action="store_true")
    args = ap.parse_args()
    serve(args.name, args.profile, not args.no_far_end, args.backend)


if __name__ == "__main__":
    main()

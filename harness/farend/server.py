"""The far end: serves the test page, answers calls over WebSocket signalling with aiortc,
and reports what it heard on a control API.

The browser reaches it on the lab address; the harness reaches the control API over a Unix
socket, which needs no route into the lab namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from harness.farend.listener import Listener

log = logging.getLogger("rtcmatrix.farend")
WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
PASSWORD = "rtcmatrix"
BYE_GRACE_S = 2.0


@dataclass
class Call:
    call_id: str
    user: str
    to: str
    headers: dict
    invited_at: float
    pc: RTCPeerConnection
    listener: Listener | None = None
    state: str = "new"
    ended_at: float | None = None
    ended_by: str | None = None
    states: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "call_id": self.call_id,
            "user": self.user,
            "to": self.to,
            "headers": self.headers,
            "state": self.state,
            "states": self.states,
            "invited_at": self.invited_at,
            "ended_at": self.ended_at,
            "ended_by": self.ended_by,
            "heard": self.listener.findings() if self.listener else None,
        }


class FarEndServer:
    def __init__(self, prompt: Path, evidence: Path, adapters: dict[str, Path] | None = None):
        self.prompt = prompt
        self.evidence = evidence
        self.calls: dict[str, Call] = {}
        self.logins: list[dict] = []
        self.adapters = adapters or {}

    # --- browser-facing -------------------------------------------------------------
    def browser_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.signalling)
        app.router.add_get("/", lambda r: web.FileResponse(WEB_ROOT / "index.html"))
        app.router.add_get("/adapter.js", self.adapter)
        app.router.add_static("/web/", WEB_ROOT)
        return app

    async def adapter(self, request: web.Request) -> web.FileResponse:
        name = request.query.get("name", "reference")
        path = self.adapters.get(name) or (WEB_ROOT / "adapters" / "reference.js")
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def signalling(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        user = None
        mine: list[str] = []
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    m = json.loads(msg.data)
                except ValueError:
                    await ws.send_json({"type": "error", "reason": "not JSON"})
                    continue
                kind = m.get("type")
                if kind == "login":
                    ok = m.get("password") == PASSWORD and bool(m.get("username"))
                    self.logins.append({"username": m.get("username"), "ok": ok, "at": time.time()})
                    if ok:
                        user = m["username"]
                        await ws.send_json({"type": "login_ok", "username": user})
                    else:
                        await ws.send_json({"type": "login_failed", "reason": "bad credentials"})
                elif kind == "invite":
                    if not user:
                        await ws.send_json({"type": "call_failed", "callId": m.get("callId"), "reason": "not logged in"})
                        continue
                    call_id = str(m.get("callId") or uuid.uuid4())
                    mine.append(call_id)
                    await ws.send_json({"type": "ringing", "callId": call_id})
                    answer = await self.answer(call_id, user, m)
                    await ws.send_json({"type": "answer", "callId": call_id, "sdp": answer})
                elif kind == "bye":
                    await self.end(str(m.get("callId")), by="browser")
                elif kind == "logout":
                    user = None
                    await ws.send_json({"type": "logged_out"})
        finally:
            for call_id in mine:
                await self.end(call_id, by="signalling-closed")
        return ws

    async def answer(self, call_id: str, user: str, invite: dict) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        call = Call(call_id, user, str(invite.get("to", "")), dict(invite.get("headers") or {}), time.time(), pc)
        self.calls[call_id] = call

        @pc.on("connectionstatechange")
        async def on_state():
            call.state = pc.connectionState
            call.states.append([pc.connectionState, time.time()])
            if pc.connectionState == "failed":
                await self.end(call_id, by="ice-failed")
            elif pc.connectionState == "closed" and not call.ended_at:
                # The browser's DTLS close can overtake its signalling bye; give the bye a moment.
                await asyncio.sleep(BYE_GRACE_S)
                await self.end(call_id, by="media-closed")

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                call.listener = Listener(track)

        player = MediaPlayer(str(self.prompt), loop=True)
        pc.addTrack(player.audio)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=invite["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def end(self, call_id: str, by: str) -> None:
        call = self.calls.get(call_id)
        if not call or call.ended_at:
            return
        call.ended_at, call.ended_by = time.time(), by
        if call.listener:
            call.listener.save(self.evidence / f"{call_id}-heard.wav")
        await call.pc.close()

    # --- harness-facing -------------------------------------------------------------
    def control_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", lambda r: web.json_response({"ok": True}))
        app.router.add_get("/calls", lambda r: web.json_response([c.summary() for c in self.calls.values()]))
        app.router.add_get("/calls/{call_id}", self.call_summary)
        app.router.add_post("/calls/{call_id}/hangup", self.hangup)
        app.router.add_get("/logins", lambda r: web.json_response(self.logins))
        return app

    async def call_summary(self, request: web.Request) -> web.Response:
        call = self.calls.get(request.match_info["call_id"])
        if not call:
            raise web.HTTPNotFound(text="no such call")
        summary = call.summary()
        wav = self.evidence / f"{call.call_id}-heard.wav"
        summary["recording"] = str(wav) if wav.exists() else None
        return web.json_response(summary)

    async def hangup(self, request: web.Request) -> web.Response:
        await self.end(request.match_info["call_id"], by="far-end")
        return web.json_response({"ok": True})


async def serve(args: argparse.Namespace) -> None:
    far = FarEndServer(Path(args.prompt), Path(args.evidence),
                 {k: Path(v) for k, v in (a.split("=", 1) for a in args.adapter)})
    runners = []
    for app, site in ((far.browser_app(), lambda r: web.TCPSite(r, args.host, args.port)),
                      (far.control_app(), lambda r: web.UnixSite(r, args.control))):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await site(runner).start()
        runners.append(runner)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print("far end ready", flush=True)
    await stop.wait()
    for call_id in list(far.calls):
        await far.end(call_id, by="far-end-shutdown")
    for runner in runners:
        await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description="rtcmatrix far end (runs inside the lab's server namespace)")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--control", required=True, help="Unix socket for the harness")
    p.add_argument("--prompt", required=True, help="WAV the far end plays into every call")
    p.add_argument("--evidence", required=True, help="folder for recordings of what it heard")
    p.add_argument("--adapter", action="append", default=[], help="NAME=FILE: a user's SDK adapter")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

"""The far end: serves the test page, answers and places calls over WebSocket signalling with
aiortc, and reports what it heard on a control API.

The browser reaches it on the lab address; the harness reaches the control API over a Unix
socket, which needs no route into the lab namespace. Modules: `signalling` (the browser's
protocol), `control` (the harness's API), `calls` (one call's truth), `media`, `listener`,
`dtmf`, `sdp`, `auth`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from harness.farend import sdp
from harness.farend.auth import LEGACY_ENV, LEGACY_PASSWORD, SECRET_ENV, Credentials, new_secret
from harness.farend.calls import Call, CallError
from harness.farend.control import control_app
from harness.farend.listener import Listener
from harness.farend.media import OPUS_BITRATE, GatedTrack, RtcpRttTap, RtpTap, enable_telephone_event, limit_opus
from harness.farend.signalling import Session, beacon, signalling
from harness.sdks import BUILTIN

log = logging.getLogger("rtcmatrix.farend")
WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
PASSWORD = LEGACY_PASSWORD  # accepted for any user until the harness logs in with FarEnd.credentials()
BYE_GRACE_S = 2.0
RING_TIMEOUT_S = 30.0


class FarEndServer:
    def __init__(self, prompt: Path, evidence: Path, adapters: dict[str, list[Path]] | None = None,
                 credentials: Credentials | None = None, opus_bitrate: int = OPUS_BITRATE):
        enable_telephone_event()
        self.prompt = prompt
        self.evidence = evidence
        self.adapters = adapters or {}
        self.credentials = credentials or Credentials.from_env()
        self.opus_bitrate = opus_bitrate
        self.calls: dict[str, Call] = {}
        self.logins: list[dict] = []
        self.users: dict[str, Session] = {}
        self.feedback: list[dict] = []

    # --- browser-facing -------------------------------------------------------------
    def browser_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", lambda r: signalling(self, r))
        app.router.add_post("/beacon", lambda r: beacon(self, r))
        app.router.add_get("/", lambda r: web.FileResponse(WEB_ROOT / "index.html", headers={"Cache-Control": "no-store"}))
        app.router.add_get("/adapter.js", self.adapter)
        app.router.add_static("/web/", WEB_ROOT)
        return app

    async def adapter(self, request: web.Request) -> web.StreamResponse:
        """The SDK's scripts and its adapter, in one response, so the page needs no per-SDK markup."""
        name = request.query.get("name", "reference")
        files = self.adapters.get(name)
        if files is None and name in BUILTIN:
            files = [*BUILTIN[name].scripts, BUILTIN[name].adapter]
        if files is None:
            known = ", ".join(dict.fromkeys([*BUILTIN, *self.adapters]))
            return self._adapter_error(f"no SDK adapter named {name!r}; known: {known}")
        missing = [str(p) for p in files if not Path(p).is_file()]
        if missing:
            return self._adapter_error(f"SDK {name!r} is not built: missing {', '.join(missing)}; run `make setup`")
        body = ";\n".join(f"/* ---- {Path(p).name} ---- */\n{Path(p).read_text()}\n" for p in files)
        return web.Response(text=body, content_type="application/javascript", headers={"Cache-Control": "no-store"})

    @staticmethod
    def _adapter_error(message: str) -> web.Response:
        # Shown by the page's rtcm.errors, which Softphone.open raises with.
        return web.Response(text=f"throw new Error({json.dumps(message)});", content_type="application/javascript",
                            headers={"Cache-Control": "no-store"})

    # --- peers ----------------------------------------------------------------------
    def _peer(self, call: Call) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        call.pc = pc

        @pc.on("connectionstatechange")
        async def on_state():
            call.state = pc.connectionState
            call.states.append([pc.connectionState, time.time()])
            if pc.connectionState == "connected":
                call.mark("connected")
            elif pc.connectionState == "failed":
                await self.end(call.call_id, by="ice-failed")
            elif pc.connectionState == "closed" and not call.ended_at:
                # The browser's DTLS close can overtake its signalling bye; give the bye a moment.
                await asyncio.sleep(BYE_GRACE_S)
                await self.end(call.call_id, by="media-closed")

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio" and call.listener is None:
                call.listener = Listener(track)

        player = MediaPlayer(str(self.prompt), loop=True)
        call.out_track = GatedTrack(player.audio)
        pc.addTrack(call.out_track)
        return pc

    def _negotiated(self, call: Call, answer_sdp: str, browser_sdp: str) -> None:
        """Both descriptions are set: read what was agreed, tap the receive path, cap our Opus."""
        call.negotiated = sdp.negotiated(answer_sdp)
        dtmf_pts = {d["pt"]: d["clock_rate"] for d in call.negotiated["dtmf"]}
        for receiver in call.pc.getReceivers():
            if receiver.track and receiver.track.kind == "audio" and call.tap is None:
                call.tap = RtpTap(receiver, dtmf_pts, call.start)
        for sender in call.pc.getSenders():
            if sender.track and sender.track.kind == "audio" and call.rtcp is None:
                call.rtcp = RtcpRttTap(sender)
        asked = sdp.max_average_bitrate(browser_sdp)
        call.sent_opus_bitrate = limit_opus(call.pc, min(self.opus_bitrate, asked or self.opus_bitrate))

    async def answer(self, call_id: str, user: str, invite: dict, session: Session) -> str:
        """A browser's invite: answer it (the browser's offer decides the codec)."""
        call = Call(call_id, user, str(invite.get("to", "")), dict(invite.get("headers") or {}), time.time(), None,
                    session=session)
        call.mark("invite_received", call.invited_at)
        self.calls[call_id] = call
        pc = self._peer(call)
        call.remote_sdp = invite["sdp"]
        offer = sdp.restrict_audio(invite["sdp"])  # one telephone-event, at the first codec's clock
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        call.local_sdp = pc.localDescription.sdp
        self._negotiated(call, call.local_sdp, call.remote_sdp)
        call.mark("answered")
        return call.local_sdp

    async def originate(self, to: str, caller: str = "rtcmatrix", headers: dict | None = None,
                        codec: str | None = None, ring_timeout_s: float = RING_TIMEOUT_S) -> Call:
        """Call a logged-in browser user: send it an offer; its answer or rejection comes back
        over signalling (`accepted` / `rejected`)."""
        session = self.users.get(to)
        if session is None or session.closed:
            raise CallError(404, f"user {to!r} is not registered")
        call = Call(str(uuid.uuid4()), to, to, dict(headers or {}), time.time(), None, origin="far-end",
                    caller=caller, session=session)
        self.calls[call.call_id] = call
        pc = self._peer(call)
        if codec and not any(c.mimeType.lower() == f"audio/{codec.lower()}"
                             for c in RTCRtpSender.getCapabilities("audio").codecs):
            raise CallError(400, f"codec {codec!r} is not one the far end has")
        offer = await pc.createOffer()
        offer = RTCSessionDescription(sdp=sdp.restrict_audio(offer.sdp, [codec] if codec else None), type="offer")
        await pc.setLocalDescription(offer)
        call.local_sdp = pc.localDescription.sdp
        call.invited_at = time.time()
        call.mark("invite_sent", call.invited_at)
        call.state = "inviting"
        await session.send({"type": "incoming", "callId": call.call_id, "from": caller, "to": to,
                            "headers": call.headers, "sdp": call.local_sdp})
        asyncio.ensure_future(self._ring_timeout(call, ring_timeout_s))
        return call

    async def _ring_timeout(self, call: Call, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if "answered" not in call.timestamps and not call.ended_at:
            if call.session:
                await call.session.send({"type": "cancel", "callId": call.call_id, "reason": "no answer"})
            await self.end(call.call_id, by="far-end", reason="no answer")

    async def accepted(self, call: Call, answer_sdp: str) -> None:
        call.mark("answered")
        call.remote_sdp = answer_sdp
        await call.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        self._negotiated(call, answer_sdp, answer_sdp)

    async def rejected(self, call: Call, reason: str | None) -> None:
        call.mark("rejected")
        call.reject_reason = reason or "rejected"
        call.state = "rejected"
        await self.end(call.call_id, by="browser-rejected", reason=call.reject_reason)

    # --- ending -----------------------------------------------------------------------
    async def end(self, call_id: str, by: str, reason: str | None = None, notify: bool = False) -> None:
        call = self.calls.get(call_id)
        if not call or call.ended_at:
            return
        call.ended_at, call.ended_by, call.end_reason = time.time(), by, reason
        if notify and call.session:
            await call.session.send({"type": "bye", "callId": call_id, "reason": reason or by})
        if call.listener:
            call.recording = str(call.listener.save(self.evidence / f"{call_id}-heard.wav"))
        if call.out_track:
            call.out_track.stop()
        if call.pc:
            await call.pc.close()

    def set_muted(self, call: Call, muted: bool) -> dict:
        if call.out_track is None:
            raise CallError(409, "the call has no outgoing audio")
        call.out_track.set_muted(muted)
        return {"muted": call.out_track.muted, "at": time.time()}


async def serve(args: argparse.Namespace) -> None:
    # The secret comes from the environment (FarEnd sets it), never the command line.
    credentials = Credentials(os.environ.get(SECRET_ENV) or new_secret(), os.environ.get(LEGACY_ENV, PASSWORD))
    far = FarEndServer(Path(args.prompt), Path(args.evidence),
                       {k: [Path(f) for f in v.split(",")] for k, v in (a.split("=", 1) for a in args.adapter)},
                       credentials=credentials, opus_bitrate=args.opus_bitrate)
    runners = []
    for app, site in ((far.browser_app(), lambda r: web.TCPSite(r, args.host, args.port)),
                      (control_app(far), lambda r: web.UnixSite(r, args.control))):
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
    p.add_argument("--adapter", action="append", default=[], help="NAME=FILE[,FILE...]: a user's SDK scripts, then its adapter")
    p.add_argument("--opus-bitrate", type=int, default=OPUS_BITRATE, help="bit/s of the far end's own Opus")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

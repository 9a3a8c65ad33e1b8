"""The harness's control API (served on a Unix socket). JSON in and out.

GET  /health                          {ok}
GET  /calls                           [summary]                 every call, oldest first
GET  /calls/{id}                      summary                   (see calls.Call.summary)
GET  /calls/{id}/truth                summary + timeline + frequency + dtmf {rfc4733, inband}
     ?frame_s=0.02&window_s=0.25&silence_dbfs=-50
GET  /calls/{id}/timeline             {call_start, anchor_epoch, segments: [...]}
GET  /calls/{id}/frequency            {call_start, track: [{media_s, t_s, epoch, hz}]}
GET  /calls/{id}/dtmf                 {rfc4733: [...], inband: [...]}
GET  /calls/{id}/sdp                  {remote, local, negotiated}
GET  /calls/{id}/recording.wav        the audio heard so far (48 kHz mono WAV)
POST /calls/{id}/hangup               {ok}                      sends bye to the browser
POST /calls/{id}/mute   {muted}       {muted, at}               silence the far end's outgoing audio
POST /originate {to, from, headers, codec, ring_timeout_s}  -> {call_id, invite_sent_at}
GET  /registrations                   {user: {session, since, peer}}
GET  /logins                          [{username, ok, reason, with, at, session, reconnect}]
POST /credentials {username, ttl_s}   {username, password, token}
GET  /feedback                        [{callId, rating, issues, note, user, at}]
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from harness.farend.audio import write_wav_bytes
from harness.farend.calls import Call, CallError
from harness.farend.listener import SILENCE_DBFS, WINDOW_S

if TYPE_CHECKING:
    from harness.farend.server import FarEndServer


def control_app(far: "FarEndServer") -> web.Application:
    app = web.Application()

    def find(request: web.Request) -> Call:
        call = far.calls.get(request.match_info["call_id"])
        if not call:
            raise web.HTTPNotFound(text="no such call")
        return call

    def floats(request: web.Request) -> dict:
        q = request.query
        return {"frame_s": float(q.get("frame_s", WINDOW_S)), "window_s": float(q.get("window_s", 0.25)),
                "silence_dbfs": float(q.get("silence_dbfs", SILENCE_DBFS))}

    async def summary(request):
        return web.json_response(find(request).summary())

    async def truth(request):
        call, args = find(request), floats(request)
        out = call.summary()  # in the loop: it reads state the media path is writing
        out.update(await asyncio.to_thread(call.heavy_truth, **args))
        out["dtmf"]["rfc4733"] = call.rfc4733()
        return web.json_response(out)

    async def timeline(request):
        call, a = find(request), floats(request)
        segments = await asyncio.to_thread(
            lambda: call.listener.timeline(call.start, a["frame_s"], a["silence_dbfs"]) if call.listener else [])
        return web.json_response({"call_start": call.start, "segments": segments,
                                  "anchor_epoch": call.listener.anchor if call.listener else None})

    async def frequency(request):
        call, a = find(request), floats(request)
        track = await asyncio.to_thread(
            lambda: call.listener.frequency(call.start, a["window_s"], a["silence_dbfs"]) if call.listener else [])
        return web.json_response({"call_start": call.start, "track": track})

    async def dtmf(request):
        call = find(request)
        inband = await asyncio.to_thread(call.inband)
        return web.json_response({"rfc4733": call.rfc4733(), "inband": inband})

    async def sdp(request):
        call = find(request)
        return web.json_response({"remote": call.remote_sdp, "local": call.local_sdp, "negotiated": call.negotiated})

    async def recording(request):
        call = find(request)
        if not call.listener:
            raise web.HTTPNotFound(text="nothing heard on this call")
        body = await asyncio.to_thread(lambda: write_wav_bytes(call.listener.audio()))
        return web.Response(body=body, content_type="audio/wav")

    async def hangup(request):
        call = find(request)
        await far.end(call.call_id, by="far-end", reason="hangup", notify=True)
        return web.json_response({"ok": True})

    async def body(request) -> dict:
        try:
            data = await request.json() if request.can_read_body else {}
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return data

    async def mute(request):
        call, data = find(request), await body(request)
        try:
            return web.json_response(far.set_muted(call, bool(data.get("muted", True))))
        except CallError as err:
            raise web.HTTPConflict(text=err.reason) from None

    async def originate(request):
        data = await body(request)
        if not data.get("to"):
            raise web.HTTPBadRequest(text="originate needs 'to' (a registered username)")
        try:
            call = await far.originate(str(data["to"]), str(data.get("from") or "rtcmatrix"),
                                       data.get("headers") or {}, data.get("codec"),
                                       float(data.get("ring_timeout_s") or 30.0))
        except CallError as err:
            return web.json_response({"error": err.reason}, status=err.status)
        return web.json_response({"call_id": call.call_id, "invite_sent_at": call.invited_at})

    async def registrations(request):
        return web.json_response({u: {"session": s.id, "since": s.opened_at, "peer": s.peer}
                                  for u, s in far.users.items()})

    async def credentials(request):
        data = await body(request)
        if not data.get("username"):
            raise web.HTTPBadRequest(text="credentials need 'username'")
        return web.json_response(far.credentials.for_user(str(data["username"]), float(data.get("ttl_s", 3600))))

    app.router.add_get("/health", lambda r: web.json_response({"ok": True}))
    app.router.add_get("/calls", lambda r: web.json_response([c.summary() for c in far.calls.values()]))
    app.router.add_get("/calls/{call_id}", summary)
    app.router.add_get("/calls/{call_id}/truth", truth)
    app.router.add_get("/calls/{call_id}/timeline", timeline)
    app.router.add_get("/calls/{call_id}/frequency", frequency)
    app.router.add_get("/calls/{call_id}/dtmf", dtmf)
    app.router.add_get("/calls/{call_id}/sdp", sdp)
    app.router.add_get("/calls/{call_id}/recording.wav", recording)
    app.router.add_post("/calls/{call_id}/hangup", hangup)
    app.router.add_post("/calls/{call_id}/mute", mute)
    app.router.add_post("/originate", originate)
    app.router.add_get("/registrations", registrations)
    app.router.add_get("/logins", lambda r: web.json_response(far.logins))
    app.router.add_post("/credentials", credentials)
    app.router.add_get("/feedback", lambda r: web.json_response(far.feedback))
    return app


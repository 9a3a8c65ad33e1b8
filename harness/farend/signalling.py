"""The browser's signalling protocol: JSON messages over one WebSocket per page.

Browser -> far end:
  login {username, password | token}      -> login_ok {username} | login_failed {reason}
  ping {id}                               -> pong {id, t}       (the SDK's keepalive)
  invite {callId, to, sdp, headers}       -> ringing {callId}, answer {callId, sdp} | call_failed {reason}
  bye {callId, reason}                    ends a call
  ringing {callId} / accept {callId, sdp} / reject {callId, reason}   on a call the far end placed
  feedback {callId, rating, issues, note} -> feedback_ok {callId}
  logout                                  -> logged_out
Far end -> browser: incoming {callId, from, to, headers, sdp}, cancel {callId, reason}, bye {callId, reason}.

A socket that closes, cleanly or not, keeps its calls for SESSION_GRACE_S: if the same user logs
in again (the SDK reconnecting), the calls move to the new socket, and one still ringing is offered again. As in SIP over WebSocket
(RFC 7118), a transport going away is not a hang-up; a bye or a logout is. (Measured: Chromium
closes a frozen page's WebSocket with 1001 when it resumes, and the SDK logs in again 0.3 s later.)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from harness.farend.server import FarEndServer

SESSION_GRACE_S = 15.0
HEARTBEAT_S = 10.0


class Session:
    def __init__(self, ws: web.WebSocketResponse, peer: str | None):
        self.ws = ws
        self.peer = peer
        self.id = uuid.uuid4().hex[:8]
        self.user: str | None = None
        self.opened_at = time.time()
        self.closed = False

    async def send(self, message: dict) -> bool:
        if self.closed or self.ws.closed:
            return False
        try:
            await self.ws.send_json(message)
            return True
        except (ConnectionError, RuntimeError):
            return False


async def signalling(far: "FarEndServer", request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    await ws.prepare(request)
    session = Session(ws, request.remote)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                m = json.loads(msg.data)
            except ValueError:
                await session.send({"type": "error", "reason": "not JSON"})
                continue
            try:
                await _handle(far, session, m)
            except Exception as err:  # one bad message must not take the page's signalling down
                await session.send({"type": "error", "reason": f"{type(err).__name__}: {err}",
                                    "callId": m.get("callId")})
    finally:
        session.closed = True
        await _closed(far, session, ws.close_code)
    return ws


async def _handle(far: "FarEndServer", session: Session, m: dict) -> None:
    kind = m.get("type")
    call = far.calls.get(str(m.get("callId"))) if m.get("callId") else None
    if kind == "login":
        user, reason = far.credentials.check(m.get("username"), m.get("password"), m.get("token"))
        far.logins.append({"username": m.get("username") or user, "ok": user is not None, "reason": reason,
                           "with": "token" if m.get("token") else "password", "at": time.time(),
                           "session": session.id, "reconnect": bool(m.get("reconnect"))})
        if user is None:
            await session.send({"type": "login_failed", "reason": reason})
            return
        session.user = user
        far.users[user] = session
        await session.send({"type": "login_ok", "username": user})
        for c in list(far.calls.values()):  # a reconnecting SDK takes its calls back
            if c.user == user and not c.ended_at and c.session is not session:
                c.session = session
                if c.origin == "far-end" and "answered" not in c.timestamps and "rejected" not in c.timestamps \
                        and c.local_sdp:
                    # Still ringing: offer it again on the new socket, as Kamailio's tsilo forks a pending
                    # INVITE to a newly registered contact (what keeps mobile apps reachable).
                    c.mark("reoffered")
                    await session.send({"type": "incoming", "callId": c.call_id, "from": c.caller, "to": c.user,
                                        "headers": c.headers, "sdp": c.local_sdp})
    elif kind == "ping":
        await session.send({"type": "pong", "id": m.get("id"), "t": time.time()})
    elif kind == "logout":
        await _logout(far, session)
        await session.send({"type": "logged_out"})
    elif not session.user:
        await session.send({"type": "call_failed", "callId": m.get("callId"), "reason": "not logged in"})
    elif kind == "invite":
        call_id = str(m.get("callId") or uuid.uuid4())
        if call_id in far.calls:
            await session.send({"type": "call_failed", "callId": call_id, "reason": "call id already used"})
            return
        await session.send({"type": "ringing", "callId": call_id})
        try:
            answer = await far.answer(call_id, session.user, m, session)
        except Exception as err:  # e.g. an offer with no codec in common
            await far.end(call_id, by="far-end", reason=f"answer failed: {err}")
            await session.send({"type": "call_failed", "callId": call_id, "reason": f"far end cannot answer: {err}"})
            return
        await session.send({"type": "answer", "callId": call_id, "sdp": answer})
    elif kind == "bye" and call:
        await far.end(call.call_id, by="browser", reason=m.get("reason"))
    elif kind == "ringing" and call:
        call.mark("ringing")
    elif kind == "accept" and call:
        await far.accepted(call, m["sdp"])
    elif kind == "reject" and call:
        await far.rejected(call, m.get("reason"))
    elif kind == "feedback":
        entry = {k: m.get(k) for k in ("callId", "rating", "issues", "note")}
        entry.update(user=session.user, at=time.time())
        far.feedback.append(entry)
        if call:
            call.feedback.append(entry)
        await session.send({"type": "feedback_ok", "callId": m.get("callId")})
    else:
        await session.send({"type": "error", "reason": f"unexpected {kind!r}", "callId": m.get("callId")})


async def _logout(far: "FarEndServer", session: Session) -> None:
    user = session.user
    session.user = None
    if user and far.users.get(user) is session:
        del far.users[user]
    for c in list(far.calls.values()):
        if c.session is session and not c.ended_at:
            await far.end(c.call_id, by="browser-logout")


async def _closed(far: "FarEndServer", session: Session, code: int | None) -> None:
    if session.user and far.users.get(session.user) is session:
        del far.users[session.user]
    mine = [c for c in far.calls.values() if c.session is session and not c.ended_at]
    if not mine:
        return

    async def grace():
        await asyncio.sleep(SESSION_GRACE_S)
        for c in mine:
            if c.session is session:  # nobody took it over
                await far.end(c.call_id, by="signalling-closed", reason=f"websocket closed ({code}), "
                              f"nobody logged in again within {SESSION_GRACE_S:g} s")

    asyncio.ensure_future(grace())


async def beacon(far: "FarEndServer", request: web.Request) -> web.Response:
    """`navigator.sendBeacon` from a page being unloaded: {type: "bye", callId, reason}."""
    try:
        m = json.loads(await request.text())
    except ValueError:
        raise web.HTTPBadRequest(text="not JSON") from None
    call = far.calls.get(str(m.get("callId")))
    if m.get("type") == "bye" and call:
        await far.end(call.call_id, by="browser", reason=m.get("reason") or "beacon")
    return web.json_response({"ok": True})

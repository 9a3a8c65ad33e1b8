"""Per-run credentials: a password per user and signed, expiring tokens, all derived from one
secret that the harness (`FarEnd`) and the far end share through the environment.

Token format: `base64url(json{sub, iat, exp}) "." base64url(hmac_sha256(secret, body))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

SECRET_ENV = "RTCM_FAREND_SECRET"
LEGACY_ENV = "RTCM_FAREND_LEGACY_PASSWORD"
DEFAULT_TTL_S = 3600.0
LEGACY_PASSWORD = "rtcmatrix"  # the old fixed password (server.PASSWORD), accepted while the harness moves over


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> str:
    return secrets.token_hex(16)


class Credentials:
    """Mints and checks credentials. `legacy_password`, when set, is accepted for any user
    (the old fixed `PASSWORD`, kept while the harness moves to per-run credentials)."""

    def __init__(self, secret: str, legacy_password: str | None = None):
        if not secret:
            raise ValueError("an empty secret would make every credential guessable")
        self.secret = secret.encode()
        self.legacy_password = legacy_password or None

    @classmethod
    def from_env(cls) -> "Credentials":
        return cls(os.environ.get(SECRET_ENV) or new_secret(), os.environ.get(LEGACY_ENV))

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.sha256).digest()

    def password(self, username: str) -> str:
        return self._mac(b"password:" + username.encode()).hex()[:24]

    def token(self, username: str, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
        now = time.time() if now is None else now
        body = json.dumps({"sub": username, "iat": round(now, 3), "exp": round(now + ttl_s, 3)},
                          separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._mac(body))}"

    def for_user(self, username: str, ttl_s: float = DEFAULT_TTL_S) -> dict:
        return {"username": username, "password": self.password(username), "token": self.token(username, ttl_s)}

    def check(self, username: str | None, password: str | None = None, token: str | None = None,
              now: float | None = None) -> tuple[str | None, str | None]:
        """(username, None) when the login is good, else (None, reason). A token wins over a password;
        a token alone names its user."""
        now = time.time() if now is None else now
        if token:
            try:
                body_b64, mac_b64 = token.split(".")
                body = _unb64(body_b64)
                mac = _unb64(mac_b64)
                claims = json.loads(body)
            except (ValueError, TypeError):
                return None, "malformed token"
            if not hmac.compare_digest(mac, self._mac(body)):
                return None, "invalid token (bad signature)"
            sub = claims.get("sub")
            if username and sub != username:
                return None, f"token is for user {sub!r}, not {username!r}"
            if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
                return None, f"token expired {now - float(claims.get('exp') or 0):.0f} s ago"
            return sub, None
        if not username:
            return None, "no username"
        if not password:
            return None, "no password or token"
        if hmac.compare_digest(password.encode(), self.password(username).encode()):
            return username, None
        if self.legacy_password and hmac.compare_digest(password.encode(), self.legacy_password.encode()):
            return username, None
        return None, "bad password"

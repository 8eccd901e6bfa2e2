"""Console sessions and CSRF tokens: signed, stateless, and bound to the admin key. Pure.

A session cookie is `<issued>.<nonce>.<mac>`: when it was issued, a random id, and an
HMAC-SHA256 of both under a key derived from `GATEWAY_ADMIN_KEY`. It never holds the admin
key; it cannot be forged without it; it expires `SESSION_TTL_S` after sign-in; and a new
admin key derives a new signing key, so every existing session stops verifying at once.
Replicas and workers sharing the admin key accept each other's sessions.

CSRF tokens are synchronizer tokens derived from the session's nonce (one per session, so
they need no server-side store); the sign-in form has its own, tied to a short-lived
pre-session cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_TTL_S = 8 * 3600
LOGIN_TTL_S = 3600
_CLOCK_SKEW_S = 60
_LABEL = b"gateway-console-session-v1"


def signing_key(admin_key: str) -> bytes:
    """A key for the console's MACs that reveals nothing about the admin key."""
    return hmac.new(admin_key.encode(), _LABEL, hashlib.sha256).digest()


def _mac(key: bytes, purpose: str, *parts: str) -> str:
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    issued: int
    nonce: str

    def expires(self, ttl_s: int = SESSION_TTL_S) -> int:
        return self.issued + ttl_s


def issue(key: bytes, now: float) -> tuple[Session, str]:
    """A new session and its cookie value."""
    session = Session(int(now), secrets.token_urlsafe(18))
    issued = str(session.issued)
    return session, f"{issued}.{session.nonce}.{_mac(key, 'session', issued, session.nonce)}"


def _verify(key: bytes, purpose: str, value: str | None, now: float, ttl_s: int) -> Session | None:
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    issued, nonce, mac = parts
    if not hmac.compare_digest(mac, _mac(key, purpose, issued, nonce)):
        return None
    session = Session(int(issued), nonce)
    if not session.issued - _CLOCK_SKEW_S <= now < session.expires(ttl_s):
        return None
    return session


def verify(key: bytes, cookie: str | None, now: float) -> Session | None:
    """The session a cookie proves, or None (missing, forged, expired, other admin key)."""
    return _verify(key, "session", cookie, now, SESSION_TTL_S)


def csrf_token(key: bytes, session: Session) -> str:
    return _mac(key, "csrf", session.nonce)


def csrf_ok(key: bytes, session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(key, session), presented or "")


# -- sign-in: a pre-session cookie and the token its form carries ------------------------


def issue_login(key: bytes, now: float) -> tuple[Session, str]:
    session = Session(int(now), secrets.token_urlsafe(18))
    issued = str(session.issued)
    return session, f"{issued}.{session.nonce}.{_mac(key, 'login', issued, session.nonce)}"


def verify_login(key: bytes, cookie: str | None, now: float) -> Session | None:
    return _verify(key, "login", cookie, now, LOGIN_TTL_S)


def login_token(key: bytes, login: Session) -> str:
    return _mac(key, "login-csrf", login.nonce)


def login_token_ok(key: bytes, login: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(login_token(key, login), presented or "")

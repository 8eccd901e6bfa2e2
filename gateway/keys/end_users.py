"""Who a request from a trusted front end is for: the end user behind one shared key.

Only a key marked `trusted_front_end` is believed; for any other key the headers and the
`user` field below are ignored, so a client cannot pose as someone else nor step out of
its key's own limits. Read in this order:

1. `X-OpenWebUI-User-Jwt`, when `GATEWAY_END_USER_JWT_SECRET` is set: the HS256 token Open
   WebUI signs (`sub`, `email`, `name`, `role`, `exp`) when its
   `FORWARD_USER_INFO_HEADER_JWT_SECRET` holds the same secret. A bad or expired token is a
   401. With the secret set, the unsigned headers of 2. are not believed.
2. `X-OpenWebUI-User-Id` / `-User-Email` / `-User-Name` (URL-quoted) / `-User-Role`, which
   Open WebUI sends with `ENABLE_FORWARD_USER_INFO_HEADERS=true`, plus
   `X-OpenWebUI-Chat-Id` when the request belongs to a chat.
3. OpenAI's `user` field (or its successor `safety_identifier`) in the JSON body, for
   other apps: the proxy has parsed the body already, so this is one dict lookup.

The end user is named by the email when one is given (what an operator knows; Open WebUI
keeps emails unique and lower-case), else by the id. Pure apart from PyJWT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import jwt

from gateway.errors import AuthenticationError, InvalidRequest
from gateway.http.asgi import RawHeaders
from gateway.keys.record import KeyRecord

USER_ID = b"x-openwebui-user-id"
USER_EMAIL = b"x-openwebui-user-email"
USER_NAME = b"x-openwebui-user-name"
USER_ROLE = b"x-openwebui-user-role"
CHAT_ID = b"x-openwebui-chat-id"
USER_JWT = b"x-openwebui-user-jwt"
_HEADERS = frozenset({USER_ID, USER_EMAIL, USER_NAME, USER_ROLE, CHAT_ID, USER_JWT})
_BODY_FIELDS = ("user", "safety_identifier")

# An end user names a limiter bucket, counter rows and usage rows: bounded, like any id
# a client chooses. An email is at most 254 characters.
MAX_END_USER = 256
# Open WebUI's tokens live 300 s; a little slack for clocks that disagree.
_JWT_LEEWAY_S = 30


@dataclass(frozen=True, slots=True)
class EndUser:
    id: str
    name: str | None = None
    role: str | None = None
    chat_id: str | None = None


def end_user_of(
    key: KeyRecord | None,
    headers: RawHeaders,
    body: Mapping[str, object] | None,
    jwt_secret: str | None,
) -> EndUser | None:
    """The end user a trusted front end named, None if none (or the key is not trusted).
    Raises 401 for a bad signed token, 400 for an unusable id."""
    if key is None or not key.trusted_front_end:
        return None
    found: dict[bytes, bytes] = {}
    for header_name, raw in headers:
        if header_name in _HEADERS and header_name not in found:
            found[header_name] = raw
    chat = _text(found.get(CHAT_ID))
    if jwt_secret:
        token = found.get(USER_JWT)
        if token is not None:
            return _from_jwt(token, jwt_secret, chat)
    else:
        who = _text(found.get(USER_EMAIL))
        who = who.lower() if who else _text(found.get(USER_ID))
        if who:
            name = _text(found.get(USER_NAME))
            return EndUser(
                checked_end_user(who, "X-OpenWebUI-User-Id"),
                unquote(name) if name else None,
                _text(found.get(USER_ROLE)),
                chat,
            )
    if body is not None:
        for field in _BODY_FIELDS:
            given = body.get(field)
            if isinstance(given, str) and given.strip():
                return EndUser(checked_end_user(given.strip(), field), chat_id=chat)
            if given is not None and not isinstance(given, str):
                raise InvalidRequest(f"`{field}` must be a string.", param=field)
    return None


def _from_jwt(token: bytes, secret: str, chat: str | None) -> EndUser:
    try:
        claims = jwt.decode(
            token.decode("latin-1"),
            secret,
            algorithms=["HS256"],
            options={"require": ["exp", "sub"]},
            leeway=_JWT_LEEWAY_S,
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(
            f"The end-user token in X-OpenWebUI-User-Jwt is not valid ({_why(exc)}). "
            "Open WebUI's FORWARD_USER_INFO_HEADER_JWT_SECRET must equal the gateway's "
            "GATEWAY_END_USER_JWT_SECRET.",
            code="invalid_end_user_token",
        ) from None
    email, sub = claims.get("email"), claims.get("sub")
    who = email.strip().lower() if isinstance(email, str) and email.strip() else str(sub)
    name, role = claims.get("name"), claims.get("role")
    return EndUser(
        checked_end_user(who, "X-OpenWebUI-User-Jwt"),
        name if isinstance(name, str) else None,
        role if isinstance(role, str) else None,
        chat,
    )


def _why(exc: jwt.PyJWTError) -> str:
    # The library's own words name the failed check without echoing the token.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"no `{exc.claim}` claim"
    return "malformed"


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        text = value.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text or None


def checked_end_user(who: str, param: str) -> str:
    if len(who) > MAX_END_USER or not who.isprintable():
        raise InvalidRequest(
            f"The end user named by `{param}` must be at most {MAX_END_USER} printable characters.",
            param=param,
            code="invalid_end_user",
        )
    return who

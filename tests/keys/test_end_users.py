"""Reading the end user from what a front end forwards (pure: no gateway needed)."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.errors import AuthenticationError, InvalidRequest
from gateway.keys.end_users import EndUser, end_user_of
from gateway.keys.record import EndUserLimits, KeyRecord

TRUSTED = KeyRecord(id="key_a", name="owui", trusted_front_end=True)
PLAIN = KeyRecord(id="key_b", name="app")
SECRET = "a-secret-of-thirty-two-bytes-or-more!"


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [
        (f"x-openwebui-{name.replace('_', '-')}".encode(), value.encode())
        for name, value in values.items()
    ]


def token(**claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 300, **claims}, SECRET, algorithm="HS256")


def test_only_a_trusted_key_names_end_users() -> None:
    sent = headers(user_id="u1", user_email="a@x.org")
    assert end_user_of(PLAIN, sent, {"user": "bob"}, None) is None
    assert end_user_of(None, sent, {"user": "bob"}, None) is None
    assert end_user_of(TRUSTED, sent, None, None) == EndUser("a@x.org")


def test_open_webui_headers_email_first_then_id_then_user_field() -> None:
    found = end_user_of(
        TRUSTED,
        headers(
            user_id="u1",
            user_email="Ann@X.org",
            user_name="Ann%20M%C3%BCller",
            user_role="admin",
            chat_id="c9",
        ),
        {"user": "ignored"},
        None,
    )
    assert found == EndUser("ann@x.org", "Ann Müller", "admin", "c9")
    assert end_user_of(TRUSTED, headers(user_id="u1"), None, None) == EndUser("u1")
    assert end_user_of(TRUSTED, [], {"user": " carol "}, None) == EndUser("carol")
    assert end_user_of(TRUSTED, [], {"safety_identifier": "dan"}, None) == EndUser("dan")
    assert end_user_of(TRUSTED, [], {"user": ""}, None) is None
    assert end_user_of(TRUSTED, [], {}, None) is None


def test_bad_names_are_400s() -> None:
    for body in ({"user": "x" * 257}, {"user": "a\nb"}, {"user": ["a"]}):
        with pytest.raises(InvalidRequest) as caught:
            end_user_of(TRUSTED, [], body, None)
        assert caught.value.param == "user"
    with pytest.raises(InvalidRequest):
        end_user_of(TRUSTED, headers(user_id="\x1b[31m"), None, None)


def test_signed_token_wins_and_unsigned_headers_are_ignored_with_a_secret() -> None:
    signed = headers(user_jwt=token(sub="u1", email="a@x.org", name="Ann", role="user"))
    assert end_user_of(TRUSTED, signed, None, SECRET) == EndUser("a@x.org", "Ann", "user")
    # With a secret, plain headers are not believed; the body field still names someone.
    assert end_user_of(TRUSTED, headers(user_id="u2"), None, SECRET) is None
    assert end_user_of(TRUSTED, headers(user_id="u2"), {"user": "c"}, SECRET) == EndUser("c")
    # Without one, a token cannot be checked and is not read.
    assert end_user_of(TRUSTED, signed, None, None) is None
    assert end_user_of(TRUSTED, headers(user_jwt=token(sub="u3")), None, SECRET) == EndUser("u3")


@pytest.mark.parametrize(
    "bad",
    [
        jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, "another-secret-xxxxxxxxxxxxxxxxx"),
        jwt.encode({"sub": "u", "exp": int(time.time()) - 3600}, SECRET),
        jwt.encode({"sub": "u"}, SECRET),  # no expiry
        jwt.encode({"exp": int(time.time()) + 60}, SECRET),  # nobody
        "garbage",
    ],
)
def test_bad_tokens_are_401s_without_echoing_them(bad: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        end_user_of(TRUSTED, headers(user_jwt=bad), None, SECRET)
    assert caught.value.code == "invalid_end_user_token"
    assert bad not in caught.value.message


def test_overrides_fill_in_from_the_key_defaults() -> None:
    key = KeyRecord(
        id="k",
        name="n",
        trusted_front_end=True,
        end_user_defaults=EndUserLimits(rpm=10, daily_tokens=1000),
        end_user_overrides={"vip": EndUserLimits(rpm=100)},
    )
    assert key.end_user_limits("vip") == EndUserLimits(rpm=100, daily_tokens=1000)
    assert key.end_user_limits("anyone") == EndUserLimits(rpm=10, daily_tokens=1000)

"""Session cookies and CSRF tokens (pure)."""

from __future__ import annotations

from gateway.ui import session as s

KEY = s.signing_key("admin-key")
NOW = 1_800_000_000.0


def test_a_session_verifies_until_it_expires() -> None:
    session, cookie = s.issue(KEY, NOW)
    assert s.verify(KEY, cookie, NOW) == session
    assert s.verify(KEY, cookie, NOW + s.SESSION_TTL_S - 1) == session
    assert s.verify(KEY, cookie, NOW + s.SESSION_TTL_S) is None
    assert s.verify(KEY, cookie, NOW - 3600) is None  # issued in the future


def test_forgeries_and_other_admin_keys_fail() -> None:
    _, cookie = s.issue(KEY, NOW)
    issued, nonce, mac = cookie.split(".")
    assert s.verify(KEY, f"{int(issued) + 3600}.{nonce}.{mac}", NOW) is None
    assert s.verify(KEY, f"{issued}.other.{mac}", NOW) is None
    assert s.verify(s.signing_key("new-admin-key"), cookie, NOW) is None
    for junk in (None, "", "a.b", "x.y.z", "1.2.3.4", "1" * 500):
        assert s.verify(KEY, junk, NOW) is None
    assert "admin-key" not in cookie


def test_login_cookies_are_not_sessions_and_vice_versa() -> None:
    _, login = s.issue_login(KEY, NOW)
    _, session = s.issue(KEY, NOW)
    assert s.verify(KEY, login, NOW) is None
    assert s.verify_login(KEY, session, NOW) is None
    assert s.verify_login(KEY, login, NOW + s.LOGIN_TTL_S) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    one, _ = s.issue(KEY, NOW)
    two, _ = s.issue(KEY, NOW)
    token = s.csrf_token(KEY, one)
    assert s.csrf_ok(KEY, one, token)
    assert not s.csrf_ok(KEY, two, token)
    assert not s.csrf_ok(KEY, one, None) and not s.csrf_ok(KEY, one, "")
    assert not s.csrf_ok(s.signing_key("other"), one, token)
    login, _ = s.issue_login(KEY, NOW)
    assert s.login_token_ok(KEY, login, s.login_token(KEY, login))
    assert not s.login_token_ok(KEY, login, s.csrf_token(KEY, login))

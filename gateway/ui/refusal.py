"""The console's own page for a request the gateway refused at the door (413, 408).

The body limit (`gateway.http.body_limit`) answers before any console route runs; for
`/ui` it renders with this instead of the OpenAI JSON a script would get. htmx requests
get a fragment, which the console flashes (`htmx:responseError` in console.js).
"""

from __future__ import annotations

from markupsafe import escape

from gateway.errors import GatewayError
from gateway.http.asgi import RawHeaders, Scope, header
from gateway.ui.render import ENV
from gateway.ui.web import SECURITY_HEADERS

_TITLES = {408: "The upload was too slow", 413: "Too much data"}
_HEADERS: RawHeaders = [
    (b"content-type", b"text/html; charset=utf-8"),
    *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
]


def render_refusal(scope: Scope, error: GatewayError) -> tuple[bytes, RawHeaders]:
    if header(scope, b"hx-request") == b"true":
        body = f"<p role='alert'>{escape(error.message)}</p>"
    else:
        base = str(scope.get("root_path", "")).rstrip("/") + "/ui"
        body = ENV.get_template("refused.html").render(
            base=base,
            title=_TITLES.get(error.status, "Request refused"),
            message=error.message,
        )
    return body.encode(), list(_HEADERS)

"""Bodies: a stranger's 200 MiB, chunked or declared, and bodies sent too slowly.

On the main branch before the body limit, 200 MiB without credentials grew the gateway by
~425 MB on `POST /admin/keys` (FastAPI parsed the JSON before the admin check) and by
~795 MB on `POST /ui/login` (the console read the whole form, then compared it with its
256 KiB limit). Here each is refused at its route's cap with the process growing by less
than 50 MiB, while another key is served.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.admin import bearer
from tests.hostile.conftest import HostileGateway, under_attack
from tests.raw_http import MiB, RawResponse, raw_request, zeros

BIG = 200 * MiB
JSON = ("content-type", "application/json")
FORM = ("content-type", "application/x-www-form-urlencoded")


def framing(kind: str, size: int) -> tuple[str, str]:
    if kind == "content-length":
        return ("content-length", str(size))
    return ("transfer-encoding", "chunked")


@pytest.mark.parametrize("kind", ["content-length", "chunked"])
@pytest.mark.parametrize(
    ("path", "content_type", "cap_setting"),
    [
        ("/admin/keys", JSON, "GATEWAY_MAX_ADMIN_BODY_BYTES"),
        ("/ui/login", FORM, "form limit"),
        ("/v1/chat/completions", JSON, "GATEWAY_MAX_BODY_BYTES"),
    ],
)
async def test_a_strangers_200_mib_body_is_refused_in_bounded_memory(
    hostile_gateway: HostileGateway,
    kind: str,
    path: str,
    content_type: tuple[str, str],
    cap_setting: str,
) -> None:
    answer: RawResponse = await under_attack(
        hostile_gateway,
        raw_request(
            hostile_gateway.url, "POST", path, [content_type, framing(kind, BIG)], zeros(BIG)
        ),
    )
    if path.startswith("/v1") and kind == "chunked":
        # No key: refused before a byte of the body is read, as is the rest of it.
        assert answer.status == 401
        assert orjson.loads(answer.body)["error"]["code"] == "invalid_api_key"
    elif path.startswith("/ui"):
        assert answer.status == 413
        assert answer.headers["content-type"].startswith("text/html")
        assert cap_setting in answer.body.decode()
    else:
        assert answer.status == 413
        error = orjson.loads(answer.body)["error"]
        assert error["code"] == "request_too_large" and cap_setting in error["message"]
    assert answer.headers["connection"] == "close" and answer.closed
    assert answer.sent < 20 * MiB  # answered long before the body was through


async def test_slow_bodies_are_cut_off_while_others_are_served(
    hostile_gateway: HostileGateway,
) -> None:
    gw = hostile_gateway
    key = bearer(gw.attacker)
    auth = [(name, value) for name, value in key.items()]

    async def trickle() -> RawResponse:
        # 100 bytes a second, each gap well inside the 1 s idle timeout: the rate rule ends it.
        return await raw_request(
            gw.url,
            "POST",
            "/v1/chat/completions",
            [JSON, ("content-length", "100000"), *auth],
            zeros(100_000, chunk=20, delay_s=0.2),
            timeout_s=15,
        )

    async def stall() -> RawResponse:
        # A stranger's admin request that never finishes its body: the idle rule ends it.
        return await raw_request(
            gw.url,
            "POST",
            "/admin/keys",
            [JSON, ("content-length", "1000")],
            zeros(10),
            finish=False,
            timeout_s=15,
        )

    async def attack() -> list[RawResponse]:
        return await asyncio.gather(*(trickle() for _ in range(10)), *(stall() for _ in range(10)))

    answers = await under_attack(gw, attack(), max_growth=30 * MiB)
    trickles, stalls = answers[:10], answers[10:]
    for answer in answers:
        assert answer.status == 408 and answer.closed, answer.body
        assert orjson.loads(answer.body)["error"]["code"] == "request_timeout"
    assert all(b"bytes per second" in a.body for a in trickles)
    assert all(2.0 <= a.elapsed_s < 6.0 for a in trickles)
    assert all(b"no data arrived" in a.body for a in stalls)
    assert all(1.0 <= a.elapsed_s < 4.0 for a in stalls)


async def test_a_strangers_endless_header_is_cut_off_in_bounded_memory(
    hostile_gateway: HostileGateway,
) -> None:
    # Before a body there is a head: uvicorn alone buffered a 100 MiB header whole
    # (the gateway grew by 182 MiB) and waited for its end for ever.
    gw = hostile_gateway
    port = int(gw.url.rsplit(":", 1)[1])

    async def attack() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /admin/keys HTTP/1.1\r\nhost: x\r\nx-endless: ")
        sent = 0
        try:
            async with asyncio.timeout(30):
                while sent < 100 * MiB:
                    writer.write(b"a" * MiB)
                    await writer.drain()
                    sent += MiB
                    await asyncio.sleep(0)
                await reader.read()
        except ConnectionError:
            pass
        writer.close()
        return sent

    sent = await under_attack(gw, attack(), max_growth=20 * MiB)
    assert sent < 10 * MiB  # the connection was closed long before

"""Docker's embedded DNS server (127.0.0.11 in every container), stood in for.

`python -m tests.deploy.dns HOSTS_FILE` answers A queries on 127.0.0.11:53 (UDP) from a file
of `ADDRESS NAME...` lines: a service name with several replicas gets every address, as
Docker answers (nginx's `resolver 127.0.0.11` and Prometheus' DNS discovery rely on that).
Other names get NXDOMAIN; other record types of a known name, an empty answer.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from pathlib import Path

ADDRESS = "127.0.0.11"
_TTL = 600  # what Docker's DNS sets


def load(path: Path) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        address, *names = line.split()
        for name in names:
            table.setdefault(name.lower(), []).append(address)
    return table


def answer(query: bytes, table: dict[str, list[str]]) -> bytes:
    """The response to one DNS query message (RFC 1035, one question, no compression in)."""
    (ident, flags, qdcount) = struct.unpack("!HHH", query[:6])
    labels, offset = [], 12
    while (length := query[offset]) != 0:
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, _qclass = struct.unpack("!HH", query[offset + 1 : offset + 5])
    question = query[12 : offset + 5]
    name = ".".join(labels).lower().rstrip(".")
    addresses = table.get(name)
    rcode = 0 if addresses is not None else 3  # NXDOMAIN
    records = [a for a in addresses or [] if qtype in (1, 255)]  # A or ANY
    header = struct.pack(
        "!HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode, qdcount, len(records), 0, 0
    )
    body = b"".join(
        struct.pack("!HHHIH", 0xC00C, 1, 1, _TTL, 4) + socket.inet_aton(a) for a in records
    )
    return header + question + body


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = answer(data, self.table)
        except (IndexError, struct.error):
            return  # not a query we can read: drop it, as a resolver would time out
        assert self.transport is not None
        self.transport.sendto(reply, addr)


async def serve(table: dict[str, list[str]]) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: _Protocol(table), local_addr=(ADDRESS, 53))
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(load(Path(sys.argv[1]))))

"""Ids the gateway makes per request (request ids, limiter slot ids): unique, not secret.

One random prefix per process and a counter: 64 random bits keep replicas, workers and
restarts apart, and the counter keeps this process's ids apart, without the getrandom
syscall per id that `os.urandom` costs (twice per proxied request). Nothing relies on
these being unguessable: clients may choose their own `x-request-id`, and slot ids are
only ever compared with other slot ids.
"""

from __future__ import annotations

import itertools
import os


class _Ids:
    __slots__ = ("counter", "prefix")

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()


_IDS = _Ids()
# A forked child (a server forking its workers) must not repeat its parent's ids.
os.register_at_fork(after_in_child=_IDS.reseed)


def new_id() -> str:
    """32 hex characters, the same shape as `os.urandom(16).hex()`."""
    return f"{_IDS.prefix}{next(_IDS.counter):016x}"

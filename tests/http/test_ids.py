"""The gateway's own ids: the shape of `os.urandom(16).hex()`, never repeated, and apart in
a forked child."""

from __future__ import annotations

import os

from gateway.http.ids import new_id


def test_ids_are_32_hex_characters_and_unique() -> None:
    made = [new_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)


def test_a_forked_child_makes_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = new_id()
    assert len(child) == 32 and child[:16] != parent[:16]

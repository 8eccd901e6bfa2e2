"""Key secrets: how they look, how they are stored, how they are recognised. Pure.

A secret is `sk-gw-` followed by 32 random bytes in urlsafe base64 (43 characters). Only
its sha256 is stored: with 256 bits of randomness nobody can brute-force the hash, so a
slow KDF would only cost every cache miss time for nothing.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk-gw-"
RANDOM_BYTES = 32
# Enough of the secret to recognise a key in a list (`sk-gw-AbC1xY`), and far too little
# to matter: 36 of its 256 bits.
DISPLAY_CHARS = len(PREFIX) + 6
_SECRET_LEN = len(PREFIX) + len(secrets.token_urlsafe(RANDOM_BYTES))


def generate_secret() -> str:
    return PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def new_key_id() -> str:
    # Ids appear in URLs, logs and usage rows; they carry no part of the secret.
    return "key_" + secrets.token_hex(10)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def display_prefix(secret: str) -> str:
    return secret[:DISPLAY_CHARS]


def looks_like_key(presented: str) -> bool:
    """Whether a presented string could be one of our secrets at all.

    Anything else is refused without touching the cache or the database, so a client
    sending its OpenAI key here (or garbage) costs nothing and fills no negative cache.
    """
    return len(presented) == _SECRET_LEN and presented.startswith(PREFIX)

"""Personal data at rest: a claim's identity (name, card, ID and patient numbers, address, phone)
sealed with AES-256-GCM before the case store writes it, opened only to show a case page.

The key is 32 random bytes in URL-safe base64 (`CLAIMRADAR_DATA_KEY`; `new_key()` makes one).
Each value gets a fresh 96-bit nonce; the claim's key (facility/MA_LK) is bound in as associated
data, so a sealed identity copied onto another claim's row does not open. Without a key nothing
personal is stored at all.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "g1:"  # the format: AES-GCM, 12-byte nonce, then ciphertext + tag, base64


class SealError(ValueError):
    """A data key that is not 32 bytes of base64, or a sealed value that does not open."""


def new_key() -> str:
    """A fresh data key: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Sealer:
    """Seals and opens JSON values with one data key."""

    def __init__(self, key: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(key.strip() + "=" * (-len(key.strip()) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise SealError(
                "the data key must be 32 random bytes in URL-safe base64 (44 characters); "
                "make one with `python -c 'from serving.sealing import new_key; print(new_key())'`"
            )
        self._aead = AESGCM(raw)

    def seal(self, value: dict, bound_to: str) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = self._aead.encrypt(nonce, plain, bound_to.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, text: str, bound_to: str) -> dict:
        if not text.startswith(PREFIX):
            raise SealError("not a sealed value")
        try:
            blob = base64.b64decode(text.removeprefix(PREFIX), validate=True)
            plain = self._aead.decrypt(blob[:12], blob[12:], bound_to.encode())
        except (binascii.Error, ValueError, InvalidTag):
            raise SealError("the sealed value does not open with this key") from None
        return json.loads(plain)

"""The share-link codec: a preset's canonical JSON as a short, versioned, checked URL token.

Token layout: ``pg1.<payload>.<check>`` where payload is base64url (no padding) of the
raw-deflate-compressed JSON and check is base64url of the first 6 bytes of the JSON's SHA-256.
A garbled or cut token fails the check and raises ShareLinkError; nothing loads.

The check is a checksum against garbling (a link mangled by a chat tool, cut short, mistyped),
not a signature: there is no secret in it, so anyone can edit the JSON and recompute the check,
and such a token loads. A link proves nothing about who made it or what they meant: like a
preset file from the same sender, it only fills the form, and nothing is sent until Run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib

TOKEN_PREFIX = "pg1"
MAX_TOKEN_CHARS = 8192  # longer links break in chat tools and some proxies: use a file
MAX_JSON_BYTES = 1_000_000  # never inflate more than a preset file may hold


class ShareLinkError(ValueError):
    """A token that cannot be read: garbled, cut, too big, or of an unknown version."""


class ShareLinkTooLarge(ShareLinkError):
    def __init__(self, size: int):
        self.size = size
        super().__init__(
            f"This preset is too big for a share link ({size / 1024:.1f} KB of token, the limit is "
            f"{MAX_TOKEN_CHARS // 1024} KB). Export it as a file and send the file instead."
        )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ShareLinkError("This share link is garbled (it has characters a link never contains). "
                             "Ask for the link again, or for the preset file.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ShareLinkError("This share link is garbled (bad base64). Ask for the link again.") from exc


def _check(json_bytes: bytes) -> str:
    return _b64encode(hashlib.sha256(json_bytes).digest()[:6])


def encode_token(json_text: str) -> str:
    """Compress and checksum `json_text`; raise ShareLinkTooLarge over MAX_TOKEN_CHARS."""
    data = json_text.encode("utf-8")
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = packer.compress(data) + packer.flush()
    token = f"{TOKEN_PREFIX}.{_b64encode(payload)}.{_check(data)}"
    if len(token) > MAX_TOKEN_CHARS:
        raise ShareLinkTooLarge(len(token))
    return token


def decode_token(token: str) -> str:
    """The JSON text inside a token, or ShareLinkError saying what is wrong with it."""
    token = (token or "").strip()
    if not token:
        raise ShareLinkError("The share link is empty.")
    if len(token) > MAX_TOKEN_CHARS:
        raise ShareLinkTooLarge(len(token))
    parts = token.split(".")
    if parts[0] != TOKEN_PREFIX:
        if parts[0].startswith("pg") and parts[0][2:].isdigit() and len(parts) == 3:
            raise ShareLinkError(f"This share link uses format {parts[0]!r}, which this Playground "
                                 f"does not read (it reads {TOKEN_PREFIX!r}). Update the app, or ask for the file.")
        raise ShareLinkError("This is not a Playground share link (it should start with 'pg1.').")
    if len(parts) != 3:
        raise ShareLinkError("This share link is garbled or cut short. Ask for the link again.")
    payload, check = _b64decode(parts[1]), parts[2]
    unpacker = zlib.decompressobj(-15)
    try:
        data = unpacker.decompress(payload, MAX_JSON_BYTES + 1)
    except zlib.error as exc:
        raise ShareLinkError("This share link is garbled or was changed (it does not decompress). "
                             "Ask for the link again.") from exc
    if len(data) > MAX_JSON_BYTES or unpacker.unconsumed_tail:
        raise ShareLinkError("This share link holds more than a preset may (over 1 MB).")
    if not unpacker.eof or unpacker.unused_data:
        raise ShareLinkError("This share link is cut short or garbled. Ask for the link again.")
    if _check(data) != check:
        raise ShareLinkError("This share link was changed or damaged (its integrity check fails), "
                             "so nothing was loaded. Ask for the link again.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ShareLinkError("This share link is garbled (not UTF-8 text).") from exc

"""QUIC's variable-length integers (RFC 9000 §16), read by QUIC frames and HTTP/3 frames alike.

The two top bits of the first byte give the integer's length -- 1, 2, 4 or 8 bytes --
and the remaining 6, 14, 30 or 62 bits its value, big-endian. HTTP/3 (RFC 9114 §7.1)
frames its types and lengths with the same integers.

What this module must not know: anything but the integers.
"""

from __future__ import annotations

__all__ = ["read_varint", "Truncated"]


class Truncated(Exception):
    """A structure ended before its declared length (callers turn it into ``damaged``)."""


def read_varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    """A variable-length integer at ``at``: ``(value, offset after it)``.

    Raises :class:`Truncated` when the bytes end first.

    >>> read_varint(bytes.fromhex("c2197c5eff14e88c"), 0), read_varint(b"\\x40\\x25", 0)
    ((151288809941952652, 8), (37, 2))
    """
    if at >= len(data):
        raise Truncated(f"a variable-length integer at offset {at} is missing")
    size = 1 << (data[at] >> 6)
    if at + size > len(data):
        raise Truncated(f"a {size}-byte integer at offset {at} is cut short")
    return int.from_bytes(data[at : at + size], "big") & ((1 << (8 * size - 2)) - 1), at + size

"""How the HTTP/1 parser frames a request body outside h11: lengths a server cannot read.

:class:`~osilab.protocols.http.HttpParser` lets h11 (or the plain fast reader) frame
every message. Two things it needs that h11 does not give are here:

* **Invalid lengths** (:func:`invalid_length`). RFC 9112 §6.3: when a request's
  Transfer-Encoding does not end in ``chunked``, its body length "cannot be determined
  reliably"; a Content-Length or a chunk size past 2**64 - 1 does not fit the 64 bits
  servers keep it in. The ALB's reading of the connection stops at such a request, while
  a back end that stops at the bad length reads on, and may find a smuggled request
  (Kettle, "HTTP Desync Attacks", 2019, on chunk-size overflows).
* **The parsing state of one direction** (:class:`Side`) and of a request waiting for its
  response (:class:`Pending`).

What this module must not know: h11's events, flows, packets or balancers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11

from osilab.protocols.messages import HttpRequest

__all__ = ["invalid_length", "chunk_overflow", "Pending", "Side"]

_U64 = 1 << 64
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _wire(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")


def invalid_length(headers: Any, rest: bytes) -> tuple[str, int] | None:
    """Why a request's body length cannot be read, and the body a back end takes instead.

    RFC 9112 §6.3: a Transfer-Encoding whose final coding is not ``chunked`` leaves the
    length undetermined; a Content-Length or chunk size past 2**64 - 1 cannot be held by
    a 64-bit server. Returns ``(why, bytes of rest)``: a back end that stops at the bad
    length -- reads no body after such a Transfer-Encoding, wraps the number to 64 bits
    (2**64 is 0: a last chunk, the end of the message) -- takes that much of ``rest``
    as body and reads the next request after it. ``None`` when the length is fine (as
    far as ``rest`` shows: a chunk size is checked in the bytes already there).

    >>> invalid_length([(b"Content-Length", b"18446744073709551621")], b"hello GET")[1]
    5
    >>> invalid_length([("Transfer-Encoding", "chunked, gzip")], b"")[1]
    0
    """
    codings: list[bytes] = []
    lengths: list[bytes] = []
    for name, value in headers:
        key = _wire(name).lower()
        if key == b"transfer-encoding":
            codings += [item.split(b";", 1)[0].strip(b" \t").lower() for item in _wire(value).split(b",")]
        elif key == b"content-length":
            lengths.append(_wire(value).strip(b" \t"))
    if codings:
        if codings[-1] != b"chunked":
            shown = b", ".join(codings).decode("ascii", "replace")
            return f"Transfer-Encoding {shown!r} does not end in chunked (RFC 9112 §6.3)", 0
        overflow = chunk_overflow(rest)
        if overflow is None:
            return None
        size, after = overflow
        return f"chunk size {size} does not fit in 64 bits (RFC 9112 §7.1)", after
    for value in lengths:
        if value.isdigit() and int(value) >= _U64:
            shown = value.decode("ascii")
            return f"Content-Length {shown} does not fit in 64 bits", int(value) % _U64
    return None


def chunk_overflow(body: bytes, most_chunks: int = 64) -> tuple[str, int] | None:
    """The first chunk size in ``body`` past 64 bits, and where the message ends for a
    back end that wraps it to 0 (after the size line and an empty trailer line)."""
    position = 0
    for _ in range(most_chunks):
        line_end = body.find(b"\n", position)
        if line_end < 0:
            return None
        size_text = body[position:line_end].rstrip(b"\r").split(b";", 1)[0].strip(b" \t")
        if not size_text or any(byte not in _HEX for byte in size_text):
            return None
        size = int(size_text, 16)
        if size >= _U64:
            after = line_end + 1
            for ending in (b"\r\n", b"\n"):
                if body.startswith(ending, after):
                    return size_text.decode("ascii"), after + len(ending)
            return size_text.decode("ascii"), after
        if size == 0:
            return None
        position = line_end + 1 + size + 2
    return None


@dataclass(slots=True)
class Pending:
    """A request waiting for its response: what the response's framing depends on."""

    request: HttpRequest
    method: bytes
    upgrade: bytes | None  # the Upgrade header's value, when the request asked for one


class Side:
    """One direction's parsing state: the current h11 connection and message facts."""

    __slots__ = (
        "conn",
        "first_packet",
        "head",
        "head_done",
        "body",
        "fed",
        "message",
        "broken",
        "held",
        "tolerant",
        "status",
        "interim",
        "accounted",
    )

    def __init__(self) -> None:
        self.conn: h11.Connection | None = None
        self.first_packet: int | None = None
        self.head = bytearray()  # the current message's bytes until its head is complete
        self.head_done = False
        self.body = 0
        self.fed = 0
        self.message: Any = None  # the HttpRequest / response facts being built
        self.broken: str | None = None  # why this side can no longer be parsed
        self.held = bytearray()  # bytes waiting (after an Upgrade, before its response)
        self.tolerant = False  # reading a head h11 refused, with the tolerant reader
        self.status: tuple | None = None
        self.interim: list[int] = []
        self.accounted = 0  # bytes of this connection already reported (1xx responses)

    def receive(self, data: bytes, new_connection: Callable[[], h11.Connection]) -> None:
        """Hand ``data`` to this side's h11 connection, counting the bytes fed; a message
        that starts anew gets a new connection from ``new_connection``."""
        if self.conn is None:
            self.conn = new_connection()
        self.fed += len(data)
        self.conn.receive_data(data)

    def reset(self) -> None:
        self.conn = None
        self.first_packet = None
        self.head = bytearray()
        self.head_done = False
        self.body = 0
        self.fed = 0
        self.message = None
        self.tolerant = False
        self.status = None
        self.interim = []
        self.accounted = 0

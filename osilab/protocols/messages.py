"""The application messages that streams turn into, shared by protocols and balancers.

These are plain frozen records. The parsers in :mod:`osilab.protocols` produce them;
the balancer models in :mod:`osilab.balancers` and the views consume them. Each one
remembers the packets it came from, so any message can say "started in packet 4,
headers complete in packet 6".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from osilab.streams.frozen import quick_init
from osilab.streams.keys import FlowKey

__all__ = ["HttpRequest", "HttpResponse", "DesyncVerdict"]


@dataclass(frozen=True, slots=True)
class DesyncVerdict:
    """AWS http-desync-guardian's verdict on one request.

    ``klass`` is one of ``"Compliant"``, ``"Acceptable"``, ``"Ambiguous"``, ``"Severe"``;
    ``reason`` is the guardian's reason name (``"BothTeClPresent"``...), or ``None``
    when Compliant.
    """

    klass: str
    reason: str | None = None
    detail: str = ""


class _Headed:
    """What a request and a response share: headers in wire order, and a lookup by name."""

    __slots__ = ()
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first header with this name (case-insensitive: RFC 9110 §5.1), or ``None``."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


@quick_init  # one is made for every request of a capture
@dataclass(frozen=True, slots=True)
class HttpRequest(_Headed):
    """One HTTP request as a balancer would see it once its headers have arrived.

    Attributes:
        flow: the TCP flow, client -> server.
        index: 0-based position of the request in its flow (or HTTP/2 stream order).
        method, target, version: the request line (``target`` keeps the query string).
        headers: (name, value) pairs in wire order, names as sent.
        first_packet: the packet carrying the request's first byte.
        headers_complete_packet: the packet carrying the end of the header block,
            where an L7 balancer can decide.
        time: capture time of ``headers_complete_packet``.
        stream_id: the HTTP/2 stream, or ``None`` for HTTP/1.x.
        body_length: bytes of body seen (after de-chunking).
        desync: the desync verdict for the request head, when classified.
        reading: whose reading of the stream the request belongs to: ``"alb"`` (the
            balancer's own, the default) or ``"backend"`` -- a request that only a back
            end stopping at an earlier request's invalid length would read (a chunk size
            or Content-Length past 64 bits, a Transfer-Encoding not ending in chunked:
            RFC 9112 §6.3). The ALB stops reading the connection at that request.
        backend_would_read: on the request with the invalid length, the request lines
            such a back end would read after it, from the bytes there when its head
            completed (what the ALB's why names).
    """

    flow: FlowKey
    index: int
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    first_packet: int
    headers_complete_packet: int
    time: float
    stream_id: int | None = None
    body_length: int = 0
    desync: DesyncVerdict | None = None
    reading: str = "alb"
    backend_would_read: tuple[str, ...] = ()

    @property
    def host(self) -> str | None:
        """The Host header (or HTTP/2 ``:authority``), as sent."""
        return self.header("host") or self.header(":authority")

    @property
    def path(self) -> str:
        """The path without the query string: what ALB path-pattern rules match."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        """The query string without the ``?`` (empty when there is none)."""
        return self.target.split("?", 1)[1] if "?" in self.target else ""


@quick_init
@dataclass(frozen=True, slots=True)
class HttpResponse(_Headed):
    """One HTTP response, paired with its request by position in the flow (or stream id).

    Attributes:
        flow: the TCP flow, client -> server (the request's flow).
        index: the position of the request it answers (-1: no request was waiting).
        status, reason, version: the status line.
        headers: (name, value) pairs in wire order, names as sent.
        first_packet: the packet carrying the response's first byte.
        headers_complete_packet: the packet carrying the end of its header block.
        time: capture time of ``headers_complete_packet``.
        stream_id: the HTTP/2 or HTTP/3 stream, or ``None`` for HTTP/1.x.
        body_length: bytes of body seen (after de-chunking).
        interim: the status codes of the 1xx responses that came before it.
    """

    flow: FlowKey
    index: int
    status: int
    reason: str
    version: str
    headers: tuple[tuple[str, str], ...]
    first_packet: int
    headers_complete_packet: int
    time: float
    stream_id: int | None = None
    body_length: int = 0
    interim: tuple[int, ...] = field(default=())

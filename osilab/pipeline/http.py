"""HTTP messages of a whole capture: the view a load balancer has of it.

Built on :func:`osilab.pipeline.tracker.conversations`: the stream tracker reassembles
each flow and hands its bytes to the HTTP/1.x and HTTP/2 parsers of
:mod:`osilab.protocols`; this module keeps the two moments a balancer cares about --
a request whose head is complete, a response that has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from osilab._progress import library_bar
from osilab.pipeline.tracker import conversations
from osilab.protocols import Direction
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.protocols.tls import unread
from osilab.streams.keys import FlowKey

__all__ = ["iter_http", "paired", "MAX_WAITING"]

#: Requests held while waiting for their responses before being given without one.
MAX_WAITING = 10_000


def iter_http(
    packets: Iterable[Any],
    *,
    keylog: str | None = None,
    on_syn: Callable[[FlowKey, int, float], object] | None = None,
    on_end: Callable[[FlowKey], object] | None = None,
    progress: bool | None = None,
    unread_tls: set[FlowKey] | None = None,
    on_certificate: Callable[[FlowKey, tuple[bytes, ...]], object] | None = None,
) -> Iterator[HttpRequest | HttpResponse]:
    """Every HTTP request and response of a capture, HTTP/1.x and HTTP/2, in packet order.

    A request is yielded when its head is complete (the packet where an L7 balancer can
    decide); a response when it has ended (so a balancer can count outstanding requests).
    ``keylog`` (an NSS key log file) lets the TLS layer decrypt HTTPS when it can;
    ``on_syn(flow, packet_no, time)`` is told of every client SYN (a balancer's
    "connection opened") and ``on_end(flow)`` of every flow that ended. Given ``osilab.read(path)``, the packets are read by the streams
    stage's fast path (no :class:`Packet` objects); a big capture shows a progress bar in
    a notebook (``progress``: ``None`` notebook only, ``True`` also in a terminal).
    ``unread_tls``, a set, receives each TLS flow whose protected records could not be
    decrypted (no key: :func:`osilab.protocols.tls.unread`): HTTP this view cannot see.
    ``on_certificate(flow, chain)`` is told of each certificate chain (DER, leaf first) a
    *client* presents in its TLS handshake (mutual TLS; RFC 8446 §4.4.2, in TLS 1.3 only
    readable with the key log): what an ALB's ``MutualAuthentication`` listener checks.

    Examples:
        >>> import osilab
        >>> for msg in iter_http(osilab.read(
        ...         "../shared/captures/thirdparty/zeek/http-get.pcap")):  # doctest: +SKIP
        ...     print(type(msg).__name__, msg.headers_complete_packet)
        HttpRequest 4
        HttpResponse 12
    """
    with library_bar(packets, show=progress):
        for item in conversations(packets, keylog=keylog, on_syn=on_syn, on_end=on_end):
            message = item.message
            rich = message.message
            # An HTTP message is never a TLS record (unread, or carrying a certificate):
            # the common case is decided by its type and stage alone.
            if isinstance(rich, HttpRequest):
                if message.fields.get("stage") == "headers":
                    yield rich
                continue
            if isinstance(rich, HttpResponse):
                if message.fields.get("stage") == "complete":
                    yield rich
                continue
            if unread_tls is not None and unread(message):
                unread_tls.add(item.flow)
            if on_certificate is not None and message.direction is Direction.TO_SERVER:
                chain = message.fields.get("handshake.certificates")
                if chain:
                    on_certificate(item.flow, chain)


def paired(
    messages: Iterator[HttpRequest | HttpResponse],
) -> Iterator[tuple[HttpRequest, HttpResponse | None]]:
    """Requests with their responses, in request order (bounded wait).

    A response belongs to the request of the same flow (on the same hop) and index.
    """
    waiting: dict[tuple[FlowKey, int], HttpRequest] = {}
    order: list[tuple[FlowKey, int]] = []
    answered: dict[tuple[FlowKey, int], HttpResponse] = {}
    for message in messages:
        key = (message.flow, message.index)
        if isinstance(message, HttpRequest):
            waiting[key] = message
            order.append(key)
        else:
            answered[key] = message
        while order and (order[0] in answered or len(order) > MAX_WAITING):
            first = order.pop(0)
            request = waiting.pop(first, None)
            if request is not None:
                yield request, answered.pop(first, None)
    for key in order:
        request = waiting.pop(key, None)
        if request is not None:
            yield request, answered.pop(key, None)

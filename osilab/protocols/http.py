"""HTTP/1.x on a reassembled TCP stream: requests and responses, paired, as h11 reads them.

Theory of operation
-------------------
One HTTP/1.1 connection carries requests from the client and responses from the server,
one after the other, with nothing between them but the framing rules of RFC 9112: a head
(start line and header fields, ended by an empty line), then a body whose end is told by
``Transfer-Encoding: chunked`` (a run of chunks ending in a zero-size one), or by
``Content-Length``, or, for a response only, by the server closing the connection
(RFC 9112 §6.3). Responses come back in the order the requests went out, even when the
client *pipelines* several requests without waiting (RFC 9112 §9.3.2), so the n-th
response answers the n-th request.

The parsing itself is h11's (python-hyper/h11): osilab writes no HTTP/1 parser. h11 is
built for one endpoint of a live connection, and a capture is watched from the outside,
so :class:`HttpParser` drives **one short-lived h11 connection per message**:

* requests (client -> server) go through an h11 ``SERVER``-role connection; when it says
  ``EndOfMessage``, the bytes it has not used (``trailing_data``) start the next request
  on a fresh connection. This is keep-alive and pipelining, with no state carried over;
* each response goes through an h11 ``CLIENT``-role connection that is first told which
  request it answers (by "sending" a copy of its method and upgrade headers), because a
  response's framing depends on the request: no body after ``HEAD``, a tunnel after a
  ``2xx`` to ``CONNECT``, a new protocol after ``101 Switching Protocols``;
* interim ``1xx`` responses (``100 Continue``) are kept with the final response
  (:attr:`HttpResponse.interim`);
* after ``Upgrade: h2c`` and ``101``, the rest of the connection is HTTP/2
  (:mod:`osilab.protocols.http2`, RFC 7540 §3.2); after ``Upgrade: websocket`` and
  ``101`` (the response, status 101) it is WebSocket frames (:mod:`osilab.protocols.websocket`,
  RFC 6455); after another upgrade or a tunnel, the rest is opaque data.

Before h11, the plain fast reader (:mod:`osilab.protocols._http_fast`) takes the whole,
plain messages that make up nearly all traffic, and refuses everything else to h11.

Every request head is classified by :mod:`osilab.protocols.desync` from its raw bytes,
as an ALB sees them (bare LF line ends and folded lines count even where h11 accepts them).
Requests h11 refuses (bad header characters, a missing version, a bad request line...) are
not dropped: the head is read again by the desync classifier's tolerant reader
(:mod:`osilab.protocols._http_tolerant`) and reported with its desync verdict, as an AWS
ALB would classify it before refusing or forwarding it. These are the three readers of an
HTTP/1 head in osilab, and the only three.

What the parser reports
-----------------------
It implements the :class:`~osilab.protocols.StreamParser` contract. Each
:class:`~osilab.protocols.AppMessage` has ``fields["stage"]``:

* ``"headers"`` -- a request's head is complete; ``message`` is an :class:`HttpRequest`.
  This is the packet where an L7 balancer can decide (``headers_complete_packet``);
* ``"complete"`` -- a request or a response has ended (body included); ``message`` is the
  :class:`HttpRequest` (with ``body_length``) or the :class:`HttpResponse`. Wireshark shows
  the reassembled message in this packet;
* ``"interim"`` -- a ``1xx`` response.

:func:`osilab.pipeline.iter_http` runs a whole capture through the streams stage and this
parser and yields the requests (when their heads complete) and responses (when they end),
HTTP/1.x and HTTP/2 together, in packet order.

What this module must not know: files, packets, TCP reassembly (the streams stage feeds it
bytes in order, one chunk per packet) or any balancer.

References:
    RFC 9110 (HTTP semantics), RFC 9112 (HTTP/1.1), RFC 6455 (WebSocket), RFC 7540 §3.2
    (h2c upgrade); h11 documentation, "Working with the connection state".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Any

import h11

# The one HTTP sniffer (any token is a method, RFC 9110 §9.1) and the table of known methods.
from osilab.capture.dissect import HTTP_METHODS, looks_like_http
from osilab.protocols import AppMessage, Direction
from osilab.protocols._http_fast import read_request, read_response
from osilab.protocols._http_framing import Pending, Side, invalid_length
from osilab.protocols._http_tolerant import ParsedHead
from osilab.protocols._http_tolerant import text as _text
from osilab.protocols.desync import classify_head, classify_request
from osilab.protocols.messages import DesyncVerdict, HttpRequest, HttpResponse
from osilab.protocols.websocket import WebSocketParser, handshake
from osilab.streams.keys import Endpoint, FlowKey

__all__ = [
    "HttpParser",
    "looks_like_http",
    "HTTP_METHODS",
    "HEAD_LIMIT",
    "MAX_WAITING",
]

#: Most requests waiting for their responses on one connection (memory bound).
MAX_WAITING = 1024

#: Most bytes of one request head kept for the tolerant reader (h11's own limit is 16 KiB).
HEAD_LIMIT = 64 * 1024

#: What the desync guardian says of a plain head (see :mod:`osilab.protocols._http_fast`).
_COMPLIANT = DesyncVerdict("Compliant")

_UNKNOWN_FLOW = FlowKey("tcp", Endpoint("0.0.0.0", 0), Endpoint("0.0.0.0", 0))


def _server_connection() -> h11.Connection:
    """A new h11 connection in the server's role: it reads the requests a client sends."""
    return h11.Connection(h11.SERVER)


def _events(side: Side) -> Iterator[tuple[Any, h11.Connection]]:
    """h11's events on one side, each with the connection that read it, until it needs more
    bytes or the side has no connection (an event may end the message and start a new
    connection). A framing error h11 raises comes as the last event, the
    :class:`h11.RemoteProtocolError` itself: the caller decides what it means for its
    direction."""
    while (conn := side.conn) is not None:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            yield exc, conn
            return
        if event is h11.NEED_DATA:
            return
        yield event, conn


# Identical heads (a client repeating a request) get the same verdict: the classifier is
# pure and its results are frozen, so small heads are remembered (bounded LRU).
_CACHED_HEAD = 2048
_classify_head_cached = lru_cache(maxsize=4096)(classify_head)


def _classify_raw(raw: bytes) -> tuple[ParsedHead, DesyncVerdict]:
    """The tolerant reader's view of a raw head and its desync verdict (see desync)."""
    return _classify_head_cached(raw) if len(raw) <= _CACHED_HEAD else classify_head(raw)


class HttpParser:
    """HTTP/1.x for one TCP connection (sans-IO; see the module docstring).

    >>> p = HttpParser()
    >>> msgs = p.feed(Direction.TO_SERVER, b"GET /a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", 4, 0.0)
    >>> [(m.fields["stage"], m.message.target) for m in msgs]
    [('headers', '/a'), ('complete', '/a')]
    >>> msgs = p.feed(Direction.TO_CLIENT, b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", 6, 0.1)
    >>> [(m.message.status, m.message.index, m.first_packet) for m in msgs]
    [(200, 0, 6)]
    """

    protocol = "http"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        # One constructor for every parser (the table in osilab.pipeline.dispatch);
        # ``keylog`` is for TLS, which this protocol does not carry.
        self.flow = flow or _UNKNOWN_FLOW
        self._req = Side()
        self._resp = Side()
        self._waiting: deque[Pending] = deque()  # requests without a final response yet
        self._next_index = 0
        self._paused: Pending | None = None  # an Upgrade/CONNECT awaiting its response
        self._inner: Any = None  # the parser after a protocol switch (HTTP/2), if any
        #: What the connection switched to: None, "http2", "websocket" or "tunnel".
        self.switched: str | None = None
        #: Requests forgotten because :data:`MAX_WAITING` were already waiting for their
        #: responses (a one-sided capture): the marker that the cap was hit. A response
        #: that comes after all is then paired with a later request.
        self.unanswered_dropped = 0
        self._time = 0.0
        self._reading = "alb"  # "backend" after an invalid length (see _stop_alb_reading)
        self._backend_skip = 0  # body bytes such a back end still takes before its next head

    # -- the StreamParser contract -------------------------------------------------------

    def feed(
        self, direction: Direction, data: bytes, packet_no: int, time: float
    ) -> list[AppMessage]:
        self._time = time
        out: list[AppMessage] = []
        if not data:  # (h11 would take empty bytes for the end of the stream)
            return out
        if self.switched is not None:
            if self._inner is not None:
                out.extend(self._inner.feed(direction, data, packet_no, time))
            return out
        if direction is Direction.TO_SERVER:
            if self._paused is not None:
                self._req.held += data
                return out
            self._requests(data, packet_no, out)
        else:
            self._responses(data, packet_no, out)
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Lost bytes: the message in progress is cut; parsing resumes at the next head."""
        out: list[AppMessage] = []
        if self.switched is not None:
            if self._inner is not None:
                out.extend(self._inner.gap(direction, size, packet_no))
            return out
        side = self._req if direction is Direction.TO_SERVER else self._resp
        if side.message is not None or side.fed:
            out.extend(self._cut(direction, packet_no, f"{size} bytes never captured"))
        side.reset()
        side.broken = "resynchronising after a gap"
        return out

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        """This direction has ended (FIN): a body delimited by the close ends here."""
        self._time = time
        out: list[AppMessage] = []
        if self.switched is not None:
            if self._inner is not None and hasattr(self._inner, "end"):
                out.extend(self._inner.end(direction, packet_no, time))
            return out
        if direction is Direction.TO_CLIENT:
            side = self._resp
            if side.conn is not None and side.broken is None:
                try:
                    side.conn.receive_data(b"")
                except h11.RemoteProtocolError:
                    pass
                self._run_responses(packet_no, out)
        return out

    def close(self) -> list[AppMessage]:
        out: list[AppMessage] = []
        if self._inner is not None:
            out.extend(self._inner.close())
        for direction, side in (
            (Direction.TO_SERVER, self._req),
            (Direction.TO_CLIENT, self._resp),
        ):
            if side.message is not None or (side.fed and side.head):
                out.extend(self._cut(direction, side.first_packet or 0, "connection ended first"))
            side.reset()
        return out

    # -- requests ------------------------------------------------------------------------

    def _requests(self, data: bytes, packet_no: int, out: list[AppMessage]) -> None:
        side = self._req
        if self._backend_skip:
            skipped = min(self._backend_skip, len(data))
            self._backend_skip -= skipped
            data = data[skipped:]
            if not data:
                return
        if side.broken is not None:
            if not looks_like_http(data):
                return
            side.broken = None  # a new request starts this chunk: resynchronised
        if side.conn is None and not side.head and not side.tolerant and side.message is None:
            data = self._plain_requests(data, packet_no, out)
            if not data:
                return
        if side.first_packet is None:
            side.first_packet = packet_no
        if not side.head_done and len(side.head) < HEAD_LIMIT:
            side.head += data
        if side.tolerant:
            self._tolerant_request(packet_no, out)
            return
        side.receive(data, _server_connection)
        self._run_requests(packet_no, out)

    def _plain_requests(self, data: bytes, packet_no: int, out: list[AppMessage]) -> bytes:
        """Whole plain requests at the start of ``data`` without h11; returns the rest.

        :mod:`osilab.protocols._http_fast` reads them exactly as h11 would (and a head it
        calls plain is one the desync guardian calls Compliant); the first message it
        does not recognise, and everything after it, is left to h11.
        """
        while data:
            found = read_request(data)
            if found is None:
                return data
            method, target, version, headers, head_length, body, plain = found
            verdict = _COMPLIANT if plain is not None else _classify_raw(data[:head_length])[1]
            request = self._new_request(method, target, "HTTP/" + version, tuple(headers),
                                        packet_no, packet_no, verdict)  # fmt: skip
            pending = Pending(request, method.encode("ascii"), None)
            if len(self._waiting) >= MAX_WAITING:
                self._waiting.popleft()
                self.unanswered_dropped += 1
            self._waiting.append(pending)
            head = self._request_message(request, head_length, "headers", packet_no)
            if body:
                request = pending.request = replace(request, body_length=body)
            complete = {**head.fields, "stage": "complete", "content_length": body}  # as _request_message
            out += (head, AppMessage("http", head.direction, head.first_packet, head.last_packet, head_length + body, head.summary, complete, head.time, request))  # fmt: skip
            data = data[head_length + body :]
        return data

    def _run_requests(self, packet_no: int, out: list[AppMessage]) -> None:
        side = self._req
        for event, conn in _events(side):
            if isinstance(event, h11.RemoteProtocolError):
                if side.head_done:  # the body broke the framing rules: cut the request here
                    out.extend(self._cut(Direction.TO_SERVER, packet_no, f"h11: {event}"))
                    side.reset()
                    side.broken = f"unparseable request body ({event})"
                    return
                side.tolerant = True
                side.message = ("refused", str(event))
                self._tolerant_request(packet_no, out)
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if self._request_head(event, packet_no, out):
                    return  # an invalid length: the ALB's reading stopped there
            elif isinstance(event, h11.Data):
                side.body += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                leftover = conn.trailing_data[0]
                self._request_end(packet_no, out)
                if self._paused is not None:
                    side.held += leftover
                    side.reset()
                    return
                side.reset()
                if leftover:  # the next request, already begun
                    side.first_packet = packet_no
                    side.head += leftover[:HEAD_LIMIT]
                    side.receive(leftover, _server_connection)
            else:  # ConnectionClosed
                return

    def _request_head(self, event: h11.Request, packet_no: int, out: list[AppMessage]) -> bool:
        """A head h11 read; True when its length is invalid and the rest was handed on."""
        side = self._req
        raw_headers = list(event.headers.raw_items())
        version = b"HTTP/" + event.http_version
        trailing = len(side.conn.trailing_data[0]) if side.conn is not None else 0
        head_length = side.fed - trailing
        # The ALB judges the head as bytes (bare LF line ends and folded lines count), so
        # the raw head is classified when it was kept whole; h11's view is the fallback.
        verdict = (
            _classify_raw(bytes(side.head[:head_length]))[1]
            if head_length <= len(side.head)
            else classify_request(event.method, event.target, version, raw_headers)
        )
        request = self._new_request(
            _text(event.method), _text(event.target), _text(version),
            tuple((_text(k), _text(v)) for k, v in raw_headers),
            side.first_packet or packet_no, packet_no, verdict,
        )  # fmt: skip
        side.message = request
        side.head_done = True
        side.head = bytearray()
        upgrade = None
        for key, value in event.headers:
            if key == b"upgrade":
                upgrade = value.lower()
        pending = Pending(request, event.method, upgrade)
        if len(self._waiting) >= MAX_WAITING:  # a one-sided capture: responses never come
            self._waiting.popleft()
            self.unanswered_dropped += 1
        self._waiting.append(pending)
        rest = side.conn.trailing_data[0] if side.conn is not None else b""
        invalid = invalid_length(raw_headers, rest) if self._reading == "alb" else None
        if invalid is not None:
            self._stop_alb_reading(request, head_length, invalid, rest, packet_no, out)
            return True
        if upgrade is not None or event.method == b"CONNECT":
            self._paused = pending
        out.append(self._request_message(request, head_length, "headers", packet_no))
        return False

    def _request_end(
        self, packet_no: int, out: list[AppMessage], damaged: str | None = None
    ) -> None:
        side = self._req
        request = side.message
        if not isinstance(request, HttpRequest):
            return
        if side.body:
            request = replace(request, body_length=side.body)
            for pending in self._waiting:
                if pending.request.index == request.index:
                    pending.request = request
        trailing = len(side.conn.trailing_data[0]) if side.conn is not None else 0
        length = max(0, side.fed - trailing - side.accounted)
        out.append(self._request_message(request, length, "complete", packet_no, damaged))

    def _request_message(
        self,
        request: HttpRequest,
        length: int,
        stage: str,
        packet_no: int,
        damaged: str | None = None,
    ) -> AppMessage:
        fields: dict[str, Any] = {
            "stage": stage,
            "request": True,
            "request.method": request.method,
            "request.uri": request.target,
            "request.version": request.version,
            "host": request.host,
            "request_index": request.index,
        }
        if request.desync is not None:
            fields["desync"] = request.desync.klass
        if request.reading != "alb":
            fields["reading"] = request.reading
        if stage == "complete":
            fields["content_length"] = request.body_length
        summary = f"{request.method} {request.target} {request.version}"
        return self._message(Direction.TO_SERVER, request.first_packet, packet_no, length, summary,
                             fields, request, damaged)  # fmt: skip

    def _message(self, direction: Direction, first_packet: int, packet_no: int, length: int,
                 summary: str, fields: dict[str, Any], head: HttpRequest | HttpResponse | None = None,
                 damaged: str | None = None) -> AppMessage:  # fmt: skip
        """One HTTP message of this flow (a request's head or whole, an interim or final
        response), from its first packet to ``packet_no``, at this packet's time; ``head``
        is the request or response it carries once its head is read (an interim response
        carries none)."""
        return AppMessage("http", direction, first_packet, packet_no, length, summary.strip(),
                          fields, self._time, head, damaged)  # fmt: skip

    def _tolerant_head(self, raw: bytes, packet_no: int) -> tuple[ParsedHead, HttpRequest]:
        """The next request, read from a raw head by the desync classifier's tolerant reader."""
        head, verdict = _classify_raw(raw)
        request = self._new_request(head.method, head.uri, head.version, tuple(head.headers),
                                    self._req.first_packet or packet_no, packet_no, verdict)  # fmt: skip
        return head, request

    def _new_request(self, method: str, target: str, version: str,
                     headers: tuple[tuple[str, str], ...], first_packet: int, complete_packet: int,
                     verdict: DesyncVerdict) -> HttpRequest:  # fmt: skip
        """The flow's next request, whichever reader read its head (the plain fast reader,
        h11, or the desync classifier's tolerant reader): numbered in the order sent."""
        request = HttpRequest(self.flow, self._next_index, method, target, version, headers,
                              first_packet, complete_packet, self._time, desync=verdict,
                              reading=self._reading)  # fmt: skip
        self._next_index += 1
        return request

    def _new_response(self, index: int, status: int, reason: str, version: str,
                      headers: tuple[tuple[str, str], ...], first_packet: int, complete_packet: int,
                      body_length: int, interim: tuple[int, ...]) -> HttpResponse:  # fmt: skip
        """A response, paired with request ``index`` (-1: none was waiting), whichever reader
        read its head."""
        return HttpResponse(self.flow, index, status, reason, version, headers, first_packet,
                            complete_packet, self._time, body_length=body_length,
                            interim=interim)  # fmt: skip

    def _tolerant_request(self, packet_no: int, out: list[AppMessage]) -> None:
        """Read a head h11 refused with the desync module's tolerant reader."""
        side = self._req
        raw = bytes(side.head)
        refused = side.message[1] if isinstance(side.message, tuple) else "h11 refused the request"
        ended = b"\r\n\r\n" in raw or b"\n\n" in raw
        if not ended and len(raw) < HEAD_LIMIT:
            return  # wait for the rest of the head
        head, request = self._tolerant_head(raw, packet_no)
        pending = Pending(request, head.method.encode("utf-8", "surrogateescape"), None)
        self._waiting.append(pending)
        body = raw[head.head_length :]
        invalid = invalid_length(head.headers, body) if self._reading == "alb" else None
        if invalid is not None:
            return self._stop_alb_reading(request, head.head_length, invalid, body, packet_no, out)
        damaged = f"not valid HTTP/1.1 ({refused}); read tolerantly"
        out.append(self._request_message(request, head.head_length, "headers", packet_no))
        out.append(self._request_message(request, head.head_length, "complete", packet_no, damaged))
        # Skip a body announced by one plain Content-Length; otherwise wait for a new head.
        rest = raw[head.head_length :]
        lengths = [v for k, v in head.headers if k.strip().lower() == "content-length"]
        side.reset()
        if len(lengths) == 1 and lengths[0].strip().isdigit() and len(rest) >= int(lengths[0]):
            rest = rest[int(lengths[0]) :]
            if rest:
                self._requests(rest, packet_no, out)
            return
        side.broken = "resynchronising after a malformed request"
        if rest and looks_like_http(rest):
            self._requests(rest, packet_no, out)

    def _stop_alb_reading(self, request: HttpRequest, head_length: int, invalid: tuple[str, int],
                          rest: bytes, packet_no: int, out: list[AppMessage]) -> None:  # fmt: skip
        """An invalid body length: the ALB's reading ends here; what a back end stopping at
        that length reads on is listed with ``reading="backend"`` (see _http_framing)."""
        why, backend_body = invalid
        following = rest[backend_body:]
        request = replace(request, backend_would_read=self._backend_lines(following))
        for pending in self._waiting:
            if pending.request.index == request.index:
                pending.request = request
        damaged = f"invalid length: {why}; the ALB reads no further on this connection"
        out.append(self._request_message(request, head_length, "headers", packet_no))
        out.append(self._request_message(request, head_length, "complete", packet_no, damaged))
        self._req.reset()
        self._reading = "backend"
        self._backend_skip = max(0, backend_body - len(rest))
        if following:
            self._requests(following, packet_no, out)

    def _backend_lines(self, data: bytes) -> tuple[str, ...]:
        """The request lines a back end would read in ``data`` (a throwaway parser)."""
        probe = HttpParser(self.flow)
        probe._reading = "backend"
        found = probe.feed(Direction.TO_SERVER, data, 0, self._time) + probe.close()
        return tuple(m.summary for m in found if m.fields.get("stage") == "headers" and not m.damaged)

    # -- responses -----------------------------------------------------------------------

    def _new_response_conn(self) -> h11.Connection:
        conn = h11.Connection(h11.CLIENT)
        pending = self._waiting[0] if self._waiting else None
        method = pending.method if pending else b"GET"
        headers = [(b"Host", b"osilab")]
        if pending is not None and pending.upgrade is not None:
            headers += [(b"Connection", b"upgrade"), (b"Upgrade", pending.upgrade)]
        try:
            conn.send(h11.Request(method=method, target=b"/", headers=headers))
        except h11.LocalProtocolError:
            conn.send(h11.Request(method=b"GET", target=b"/", headers=headers[:1]))
        conn.send(h11.EndOfMessage())
        return conn

    def _responses(self, data: bytes, packet_no: int, out: list[AppMessage]) -> None:
        side = self._resp
        if side.broken is not None:
            if not data.startswith(b"HTTP/"):
                return
            side.broken = None
        if side.conn is None and not side.fed and side.status is None and self._paused is None:
            data = self._plain_responses(data, packet_no, out)
            if not data:
                return
        if side.first_packet is None:
            side.first_packet = packet_no
        side.receive(data, self._new_response_conn)
        self._run_responses(packet_no, out)

    def _plain_responses(self, data: bytes, packet_no: int, out: list[AppMessage]) -> bytes:
        """Whole plain responses at the start of ``data`` without h11; returns the rest."""
        waiting = self._waiting
        while data:
            pending = waiting[0] if waiting else None
            if pending is not None and pending.upgrade is not None:
                return data
            found = read_response(data, pending.method if pending is not None else b"GET")
            if found is None:
                return data
            status, reason, version, headers, head_length, body = found
            if pending is not None:
                waiting.popleft()
            index = pending.request.index if pending is not None else -1
            response = self._new_response(index, status, reason, "HTTP/" + version,
                                          tuple(headers), packet_no, packet_no, body, ())  # fmt: skip
            out.append(self._response_message(response, head_length + body, packet_no))
            data = data[head_length + body :]
        return data

    def _response_message(
        self, response: HttpResponse, length: int, packet_no: int, damaged: str | None = None
    ) -> AppMessage:
        """The ``"complete"`` message of a response, read by h11 or by the plain reader."""
        fields = {
            "stage": "complete",
            "response": True,
            "response.code": response.status,
            "response.phrase": response.reason,
            "request_index": response.index,
            "content_length": response.body_length,
        }
        summary = f"{response.version} {response.status} {response.reason}"
        return self._message(Direction.TO_CLIENT, response.first_packet, packet_no, length, summary,
                             fields, response, damaged)  # fmt: skip

    def _run_responses(self, packet_no: int, out: list[AppMessage]) -> None:
        side = self._resp
        for event, conn in _events(side):
            if isinstance(event, h11.RemoteProtocolError):
                out.extend(self._cut(Direction.TO_CLIENT, packet_no, f"h11: {event}"))
                side.reset()
                side.broken = f"unparseable response ({event})"
                return
            if isinstance(event, h11.InformationalResponse):
                if self._final_101(event):
                    self._response_end(packet_no, out, len(conn.trailing_data[0]))
                else:
                    self._interim(event, packet_no, out)
                if event.status_code == 101:
                    self._switch(packet_no, out)
                    return
            elif isinstance(event, h11.Response):
                side.status = (
                    event.status_code,
                    event.reason,
                    event.http_version,
                    list(event.headers.raw_items()),
                )
                side.message = packet_no
                side.head_done = True
                side.head = bytearray()
                side.body = 0
            elif isinstance(event, h11.Data):
                side.body += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                leftover = conn.trailing_data[0]
                paused_ok = self._response_end(packet_no, out, len(leftover))
                if paused_ok:
                    self._switch(packet_no, out, leftover)
                    return
                side.reset()
                if leftover:  # the next response, already begun
                    side.first_packet = packet_no
                    side.receive(leftover, self._new_response_conn)
            elif event is h11.PAUSED:
                # A 2xx answered CONNECT: the connection is now a tunnel.
                self._switch(packet_no, out)
                return
            else:
                return

    def _final_101(self, event: h11.InformationalResponse) -> bool:
        """A ``101`` that is the upgrade request's final response: noted as the response.

        After ``Upgrade: websocket`` (or any protocol but h2c) the 101 is the final answer
        (RFC 9110 §15.2.2; RFC 6455 §4.2.2), so ``osilab http`` shows status 101. After
        ``h2c`` the request's final response comes on HTTP/2 stream 1 (RFC 7540 §3.2): there
        the 101 stays interim.
        """
        pending = self._paused or (self._waiting[0] if self._waiting else None)
        if event.status_code != 101 or pending is None or pending.upgrade is None:
            return False
        if pending.upgrade.startswith(b"h2c"):
            return False
        headers = list(event.headers.raw_items())
        self._resp.status = (101, event.reason, event.http_version, headers)
        self._resp.message = None  # its head completes in the packet being read
        return True

    def _interim(
        self, event: h11.InformationalResponse, packet_no: int, out: list[AppMessage]
    ) -> None:
        side = self._resp
        side.interim.append(event.status_code)
        trailing = len(side.conn.trailing_data[0]) if side.conn is not None else 0
        length = max(0, side.fed - trailing - side.accounted)
        side.accounted += length
        summary = f"HTTP/{_text(event.http_version)} {event.status_code} {_text(event.reason)}"
        fields = {"stage": "interim", "response": True, "response.code": event.status_code,
                  "response.phrase": _text(event.reason)}  # fmt: skip
        out.append(self._message(Direction.TO_CLIENT, side.first_packet or packet_no, packet_no,
                                 length, summary, fields))  # fmt: skip
        side.first_packet = packet_no if trailing else None  # where the next response starts

    def _response_end(
        self, packet_no: int, out: list[AppMessage], trailing: int, damaged: str | None = None
    ) -> bool:
        """Emit the finished response; True when it switches the connection's protocol."""
        side = self._resp
        if side.status is None:
            return False
        status, reason, version, headers = side.status
        pending = self._waiting.popleft() if self._waiting else None
        index = pending.request.index if pending else -1
        response = self._new_response(
            index, status, _text(reason), "HTTP/" + _text(version),
            tuple((_text(k), _text(v)) for k, v in headers), side.first_packet or packet_no,
            side.message if isinstance(side.message, int) else packet_no, side.body,
            tuple(side.interim),
        )  # fmt: skip
        length = max(0, side.fed - trailing - side.accounted)
        out.append(self._response_message(response, length, packet_no, damaged))
        switching = (
            pending is not None
            and self._paused is pending
            and ((pending.method == b"CONNECT" and 200 <= status < 300) or status == 101)
        )
        if pending is not None and self._paused is pending and not switching:
            # The server declined the upgrade: the held client bytes are HTTP/1.1 again.
            self._paused = None
            held, self._req.held = bytes(self._req.held), bytearray()
            if held:
                self._requests(held, packet_no, out)
        return switching

    def _switch(
        self, packet_no: int, out: list[AppMessage], server_rest: bytes | None = None
    ) -> None:
        """101 Switching Protocols (or a CONNECT tunnel): hand the rest to the new protocol."""
        side = self._resp
        if server_rest is None:
            server_rest = side.conn.trailing_data[0] if side.conn is not None else b""
        pending = self._paused or (self._waiting[0] if self._waiting else None)
        upgrade = pending.upgrade if pending else None
        if pending is not None and pending.method != b"CONNECT":
            # The 101 is the final answer to the upgrade request (RFC 9110 §15.2.2).
            if self._waiting and self._waiting[0] is pending:
                self._waiting.popleft()
        if upgrade is not None and upgrade.startswith(b"h2c"):
            from osilab.protocols.http2 import Http2Parser

            self.switched = "http2"
            self._inner = Http2Parser(
                self.flow,
                upgraded=True,
                upgrade_request=pending.request if pending else None,
                next_index=self._next_index,
            )
        elif upgrade is not None and upgrade.startswith(b"websocket"):
            # RFC 6455: frames from here on, read with the handshake both sides made.
            self.switched = "websocket"
            answer = tuple((_text(k), _text(v)) for k, v in side.status[3]) if side.status else ()
            asked = pending.request.headers if pending else ()
            self._inner = WebSocketParser(self.flow, shake=handshake(asked, answer))
        else:
            self.switched = "tunnel"
        client_rest = bytes(self._req.held)
        self._req.held = bytearray()
        self._paused = None
        side.reset()
        self._req.reset()
        if self._inner is not None:
            if server_rest:
                out.extend(
                    self._inner.feed(Direction.TO_CLIENT, server_rest, packet_no, self._time)
                )
            if client_rest:
                out.extend(
                    self._inner.feed(Direction.TO_SERVER, client_rest, packet_no, self._time)
                )

    # -- cut short -----------------------------------------------------------------------

    def _cut(self, direction: Direction, packet_no: int, why: str) -> list[AppMessage]:
        """A message that will never complete: report what is known, marked damaged."""
        out: list[AppMessage] = []
        if direction is Direction.TO_SERVER:
            side = self._req
            if isinstance(side.message, HttpRequest):
                self._request_end(packet_no, out, damaged=f"request cut short: {why}")
            elif side.head and looks_like_http(bytes(side.head)):
                _, request = self._tolerant_head(bytes(side.head), packet_no)
                damaged = f"request head cut short: {why}"
                out.append(
                    self._request_message(request, len(side.head), "headers", packet_no, damaged)
                )
        else:
            side = self._resp
            if side.status is not None:
                self._response_end(packet_no, out, 0, damaged=f"response cut short: {why}")
        return out

"""The capture, indexed for the journey: flows per hop, their byte streams, their messages.

A journey needs to find *one* request on every hop of a multi-hop capture. This module
does the groundwork, once per capture, without knowing what a journey is:

* every TCP connection is kept apart **per hop** (pcapng interface), because the same
  connection can be seen on two hops (an NLB forwards it whole);
* each direction of a connection is put back in order with
  :class:`osilab.streams.reassembly.StreamReassembler`, keeping for every byte the packet
  that carried it;
* HTTP/1.x streams are split into requests and responses by h11 (RFC 9112 framing:
  Content-Length, chunked, no body for HEAD/1xx/204/304), which says exactly where each
  head and each message ends, so the packet where a request's headers became complete is
  known (the moment an L7 device can act);
* Redis and PostgreSQL connections are request/response protocols: each *run* of
  payload in one direction is one message (a command, a reply, a query, its rows).

Sans-IO: it is given packets and returns records; it never opens a file.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import h11

from osilab.capture.dissect import HTTP_METHODS
from osilab.capture.packet import TCP_ACK, TCP_SYN, Packet
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import Endpoint, FlowKey
from osilab.streams.reassembly import Chunk, StreamReassembler

__all__ = [
    "CaptureIndex",
    "Flow",
    "Exchange",
    "Run",
    "SERVER_PORTS",
    "resp_summary",
    "pgsql_summary",
]

#: Ports that name the server side of a connection whose SYN was not captured.
SERVER_PORTS = frozenset({80, 443, 8080, 8081, 6379, 5432})
#: Port -> the request/response protocol spoken on it (besides HTTP, found by its first bytes).
STORE_PORTS = {6379: "resp", 5432: "pgsql"}


@dataclass
class Flow:
    """One TCP connection as seen on one hop, with both directions reassembled."""

    hop: str
    key: FlowKey
    syn_packet: int | None = None
    streams: dict[str, bytearray] = field(
        default_factory=lambda: {"c": bytearray(), "s": bytearray()}
    )
    chunks: dict[str, list[Chunk]] = field(default_factory=lambda: {"c": [], "s": []})
    broken: dict[str, bool] = field(default_factory=lambda: {"c": False, "s": False})
    proxy_header: int = 0  # bytes of PROXY protocol header before the client's first request
    reassemblers: dict[str, StreamReassembler] = field(
        default_factory=lambda: {"c": StreamReassembler(), "s": StreamReassembler()}
    )

    def packet_at(self, side: str, offset: int) -> int | None:
        """The packet whose arrival made byte ``offset`` of direction ``side`` readable."""
        chunks = self.chunks[side]
        starts = [chunk.offset for chunk in chunks]
        position = bisect_right(starts, offset) - 1
        if position < 0 or offset >= chunks[position].end:
            return None
        return chunks[position].delivered_at


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response on one flow, with the packets that carried them."""

    flow: Flow
    request: HttpRequest
    response: HttpResponse | None

    def matches(self, request_id: str) -> bool:
        """True when the request carries ``request_id`` (``X-Request-Id`` or ``?rid=``)."""
        if self.request.header("x-request-id") == request_id:
            return True
        return request_id in parse_qs(self.request.query).get("rid", [])

    @property
    def request_id(self) -> str | None:
        rid = self.request.header("x-request-id")
        if rid:
            return rid
        values = parse_qs(self.request.query).get("rid")
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Run:
    """One message of a request/response store protocol: consecutive payload in one direction."""

    flow: Flow
    side: str  # "c": client (the app) to the store; "s": the store's reply
    protocol: str  # "resp" or "pgsql"
    packets: tuple[int, ...]
    time: float
    data: bytes

    @property
    def summary(self) -> str:
        if self.protocol == "resp":
            return resp_summary(self.data)
        return pgsql_summary(self.data)


def _orient(pkt: Packet) -> tuple[FlowKey, str]:
    """The flow key (client -> server) and which side sent ``pkt``."""
    src, dst = (
        Endpoint(pkt.ip_src or "", pkt.src_port or 0),
        Endpoint(pkt.ip_dst or "", pkt.dst_port or 0),
    )
    flags = pkt.tcp_flags or 0
    if flags & TCP_SYN:
        client_sent = not flags & TCP_ACK
    elif dst.port in SERVER_PORTS and src.port not in SERVER_PORTS:
        client_sent = True
    elif src.port in SERVER_PORTS and dst.port not in SERVER_PORTS:
        client_sent = False
    else:
        client_sent = src.port > dst.port
    if client_sent:
        return FlowKey("tcp", src, dst), "c"
    return FlowKey("tcp", dst, src), "s"


class CaptureIndex:
    """Every TCP flow of a capture, per hop, with its HTTP exchanges and store messages."""

    def __init__(self, packets: Iterable[Packet]) -> None:
        self.packets: dict[int, Packet] = {}
        self.flows: dict[tuple[str, FlowKey], Flow] = {}
        for pkt in packets:
            self.packets[pkt.no] = pkt
            if pkt.proto != "tcp" or pkt.ip_src is None:
                continue
            key, side = _orient(pkt)
            hop = pkt.interface_name or f"interface {pkt.interface}"
            flow = self.flows.get((hop, key))
            if flow is None:
                reverse = FlowKey("tcp", key.server, key.client)
                flow = self.flows.get((hop, reverse))
                if flow is not None:  # first seen the other way round: keep that orientation
                    side = "s" if side == "c" else "c"
                else:
                    flow = self.flows[(hop, key)] = Flow(hop, key)
            flags = pkt.tcp_flags or 0
            if flags & TCP_SYN and not flags & TCP_ACK and flow.syn_packet is None:
                flow.syn_packet = pkt.no
            pieces = flow.reassemblers[side].segment(
                pkt.tcp_seq or 0, flags, pkt.payload, pkt.no, pkt.time
            )
            for piece in pieces:
                if not isinstance(piece, Chunk):
                    flow.broken[side] = True  # a hole: stop reading this direction
                elif not flow.broken[side]:
                    flow.chunks[side].append(piece)
                    flow.streams[side] += piece.data
        self.exchanges: list[Exchange] = []
        self.runs: list[Run] = []
        for flow in self.flows.values():
            flow.proxy_header = _proxy_header_length(bytes(flow.streams["c"][:232]))
            head = bytes(flow.streams["c"][flow.proxy_header : flow.proxy_header + 16])
            if head.split(b" ", 1)[0] in HTTP_METHODS:
                self.exchanges.extend(_split_http(flow, self.packets))
            elif flow.key.server.port in STORE_PORTS:
                self.runs.extend(_split_runs(flow, STORE_PORTS[flow.key.server.port], self.packets))
        self.exchanges.sort(key=lambda ex: (ex.request.time, ex.request.headers_complete_packet))
        self.runs.sort(key=lambda run: (run.time, run.packets[0]))

    def request_ids(self) -> list[str]:
        """Every request id seen, in the order of the requests' first appearance."""
        seen: dict[str, None] = {}
        for exchange in self.exchanges:
            rid = exchange.request_id
            if rid:
                seen.setdefault(rid, None)
        return list(seen)


# ---------------------------------------------------------------------------------------
# HTTP/1.x: h11 says where each message ends
# ---------------------------------------------------------------------------------------


_PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def _proxy_header_length(head: bytes) -> int:
    """Bytes of a PROXY protocol header at the start of a stream (0 when there is none).

    v1 is one text line ``PROXY TCP4 ... \\r\\n``; v2 is a 16-byte binary header (12-byte
    signature, version/command, family, 2-byte length) plus that length
    (haproxy.org/download/2.6/doc/proxy-protocol.txt §2.1, §2.2).
    """
    if head.startswith(_PROXY_V2_SIGNATURE) and len(head) >= 16:
        return 16 + int.from_bytes(head[14:16], "big")
    if head.startswith(b"PROXY "):
        end = head.find(b"\r\n", 0, 108)
        return end + 2 if end > 0 else 0
    return 0


def _consumed(conn: h11.Connection, fed: int) -> int:
    return fed - len(conn.trailing_data[0])


def _split_http(flow: Flow, packets: dict[int, Packet]) -> list[Exchange]:
    """Requests and responses of one HTTP/1.x flow, paired in order (RFC 9112 §9.3)."""
    skip = flow.proxy_header  # stream offsets below are counted after the PROXY header
    upstream, downstream = bytes(flow.streams["c"][skip:]), bytes(flow.streams["s"])
    server = h11.Connection(h11.SERVER)  # reads what the client sent
    client = h11.Connection(h11.CLIENT)  # reads what the server sent
    server.receive_data(upstream)
    client.receive_data(downstream)
    found: list[Exchange] = []
    index = 0
    try:
        while True:
            start = _consumed(server, len(upstream))
            event = server.next_event()
            if not isinstance(event, h11.Request):
                break
            head_end = _consumed(server, len(upstream))
            body = 0
            while True:
                more = server.next_event()
                if isinstance(more, h11.Data):
                    body += len(more.data)
                    continue
                break
            request = _request(flow, index, event, skip + start, skip + head_end, body, packets)
            response = None
            client.send(
                h11.Request(method=event.method, target=b"/", headers=[(b"host", b"journey")])
            )
            client.send(h11.EndOfMessage())
            answer_start = _consumed(client, len(downstream))
            answer = client.next_event()
            while isinstance(answer, h11.InformationalResponse):
                answer_start = _consumed(client, len(downstream))
                answer = client.next_event()
            if isinstance(answer, h11.Response):
                response = _response(
                    flow, index, answer, answer_start, _consumed(client, len(downstream)), packets
                )
                while isinstance(client.next_event(), h11.Data):
                    pass
            found.append(Exchange(flow, request, response))
            index += 1
            server.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
            server.send(h11.EndOfMessage())
            if not (_both_done(server) and _both_done(client)):
                break
            server.start_next_cycle()
            client.start_next_cycle()
    except (h11.ProtocolError, ValueError):
        pass  # the rest of this flow is not HTTP/1.x h11 can frame: keep what was found
    return found


def _both_done(conn: h11.Connection) -> bool:
    return conn.our_state is h11.DONE and conn.their_state is h11.DONE


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _time(packets: dict[int, Packet], number: int | None) -> float:
    return packets[number].time if number in packets else 0.0


def _request(
    flow: Flow,
    index: int,
    event: Any,
    start: int,
    head_end: int,
    body: int,
    packets: dict[int, Packet],
) -> HttpRequest:
    first = flow.packet_at("c", start) or 0
    complete = flow.packet_at("c", max(start, head_end - 1)) or first
    return HttpRequest(
        flow=flow.key,
        index=index,
        method=_text(event.method),
        target=_text(event.target),
        version="HTTP/" + _text(event.http_version),
        headers=tuple((_text(name), _text(value)) for name, value in event.headers.raw_items()),
        first_packet=first,
        headers_complete_packet=complete,
        time=_time(packets, complete),
        body_length=body,
    )


def _response(
    flow: Flow, index: int, event: Any, start: int, head_end: int, packets: dict[int, Packet]
) -> HttpResponse:
    first = flow.packet_at("s", start) or 0
    complete = flow.packet_at("s", max(start, head_end - 1)) or first
    return HttpResponse(
        flow=flow.key,
        index=index,
        status=event.status_code,
        reason=_text(event.reason),
        version="HTTP/" + _text(event.http_version),
        headers=tuple((_text(name), _text(value)) for name, value in event.headers.raw_items()),
        first_packet=first,
        headers_complete_packet=complete,
        time=_time(packets, complete),
    )


# ---------------------------------------------------------------------------------------
# Redis and PostgreSQL: one run of payload in one direction is one message
# ---------------------------------------------------------------------------------------


def _split_runs(flow: Flow, protocol: str, packets: dict[int, Packet]) -> list[Run]:
    tagged = [(chunk.packet_no, side, chunk) for side in ("c", "s") for chunk in flow.chunks[side]]
    tagged.sort(key=lambda item: item[0])
    runs: list[Run] = []
    current: list[tuple[int, str, Chunk]] = []
    for item in tagged + [(0, "", None)]:  # type: ignore[list-item]
        if current and item[1] != current[0][1]:
            side = current[0][1]
            numbers = tuple(dict.fromkeys(entry[0] for entry in current))
            data = b"".join(entry[2].data for entry in current)
            runs.append(Run(flow, side, protocol, numbers, _time(packets, numbers[0]), data))
            current = []
        if item[2] is not None:
            current.append(item)
    return runs


def resp_summary(data: bytes) -> str:
    """A Redis RESP message in words: ``SET rid:r0001 item:3 EX 300``, ``+OK``, ``(nil)``.

    RESP (redis.io/docs/latest/develop/reference/protocol-spec): a command is an array
    ``*N`` of bulk strings ``$len``; a reply is ``+simple``, ``-error``, ``:integer``,
    ``$len`` bulk (``$-1``: nil) or an array. Long values are shortened.
    """
    lines = data.split(b"\r\n")
    if not lines or not lines[0]:
        return "(empty)"
    first = lines[0]
    kind = first[:1]
    if kind == b"*":
        words = [line.decode("utf-8", "replace") for line in lines[2::2][: max(0, _int(first[1:]))]]
        words = [word if len(word) <= 24 else word[:21] + "..." for word in words]
        return " ".join(words) if words else "(empty array)"
    if kind == b"$":
        if first == b"$-1":
            return "(nil): not in the cache"
        value = lines[1].decode("utf-8", "replace") if len(lines) > 1 else ""
        return f'"{value[:40]}{"..." if len(value) > 40 else ""}" ({_int(first[1:])} bytes)'
    return first.decode("utf-8", "replace")


def _int(raw: bytes) -> int:
    try:
        return int(raw)
    except ValueError:
        return 0


#: PostgreSQL frontend/backend message types named in summaries (postgresql.org/docs/current/protocol-message-formats.html).
_PG_TYPES = {
    b"Q": "Query",
    b"P": "Parse",
    b"B": "Bind",
    b"E": "Execute",
    b"S": "Sync",
    b"D": "DataRow",
    b"T": "RowDescription",
    b"C": "CommandComplete",
    b"Z": "ReadyForQuery",
    b"1": "ParseComplete",
    b"2": "BindComplete",
    b"X": "Terminate",
    b"H": "Flush",
}


def pgsql_summary(data: bytes) -> str:
    """A PostgreSQL wire message run in words: the SQL of a query, or the reply's messages.

    Every message after start-up is ``type(1) length(4, including itself) body``; a query
    (``Q``) or a ``Parse`` (``P``, after the statement name) carries the SQL text.
    """
    names: list[str] = []
    position = 0
    while position + 5 <= len(data):
        kind = data[position : position + 1]
        length = struct.unpack_from("!I", data, position + 1)[0]
        body = data[position + 5 : position + 1 + length]
        if kind in (b"Q", b"P"):
            if kind == b"P":
                body = body.split(b"\0", 1)[1] if b"\0" in body else body
            sql = body.split(b"\0", 1)[0].decode("utf-8", "replace")
            return f"{_PG_TYPES[kind]}: {sql}"
        if kind == b"C":
            tag = body.rstrip(b"\0").decode("utf-8", "replace")
            names.append(f"CommandComplete {tag}")
        else:
            names.append(_PG_TYPES.get(kind, kind.decode("latin-1")))
        position += 1 + max(4, length)
    rows = names.count("DataRow")
    compact = [name for name in names if name != "DataRow"]
    if rows:
        after = compact.index("RowDescription") + 1 if "RowDescription" in compact else len(compact)
        compact.insert(after, f"{rows} DataRow")
    return ", ".join(compact) or f"{len(data)} bytes"

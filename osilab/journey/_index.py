"""The capture, indexed for the journey: flows per hop, their HTTP exchanges, their store messages.

A journey needs to find *one* request on every hop of a multi-hop capture. This module
does the groundwork, once per capture, without knowing what a journey is, and without
reading any protocol itself: everything comes from the one pipeline
(:func:`osilab.pipeline.track`), so the journey and the balancer models see the same
flows, the same reassembled bytes and the same messages.

* Flows are the pipeline's: each :class:`~osilab.streams.keys.FlowKey` carries its capture
  interface (a *hop*), because the same connection can be seen on two hops (an NLB
  forwards it whole), and is oriented client -> server as everywhere else in osilab.
* HTTP requests and responses are the :class:`~osilab.protocols.messages.HttpRequest` and
  :class:`~osilab.protocols.messages.HttpResponse` the HTTP parsers produce (h11's RFC 9112
  framing for HTTP/1.x, HTTP/2 streams too), paired by their position in the flow (or
  their stream id). A request's ``headers_complete_packet`` is the moment an L7 device
  can act.
* A PROXY protocol header is the pipeline's ``proxy`` message; its length is kept.
* UDP flows are kept too, with the number, time and direction of each datagram (a QUIC
  connection's trip, :mod:`osilab.journey.quic`, reads those), and every ``quic`` message
  of the QUIC parser per flow (:attr:`CaptureIndex.quic`); HTTP/3 requests on them are
  exchanges like any other. ICMP errors are kept by packet number (:attr:`CaptureIndex.icmp`):
  a "port unreachable" is how a client that moved away answers the server's old path.
* After an HTTP ``101`` the HTTP parser hands the connection to the WebSocket parser
  (RFC 6455); its messages (a fragmented message is one) are kept per flow
  (:attr:`CaptureIndex.websocket`), so a journey can follow one past the Upgrade.
* Redis and PostgreSQL are request/response protocols: the RESP and PostgreSQL parsers'
  messages are grouped into *runs*, the consecutive messages of one direction (a command,
  its reply; a query, its rows), and put in words (:func:`resp_words`, :func:`pgsql_words`).

Memory: only numbers and messages are kept, not packets. The journey asks for the few
packets it shows (:meth:`CaptureIndex.packets_at`) and the packets of one hop
(:meth:`CaptureIndex.hop_packets`, for the NLB model); both walk the packet source again,
so the source must be iterable more than once (a :class:`~osilab.capture.reader.Capture`
reads its file again; a list is a list).

Sans-IO: it is given packets and returns records; it never opens a file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from osilab.capture.packet import TCP_ACK, TCP_SYN, Packet
from osilab.pipeline import FlowMessage, track
from osilab.protocols import AppMessage, Direction
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.protocols.pgsql import PgsqlMessage
from osilab.protocols.resp import RespCommand, RespReply
from osilab.protocols.websocket import WebSocketMessage
from osilab.streams.keys import Endpoint, FlowKey

__all__ = [
    "CaptureIndex",
    "Flow",
    "Exchange",
    "Run",
    "STORE_PROTOCOLS",
    "hop_of",
    "resp_words",
    "pgsql_words",
    "describe",
]

#: The request/response store protocols whose messages a journey follows (by timing).
STORE_PROTOCOLS = frozenset({"resp", "pgsql"})


def hop_of(packet: Packet) -> str:
    """The hop a packet was captured on: its pcapng interface's name, else ``if<n>``, then
    ``/<tunnel>`` when it came through a tunnel (:attr:`FlowKey.tunnel`)."""
    name = packet.interface_name or f"if{packet.interface}"
    tunnel = packet.facts.tunnel
    return f"{name}/{tunnel}" if tunnel else name


@dataclass
class Flow:
    """One TCP connection or UDP flow as seen on one hop (the pipeline's flow, with what a
    journey asks of it).

    Attributes:
        hop: the interface's name (``client-alb``), else ``if<n>``.
        key: the pipeline's flow key (client -> server, with its interface).
        syn_packet: the client's SYN, or ``None`` when the connection opened before the capture.
        proxy_header: bytes of PROXY protocol header before the client's first request.
        datagrams: UDP only: ``(packet number, time, sent by the client)`` of each datagram.
    """

    hop: str
    key: FlowKey
    syn_packet: int | None = None
    proxy_header: int = 0
    datagrams: list[tuple[int, float, bool]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response on one flow."""

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
    """Consecutive messages of a store protocol in one direction: a command, or its reply.

    Attributes:
        flow: the connection.
        side: ``"c"``: the client (the app) to the store; ``"s"``: the store's reply.
        protocol: ``"resp"`` or ``"pgsql"``.
        messages: the parser's messages, in order.
    """

    flow: Flow
    side: str
    protocol: str
    messages: tuple[AppMessage, ...]

    @property
    def first_packet(self) -> int:
        return self.messages[0].first_packet

    @property
    def last_packet(self) -> int:
        """The packet that completed the run (the PDU a journey shows)."""
        return self.messages[-1].last_packet

    @property
    def time(self) -> float:
        return self.messages[0].time

    @property
    def summary(self) -> str:
        """The run in words: ``SET rid:r0001 item:3 EX 300``, ``(nil): not in the cache``..."""
        return describe(self.protocol, self.messages)

    @property
    def text(self) -> str:
        """Everything the run names, in full (commands' arguments, SQL), to look for an id in."""
        parts: list[str] = []
        for message in self.messages:
            value = message.message
            if isinstance(value, RespCommand):
                parts.append(value.name)
                parts += [arg.decode("utf-8", "replace") for arg in value.arguments]
            elif "query" in message.fields:
                parts.append(str(message.fields["query"]))
            else:
                parts.append(message.summary)
        return " ".join(parts)


class CaptureIndex:
    """Every TCP flow of a capture, per hop, with its HTTP exchanges and store messages.

    Args:
        packets: the packets, iterable more than once (a capture or a list).
        keylog: an NSS key log: TLS legs (the viewer's side of the CloudFront edge, the
            ALB's HTTPS listener) become readable exchanges too.
    """

    def __init__(self, packets: Iterable[Packet], *, keylog: str | None = None) -> None:
        self._source = packets
        self.flows: dict[FlowKey, Flow] = {}
        self.exchanges: list[Exchange] = []
        self.runs: list[Run] = []
        #: Each flow's WebSocket messages (the pipeline's, whose ``message`` is a
        #: :class:`~osilab.protocols.websocket.WebSocketMessage`), in the order they completed.
        self.websocket: dict[FlowKey, list[AppMessage]] = {}
        #: Each UDP flow's ``quic`` messages (one per datagram the QUIC parser read; its
        #: ``message`` a :class:`~osilab.protocols.quic.QuicDatagram`), in capture order.
        self.quic: dict[FlowKey, list[AppMessage]] = {}
        #: ICMP error packets (destination unreachable...), by packet number, with their hop.
        self.icmp: list[tuple[int, int]] = []
        requests: dict[tuple[FlowKey, int], HttpRequest] = {}
        responses: dict[tuple[FlowKey, int], HttpResponse] = {}
        open_runs: dict[FlowKey, list[AppMessage]] = {}
        for step in track(packets, keylog=keylog):
            packet, key = step.packet, step.flow
            if packet is not None and key is not None and key.proto in ("tcp", "udp"):
                flow = self.flows.get(key)
                if flow is None:
                    flow = self.flows[key] = Flow(hop_of(packet), key)
                if key.proto == "udp":
                    sender = Endpoint(packet.ip_src or "", packet.src_port or 0)
                    flow.datagrams.append((packet.no, packet.time, sender == key.client))
                flags = packet.tcp_flags or 0
                if flags & TCP_SYN and not flags & TCP_ACK and flow.syn_packet is None:
                    flow.syn_packet = packet.no
            elif packet is not None and key is None and "icmp" in packet:
                self.icmp.append((packet.no, packet.interface))
            for item in step.messages:
                self._message(item, requests, responses, open_runs)
        for key, messages in open_runs.items():
            self._close_run(key, messages)
        for place, request in requests.items():
            flow = self.flows.get(place[0])
            if flow is not None:
                self.exchanges.append(Exchange(flow, request, responses.get(place)))
        self.exchanges.sort(key=lambda ex: (ex.request.time, ex.request.headers_complete_packet))
        self.runs.sort(key=lambda run: (run.time, run.first_packet))

    def _message(
        self,
        item: FlowMessage,
        requests: dict[tuple[FlowKey, int], HttpRequest],
        responses: dict[tuple[FlowKey, int], HttpResponse],
        open_runs: dict[FlowKey, list[AppMessage]],
    ) -> None:
        key, message = item.flow, item.message
        rich = message.message
        if isinstance(rich, HttpRequest):
            requests.setdefault((key, _position(rich)), rich)  # the head first, then the end
        elif isinstance(rich, HttpResponse) and message.fields.get("stage") == "complete":
            responses.setdefault((key, _position(rich)), rich)
        elif message.protocol == "quic":
            self.quic.setdefault(key, []).append(message)
        elif isinstance(rich, WebSocketMessage):
            self.websocket.setdefault(key, []).append(message)
        elif message.protocol == "proxy" and message.direction is Direction.TO_SERVER:
            flow = self.flows.get(key)
            if flow is not None and not flow.proxy_header:
                flow.proxy_header = message.length
        elif message.protocol in STORE_PROTOCOLS and message.damaged is None:
            run = open_runs.get(key)
            if run and run[-1].direction is not message.direction:
                self._close_run(key, run)
                run = None
            if not run:
                run = open_runs[key] = []
            run.append(message)

    def _close_run(self, key: FlowKey, messages: list[AppMessage]) -> None:
        flow = self.flows.get(key)
        if flow is None or not messages:
            return
        side = "c" if messages[0].direction is Direction.TO_SERVER else "s"
        self.runs.append(Run(flow, side, messages[0].protocol, tuple(messages)))

    def request_ids(self) -> list[str]:
        """Every request id seen, in the order of the requests' first appearance."""
        seen: dict[str, None] = {}
        for exchange in self.exchanges:
            rid = exchange.request_id
            if rid:
                seen.setdefault(rid, None)
        return list(seen)

    def flow_of(self, packet: Packet) -> Flow | None:
        """The flow (on the packet's own hop) that carried ``packet`` (a TCP or UDP one)."""
        for key in _both_ways(packet):
            flow = self.flows.get(key)
            if flow is not None:
                return flow
        return None

    def packets_at(self, numbers: Collection[int]) -> dict[int, Packet]:
        """The packets with these numbers (one more walk over the source)."""
        wanted = set(numbers)
        found: dict[int, Packet] = {}
        for packet in self._source:
            if packet.no in wanted:
                found[packet.no] = packet
                if len(found) == len(wanted):
                    break
        return found

    def hop_packets(self, interface: int) -> Iterator[Packet]:
        """Every packet of one hop, in capture order (one more walk over the source)."""
        for packet in self._source:
            if packet.interface == interface:
                yield packet


def _position(message: HttpRequest | HttpResponse) -> int:
    """Where a message sits in its flow: its HTTP/2 stream, else its HTTP/1 order (RFC 9112 §9.3)."""
    return message.stream_id if message.stream_id is not None else message.index


def _both_ways(packet: Packet) -> tuple[FlowKey, FlowKey]:
    source = Endpoint(packet.ip_src or "", packet.src_port or 0)
    destination = Endpoint(packet.ip_dst or "", packet.dst_port or 0)
    proto = "udp" if packet.proto == "udp" else "tcp"
    return (
        FlowKey(proto, source, destination, packet.interface, packet.facts.tunnel),
        FlowKey(proto, destination, source, packet.interface, packet.facts.tunnel),
    )


# ---------------------------------------------------------------------------------------
# Store messages in words (from the parsers' values; nothing is parsed here)
# ---------------------------------------------------------------------------------------


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def resp_words(message: AppMessage) -> str:
    """One Redis message in words: ``SET rid:r0001 item:3 EX 300``, ``+OK``, ``(nil)...``.

    RESP (redis.io/docs/latest/develop/reference/protocol-spec): a command is an array of
    bulk strings; a reply is a simple string, an error, an integer, a bulk string (a
    null one when the key is missing: a cache miss) or an array. The value is the
    :class:`~osilab.protocols.resp.RespParser`'s; long words are shortened.
    """
    value = message.message
    if isinstance(value, RespCommand):
        words = [value.name] + [arg.decode("utf-8", "replace") for arg in value.arguments]
        return " ".join(_short(word, 24) for word in words)
    if isinstance(value, RespReply):
        if value.value is None:
            return "(nil): not in the cache"
        if isinstance(value.value, bytes) and value.kind != "simple_string":
            text = value.value.decode("utf-8", "replace")
            return f'"{_short(text, 43)}" ({len(value.value)} bytes)'
    return message.summary


def pgsql_words(messages: Sequence[AppMessage]) -> str:
    """PostgreSQL messages in words: the SQL of a query, or the reply's message types.

    A query (``Q``) or a ``Parse`` (``P``) carries the SQL text, which is what a learner
    wants to read, and a ``Bind`` (``B``) the values of a prepared statement (pgjdbc binds
    the request id there); a reply is named by its messages, with the data rows counted
    (``Row description, 1 Data row, Command completion SELECT 1, Ready for query``). The
    names are the :class:`~osilab.protocols.pgsql.PgsqlParser`'s (Wireshark's).
    """
    names: list[str] = []
    asked: list[str] = []  # a query's SQL, and the values bound to a prepared statement
    for message in messages:
        value = message.message
        if not isinstance(value, PgsqlMessage):
            names.append(message.summary)
        elif value.frontend and value.type_code in ("Q", "P"):
            asked.append(f"{value.type}: {message.fields.get('query', '')}")
        elif value.frontend and value.type_code == "B":
            asked.append(message.summary)
        elif not value.frontend and value.type_code == "C":
            names.append(f"{value.type} {message.fields.get('tag', '')}".rstrip())
        else:
            names.append(value.type)
    if asked:
        return "; ".join(asked)
    rows = names.count("Data row")
    compact = [name for name in names if name != "Data row"]
    if rows:
        after = (
            compact.index("Row description") + 1 if "Row description" in compact else len(compact)
        )
        compact.insert(after, f"{rows} Data row" + ("s" if rows > 1 else ""))
    return ", ".join(compact) or "(no message)"


def describe(protocol: str, messages: Sequence[AppMessage]) -> str:
    """A run of ``protocol`` messages in words (``resp`` or ``pgsql``)."""
    if protocol == "resp":
        return "; ".join(resp_words(message) for message in messages)
    return pgsql_words(messages)

"""Which protocol a flow speaks: content sniffing first, ports second, then one parser per flow.

A flow's bytes say what they are far more reliably than its port numbers do: an HTTP
request sent to port 22 is still HTTP, and gRPC on port 50051 is HTTP/2. So the first
bytes of a flow (in whichever direction speaks first) are looked at before the ports,
in this order (:func:`sniff`):

======================================  ==========================================
first bytes                             protocol
======================================  ==========================================
``PROXY `` or the PROXY v2 signature    proxy, then sniff again on what follows
``PRI * HTTP/2.0``                      http2 (prior knowledge, RFC 9113 §3.3)
an HTTP request line or status line     http (which may switch to http2 on ``h2c``)
a TLS record header                     tls (decrypted data goes to http / http2)
server port 6379 / 5432 / 53            resp / pgsql / dns
anything else                           raw (no parser; the per-packet layers stay)
======================================  ==========================================

The parsers live in :mod:`osilab.protocols`, the stage just below this one, and
:data:`PARSERS` names each of them directly: one immutable table from protocol name to
parser class, read in one place (:func:`new_parser`). Every parser is built the same way,
``Parser(flow, keylog=...)`` (the :class:`ParserFactory` signature; only TLS uses the key
log). A parser that raises on odd bytes is stopped for that flow and the failure is
reported as a damaged message: one bad flow never stops a capture.

UDP flows are not sniffed: a datagram's first bytes are an arbitrary identifier as often
as a signature, so only the port decides (53 -> dns), on the first datagram -- except for
DTLS records and QUIC long headers (a known version), which announce themselves, and a
QUIC short header whose Destination Connection ID names a connection already seen on the
hop (a client that migrated to a new port, RFC 9000 §9): the parsers of one capture read
share that connection-ID table through :class:`SharedState`, the one state that crosses
flows, created by the pipeline for each read.

What this module must not know: packets, reassembly or files. It is fed ordered bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from osilab.capture.dissect import HTTP_LINE_LIMIT, http_line_pending, looks_like_http
from osilab.capture.tls_records import looks_like_sslv2
from osilab.protocols import AppMessage, Direction, StreamParser
from osilab.protocols.dns import DnsParser
from osilab.protocols.dtls import DtlsParser, looks_like_dtls
from osilab.protocols.http import HttpParser
from osilab.protocols.http2 import Http2Parser
from osilab.protocols.pgsql import PgsqlParser
from osilab.protocols.proxy import ProxyParser
from osilab.protocols.quic import QuicConnections, QuicParser, looks_like_quic, scope_of
from osilab.protocols.resp import RespParser
from osilab.protocols.socks import SocksParser
from osilab.protocols.starttls import PORT_PROTOCOLS as STARTTLS_PORTS
from osilab.protocols.starttls import StartTlsParser
from osilab.protocols.tls import TlsParser
from osilab.streams.keys import FlowKey

__all__ = [
    "PARSERS",
    "SharedState",
    "PORTS",
    "ParserFactory",
    "sniff",
    "client_speaks",
    "new_parser",
    "FlowParser",
    "proxy_header_length",
]


class ParserFactory(Protocol):
    """How every parser of :data:`PARSERS` is built: for one flow, with an optional key log."""

    def __call__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> StreamParser: ...


#: protocol -> its :class:`~osilab.protocols.StreamParser` class (one instance per flow).
PARSERS: MappingProxyType[str, ParserFactory] = MappingProxyType(
    {
        "http": HttpParser,
        "http2": Http2Parser,
        "tls": TlsParser,
        "dns": DnsParser,
        "resp": RespParser,
        "pgsql": PgsqlParser,
        "proxy": ProxyParser,
        "starttls": StartTlsParser,
        "socks": SocksParser,
        "dtls": DtlsParser,
        "quic": QuicParser,
    }
)

#: Server port -> protocol, for bytes that do not announce themselves (IANA registry).
PORTS: MappingProxyType[int, str] = MappingProxyType(
    {6379: "resp", 5432: "pgsql", 53: "dns", 1080: "socks", **dict.fromkeys(STARTTLS_PORTS, "starttls")}
)

_PROXY_V2 = b"\r\n\r\n\x00\r\nQUIT\n"
_H2_PREFACE = b"PRI * HTTP/2.0"
#: Bytes looked at before deciding (or fewer when a line ends or the flow pauses).
SNIFF_BYTES = 16


def _looks_like_tls(data: bytes) -> bool:
    return (len(data) >= 3 and 20 <= data[0] <= 24 and data[1] == 3 and data[2] <= 4) or looks_like_sslv2(
        data, 0, len(data))  # an SSL 2.0 hello: the TLS parser reads its records too


#: First bytes that may begin a signature sniffed above (an HTTP method -- any token,
#: RFC 9110 §9.1 -- or status line, ``PROXY``, ``PRI``, the PROXY v2 ``\r``, a TLS content
#: type). Bytes starting otherwise can only be decided by port, so there is no point
#: waiting for more of them (a PostgreSQL SSLRequest is 8 bytes and its answer is one byte).
_SIGNATURE_STARTS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
    b"\r\x14\x15\x16\x17\x18"
)
#: Segments of the first direction held while a request line of an unknown method is
#: still incomplete (:func:`~osilab.capture.dissect.http_line_pending`).
SNIFF_LINE_SEGMENTS = 8


def _may_be_signature(first: bytes) -> bool:
    return not first or first[0] in _SIGNATURE_STARTS


def sniff(data: bytes, server_port: int) -> str:
    """The protocol a flow's first bytes (or, failing that, its server port) announce.

    >>> sniff(b"GET / HTTP/1.1\\r\\n", 22), sniff(b"\\x16\\x03\\x01\\x02\\x00", 8443), sniff(b"*1\\r\\n", 6379)
    ('http', 'tls', 'resp')
    """
    if data.startswith(b"PROXY ") or data.startswith(_PROXY_V2):
        return "proxy"
    if data.startswith(_H2_PREFACE):
        return "http2"
    if looks_like_http(data):
        return "http"
    if _looks_like_tls(data):
        return "tls"
    return PORTS.get(server_port, "raw")


def client_speaks(data: bytes) -> bool | None:
    """Whether a flow's first payload is what a client sends (True), what a server sends
    (False), or tells neither (None): the content half of "who is the client".

    A request line (RFC 9112 §3) or a TLS ClientHello comes from a client; a status line
    (RFC 9112 §4) or a TLS ServerHello from a server (RFC 8446 §4). The pipeline turns a
    midstream flow round on this (:meth:`osilab.streams.flows.FlowTable.make_client`),
    since the streams stage reads no payload.

    >>> client_speaks(b"QUERY /a HTTP/1.1\\r\\n"), client_speaks(b"HTTP/1.1 200 OK\\r\\n"), client_speaks(b"hi")
    (True, False, None)
    """
    if data.startswith((b"HTTP/1.", b"HTTP/0.9")):
        return False
    if looks_like_http(data):
        return True
    if len(data) >= 6 and data[0] == 0x16 and data[1] == 3 and data[5] in (1, 2):
        return data[5] == 1  # handshake type 1 ClientHello, 2 ServerHello
    return None


def proxy_header_length(data: bytes) -> int | None:
    """Bytes taken by a PROXY protocol header at the start of ``data``; None if incomplete.

    v1 is one text line of at most 107 bytes ending in CRLF; v2 is a 16-byte fixed header
    whose last two bytes give the length of what follows (haproxy PROXY protocol spec).
    """
    if data.startswith(_PROXY_V2):
        if len(data) < 16:
            return None
        return 16 + int.from_bytes(data[14:16], "big")
    end = data.find(b"\r\n", 0, 108)
    if end < 0:
        return None if len(data) < 108 else len(data)
    return end + 2


@dataclass(frozen=True, slots=True)
class SharedState:
    """What the parsers of one capture read share across flows (one per read, made by
    the pipeline): today QUIC's connection-ID table, so that a connection that moves to a
    new UDP flow keeps its keys and its HTTP/3 state (:class:`~osilab.protocols.quic.QuicConnections`).
    """

    quic: QuicConnections = field(default_factory=QuicConnections)


def new_parser(name: str, flow: FlowKey, *, keylog: str | None = None,
               shared: SharedState | None = None) -> StreamParser | None:  # fmt: skip
    """A parser for ``name`` on this flow, or None when osilab has none (``"raw"``).

    ``shared`` is the capture read's :class:`SharedState`; only QUIC reads it (its
    parser is the one built with more than the :class:`ParserFactory` arguments).

    >>> flow = FlowKey.parse("198.51.100.7:51514-203.0.113.10:6379")
    >>> type(new_parser("resp", flow)).__name__, new_parser("raw", flow)
    ('RespParser', None)
    """
    factory = PARSERS.get(name)
    if factory is QuicParser and shared is not None:
        return QuicParser(flow, keylog=keylog, connections=shared.quic)
    return None if factory is None else factory(flow, keylog=keylog)


def _damaged(
    protocol: str, direction: Direction, packet_no: int, time: float, why: str
) -> AppMessage:
    return AppMessage(
        protocol,
        direction,
        packet_no,
        packet_no,
        0,
        f"{protocol}: {why}",
        {"stage": "error", "layer": False},
        time,
        None,
        why,
    )


class FlowParser:
    """Drives one flow's protocol parser: sniffs, starts it, and stacks what it needs.

    Attributes:
        protocol: ``None`` while undecided, then the protocol name or ``"raw"``.
    """

    __slots__ = (
        "flow",
        "keylog",
        "shared",
        "protocol",
        "parser",
        "_pending",
        "_pending_size",
        "_inner",
        "_proxy_done",
    )

    def __init__(self, flow: FlowKey, keylog: str | None = None, shared: SharedState | None = None) -> None:
        self.flow = flow
        self.keylog = keylog
        #: The capture read's state shared across flows (a fresh one when none is given).
        self.shared = shared if shared is not None else SharedState()
        self.protocol: str | None = None
        self.parser: Any = None
        self._pending: list[tuple[Direction, bytes, int, float]] = []
        self._pending_size = 0
        self._inner: Any = None  # the parser for decrypted TLS application data
        self._proxy_done = False

    # -- feeding -------------------------------------------------------------------------

    def feed(
        self, direction: Direction, data: bytes, packet_no: int, time: float
    ) -> list[AppMessage]:
        parser = self.parser
        if parser is not None:
            if self.protocol == "tls":
                return self._call("feed", direction, data, packet_no, time)
            try:  # _call, without its indirection: this is every chunk of a flow
                found = parser.feed(direction, data, packet_no, time)
                return found if type(found) is list else list(found or ())
            except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the capture
                return self._failed(exc, "feed", (direction, data, packet_no, time))
        if self.protocol == "raw":
            return []
        self._pending.append((direction, data, packet_no, time))
        self._pending_size += len(data)
        first = self._pending[0][1]
        if (
            self.flow.proto == "tcp"
            and _may_be_signature(first)
            and len(first) < SNIFF_BYTES
            and b"\n" not in first
            and len(self._pending) < 4
        ):
            same = [chunk for d, chunk, _, _ in self._pending if d is self._pending[0][0]]
            joined = b"".join(same)
            if len(joined) < SNIFF_BYTES and b"\n" not in joined:
                return []
        if self.flow.proto == "tcp" and len(self._pending) < SNIFF_LINE_SEGMENTS:
            first_way = self._pending[0][0]
            line = b"".join(chunk for d, chunk, _, _ in self._pending if d is first_way)
            if http_line_pending(line) and not looks_like_http(line):
                return []  # "QUERY /a-long-path..." without its version yet: wait for it
        return self._decide(packet_no, time)

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        if self.parser is None:
            out = self._decide(packet_no, 0.0) if self._pending else []
            if self.parser is None:
                self.protocol = self.protocol or "raw"
                return out
            return out + self._call("gap", direction, size, packet_no)
        return self._call("gap", direction, size, packet_no)

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        out = self._decide(packet_no, time) if self.parser is None and self._pending else []
        if self.parser is not None and hasattr(self.parser, "end"):
            out += self._call("end", direction, packet_no, time)
        return out

    def close(self) -> list[AppMessage]:
        out = self._decide(0, 0.0) if self.parser is None and self._pending else []
        if self.parser is not None:
            out += self._call("close")
        if self._inner is not None:
            try:
                out += self._inner.close()
            except Exception:  # noqa: BLE001 - a parser bug must not stop the capture
                pass
        return out

    # -- internals -----------------------------------------------------------------------

    def _decide(self, packet_no: int, time: float) -> list[AppMessage]:
        pending, self._pending, self._pending_size = self._pending, [], 0
        direction = pending[0][0]
        head = b"".join(chunk for d, chunk, _, _ in pending if d is direction)[:HTTP_LINE_LIMIT]
        if self.flow.proto == "udp":
            # A datagram is whole: decide at once, by port (DNS ids can look like anything);
            # DTLS records and QUIC long headers (a known version) announce themselves, and
            # a short header whose DCID names a connection already seen on this hop.
            name = "dns" if self.flow.server.port == 53 else "dtls" if looks_like_dtls(head) else "raw"
            if name == "raw" and (looks_like_quic(head) or self._known_quic(head)):
                name = "quic"
        else:
            name = sniff(head, self.flow.server.port)
        out: list[AppMessage] = []
        if name == "proxy" and not self._proxy_done:
            size = proxy_header_length(head)
            if size is None:
                if len(pending) < 8:
                    self._pending, self._pending_size = (
                        pending,
                        sum(len(c) for _, c, _, _ in pending),
                    )
                    return out
                size = len(head)
            self._proxy_done = True
            out += self._proxy(direction, head[:size], pending[0][2], pending[0][3])
            rest = self._skip(pending, direction, size)
            for d, chunk, pkt, t in rest:
                out += self.feed(d, chunk, pkt, t)
            return out
        parser = new_parser(name, self.flow, keylog=self.keylog, shared=self.shared)
        if parser is None:
            self.protocol = "raw"
            return out
        self.protocol, self.parser = name, parser
        for d, chunk, pkt, t in pending:
            if self.parser is None:  # it failed on an earlier chunk: the rest is raw
                break
            out += self._call("feed", d, chunk, pkt, t)
        return out

    def _known_quic(self, datagram: bytes) -> bool:
        """A QUIC short header carrying a connection ID of a connection seen on this hop."""
        return self.shared.quic.find(datagram, scope_of(self.flow)) is not None

    @staticmethod
    def _skip(pending: list, direction: Direction, size: int) -> list:
        """The pending chunks without the first ``size`` bytes of ``direction``."""
        rest = []
        for d, chunk, pkt, t in pending:
            if d is direction and size > 0:
                if len(chunk) <= size:
                    size -= len(chunk)
                    continue
                chunk, size = chunk[size:], 0
            rest.append((d, chunk, pkt, t))
        return rest

    def _proxy(
        self, direction: Direction, header: bytes, packet_no: int, time: float
    ) -> list[AppMessage]:
        parser = new_parser("proxy", self.flow)
        if parser is not None:
            try:
                found = parser.feed(direction, header, packet_no, time)
                if found:
                    return list(found)
            except Exception:  # noqa: BLE001
                pass
        version = 2 if header.startswith(_PROXY_V2) else 1
        text = header.rstrip(b"\r\n").decode("ascii", "replace") if version == 1 else "PROXY v2"
        return [
            AppMessage(
                "proxy",
                direction,
                packet_no,
                packet_no,
                len(header),
                text,
                {"stage": "complete", "version": version},
                time,
            )
        ]

    def _call(self, method: str, *args: Any) -> list[AppMessage]:
        try:
            found = list(getattr(self.parser, method)(*args) or ())
        except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the capture
            return self._failed(exc, method, args)
        if self.protocol == "tls":
            found += self._decrypted(found)
        return found

    def _failed(self, exc: Exception, method: str, args: tuple[Any, ...]) -> list[AppMessage]:
        """The parser raised ``exc`` in ``method(*args)``: the rest of the flow is raw,
        and a damaged message says why."""
        name = self.protocol or "?"
        direction = args[0] if args and isinstance(args[0], Direction) else Direction.TO_SERVER
        packet_no = args[2] if method == "feed" else (args[-1] if method == "gap" else 0)
        self.parser, self.protocol = None, "raw"
        return [
            _damaged(
                name,
                direction,
                packet_no if isinstance(packet_no, int) else 0,
                0.0,
                f"the {name} parser failed ({type(exc).__name__}: {exc}); rest of the flow left raw",
            )
        ]

    def _decrypted(self, messages: list[AppMessage]) -> list[AppMessage]:
        """Feed TLS plaintext (see docs/internal-api.md) to an inner HTTP parser."""
        out: list[AppMessage] = []
        for message in messages:
            plaintext = (
                message.fields.get("plaintext") if isinstance(message.fields, dict) else None
            )
            if not plaintext:
                continue
            if self._inner is None:
                alpn = message.fields.get("alpn")
                name = "http2" if alpn == "h2" or plaintext.startswith(_H2_PREFACE) else "http"
                if alpn is None and not looks_like_http(plaintext) and name == "http":
                    continue
                self._inner = new_parser(name, self.flow)
                if self._inner is None:
                    continue
            try:
                out += self._inner.feed(
                    message.direction, plaintext, message.last_packet, message.time
                )
            except Exception:  # noqa: BLE001
                self._inner = None
        return out

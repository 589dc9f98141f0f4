"""STARTTLS: plain-text protocols that upgrade their connection to TLS half-way.

Theory of operation
-------------------
Many protocols older than TLS begin in the clear and *upgrade*: the client asks, the
server agrees, and from the next byte on both directions carry TLS records on the same
TCP connection. The ClientHello (and its server name) is therefore not at the start of the
stream, where :func:`osilab.pipeline.dispatch.sniff` looks, but after the upgrade:

========  ======  ==========================================  ==================
protocol  port    the client asks with                        reference
========  ======  ==========================================  ==================
SMTP      25/587  ``STARTTLS``                                RFC 3207 §4
IMAP      143     ``<tag> STARTTLS``                          RFC 9051 §6.2.1
POP3      110     ``STLS``                                    RFC 2595 §4
FTP       21      ``AUTH TLS`` (or ``AUTH SSL``)              RFC 4217 §4
LDAP      389     ExtendedRequest 1.3.6.1.4.1.1466.20037      RFC 4511 §4.14
XMPP      5222    ``<starttls xmlns=...xmpp-tls'/>``          RFC 6120 §5.4
MySQL     3306    SSLRequest: CLIENT_SSL in the capabilities  MySQL protocol docs
========  ======  ==========================================  ==================

:class:`StartTlsParser` watches the client's plain-text bytes for the request (the
:data:`UPGRADES` table, by server port). Once it was seen, the first chunk in each
direction that starts with a TLS record header is the start of TLS in that direction, and
from there on every byte goes to a :class:`~osilab.protocols.tls.TlsParser`, whose
messages (the ClientHello with its SNI) are this parser's. The plain-text exchange itself
is not decoded: it shows as the flow's TCP segments only. (PostgreSQL's SSLRequest has its
own parser, :mod:`osilab.protocols.pgsql`.)

What this module must not know: packets, reassembly, files.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from osilab.capture.tls_records import looks_like_tls
from osilab.protocols import AppMessage, Direction
from osilab.protocols.tls import TlsParser
from osilab.streams.keys import FlowKey

__all__ = ["StartTlsParser", "UPGRADES", "PORT_PROTOCOLS"]


def _text(*commands: bytes) -> Callable[[bytes], bool]:
    """A client's plain-text command line (case-insensitive, as the RFCs allow)."""

    def asks(chunk: bytes) -> bool:
        upper = chunk.upper()
        return any(command in upper for command in commands)

    return asks


def _mysql_ssl_request(chunk: bytes) -> bool:
    """A MySQL SSLRequest: a packet of 32 bytes (3-byte length, sequence 1) whose capability
    flags (little-endian, 4 bytes) have CLIENT_SSL (0x0800) set."""
    return len(chunk) >= 8 and chunk[:4] == b"\x20\x00\x00\x01" and bool(chunk[4 + 1] & 0x08)


#: Server port -> the protocol upgrading there.
PORT_PROTOCOLS: MappingProxyType[int, str] = MappingProxyType({
    25: "smtp", 587: "smtp", 143: "imap", 110: "pop", 21: "ftp", 389: "ldap", 5222: "xmpp",
    3306: "mysql",
})

#: Protocol -> how its client asks to upgrade (see the module's table).
UPGRADES: MappingProxyType[str, Callable[[bytes], bool]] = MappingProxyType({
    "smtp": _text(b"STARTTLS"),
    "imap": _text(b"STARTTLS"),
    "pop": _text(b"STLS"),
    "ftp": _text(b"AUTH TLS", b"AUTH SSL"),
    "ldap": _text(b"1.3.6.1.4.1.1466.20037"),
    "xmpp": _text(b"<STARTTLS"),
    "mysql": _mysql_ssl_request,
})


class StartTlsParser:
    """One flow of a STARTTLS-capable protocol: plain text, then (after the upgrade) TLS.

    >>> from osilab.protocols import Direction
    >>> flow = FlowKey.parse("198.51.100.7:51514-203.0.113.10:25")
    >>> parser = StartTlsParser(flow)
    >>> parser.feed(Direction.TO_SERVER, b"STARTTLS\\r\\n", 4, 0.0), parser.upgrade_packet
    ([], 4)
    """

    protocol = "starttls"  # its messages are the TLS parser's: protocol "tls"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        port = flow.server.port if flow is not None else 25
        #: The protocol that upgrades (``"smtp"``...), named as tshark names it.
        self.application = PORT_PROTOCOLS.get(port, "smtp")
        self._asks = UPGRADES[self.application]
        self.upgrade_packet: int | None = None  # where the client asked
        self._tls = TlsParser(flow, keylog=keylog)
        self._in_tls = {Direction.TO_SERVER: False, Direction.TO_CLIENT: False}

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        if self._in_tls[direction]:
            return self._tls.feed(direction, data, packet_no, time)
        if self.upgrade_packet is None:
            if direction is Direction.TO_SERVER and self._asks(data):
                self.upgrade_packet = packet_no
            return []
        if looks_like_tls(data, 0, len(data)):
            self._in_tls[direction] = True
            return self._tls.feed(direction, data, packet_no, time)
        return []

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        return self._tls.gap(direction, size, packet_no) if self._in_tls[direction] else []

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        return self._tls.end(direction, packet_no, time) if self._in_tls[direction] else []

    def close(self) -> list[AppMessage]:
        return self._tls.close()

    @property
    def client_hello(self):  # type: ignore[no-untyped-def]  # -> ClientHello | None
        """The ClientHello sent after the upgrade, once seen."""
        return self._tls.client_hello

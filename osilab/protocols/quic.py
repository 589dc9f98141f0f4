"""QUIC on a UDP flow: packets, connection IDs, the Initial ClientHello, and (with a key log) HTTP/3.

Theory of operation
-------------------
QUIC (RFC 9000) is a transport protocol inside UDP datagrams. A datagram holds one or
more QUIC *packets* (coalesced, §12.2). Each packet starts with a header in one of two
forms (§17), told apart by the first bit:

* a **long header** (first bit 1) during the handshake: a version (v1 is 1, RFC 9000;
  v2 is 0x6b3343cf, RFC 9369), then both connection IDs with their lengths -- the
  Destination Connection ID (DCID) and the Source Connection ID (SCID) -- and a packet
  type: Initial, 0-RTT, Handshake or Retry (v2 numbers them differently); version 0 is a
  Version Negotiation packet;
* a **short header** (first bit 0) afterwards, for 1-RTT packets: only the DCID, whose
  *length is not on the wire*. A middlebox learns it from the connection's long headers
  (the peer's SCID is the DCID of the packets sent to it), as this parser does.

A connection is therefore *named by its connection IDs*, not its 5-tuple: when the
client's address or port changes (connection migration, §9), the packets still carry a
DCID the server issued. A load balancer that reads that DCID -- an AWS NLB QUIC listener,
or any QUIC-LB balancer (:mod:`osilab.balancers.quic_lb`) -- keeps the connection on its
server; a 5-tuple balancer does not.

Every packet's payload is encrypted, and its packet number hidden by header protection.
Initial packets use keys anyone can derive from the client's first DCID (RFC 9001 §5.2,
:mod:`osilab.protocols._quic_crypto`), so this parser decrypts them, reassembles their
CRYPTO frames (TLS handshake bytes, at offsets like a little TCP stream) and hands the
ClientHello and ServerHello to the TLS hello parser (:func:`~osilab.protocols.tls.parse_client_hello`):
``osilab tls`` then reports an HTTP/3 connection's SNI and ALPN like any other.
Given a key log (``SSLKEYLOGFILE``: the TLS 1.3 labels ``CLIENT_HANDSHAKE_TRAFFIC_SECRET``,
``SERVER_HANDSHAKE_TRAFFIC_SECRET``, ``CLIENT_TRAFFIC_SECRET_0``, ``SERVER_TRAFFIC_SECRET_0``),
Handshake and 1-RTT packets are decrypted too, and their STREAM frames go to the HTTP/3
reader (:mod:`osilab.protocols.http3`), which yields ``HttpRequest``\\ s with version
``"HTTP/3"``.

What the parser reports (the :class:`~osilab.protocols.StreamParser` contract): one
``quic`` :class:`~osilab.protocols.AppMessage` per datagram (its ``message`` a
:class:`QuicDatagram`), a ``tls`` message on the datagram that completes a hello (as
Wireshark lists ``quic:tls``), and ``http3`` messages where decrypted. Field names follow
Wireshark's (``quic.dcid``, ``quic.long.packet_type``...) without the prefix. Bytes that do
not parse mark the message ``damaged``; the parser never raises.

What this module must not know: packets below UDP, files other than the key log,
balancers.

References:
    RFC 9000 (QUIC) §12.2, §17, §19; RFC 9001 (QUIC-TLS) §4, §5; RFC 9369 (QUIC v2);
    RFC 9114 (HTTP/3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from osilab.errors import DecodeError, OsilabError
from osilab.protocols import AppMessage, Direction
from osilab.protocols._quic_crypto import (
    QUIC_VERSIONS,
    DecryptError,
    PacketKeys,
    QuicVersion,
    initial_keys,
    packet_keys,
)
from osilab.protocols._quic_frames import FRAME_TYPES, QuicFrame, parse_frames
from osilab.protocols._tls_crypto import KeyLog, load_keylog
from osilab.protocols._varint import Truncated as _Short
from osilab.protocols._varint import read_varint
from osilab.protocols.http3 import Http3Session
from osilab.protocols.tls import (
    _EXT_ALPN,
    HANDSHAKE_TYPES,
    ClientHello,
    ServerHello,
    _alpn_list,
    _extensions,
    _Reader,
    parse_client_hello,
    parse_server_hello,
)
from osilab.protocols.tls import _Short as _TlsShort
from osilab.streams.keys import FlowKey

__all__ = [
    "QuicParser",
    "QuicConnection",
    "QuicConnections",
    "scope_of",
    "QuicPacket",
    "QuicDatagram",
    "QuicFrame",
    "looks_like_quic",
    "parse_datagram",
    "parse_frames",
    "FRAME_TYPES",
    "VERSION_NEGOTIATION",
]

#: Version 0 marks a Version Negotiation packet (RFC 9000 §17.2.1).
VERSION_NEGOTIATION = 0

#: Packet types -> the key epoch that protects them (RFC 9001 §4, Table 1).
_EPOCHS: MappingProxyType[str, str] = MappingProxyType({
    "Initial": "initial", "0-RTT": "0rtt", "Handshake": "handshake", "1-RTT": "1rtt",
})

#: The key log labels of each epoch's secrets, by sender (RFC 9001 §5.1; NSS key log).
_LABELS: MappingProxyType[tuple[str, Direction], str] = MappingProxyType({
    ("handshake", Direction.TO_SERVER): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    ("handshake", Direction.TO_CLIENT): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    ("1rtt", Direction.TO_SERVER): "CLIENT_TRAFFIC_SECRET_0",
    ("1rtt", Direction.TO_CLIENT): "SERVER_TRAFFIC_SECRET_0",
})

_OTHER = MappingProxyType({Direction.TO_SERVER: Direction.TO_CLIENT,
                          Direction.TO_CLIENT: Direction.TO_SERVER})

#: Bytes of CRYPTO or STREAM data held out of order per stream before giving up on it.
MAX_HELD = 1024 * 1024


def looks_like_quic(datagram: bytes) -> bool:
    """Whether a datagram opens with a QUIC long header of a version osilab knows.

    The long header's version field is a real signature (unlike a short header's bytes):
    the first bit and the fixed bit set, then a known version or 0 (Version Negotiation).

    >>> looks_like_quic(bytes.fromhex("c300000001088394c8f03e515708") + bytes(1200))
    True
    """
    if len(datagram) < 7 or datagram[0] & 0x80 == 0:
        return False
    version = int.from_bytes(datagram[1:5], "big")
    return version in QUIC_VERSIONS or (version == VERSION_NEGOTIATION and len(datagram) >= 11)


@dataclass(frozen=True, slots=True)
class QuicPacket:
    """One QUIC packet of a datagram, as far as it could be read (RFC 9000 §17).

    Attributes:
        form: ``"long"`` or ``"short"`` (the header form bit).
        packet_type: ``"Initial"``, ``"0-RTT"``, ``"Handshake"``, ``"Retry"``,
            ``"Version Negotiation"`` or ``"1-RTT"``.
        version: the version (long headers), else None.
        dcid: the Destination Connection ID (None when a short header's length is unknown).
        scid: the Source Connection ID (long headers), else None.
        offset, size: where the packet lies in its datagram.
        pn_offset: where its (protected) packet number starts, when it has one.
        packet_number: the full packet number, once decrypted.
        frames: its frames, once decrypted.
        token: an Initial's token (set by a Retry or NEW_TOKEN), or a Retry's.
        key_phase: 1-RTT: the key phase bit, once unprotected.
        note: why the payload stays unread (no key, a wrong key...), or None.
    """

    form: str
    packet_type: str
    version: int | None
    dcid: bytes | None
    scid: bytes | None
    offset: int
    size: int
    pn_offset: int | None = None
    packet_number: int | None = None
    frames: tuple[QuicFrame, ...] = ()
    token: bytes = b""
    key_phase: int | None = None
    note: str | None = None

    @property
    def decrypted(self) -> bool:
        return self.packet_number is not None

    @property
    def summary(self) -> str:
        """Wireshark's info-column style: ``Initial, DCID=..., PKN: 0, CRYPTO, PADDING``."""
        parts = [self.packet_type if self.form == "long" else "Protected Payload"]
        if self.dcid:
            parts.append(f"DCID={self.dcid.hex()}")
        if self.scid:
            parts.append(f"SCID={self.scid.hex()}")
        if self.packet_number is not None:
            parts.append(f"PKN: {self.packet_number}")
            names: list[str] = []
            for frame in self.frames:
                if not names or names[-1] != frame.name:
                    names.append(frame.name)
            parts += names
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class QuicDatagram:
    """The QUIC packets of one UDP datagram, in order (coalesced packets, RFC 9000 §12.2)."""

    packets: tuple[QuicPacket, ...]
    length: int

    @property
    def connection_ids(self) -> tuple[bytes, ...]:
        """The Destination Connection IDs read in this datagram (what a QUIC-LB reads)."""
        return tuple(p.dcid for p in self.packets if p.dcid is not None)


def _long_header(data: bytes, at: int) -> QuicPacket:
    first = data[at]
    if at + 7 > len(data):
        raise _Short(f"long header at offset {at} is cut short")
    version = int.from_bytes(data[at + 1 : at + 5], "big")
    pos = at + 5
    dcid_length = data[pos]
    dcid = data[pos + 1 : pos + 1 + dcid_length]
    pos += 1 + dcid_length
    if pos >= len(data):
        raise _Short(f"long header at offset {at} ends in its connection IDs")
    scid_length = data[pos]
    scid = data[pos + 1 : pos + 1 + scid_length]
    pos += 1 + scid_length
    if pos > len(data) or len(dcid) != dcid_length or len(scid) != scid_length:
        raise _Short(f"long header at offset {at} ends in its connection IDs")
    if version == VERSION_NEGOTIATION:
        return QuicPacket("long", "Version Negotiation", version, dcid, scid, at, len(data) - at)
    known: QuicVersion | None = QUIC_VERSIONS.get(version)
    if known is None:  # an unknown version: its layout past the connection IDs is unknown
        return QuicPacket("long", f"version 0x{version:08x}", version, dcid, scid, at,
                          len(data) - at, note="a QUIC version osilab does not know")  # fmt: skip
    kind = known.long_types[(first >> 4) & 0x03]
    if kind == "Retry":  # token, then a 16-byte integrity tag, to the end (§17.2.5)
        return QuicPacket("long", kind, version, dcid, scid, at, len(data) - at,
                          token=data[pos : len(data) - 16])  # fmt: skip
    token = b""
    if kind == "Initial":
        token_length, pos = read_varint(data, pos)
        token = data[pos : pos + token_length]
        pos += token_length
    length, pos = read_varint(data, pos)
    if pos + length > len(data):
        raise _Short(f"{kind} packet at offset {at} declares {length} bytes, "
                     f"{len(data) - pos} are left in the datagram")  # fmt: skip
    return QuicPacket("long", kind, version, dcid, scid, at, pos + length - at, pn_offset=pos - at,
                      token=token)  # fmt: skip


def parse_datagram(data: bytes, short_dcid_length: int | None = None) -> list[QuicPacket]:
    """The packets of one datagram, headers only (their payloads stay protected).

    ``short_dcid_length`` is the DCID length of short-header packets (learnt from the
    connection's long headers); None leaves a short header's DCID unread.
    Raises :class:`~osilab.errors.DecodeError` (layer ``quic``) on a header cut short.
    """
    packets: list[QuicPacket] = []
    at = 0
    try:
        while at < len(data):
            first = data[at]
            if first & 0x80:
                packet = _long_header(data, at)
            elif first & 0x40 == 0 and packets:
                break  # zero bytes after the packets: datagram padding, not a packet
            else:
                known = short_dcid_length is not None and at + 1 + short_dcid_length <= len(data)
                dcid = data[at + 1 : at + 1 + short_dcid_length] if known else None  # type: ignore[operator]
                pn_offset = 1 + short_dcid_length if known else None  # type: ignore[operator]
                packet = QuicPacket("short", "1-RTT", None, dcid, None, at, len(data) - at,
                                    pn_offset=pn_offset)  # fmt: skip
            packets.append(packet)
            at += packet.size
    except _Short as exc:
        raise DecodeError(f"QUIC header cut short: {exc}", layer="quic", offset=at) from None
    return packets


class _Stream:
    """Bytes of one CRYPTO or STREAM stream put in order by offset (RFC 9000 §2.2, §19.6)."""

    __slots__ = ("next", "held", "held_bytes")

    def __init__(self) -> None:
        self.next = 0
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0

    def add(self, offset: int, data: bytes) -> bytes:
        """The new in-order bytes that ``data`` at ``offset`` makes readable."""
        if offset + len(data) <= self.next:
            return b""  # a retransmission
        if offset > self.next:
            if self.held_bytes + len(data) <= MAX_HELD and offset not in self.held:
                self.held[offset] = data
                self.held_bytes += len(data)
            return b""
        out = bytearray(data[self.next - offset :])
        self.next += len(out)
        while self.held:
            at = min(self.held)
            if at > self.next:
                break
            chunk = self.held.pop(at)
            self.held_bytes -= len(chunk)
            if at + len(chunk) > self.next:
                out += chunk[self.next - at :]
                self.next = at + len(chunk)
        return bytes(out)


@dataclass(slots=True)
class _Side:
    """One direction of a connection: its keys per epoch and its CRYPTO streams."""

    keys: dict[str, PacketKeys] = field(default_factory=dict)
    crypto: dict[str, _Stream] = field(default_factory=dict)
    handshake: bytearray = field(default_factory=bytearray)
    cids: set[bytes] = field(default_factory=set)  # connection IDs this side chose (SCIDs, NEW_CONNECTION_ID)
    streams: dict[int, _Stream] = field(default_factory=dict)  # STREAM data by stream ID


#: Connections one capture's connection-ID table keeps; past it the oldest is forgotten.
MAX_CONNECTIONS = 10_000

#: Where a connection was seen: ``(FlowKey.interface, FlowKey.tunnel)``, its hop.
Scope = tuple[int, str]


class QuicConnections:
    """The connection-ID table of one capture read: which connection a DCID names.

    A QUIC connection is identified by its connection IDs, not by its 5-tuple (RFC 9000
    §5.1). Each endpoint chooses the IDs its peer must put in the Destination Connection
    ID of the packets sent to it: the Source Connection ID of its long headers, and more
    announced in NEW_CONNECTION_ID frames (§19.15) for the peer to use on a new path
    (§9.5: a client that migrates to a new address or port switches to an unused one).
    So a short-header packet on a UDP flow never seen before -- no Initial, no handshake
    -- is still readable: its DCID names a known connection, whose keys decrypt it.

    The table is per hop (a pcapng interface and its tunnels, :data:`Scope`): a
    connection seen on two links is two sightings, each with its own streams. The
    pipeline creates one table per capture read
    (:class:`osilab.pipeline.dispatch.SharedState`) and hands it to every
    :class:`QuicParser`; it keeps at most :data:`MAX_CONNECTIONS` connections.

    >>> table, connection = QuicConnections(), QuicConnection()
    >>> server_id = bytes.fromhex("0b6f73696c61620001ba8e64")  # an ID the server chose
    >>> table.add(connection, Direction.TO_SERVER, server_id)
    >>> short_header = bytes([0x40]) + server_id + bytes(20)
    >>> table.find(short_header) == (connection, Direction.TO_SERVER)
    True
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[Scope, bytes], tuple[QuicConnection, Direction]] = {}
        self._lengths: dict[Scope, set[int]] = {}
        self._connections: dict[int, QuicConnection] = {}  # insertion order: the oldest first

    def add(self, connection: QuicConnection, towards: Direction, cid: bytes,
            scope: Scope = (0, "")) -> None:  # fmt: skip
        """Packets whose DCID is ``cid`` belong to ``connection`` and travel ``towards``
        (``TO_SERVER`` for an ID the server chose). A zero-length ID names nothing (§5.1)."""
        key = (scope, cid)
        if not cid or key in self._ids:
            return
        self._ids[key] = (connection, towards)
        self._lengths.setdefault(scope, set()).add(len(cid))
        connection.ids.append(key)
        if id(connection) not in self._connections:
            self._connections[id(connection)] = connection
            if len(self._connections) > MAX_CONNECTIONS:
                self.remove(next(iter(self._connections.values())))

    def remove(self, connection: QuicConnection) -> None:
        """Forget ``connection`` and its IDs (its last flow ended, or the table is full)."""
        self._connections.pop(id(connection), None)
        for key in connection.ids:
            if self._ids.get(key, (None,))[0] is connection:
                del self._ids[key]
        connection.ids.clear()

    def find(self, datagram: bytes, scope: Scope = (0, "")) -> tuple[QuicConnection, Direction] | None:
        """The known connection a short-header datagram belongs to, and which way it travels.

        A short header does not carry its DCID's length (§17.3), so each length this hop's
        connections use is tried; None for a long header or an unknown ID.
        """
        if not datagram or datagram[0] & 0xC0 != 0x40:
            return None
        for length in sorted(self._lengths.get(scope, ())):
            found = self._ids.get((scope, bytes(datagram[1 : 1 + length])))
            if found is not None and len(datagram) > 1 + length:
                return found
        return None

    def __len__(self) -> int:
        return len(self._connections)


def scope_of(flow: FlowKey | None) -> Scope:
    """The hop a flow was seen on, as the connection-ID table keys it."""
    return (flow.interface, flow.tunnel) if flow is not None else (0, "")


class QuicParser:
    """The QUIC packets of one UDP flow; the Initial hellos; HTTP/3 with a key log.

    One instance per flow, fed one datagram at a time (:class:`~osilab.protocols.StreamParser`).
    ``TO_SERVER`` is the client's direction. The connection's state (keys, CRYPTO and
    STREAM data, HTTP/3) is a :class:`QuicConnection`: a new one for a flow that starts
    with a long header, or -- given the capture's :class:`QuicConnections` table -- the
    known connection whose connection ID a flow's first short-header packet carries
    (a migrated client: one connection, several flows).
    """

    protocol = "quic"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None,
                 connections: QuicConnections | None = None) -> None:  # fmt: skip
        self.flow = flow
        self.keylog_path = keylog
        self.connections = connections
        #: The connection this flow carries (None until the first datagram).
        self.connection: QuicConnection | None = None
        #: Whether this flow's client is the connection's server (a flow first seen from
        #: the server's side): directions are turned round on the way in and out.
        self.turned = False

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        connection = self.connection
        if connection is None:
            connection = self.connection = self._attach(direction, data)
        if not self.turned:
            return connection.datagram(direction, data, packet_no, time, self.flow)
        out = connection.datagram(_OTHER[direction], data, packet_no, time, self.flow)
        return [replace(m, direction=_OTHER[m.direction]) for m in out]

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        return []  # datagrams are whole: a lost one is just missing

    def close(self) -> list[AppMessage]:
        """This flow ended; the connection's HTTP/3 ends with the last of its flows."""
        connection, self.connection = self.connection, None
        if connection is None:
            return []
        connection.flows -= 1
        if connection.flows > 0:
            return []
        if self.connections is not None:  # its keys and streams are not kept for a late datagram
            self.connections.remove(connection)
        out = connection.close()
        return [replace(m, direction=_OTHER[m.direction]) for m in out] if self.turned else out

    def _attach(self, direction: Direction, data: bytes) -> QuicConnection:
        """The connection a flow's first datagram names (RFC 9000 §9), or a new one."""
        table = self.connections
        found = table.find(data, scope_of(self.flow)) if table is not None else None
        if found is not None:
            connection, towards = found
            self.turned = towards is not direction
        else:
            connection = QuicConnection(self.flow, keylog=self.keylog_path, table=table)
        connection.flows += 1
        return connection


class QuicConnection:
    """One QUIC connection as one hop sees it: keys per epoch and direction, CRYPTO and
    STREAM data, the hellos, HTTP/3 -- shared by every UDP flow the connection uses.

    ``TO_SERVER`` is the client's direction. The connection IDs each side chooses go to
    ``table`` (the capture's :class:`QuicConnections`) as they are read.
    """

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None,
                 table: QuicConnections | None = None) -> None:  # fmt: skip
        self.flow = flow
        self.keylog_path = keylog
        self.table = table
        self.scope = scope_of(flow)
        #: The ``(scope, cid)`` keys this connection holds in ``table``.
        self.ids: list[tuple[Scope, bytes]] = []
        #: How many live flows carry it.
        self.flows = 0
        self._keylog: KeyLog | None = None
        self._sides = {Direction.TO_SERVER: _Side(), Direction.TO_CLIENT: _Side()}
        self.version: QuicVersion | None = None
        self.original_dcid: bytes | None = None
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.alpn: str | None = None
        self._http3: Http3Session | None = None
        self._notes: list[str] = []

    def datagram(self, direction: Direction, data: bytes, packet_no: int, time: float,
                 flow: FlowKey | None = None) -> list[AppMessage]:  # fmt: skip
        """One UDP datagram of the connection, travelling ``direction`` on ``flow``: a
        ``quic`` message, then ``tls`` and ``http3`` messages where it completes some."""
        self.flow = flow or self.flow
        peer = self._sides[_OTHER[direction]]
        short_length = len(next(iter(peer.cids))) if peer.cids else None
        try:
            headers = parse_datagram(data, short_length)
        except OsilabError as exc:
            return [AppMessage("quic", direction, packet_no, packet_no, len(data),
                               f"QUIC: {exc.reason}", {"stage": "complete"}, time, None,
                               exc.reason)]  # fmt: skip
        out: list[AppMessage] = []
        packets: list[QuicPacket] = []
        hellos: list[tuple[str, ClientHello | ServerHello | None]] = []
        for header in headers:
            packets.append(self._packet(direction, data, header, hellos, out, packet_no, time))
        datagram = QuicDatagram(tuple(packets), len(data))
        first = packets[0]
        fields: dict[str, Any] = {
            "stage": "complete",
            "header_form": 1 if first.form == "long" else 0,
            "long.packet_type": first.packet_type if first.form == "long" else None,
            "version": first.version,
            "dcid": first.dcid.hex() if first.dcid is not None else None,
            "scid": first.scid.hex() if first.scid is not None else None,
            "packet_number": first.packet_number,
            "packets": len(packets),
            "packet_types": tuple(p.packet_type for p in packets),
        }
        if self._notes:
            fields["notes"] = tuple(self._notes)
            self._notes.clear()
        summary = "QUIC " + "; ".join(p.summary for p in packets)
        quic = AppMessage("quic", direction, packet_no, packet_no, len(data), summary, fields,
                          time, datagram)  # fmt: skip
        tls = [self._tls_message(direction, hellos, len(data), packet_no, time)] if hellos else []
        return [quic, *tls, *out]

    def close(self) -> list[AppMessage]:
        """The connection's last flow ended: HTTP/3 responses still open are given as they are."""
        return self._http3.close() if self._http3 is not None else []

    # -- one packet -----------------------------------------------------------------------

    def _packet(self, direction: Direction, data: bytes, header: QuicPacket,
                hellos: list[tuple[str, ClientHello | ServerHello | None]], out: list[AppMessage],
                packet_no: int, time: float) -> QuicPacket:  # fmt: skip
        side = self._sides[direction]
        if header.form == "long" and header.scid is not None and header.packet_type in _EPOCHS:
            self._issued(direction, header.scid)
        if header.packet_type == "Retry":  # the client starts over with the DCID the server chose
            self.original_dcid = None
            self._sides[Direction.TO_SERVER].keys.pop("initial", None)
            self._sides[Direction.TO_CLIENT].keys.pop("initial", None)
            return header
        epoch = _EPOCHS.get(header.packet_type)
        if epoch is None or header.pn_offset is None:
            return header
        if epoch == "initial":
            self._initial(direction, header)
        keys = side.keys.get(epoch)
        if keys is None:
            why = "no key: Handshake and 1-RTT packets need a key log (--keylog)"
            if self.keylog_path is not None:
                why = "the key log has no secret for this packet's keys"
            return replace(header, note=why)
        packet = data[header.offset : header.offset + header.size]
        try:
            plain_header, number, payload = keys.unprotect(packet, header.pn_offset, header.form == "long")
        except DecryptError as exc:
            if epoch != "1rtt":
                return replace(header, note=f"decryption failed ({exc})")
            try:  # the peer may have moved to the next key phase (RFC 9001 §6)
                following = keys.next_phase()
                plain_header, number, payload = following.unprotect(packet, header.pn_offset, False)
                side.keys[epoch] = following
            except DecryptError:
                return replace(header, note=f"decryption failed ({exc})")
        try:
            frames = parse_frames(payload)
        except OsilabError as exc:
            return replace(header, packet_number=number, note=exc.reason)
        phase = (plain_header[0] >> 2) & 1 if header.form == "short" else None
        for frame in frames:
            if frame.name == "CRYPTO":
                self._crypto(direction, epoch, frame, hellos)
            elif frame.name == "NEW_CONNECTION_ID":
                self._issued(direction, frame.connection_id)
            elif frame.name == "STREAM" and frame.stream_id is not None:
                stream = side.streams.setdefault(frame.stream_id, _Stream())
                ready = stream.add(frame.offset, frame.data)
                ended = frame.fin and frame.offset + len(frame.data) == stream.next
                if ready or ended:
                    out += self._session().data(direction, frame.stream_id, ready, ended,
                                                packet_no, time, self.flow)  # fmt: skip
        return replace(header, packet_number=number, frames=frames, key_phase=phase)

    def _issued(self, direction: Direction, cid: bytes) -> None:
        """``direction``'s sender chose ``cid``: packets to it carry it as their DCID."""
        side = self._sides[direction]
        if cid in side.cids:
            return
        side.cids.add(cid)
        if self.table is not None:
            self.table.add(self, _OTHER[direction], cid, self.scope)

    def _initial(self, direction: Direction, header: QuicPacket) -> None:
        """Derive the Initial keys from the client's first Destination Connection ID."""
        if self.original_dcid is not None or header.version is None:
            return
        if direction is not Direction.TO_SERVER or header.dcid is None:
            return  # the server's Initial alone does not name the client's DCID
        version = QUIC_VERSIONS[header.version]
        self.version, self.original_dcid = version, header.dcid
        client, server = initial_keys(version, header.dcid)
        self._sides[Direction.TO_SERVER].keys["initial"] = client
        self._sides[Direction.TO_CLIENT].keys["initial"] = server

    # -- the TLS handshake in CRYPTO frames ------------------------------------------------

    def _crypto(self, direction: Direction, epoch: str, frame: QuicFrame,
                hellos: list[tuple[str, ClientHello | ServerHello | None]]) -> None:  # fmt: skip
        """CRYPTO bytes in order; each TLS handshake message they complete goes to ``hellos``
        as ``(name, the hello or None)`` (RFC 9001 §4.1: TLS records are not used in QUIC)."""
        side = self._sides[direction]
        stream = side.crypto.setdefault(epoch, _Stream())
        side.handshake += stream.add(frame.offset, frame.data)
        buf = side.handshake
        while len(buf) >= 4:
            kind, length = buf[0], int.from_bytes(buf[1:4], "big")
            if len(buf) < 4 + length:
                break
            body = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            name = HANDSHAKE_TYPES.get(kind, f"Handshake type {kind}")
            hellos.append((name, None))
            try:
                if kind == 1 and direction is Direction.TO_SERVER:
                    self.client_hello = parse_client_hello(body)
                    hellos[-1] = (name, self.client_hello)
                    self._start_keys("handshake")
                elif kind == 2 and direction is Direction.TO_CLIENT:
                    self.server_hello = parse_server_hello(body)
                    hellos[-1] = (name, self.server_hello)
                    self._start_keys("handshake")
                elif kind == 8:  # EncryptedExtensions: the server's ALPN choice (RFC 7301)
                    self.alpn = _alpn_choice(body) or self.alpn
                elif kind == 20 and direction is Direction.TO_CLIENT:  # server Finished: 1-RTT keys
                    self._start_keys("1rtt")
            except OsilabError as exc:
                self._notes.append(exc.reason)

    def _start_keys(self, epoch: str) -> None:
        """Handshake or 1-RTT keys from the key log, once both hellos are known."""
        if self.client_hello is None or self.server_hello is None or self.version is None:
            return
        keylog = self._keys()
        if keylog is None:
            return
        for (label_epoch, direction), label in _LABELS.items():
            if label_epoch != epoch or epoch in self._sides[direction].keys:
                continue
            secret = keylog.get(label, self.client_hello.random)
            if secret is None:
                self._notes.append(f"the key log has no {label} for this connection")
                continue
            keys = packet_keys(self.server_hello.cipher_suite, self.version, secret)
            if keys is None:
                self._notes.append(f"cipher suite {self.server_hello.cipher} is not one osilab decrypts")
                continue
            self._sides[direction].keys[epoch] = keys

    def _keys(self) -> KeyLog | None:
        if self.keylog_path is None:
            return None
        if self._keylog is None:
            try:
                self._keylog = load_keylog(self.keylog_path)
            except OsilabError as exc:  # names the path only, never the contents
                self._notes.append(exc.reason)
                self.keylog_path = None
                return None
        return self._keylog

    def _session(self) -> Http3Session:
        if self._http3 is None:
            self._http3 = Http3Session(self.flow)
        return self._http3

    def _tls_message(self, direction: Direction, found: list[tuple[str, ClientHello | ServerHello | None]],
                     length: int, packet_no: int, time: float) -> AppMessage:  # fmt: skip
        """A ``tls`` message for the handshake messages CRYPTO frames completed in a datagram;
        a hello is its ``message`` (``osilab tls`` reads it as from TCP)."""
        hello = next((h for _, h in found if h is not None), None)
        fields: dict[str, Any] = {"stage": "complete", "transport": "quic",
                                  "handshake.types": tuple(name for name, _ in found)}  # fmt: skip
        names = [name for name, _ in found]
        if isinstance(hello, ClientHello):
            fields.update({"handshake.type": 1, "version": hello.version,
                           "handshake.extensions_server_name": hello.server_name,
                           "handshake.extensions_alpn_str": hello.alpn})  # fmt: skip
            names[0] += f" offering {hello.version}"
            if hello.server_name:
                names[0] += f" SNI={hello.server_name}"
            if hello.alpn:
                names[0] += " ALPN=" + ",".join(hello.alpn)
        elif isinstance(hello, ServerHello):
            fields.update({"handshake.type": 2, "version": hello.version, "cipher": hello.cipher})
            names[0] += f" {hello.cipher}"
        return AppMessage("tls", direction, packet_no, packet_no, length,
                          f"TLS {', '.join(names)} (in QUIC CRYPTO frames)", fields, time, hello)  # fmt: skip


def _alpn_choice(body: bytes) -> str | None:
    """The ALPN protocol in an EncryptedExtensions body (RFC 8446 §4.3.1, RFC 7301 §3.1),
    read with the TLS parser's own extension readers."""
    try:
        for kind, data in _extensions(_Reader(body)):
            if kind == _EXT_ALPN:
                names = _alpn_list(data)
                return names[0] if names else None
    except _TlsShort:
        pass
    return None

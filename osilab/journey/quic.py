"""A QUIC connection across 5-tuples and hops: which UDP flows are one connection.

A TCP connection *is* its 5-tuple; a QUIC connection is not (RFC 9000 §5.1, §9). It is
named by **connection IDs**, and a client may move it to a new address or port
(*connection migration*) and go on. So the flows of the one pipeline (one per 5-tuple
per hop, :mod:`osilab.journey._index`) are grouped here into connections:

1. **Handshakes.** A flow whose client sent an Initial packet opens a connection; the
   Initial's Destination Connection ID (the *original* DCID, drawn by the client at
   random, RFC 9000 §7.2) names it on every hop, since a layer 4 balancer forwards the
   same bytes. The server's long headers give the connection ID the server chose (its
   Source Connection ID), and, with a key log, its ``NEW_CONNECTION_ID`` frames give the
   spare IDs it issued for later (RFC 9000 §19.15).
2. **Migrations.** A flow that starts with short-header packets only has no handshake of
   its own: it is a connection that moved. A short header does not say how long its DCID
   is (§17.3); the length is the one the server's IDs have, so the DCID is read with
   :func:`osilab.protocols.quic.parse_datagram` at that length. It joins the connection
   that *issued* that ID in a ``NEW_CONNECTION_ID`` frame (certain), else -- without the
   key log -- the latest connection of the same client address and server port whose IDs
   carry the same QUIC-LB server ID (:func:`osilab.balancers.quic_lb.server_id_of`), which
   the journey then says is a guess.

Note what stays and what changes on a migration: the client must use a *new* connection
ID on a new path (RFC 9000 §9.5, so that an observer cannot link the two paths), one the
server issued. The bytes that stay are the **server ID** inside it (QUIC-LB plaintext: the
first octet, then the server ID), which is all a QUIC-aware balancer needs.

Sans-IO: it reads an indexed capture (and asks it for the few packets it needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from osilab.balancers.quic_lb import server_id_of
from osilab.errors import DecodeError, UsageError
from osilab.journey._index import CaptureIndex, Flow
from osilab.protocols import Direction
from osilab.protocols.quic import QuicDatagram, QuicPacket, parse_datagram
from osilab.streams.keys import Endpoint

__all__ = ["QuicPath", "QuicConnection", "quic_connections", "find_connection", "HANDSHAKE",
           "ISSUED", "SERVER_ID"]  # fmt: skip

#: How a flow was joined to its connection (:attr:`QuicPath.joined`).
HANDSHAKE = "handshake"  # the flow carries the connection's Initial (or its original DCID)
ISSUED = "issued"  # its DCID was issued on the connection in a NEW_CONNECTION_ID frame
SERVER_ID = "server-id"  # its DCID carries the connection's server ID (no key log: a guess)


@dataclass(frozen=True, slots=True, eq=False)  # one per flow: compared and hashed by identity
class QuicPath:
    """One 5-tuple a QUIC connection used, on one hop (one flow of the pipeline).

    Attributes:
        flow: the index's flow (hop, 5-tuple, datagram numbers).
        dcid: the Destination Connection ID of the client's first datagram on it.
        joined: :data:`HANDSHAKE`, :data:`ISSUED` or :data:`SERVER_ID`.
        issued_at: the packet whose ``NEW_CONNECTION_ID`` frame issued ``dcid``, if known.
    """

    flow: Flow
    dcid: bytes | None
    joined: str
    issued_at: int | None = None

    @property
    def client(self) -> Endpoint:
        return self.flow.key.client

    @property
    def first(self) -> int:
        """The packet number of the flow's first datagram."""
        return self.flow.datagrams[0][0]

    @property
    def to_server(self) -> list[int]:
        return [no for no, _time, from_client in self.flow.datagrams if from_client]

    @property
    def to_client(self) -> list[int]:
        return [no for no, _time, from_client in self.flow.datagrams if not from_client]


@dataclass(frozen=True)
class QuicConnection:
    """One QUIC connection, every hop and every 5-tuple of it.

    Attributes:
        original_dcid: the DCID of the client's first Initial (RFC 9000 §7.2).
        server_cid: the connection ID the server chose in its first long header.
        issued: ``connection ID -> packet`` of each NEW_CONNECTION_ID the server sent
            (read only with the key log).
        paths: the flows, in the order of their first datagram.
    """

    original_dcid: bytes
    server_cid: bytes | None
    issued: dict[bytes, int] = field(default_factory=dict)
    paths: list[QuicPath] = field(default_factory=list)

    @property
    def clients(self) -> list[Endpoint]:
        """The client's addresses, in order: more than one means it migrated."""
        return list(dict.fromkeys(path.client for path in self.paths))

    def hops_of(self, client: Endpoint) -> list[QuicPath]:
        """The flows of one client address on every hop, the client's own hop first."""
        return [path for path in self.paths if path.client == client]

    @property
    def server_id(self) -> bytes | None:
        """The QUIC-LB server ID in the server's connection ID (None when it carries none)."""
        return server_id_of(self.server_cid) if self.server_cid else None

    def names(self, text: str) -> bool:
        """Whether ``text`` (hex) is one of this connection's IDs, or a client address."""
        wanted = text.lower().removeprefix("0x")
        ids = {self.original_dcid, *([self.server_cid] if self.server_cid else []), *self.issued}
        ids |= {path.dcid for path in self.paths if path.dcid}
        return any(cid.hex() == wanted for cid in ids) or text in {str(c) for c in self.clients}

    def summary(self) -> str:
        moves = " -> ".join(str(client) for client in self.clients)
        hops = sorted({path.flow.hop for path in self.paths})
        return (f"QUIC connection {self.original_dcid.hex()} (server's ID "
                f"{self.server_cid.hex() if self.server_cid else '?'}): client {moves}; "
                f"hops {', '.join(hops)}")  # fmt: skip


def _datagrams(index: CaptureIndex, flow: Flow) -> list[QuicDatagram]:
    return [m.message for m in index.quic.get(flow.key, ()) if isinstance(m.message, QuicDatagram)]


def _client_datagrams(index: CaptureIndex, flow: Flow) -> list[QuicDatagram]:
    return [m.message for m in index.quic.get(flow.key, ())
            if isinstance(m.message, QuicDatagram) and m.direction is Direction.TO_SERVER]  # fmt: skip


def _handshake(index: CaptureIndex, flow: Flow) -> tuple[bytes, bytes | None] | None:
    """(original DCID, the server's chosen ID) when the client's first datagram is an Initial."""
    client = _client_datagrams(index, flow)
    first = client[0].packets[0] if client and client[0].packets else None
    if first is None or first.packet_type != "Initial" or first.dcid is None:
        return None
    server = next((p.scid for d in _datagrams(index, flow) for p in d.packets
                   if p.form == "long" and p.scid is not None and p.scid != first.scid), None)  # fmt: skip
    return first.dcid, server


def _issued(index: CaptureIndex, flow: Flow) -> dict[bytes, int]:
    """NEW_CONNECTION_ID frames the server sent on ``flow`` (decrypted: a key log)."""
    found: dict[bytes, int] = {}
    for message in index.quic.get(flow.key, ()):
        if message.direction is not Direction.TO_CLIENT or not isinstance(
            message.message, QuicDatagram
        ):
            continue
        for packet in message.message.packets:
            for frame in packet.frames:
                if frame.name == "NEW_CONNECTION_ID" and frame.connection_id:
                    found.setdefault(frame.connection_id, message.last_packet)
    return found


def _first_from_client(flow: Flow) -> int | None:
    return next((no for no, _time, from_client in flow.datagrams if from_client), None)


def _short_dcid(
    index: CaptureIndex, flow: Flow, length: int, payloads: dict[int, bytes]
) -> bytes | None:
    """The DCID of the client's first datagram on ``flow``, read as ``length`` bytes."""
    parsed = _client_datagrams(index, flow)
    if parsed and parsed[0].packets and parsed[0].packets[0].dcid:
        return parsed[0].packets[0].dcid  # the pipeline knew the length (its own ID table)
    first = _first_from_client(flow)
    data = payloads.get(first) if first is not None else None
    if not data:
        return None
    first_packet = first_quic_packet(data, length)
    return first_packet.dcid if first_packet is not None and first_packet.form == "short" else None


def first_quic_packet(datagram: bytes, dcid_length: int) -> QuicPacket | None:
    """The first QUIC packet of a UDP payload, a short header's DCID read as
    ``dcid_length`` bytes (a short header does not carry it); None if it is not QUIC."""
    try:
        packets = parse_datagram(datagram, short_dcid_length=dcid_length)
    except DecodeError:
        return None
    return packets[0] if packets else None


def quic_connections(index: CaptureIndex) -> list[QuicConnection]:
    """Every QUIC connection of the capture whose handshake it shows, with all its flows."""
    udp = sorted((f for f in index.flows.values() if f.key.proto == "udp" and f.datagrams),
                 key=lambda f: f.datagrams[0][0])  # fmt: skip
    connections: dict[bytes, QuicConnection] = {}
    rest: list[Flow] = []
    for flow in udp:
        found = _handshake(index, flow)
        if found is None:
            rest.append(flow)
            continue
        odcid, server_cid = found
        connection = connections.setdefault(odcid, QuicConnection(odcid, server_cid))
        for cid, packet in _issued(index, flow).items():
            connection.issued.setdefault(cid, packet)
        connection.paths.append(QuicPath(flow, odcid, HANDSHAKE))
    if not connections:
        return []
    ordered = list(connections.values())
    lengths = sorted({len(c.server_cid) for c in ordered if c.server_cid})
    wanted = {no for no in map(_first_from_client, rest) if no is not None}
    payloads = {no: p.payload for no, p in index.packets_at(wanted).items()} if wanted else {}
    for flow in rest:
        for length in lengths:
            dcid = _short_dcid(index, flow, length, payloads)
            joined = _join(ordered, flow, dcid) if dcid else None
            if joined is not None:
                connection, how = joined
                connection.paths.append(QuicPath(flow, dcid, how, connection.issued.get(dcid)))  # type: ignore[arg-type]
                break
    for connection in ordered:
        connection.paths.sort(key=lambda path: (path.first, path.flow.key.interface))
    return ordered


def _join(
    connections: Sequence[QuicConnection], flow: Flow, dcid: bytes
) -> tuple[QuicConnection, str] | None:
    """The connection a handshake-less flow belongs to, and how that is known."""
    for connection in connections:
        if dcid in connection.issued or dcid == connection.server_cid:
            return connection, ISSUED if dcid in connection.issued else HANDSHAKE
    server_id = server_id_of(dcid)
    if server_id is None:
        return None
    start = flow.datagrams[0][0]
    candidates = [c for c in connections
                  if c.server_id == server_id and c.paths[0].first < start
                  and c.paths[0].client.ip == flow.key.client.ip
                  and c.paths[0].flow.key.server.port == flow.key.server.port]  # fmt: skip
    return (candidates[-1], SERVER_ID) if candidates else None


def find_connection(connections: Sequence[QuicConnection], name: str) -> QuicConnection:
    """The connection named by one of its connection IDs (hex) or a client ``ip:port``."""
    for connection in connections:
        if connection.names(name):
            return connection
    listing = "; ".join(c.summary() for c in connections) or "this capture shows no QUIC handshake"
    raise UsageError(f"no QUIC connection {name!r} (a connection ID in hex, or a client "
                     f"ip:port) in this capture; connections: {listing}")  # fmt: skip

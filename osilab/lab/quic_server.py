"""The lab instances' HTTP/3 server: aioquic's sans-IO QUIC and HTTP/3, on plain sockets.

``python -m osilab.lab.quic_server NAME ADDRESS CERT KEY`` serves, on ``ADDRESS`` UDP
:data:`~osilab.lab.quic.UDP_PORT` and :data:`~osilab.lab.quic.QUIC_PORT`, one route: any
GET answers ``200`` with a small JSON body naming the instance, the request id and the
client address the server saw. Every connection ID it issues carries the instance's server
ID in QUIC-LB's plaintext form (:func:`osilab.lab.quic.connection_id`): aioquic draws
its IDs with ``os.urandom``; :class:`LabQuicConnection` replaces them.

It writes one JSON line per event on stdout (the scenario's log): ``connection`` (a new
connection: its original DCID and the IDs it issued), ``request``, ``dropped`` (a packet
whose DCID no connection of this server has: what the other instance's connection looks
like after a 5-tuple balancer moved it) and ``closed`` (with aioquic's reason, e.g. the
idle timeout). Its own loop (``select`` and the connections' timers) is short enough to
read, unlike aioquic's asyncio server, and lets the connection class be chosen.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from typing import Any

from aioquic.buffer import Buffer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionId
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import PACKET_TYPE_INITIAL, pull_quic_header

from osilab.lab.quic import CID_LENGTH, IDLE_TIMEOUT, QUIC_PORT, SERVER_IDS, UDP_PORT, connection_id

__all__ = ["LabQuicConnection", "serve", "main"]


def _log(**event: Any) -> None:
    print(json.dumps({"at": round(time.time(), 6), **event}), flush=True)


class LabQuicConnection(QuicConnection):
    """aioquic's connection, issuing QUIC-LB plaintext connection IDs for ``server_id``."""

    def __init__(self, *, server_id: bytes, **kwargs: Any) -> None:
        self._server_id = server_id
        super().__init__(**kwargs)
        first = self._host_cids[0]
        first.cid = self._lab_cid()
        self.host_cid = first.cid
        self._local_initial_source_connection_id = first.cid

    def _lab_cid(self) -> bytes:
        return connection_id(self._server_id, os.urandom(CID_LENGTH - 1 - len(self._server_id)))

    def _replenish_connection_ids(self) -> None:
        while len(self._host_cids) < min(8, self._remote_active_connection_id_limit):
            self._host_cids.append(QuicConnectionId(
                cid=self._lab_cid(), sequence_number=self._host_cid_seq,
                stateless_reset_token=os.urandom(16)))  # fmt: skip
            self._host_cid_seq += 1

    def issued(self) -> list[bytes]:
        """Every connection ID this end has issued and not seen retired."""
        return [c.cid for c in self._host_cids]


class _Served:
    """One connection: its socket, its QUIC and HTTP/3 state."""

    def __init__(self, sock: socket.socket, port: int, quic: LabQuicConnection) -> None:
        self.sock, self.port, self.quic = sock, port, quic
        self.h3 = H3Connection(quic)
        self.odcid = quic.original_destination_connection_id.hex()


def serve(name: str, address: str, certificate: str, key: str, *, until: float | None = None) -> None:
    """Serve HTTP/3 on ``address`` until SIGINT/SIGTERM (or ``until``, a monotonic time)."""
    configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                                      connection_id_length=CID_LENGTH, idle_timeout=IDLE_TIMEOUT)  # fmt: skip
    configuration.load_cert_chain(certificate, key)
    sockets = {}
    for port in (UDP_PORT, QUIC_PORT):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, port))
        sockets[sock] = port
    by_cid: dict[bytes, _Served] = {}
    _log(event="listening", instance=name, server=address, ports=[UDP_PORT, QUIC_PORT])
    while until is None or time.monotonic() < until:
        served = set(by_cid.values())
        timers = [t for s in served if (t := s.quic.get_timer()) is not None]
        wait = max(0.0, min(timers) - time.time()) if timers else 0.5
        readable, _, _ = select.select(list(sockets), [], [], min(wait, 0.5))
        for sock in readable:
            data, peer = sock.recvfrom(65536)
            _receive(name, address, sockets[sock], sock, data, peer, by_cid, configuration)
        now = time.time()
        for one in set(by_cid.values()):
            timer = one.quic.get_timer()
            if timer is not None and timer <= now:
                one.quic.handle_timer(now)
            _drain(name, address, one, by_cid)


def _receive(
    name: str, address: str, port: int, sock: socket.socket, data: bytes, peer: Any,
    by_cid: dict[bytes, _Served], configuration: QuicConfiguration,
) -> None:  # fmt: skip
    client = f"{peer[0]}:{peer[1]}"
    try:
        header = pull_quic_header(Buffer(data=data), host_cid_length=CID_LENGTH)
    except ValueError:
        _log(event="dropped", instance=name, port=port, client=client, reason="not QUIC")
        return
    one = by_cid.get(header.destination_cid)
    if one is None:
        if header.packet_type != PACKET_TYPE_INITIAL or len(data) < 1200:
            _log(event="dropped", instance=name, port=port, client=client,
                 dcid=header.destination_cid.hex(), reason="unknown connection ID")  # fmt: skip
            return
        quic = LabQuicConnection(server_id=SERVER_IDS[name], configuration=configuration,
                                 original_destination_connection_id=header.destination_cid)  # fmt: skip
        one = _Served(sock, port, quic)
        by_cid[header.destination_cid] = one
    one.quic.receive_datagram(data, peer, now=time.time())
    one.dcid = header.destination_cid.hex()  # type: ignore[attr-defined]
    one.client = client  # type: ignore[attr-defined]
    if not hasattr(one, "logged"):
        one.logged = True  # type: ignore[attr-defined]
        _log(event="connection", instance=name, server=address, port=port, client=client,
             odcid=one.odcid, issued=[c.hex() for c in one.quic.issued()])  # fmt: skip
    _drain(name, address, one, by_cid)


def _drain(name: str, address: str, one: _Served, by_cid: dict[bytes, _Served]) -> None:
    """Handle ``one``'s events, send what it has to send, keep the CID map current."""
    while (event := one.quic.next_event()) is not None:
        if isinstance(event, ConnectionTerminated):
            _log(event="closed", instance=name, port=one.port, odcid=one.odcid,
                 error_code=event.error_code, reason=event.reason_phrase)
            for cid in [c for c, s in by_cid.items() if s is one]:
                del by_cid[cid]
            return
        for h3_event in one.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and h3_event.stream_ended:
                _answer(name, address, one, h3_event)
    for data, addr in one.quic.datagrams_to_send(now=time.time()):
        one.sock.sendto(data, addr)
    for cid in one.quic.issued():
        by_cid.setdefault(cid, one)


def _answer(name: str, address: str, one: _Served, event: HeadersReceived) -> None:
    headers = {k.decode(): v.decode() for k, v in event.headers}
    path = headers.get(":path", "/")
    rid = headers.get("x-request-id", "-")
    client = getattr(one, "client", "")
    body = json.dumps({"instance": name, "rid": rid, "client": client}).encode() + b"\n"
    one.h3.send_headers(event.stream_id, [
        (b":status", b"200"), (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), (b"x-served-by", name.encode()),
    ])  # fmt: skip
    one.h3.send_data(event.stream_id, body, end_stream=True)
    _log(event="request", instance=name, server=address, port=one.port, client=client,
         dcid=getattr(one, "dcid", ""), odcid=one.odcid, stream=event.stream_id,
         method=headers.get(":method"), path=path, rid=rid, status=200)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 4:
        print("usage: python -m osilab.lab.quic_server NAME ADDRESS CERT KEY", file=sys.stderr)
        return 2
    try:
        serve(*args)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

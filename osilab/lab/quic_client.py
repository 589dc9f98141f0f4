"""The lab client's HTTP/3 connections (aioquic, sans-IO), with one connection migration.

:meth:`osilab.lab.client.Client.quic` runs :func:`exchange` once per balancer. Because
aioquic's :class:`~aioquic.quic.connection.QuicConnection` does no I/O, the client owns
its UDP socket and can replace it mid-connection: RFC 9000 §9's *connection migration*
(what a phone does moving from Wi-Fi to LTE, or a NAT rebinding does without asking).
The plan of one connection:

1. the handshake and :data:`BEFORE` requests from the first socket;
2. a new socket on a port for which the lab's 5-tuple hash (nftables ``jhash``, the very
   function :func:`osilab.balancers.hashing.nft_jhash_index` computes) picks the *other*
   instance; the client switches to a fresh connection ID the server issued
   (``change_connection_id``, as RFC 9000 §9.5 asks of a migrating client) and sends
   :data:`AFTER` more requests from the new socket;
3. a clean close when they were answered, else nothing: the connection ends by its idle
   timeout on both sides.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import Any

from osilab.balancers.hashing import nft_jhash_index
from osilab.lab.configs import NLB_SEED
from osilab.lab.quic import IDLE_TIMEOUT, TARGETS

__all__ = ["BEFORE", "AFTER", "exchange"]

BEFORE = 2
AFTER = 2


class _Client:
    def __init__(self, host: str, port: int, source: str, keylog: str | None) -> None:
        from aioquic.h3.connection import H3_ALPN, H3Connection
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection

        self.host, self.port, self.source = host, port, source
        self.keylog = open(keylog, "a") if keylog else None  # noqa: SIM115 (closed in close())
        configuration = QuicConfiguration(
            is_client=True, alpn_protocols=H3_ALPN, verify_mode=ssl.CERT_NONE,
            server_name="shop.example.com", idle_timeout=IDLE_TIMEOUT, secrets_log_file=self.keylog,
        )  # fmt: skip
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic)
        self.sock = self._socket(0)
        self.responses: dict[int, dict[str, Any]] = {}
        self.handshake = False
        self.terminated: str | None = None
        self.quic.connect((host, port), now=time.time())

    def _socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.source, port))
        return sock

    @property
    def local(self) -> str:
        name = self.sock.getsockname()
        return f"{name[0]}:{name[1]}"

    def run_until(self, done: Any, seconds: float) -> bool:
        """Send, receive and handle timers until ``done()`` or ``seconds`` or the end."""
        from aioquic.h3.events import DataReceived, HeadersReceived
        from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted

        deadline = time.monotonic() + seconds
        while not done() and self.terminated is None and time.monotonic() < deadline:
            for data, addr in self.quic.datagrams_to_send(now=time.time()):
                self.sock.sendto(data, addr)
            timer = self.quic.get_timer()
            wait = min(0.2, max(0.0, timer - time.time())) if timer is not None else 0.2
            if select.select([self.sock], [], [], wait)[0]:
                data, addr = self.sock.recvfrom(65536)
                self.quic.receive_datagram(data, addr, now=time.time())
            timer = self.quic.get_timer()
            if timer is not None and timer <= time.time():
                self.quic.handle_timer(now=time.time())
            while (event := self.quic.next_event()) is not None:
                if isinstance(event, HandshakeCompleted):
                    self.handshake = True
                elif isinstance(event, ConnectionTerminated):
                    self.terminated = event.reason_phrase or f"error {event.error_code}"
                for h3_event in self.h3.handle_event(event):
                    stream = getattr(h3_event, "stream_id", None)
                    if stream is None:
                        continue
                    got = self.responses.setdefault(stream, {"body": b""})
                    if isinstance(h3_event, HeadersReceived):
                        got["headers"] = {k.decode(): v.decode() for k, v in h3_event.headers}
                    elif isinstance(h3_event, DataReceived):
                        got["body"] += h3_event.data
                    if getattr(h3_event, "stream_ended", False):
                        got["ended"] = True
        for data, addr in self.quic.datagrams_to_send(now=time.time()):
            self.sock.sendto(data, addr)
        return bool(done())

    def get(self, path: str, rid: str, seconds: float) -> tuple[int, dict[str, Any] | None]:
        stream = self.quic.get_next_available_stream_id()
        self.h3.send_headers(stream, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"shop.example.com"),
            (b":path", path.encode()), (b"user-agent", b"osilab-lab-client/1"),
            (b"x-request-id", rid.encode()),
        ], end_stream=True)  # fmt: skip
        self.run_until(lambda: self.responses.get(stream, {}).get("ended"), seconds)
        return stream, self.responses.get(stream) if self.responses.get(stream, {}).get("ended") else None

    def migrate(self) -> str:
        """Move to a new socket whose 5-tuple the lab's hash sends to the other instance."""
        old = self.sock.getsockname()[1]
        first = nft_jhash_index(self.source, old, self.host, self.port, len(TARGETS), NLB_SEED)
        for port in range(old + 1, old + 2000):
            if nft_jhash_index(self.source, port, self.host, self.port, len(TARGETS), NLB_SEED) == first:
                continue
            try:
                new = self._socket(port)
            except OSError:
                continue
            self.sock.close()
            self.sock = new
            self.quic.change_connection_id()
            return self.local
        raise OSError(f"no free port from {old + 1} that hashes away from index {first}")

    def close(self) -> None:
        if self.terminated is None:
            self.quic.close()
            self.run_until(lambda: False, 0.3)
        self.sock.close()
        if self.keylog:
            self.keylog.close()


def exchange(address: str, source: str, keylog: str | None, rids: Any) -> list[dict[str, Any]]:
    """One HTTP/3 connection to ``address`` with a migration; one dict per request.

    ``rids`` gives the next request id. Each dict has ``rid``, ``path``, ``source`` (the
    client socket it was sent from), ``status``, ``served_by`` and ``extra``.
    """
    host, port = address.rsplit(":", 1)
    client = _Client(host, int(port), source, keylog)
    records: list[dict[str, Any]] = []
    try:
        if not client.run_until(lambda: client.handshake, 5.0):
            raise OSError(f"no QUIC handshake with {address}: {client.terminated or 'timeout'}")
        first = client.local
        for index in range(BEFORE + AFTER):
            migrated = index >= BEFORE
            moved = client.migrate() if index == BEFORE else None
            rid = rids()
            path = f"/api/quic?rid={rid}"
            stream, got = client.get(path, rid, IDLE_TIMEOUT + 3.0)
            headers = (got or {}).get("headers", {})
            records.append({
                "rid": rid, "path": path, "source": client.local, "status": int(headers[":status"])
                if ":status" in headers else None, "served_by": headers.get("x-served-by"),
                "extra": {"migrated": migrated, "first_source": first, "stream": stream,
                          "dcid": client.quic._peer_cid.cid.hex(),
                          **({"moved_to": moved} if moved else {}),
                          **({"ended": client.terminated} if got is None else {})},
            })  # fmt: skip
            if got is None:  # stranded: the connection ended by its idle timeout
                break
    finally:
        client.close()
    return records

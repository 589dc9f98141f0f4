"""The lab's scripted client: a fixed, bounded list of requests, each with a unique id.

Run inside the client namespace as ``python -m osilab.lab.client PLAN.json OUT.json``;
:mod:`osilab.lab.record` writes the plan. A plan is a list of *steps*; each step runs one
*suite* against one address (always a balancer virtual IP in 203.0.113.0/24, checked
before any socket is opened). The suites are chosen to show one thing each on the wire:

=============  ==============================================================
``keepalive``  several connections, several requests each (HTTP/1.1 keep-alive)
``pipelined``  one write holding several requests; responses come back in order
``slow_head``  a request head sent in pieces with pauses (``TCP_NODELAY``), so the
               headers span several TCP segments: an L7 balancer must wait for all
``big_head``   a 3 KB cookie: the head alone is larger than one MSS
``post``       a 24 KB body spread over many segments
``rules``      one request per ALB rule type (host, header, method, query, source IP, path)
``https``      TLS with SNI, key log saved (``SSLContext.keylog_filename``), keep-alive
``h2``         HTTP/2 over TLS (ALPN ``h2``): many streams on one connection
``mtls``       one TLS 1.3 connection presenting the lab CA's client certificate (mutual
               TLS: HAProxy ``verify required``), a few keep-alive requests
``short``      many one-request connections, so the balancer's spread shows
``smuggle``    a CL.TE request-smuggling attempt, then an innocent request behind it
``cdn``        the edge cache: hits, misses, cache keys, an expiry, a redirect (``lab.cdn``)
``websocket``  WebSocket connections (aiohttp, :mod:`osilab.lab.ws_client`): messages
               both ways, one with permessage-deflate, then a clean close -- or an
               idle connection the balancer closes
``failover``   keep-alive traffic through the L4 and ALB roles while one target stops
               accepting connections and starts again (:mod:`osilab.lab.failover`)
``quic``       HTTP/3 over QUIC (aioquic, :mod:`osilab.lab.quic_client`), moved to a new
               UDP port midway (connection migration)
=============  ==============================================================

Every request carries ``X-Request-Id: <id>`` *and* ``?rid=<id>``. HTTP/1.1 is written
and read with h11 (sans-IO); HTTP/2 with h2. Only the smuggling attempt is written by
hand, because h11 refuses to produce such a request (that is the point of it).
The output is one JSON record per request: id, suite, addresses, status, served-by.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import h11

from osilab.lab.cdn import PAUSE, VIEWER_REQUESTS

__all__ = ["RequestRecord", "Client", "run_plan", "main"]

_ALLOWED_DESTINATIONS = (ipaddress.ip_network("203.0.113.0/24"),)
_TIMEOUT = 5.0
_USER_AGENT = "osilab-lab-client/1"


@dataclass(slots=True)
class RequestRecord:
    """What the client did and saw for one request (one line of ``client.json``)."""

    rid: str
    suite: str
    method: str
    target: str
    host: str
    source: str
    destination: str
    scheme: str = "http"
    http_version: str = "1.1"
    status: int | None = None
    served_by: str | None = None
    cache: str | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _check_destination(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    if not any(ipaddress.ip_address(host) in net for net in _ALLOWED_DESTINATIONS):
        raise SystemExit(f"refusing to connect outside the lab: {address}")
    return host, int(port)


class _Http1:
    """One HTTP/1.1 client connection: a socket plus an h11 state machine."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.CLIENT)

    def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(65536)
                self.conn.receive_data(data)
                continue
            return event

    def read_response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = 0, {}, bytearray()
        while True:
            event = self._next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return status, headers, bytes(body)

    @staticmethod
    def encode(request: h11.Request, body: bytes) -> bytes:
        """The bytes of one request, made by a fresh h11 connection (used to pipeline)."""
        scratch = h11.Connection(h11.CLIENT)
        data = scratch.send(request) or b""
        if body:
            data += scratch.send(h11.Data(data=body)) or b""
        return data + (scratch.send(h11.EndOfMessage()) or b"")

    def send(self, request: h11.Request, body: bytes = b"", *, pieces: int = 1) -> None:
        data = self.conn.send(request) or b""
        if pieces > 1:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            step = max(1, len(data) // pieces)
            cuts = [data[i : i + step] for i in range(0, len(data), step)]
            for piece in cuts:
                self.sock.sendall(piece)
                time.sleep(0.05)
        else:
            self.sock.sendall(data)
        if body:
            self.sock.sendall(self.conn.send(h11.Data(data=body)) or b"")
        self.sock.sendall(self.conn.send(h11.EndOfMessage()) or b"")

    def finish_cycle(self) -> bool:
        """Prepare for the next request; False when the server closed the connection."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            return True
        return False


class Client:
    """Runs suites and collects :class:`RequestRecord` s; ids are ``<prefix><0001>``."""

    def __init__(
        self, prefix: str, keylog: str | None, sni: str, certificate: list[str] | None = None
    ) -> None:
        self.certificate = certificate  # [cert.pem, key.pem] the mtls suite presents
        self.prefix = prefix
        self.keylog = keylog
        self.sni = sni
        self.counter = 0
        self.records: list[RequestRecord] = []

    # -- plumbing ---------------------------------------------------------------
    def next_rid(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter:04d}"

    def connect(
        self, address: str, source: str, *, alpn: str | None = None, present: bool = False
    ) -> socket.socket:
        host, port = _check_destination(address)
        sock = socket.create_connection((host, port), timeout=_TIMEOUT, source_address=(source, 0))
        sock.settimeout(_TIMEOUT)
        if alpn is None:
            return sock
        context = ssl.create_default_context()
        # A lab certificate made at run time: not verified (nothing here is a real site).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols([alpn])
        if present and self.certificate:  # mutual TLS: answer the CertificateRequest
            context.load_cert_chain(*self.certificate)
        if self.keylog:
            context.keylog_filename = self.keylog
        return context.wrap_socket(sock, server_hostname=self.sni)

    @staticmethod
    def _with_rid(target: str, rid: str) -> str:
        return f"{target}{'&' if '?' in target else '?'}rid={rid}"

    def _request(
        self,
        rid: str,
        method: str,
        target: str,
        host: str,
        extra_headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        close: bool = False,
    ) -> h11.Request:
        headers = [("Host", host), ("User-Agent", _USER_AGENT), ("X-Request-Id", rid)]
        headers += list(extra_headers)
        if body:
            headers.append(("Content-Length", str(len(body))))
            headers.append(("Content-Type", "application/json"))
        if close:
            headers.append(("Connection", "close"))
        return h11.Request(method=method, target=self._with_rid(target, rid), headers=headers)

    def _record(
        self, sock: socket.socket, rid: str, suite: str, request: h11.Request, **kw: Any
    ) -> RequestRecord:
        local, remote = sock.getsockname(), sock.getpeername()
        record = RequestRecord(
            rid=rid,
            suite=suite,
            method=request.method.decode(),
            target=request.target.decode(),
            host=dict(request.headers).get(b"host", b"").decode(),
            source=f"{local[0]}:{local[1]}",
            destination=f"{remote[0]}:{remote[1]}",
            **kw,
        )
        self.records.append(record)
        return record

    @staticmethod
    def _fill(record: RequestRecord, status: int, headers: dict[str, str], body: bytes) -> None:
        record.status = status
        record.served_by = headers.get("x-served-by")
        if headers.get("content-type", "").startswith("application/json"):
            try:
                record.cache = json.loads(body).get("cache")
            except (ValueError, AttributeError):
                pass

    def exchange(
        self,
        http: _Http1,
        suite: str,
        method: str,
        target: str,
        *,
        host: str = "shop.example.com",
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        close: bool = False,
        pieces: int = 1,
        scheme: str = "http",
    ) -> RequestRecord:
        rid = self.next_rid()
        request = self._request(rid, method, target, host, headers, body, close)
        record = self._record(http.sock, rid, suite, request, scheme=scheme)
        http.send(request, body, pieces=pieces)
        self._fill(record, *http.read_response())
        return record

    # -- suites -------------------------------------------------------------------
    def keepalive(
        self, address: str, source: str, connections: int = 4, per: int = 6, **_: Any
    ) -> None:
        paths = ["/", "/static/app.js", "/api/items/{n}", "/static/style.css", "/api/items/{n}"]
        for c in range(connections):
            with self.connect(address, source) as sock:
                http = _Http1(sock)
                for i in range(per):
                    path = paths[i % len(paths)].format(n=1 + (c + i) % 5)
                    self.exchange(http, "keepalive", "GET", path)
                    if not http.finish_cycle():
                        break

    def pipelined(self, address: str, source: str, count: int = 6, **_: Any) -> None:
        with self.connect(address, source) as sock:
            http = _Http1(sock)
            batch = []
            for i in range(count):
                rid = self.next_rid()
                request = self._request(rid, "GET", f"/api/items/{6 + i % 3}", "shop.example.com")
                batch.append((rid, request))
                self._record(sock, rid, "pipelined", request)
            # One write: every request leaves before the first response arrives.
            sock.sendall(b"".join(_Http1.encode(request, b"") for _rid, request in batch))
            for offset, (_rid, request) in enumerate(batch):
                http.conn.send(request)  # bytes already sent above; keeps h11's state in step
                http.conn.send(h11.EndOfMessage())
                pending = self.records[-len(batch) + offset]
                self._fill(pending, *http.read_response())
                if not http.finish_cycle():
                    break

    def slow_head(self, address: str, source: str, **_: Any) -> None:
        with self.connect(address, source) as sock:
            http = _Http1(sock)
            self.exchange(
                http,
                "slow_head",
                "GET",
                "/api/items/9",
                headers=(("Accept", "application/json"), ("X-Trace", "head-in-pieces")),
                pieces=4,
            )

    def big_head(self, address: str, source: str, **_: Any) -> None:
        with self.connect(address, source) as sock:
            cookie = "session=" + "c" * 3000
            self.exchange(_Http1(sock), "big_head", "GET", "/", headers=(("Cookie", cookie),))

    def post(self, address: str, source: str, size: int = 24_000, **_: Any) -> None:
        body = json.dumps({"lines": ["x" * 90] * (size // 96)}).encode()
        with self.connect(address, source) as sock:
            self.exchange(_Http1(sock), "post", "POST", "/api/orders", body=body)

    def rules(
        self, address: str, source: str, second_source: str = "198.51.100.8", **_: Any
    ) -> None:
        cases: list[dict[str, Any]] = [
            {"method": "GET", "target": "/", "host": "admin.example.com", "note": "host"},
            {"method": "GET", "target": "/", "headers": (("X-Canary", "1"),), "note": "header"},
            {"method": "DELETE", "target": "/api/items/3", "note": "method"},
            {"method": "GET", "target": "/?version=beta", "note": "query"},
            {"method": "GET", "target": "/", "source": second_source, "note": "source"},
            {"method": "GET", "target": "/api/items/4", "note": "path"},
            {"method": "GET", "target": "/static/app.js", "note": "default"},
        ]
        for case in cases:
            with self.connect(address, case.get("source", source)) as sock:
                record = self.exchange(
                    _Http1(sock),
                    "rules",
                    case["method"],
                    case["target"],
                    host=case.get("host", "shop.example.com"),
                    headers=case.get("headers", ()),
                )
                record.note = f"expects rule {case['note']}"

    def https(
        self, address: str, source: str, connections: int = 2, per: int = 4, **_: Any
    ) -> None:
        for c in range(connections):
            with self.connect(address, source, alpn="http/1.1") as sock:
                http = _Http1(sock)
                for i in range(per):
                    target = f"/api/items/{10 + (c + i) % 3}" if i % 2 else "/"
                    self.exchange(http, "https", "GET", target, scheme="https")
                    if not http.finish_cycle():
                        break

    def mtls(self, address: str, source: str, per: int = 3, **_: Any) -> None:
        with self.connect(address, source, alpn="http/1.1", present=True) as sock:
            http = _Http1(sock)
            for i in range(per):
                self.exchange(http, "mtls", "GET", "/" if i % 2 == 0 else "/api/items/7", scheme="https")
                if not http.finish_cycle():
                    break

    def h2(self, address: str, source: str, streams: int = 24, **_: Any) -> None:
        import h2.config
        import h2.connection
        import h2.events

        with self.connect(address, source, alpn="h2") as sock:
            if getattr(sock, "selected_alpn_protocol", lambda: None)() != "h2":
                raise SystemExit("the server did not agree to HTTP/2 (ALPN)")
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            by_stream: dict[int, RequestRecord] = {}
            local, remote = sock.getsockname(), sock.getpeername()
            for i in range(streams):
                rid = self.next_rid()
                path = self._with_rid(
                    f"/api/items/{12 + i % 4}" if i % 2 else "/static/app.js", rid
                )
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(
                    stream_id,
                    [
                        (":method", "GET"),
                        (":scheme", "https"),
                        (":authority", "shop.example.com"),
                        (":path", path),
                        ("user-agent", _USER_AGENT),
                        ("x-request-id", rid),
                    ],
                    end_stream=True,
                )
                record = RequestRecord(
                    rid, "h2", "GET", path, "shop.example.com",
                    f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}",
                    scheme="https", http_version="2", extra={"stream": stream_id},
                )  # fmt: skip
                by_stream[stream_id] = record
                self.records.append(record)
            sock.sendall(conn.data_to_send())
            open_streams = set(by_stream)
            bodies: dict[int, bytearray] = {sid: bytearray() for sid in by_stream}
            while open_streams:
                data = sock.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers = {
                            k.decode() if isinstance(k, bytes) else k: v for k, v in event.headers
                        }
                        record = by_stream[event.stream_id]
                        record.status = int(_text(headers.get(":status", "0")))
                        record.served_by = _text(headers.get("x-served-by")) or None
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        open_streams.discard(event.stream_id)
                sock.sendall(conn.data_to_send())
            for stream_id, body in bodies.items():
                try:
                    by_stream[stream_id].cache = json.loads(body).get("cache")
                except (ValueError, AttributeError):
                    pass
            conn.close_connection()
            sock.sendall(conn.data_to_send())

    def short(self, address: str, source: str, count: int = 30, **_: Any) -> None:
        for i in range(count):
            with self.connect(address, source) as sock:
                target = f"/api/items/{1 + i % 5}" if i % 3 == 0 else "/"
                self.exchange(_Http1(sock), "short", "GET", target, close=True)

    def cdn(
        self, address: str, source: str, plain: str = "", pause: float = PAUSE, **_: Any
    ) -> None:
        """The edge cache (:data:`osilab.lab.cdn.VIEWER_REQUESTS`): one keep-alive connection
        per name, HTTPS to ``address``, plain HTTP to ``plain``. The request id goes only in
        ``X-Request-Id``: in the query it would make every request a new cache key."""
        connections: dict[str, _Http1] = {}
        try:
            for name, method, path, headers, expected, why in VIEWER_REQUESTS:
                if name == "pause":
                    time.sleep(pause)
                    continue
                secure = name.startswith("https")
                if name not in connections:
                    sock = self.connect(address if secure else plain, source,
                                        alpn="http/1.1" if secure else None)  # fmt: skip
                    connections[name] = _Http1(sock)
                http, rid = connections[name], self.next_rid()
                body = b'{"item": 1, "quantity": 2}' if method == "POST" else b""
                fields = [("Host", "shop.example.com"), ("User-Agent", _USER_AGENT),
                          ("X-Request-Id", rid), *headers]  # fmt: skip
                if body:
                    fields.append(("Content-Length", str(len(body))))
                request = h11.Request(method=method, target=path, headers=fields)
                record = self._record(http.sock, rid, "cdn", request,
                                      scheme="https" if secure else "http", note=why)  # fmt: skip
                http.send(request, body)
                status, response, content = http.read_response()
                self._fill(record, status, response, content)
                record.extra = {"x_cache": response.get("x-cache"), "bytes": len(content),
                                "expected": f"{expected} from cloudfront",
                                "via": response.get("via"), "location": response.get("location")}  # fmt: skip
                if not http.finish_cycle():
                    connections.pop(name).sock.close()
        finally:
            for http in connections.values():
                http.sock.close()

    def smuggle(self, address: str, source: str, **_: Any) -> None:
        """A CL.TE attempt: ``Content-Length`` covers a hidden second request, chunked ends early.

        A front end that trusts Content-Length forwards the whole body; a back end that
        trusts Transfer-Encoding stops at the ``0`` chunk and reads the rest as the *next*
        request on the connection (RFC 9112 §6.3 says TE wins and the message must be
        treated with suspicion). Whatever the real servers do is recorded, not assumed.
        """
        outer, hidden, innocent = self.next_rid(), self.next_rid(), self.next_rid()
        smuggled = (
            f"GET /api/items/2?rid={hidden} HTTP/1.1\r\nHost: shop.example.com\r\n"
            f"X-Request-Id: {hidden}\r\nX-Smuggled: yes\r\n\r\n"
        ).encode()
        body = b"0\r\n\r\n" + smuggled
        head = (
            f"POST /api/orders?rid={outer} HTTP/1.1\r\nHost: shop.example.com\r\n"
            f"User-Agent: {_USER_AGENT}\r\nX-Request-Id: {outer}\r\n"
            f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        follow = (
            f"GET /static/app.js?rid={innocent} HTTP/1.1\r\nHost: shop.example.com\r\n"
            f"User-Agent: {_USER_AGENT}\r\nX-Request-Id: {innocent}\r\n\r\n"
        ).encode()
        with self.connect(address, source) as sock:
            local, remote = sock.getsockname(), sock.getpeername()
            sock.sendall(head + body)
            time.sleep(0.3)
            try:
                sock.sendall(follow)
            except OSError:
                pass
            received = bytearray()
            deadline = time.monotonic() + 2.0
            sock.settimeout(0.5)
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(65536)
                except (TimeoutError, OSError):
                    continue
                if not data:
                    break
                received += data
        statuses = [
            int(line.split()[1])
            for line in bytes(received).split(b"\r\n")
            if line.startswith(b"HTTP/1.") and len(line.split()) > 1 and line.split()[1].isdigit()
        ]
        for rid, method, target, note in (
            (outer, "POST", f"/api/orders?rid={outer}", "outer request (CL and TE)"),
            (hidden, "GET", f"/api/items/2?rid={hidden}", "hidden inside the outer body"),
            (innocent, "GET", f"/static/app.js?rid={innocent}", "sent after, same connection"),
        ):
            self.records.append(
                RequestRecord(
                    rid, "smuggle", method, target, "shop.example.com",
                    f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}", note=note,
                    extra={"response_statuses_on_connection": statuses,
                           "responses_raw": bytes(received[:1500]).decode("latin-1")},
                )
            )  # fmt: skip

    def websocket(
        self, address: str, source: str, connections: int = 2, idle: float | None = None,
        big: bool = True, **_: Any,
    ) -> None:  # fmt: skip
        """``connections`` WebSockets to ``/ws/echo``: the first with a 64 KiB message (with
        ``big``), the second with permessage-deflate; with ``idle``, one more left idle."""
        from osilab.lab.ws_client import connection

        host, port = _check_destination(address)
        plans: list[dict[str, Any]] = [
            {"big": big and c == 0, "deflate": c == 1} for c in range(connections)
        ]
        if idle is not None:
            plans.append({"idle": idle})
        for plan in plans:
            rid = self.next_rid()
            target = f"/ws/echo?rid={rid}"
            got = connection(f"http://{host}:{port}{target}", source, rid, **plan)
            self.records.append(
                RequestRecord(
                    rid, "websocket", "GET", target, f"{host}:{port}", got.pop("source", ""),
                    address, status=got.pop("status", None), served_by=got.pop("served_by", None),
                    note="WebSocket: " + ("left idle" if "idle" in plan else "clean close"), extra=got,
                )
            )  # fmt: skip

    def quic(self, address: str, source: str, **_: Any) -> None:
        """One HTTP/3 connection to ``address`` (UDP) that migrates to a new port midway
        (:mod:`osilab.lab.quic_client`); a request lost after the move is recorded too."""
        from osilab.lab.quic_client import exchange

        _check_destination(address)
        for got in exchange(address, source, self.keylog, self.next_rid):
            self.records.append(RequestRecord(
                got["rid"], "quic", "GET", got["path"], "shop.example.com", got["source"],
                address, scheme="https", http_version="3", status=got["status"],
                served_by=got["served_by"], extra=got["extra"],
                note="after the migration" if got["extra"]["migrated"] else "",
            ))  # fmt: skip

    def failover(
        self, address: str, source: str, alb: str, target_ns: str, settle: float = 1.5,
        connections: int = 4, **_: Any,
    ) -> None:  # fmt: skip
        """Three phases on the L4 role (``address``) and the ALB role (``alb``): both
        targets up; the target in ``target_ns`` refusing new connections (its health checks
        fail, its open connections stay up until the balancer ends them); and up again.

        L4: ``connections`` kept-alive connections opened first are tried again in phase 2
        (those on the stopped target were reset by the balancer), and two new ones open in
        each later phase. ALB: one kept-alive connection carries four requests a phase.
        The stop and start times are recorded (``extra``) for truth.json.
        """
        _check_destination(alb)
        if not target_ns.startswith("osl-"):
            raise SystemExit(f"refusing to act outside the lab: {target_ns}")
        kept = [self._named(self.connect(address, source)) for _ in range(connections)]
        front = self._named(self.connect(alb, source))
        for phase, action in (("up", None), ("down", "stop"), ("up again", "start")):
            if action is not None:
                at = _target_action(target_ns, action)
                self.records.append(RequestRecord(
                    self.next_rid(), "failover", "-", "-", "-", source, address,
                    note=f"target {action}", extra={"action": action, "at": at},
                ))  # fmt: skip
                time.sleep(settle)
            for http in kept if action != "start" else ():
                self._failover_exchange(http, phase)
            for _new in range(2 if action else 0):
                with self.connect(address, source) as sock:
                    self._failover_exchange(self._named(sock), phase, close=True)
            for _turn in range(4):
                self._failover_exchange(front, phase)
        for http in [*kept, front]:
            http.sock.close()

    @staticmethod
    def _named(sock: socket.socket) -> _Http1:
        """An HTTP/1.1 connection that remembers its addresses (a reset socket forgets them)."""
        http = _Http1(sock)
        local, remote = sock.getsockname(), sock.getpeername()
        http.names = (f"{local[0]}:{local[1]}", f"{remote[0]}:{remote[1]}")  # type: ignore[attr-defined]
        return http

    def _failover_exchange(self, http: _Http1, phase: str, close: bool = False) -> None:
        """One GET on ``http``; a connection the balancer reset is recorded as such."""
        count = len(self.records)
        try:
            record = self.exchange(http, "failover", "GET", "/", close=close)
            record.note = phase
            http.finish_cycle()
        except (OSError, h11.ProtocolError) as exc:
            if len(self.records) == count:  # it failed before its record was made
                local, remote = http.names  # type: ignore[attr-defined]
                self.records.append(RequestRecord(
                    self.next_rid(), "failover", "GET", "/", "shop.example.com", local, remote))  # fmt: skip
            self.records[-1].note = f"{phase}: connection reset ({type(exc).__name__})"


def _target_action(namespace: str, action: str) -> float:
    """Stop (reject new TCP connections to :80 with RST, as a stopped server's kernel does)
    or start the target in ``namespace``; returns the time it took effect."""
    import subprocess

    command = ["ip", "netns", "exec", namespace, "nft"]
    if action == "stop":
        ruleset = ("table inet failover {\n chain input {\n  type filter hook input priority 0;\n"
                   "  tcp dport 80 ct state new reject with tcp reset\n }\n}\n")  # fmt: skip
        subprocess.run([*command, "-f", "-"], input=ruleset, text=True, check=True, timeout=10)
    else:
        subprocess.run([*command, "delete", "table", "inet", "failover"], check=True, timeout=10)
    return time.time()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def run_plan(plan: dict[str, Any]) -> Iterator[RequestRecord]:
    """Run every step of ``plan``; yields the records (the plan's order, then request order)."""
    client = Client(plan["prefix"], plan.get("keylog"), plan.get("sni", "shop.example.com"),
                    plan.get("client_certificate"))  # fmt: skip
    for step in plan["steps"]:
        suite = getattr(client, step["suite"])
        options = {k: v for k, v in step.items() if k not in ("suite",)}
        options.setdefault("source", plan.get("source", "198.51.100.7"))
        try:
            suite(**options)
        except (OSError, h11.ProtocolError) as exc:
            client.records.append(
                RequestRecord(
                    client.next_rid(), step["suite"], "-", "-", "-", options["source"],
                    options["address"], note=f"suite failed: {type(exc).__name__}: {exc}",
                )
            )  # fmt: skip
        time.sleep(plan.get("pause", 0.05))
    yield from client.records


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 2:
        print("usage: python -m osilab.lab.client PLAN.json OUT.json", file=sys.stderr)
        return 2
    with open(args[0]) as handle:
        plan = json.load(handle)
    records = [asdict(record) for record in run_plan(plan)]
    with open(args[1], "w") as handle:
        json.dump(records, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

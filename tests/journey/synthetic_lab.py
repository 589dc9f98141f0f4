"""A small multi-hop capture shaped like the lab's, built here so the journey can be tested alone.

It follows the lab's own declaration (:data:`osilab.lab.topology.LAB`): the same hosts,
MAC addresses, IP addresses and per-hop interface names, and writes the same
``topology.json`` beside the capture. The traffic is what the lab's servers do:

* ``alb`` scenario: the client asks the ALB (HAProxy ``mode http``) for
  ``/api/items/3`` twice (``r0001`` misses the cache: Redis ``GET`` (nil), SQL, ``SET``;
  ``r0002`` hits it) and for ``/static/app.js`` (``r0003``, served by nginx itself).
  The ALB opens its own connections to the instances and adds ``X-Forwarded-For``;
  nginx proxies ``/api/`` to the app over another connection; the app talks to Redis and
  PostgreSQL over pooled connections opened before the capture started.
* ``nlb`` scenario: the same ``/api/items/3`` (``r0101``, cached) through the NLB
  (nftables DNAT): one TCP connection end to end, the destination rewritten, the client's
  address kept.

Beside each capture go its ``topology.json`` and its balancer configs
(``alb.config.json`` / ``nlb.config.json``), written by the lab's own
:func:`osilab.lab.record.write_configs`.

The pcapng writer is the smallest that works: one Section Header Block, one Interface
Description Block per hop (``if_name`` option), one Enhanced Packet Block per frame.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from shared_paths import CAPTURES

from osilab.lab.configs import ALB_MTLS_TRUST_STORE
from osilab.lab.record import SCENARIOS, write_configs
from osilab.lab.topology import LAB

__all__ = ["build_alb", "build_nlb", "write_pcapng", "interface_macs"]

TCP_FLAGS = {"S": 0x02, "SA": 0x12, "A": 0x10, "PA": 0x18, "FA": 0x11}


def interface_macs() -> dict[str, str]:
    """Interface name -> MAC address, from the lab's declaration."""
    return {end.name: end.mac for end in LAB.interfaces()}


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng(path: Path, hops: list[str], frames: list[tuple[float, str, bytes]]) -> None:
    """Write ``frames`` ((time, hop name, Ethernet frame)) as pcapng, one named interface per hop."""
    out = bytearray(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
    for hop in hops:
        options = _option(2, hop.encode()) + _option(9, bytes([6])) + _option(0, b"")
        out += _block(1, struct.pack("<HHI", 1, 0, 65535) + options)
    index = {hop: i for i, hop in enumerate(hops)}
    for time, hop, frame in sorted(frames, key=lambda item: item[0]):
        stamp = round(time * 1_000_000)
        pad = (-len(frame)) % 4
        body = struct.pack(
            "<IIIII", index[hop], stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)
        )
        out += _block(6, body + frame + b"\0" * pad)
    path.write_bytes(bytes(out))


@dataclass
class View:
    """Where one TCP connection is seen: a hop, the addresses and MACs on it, the TTL."""

    hop: str
    client_ip: str
    server_ip: str
    client_mac: str  # the MAC of the client-side end of this link
    server_mac: str
    ttl: int = 64
    delay: float = 0.0


@dataclass
class Conn:
    """One TCP connection, possibly seen on several hops (an NLB forwards it whole)."""

    wire: Wire
    views: list[View]
    client_port: int
    server_port: int
    seq: dict[str, int] = field(default_factory=lambda: {"c": 1000, "s": 5000})

    def _emit(self, t: float, side: str, flags: str, payload: bytes = b"") -> None:
        views = self.views if side == "c" else list(reversed(self.views))
        other = "s" if side == "c" else "c"
        for step, view in enumerate(views):
            if side == "c":
                smac, dmac = view.client_mac, view.server_mac
                src, dst, sport, dport = (
                    view.client_ip,
                    view.server_ip,
                    self.client_port,
                    self.server_port,
                )
            else:
                smac, dmac = view.server_mac, view.client_mac
                src, dst, sport, dport = (
                    view.server_ip,
                    view.client_ip,
                    self.server_port,
                    self.client_port,
                )
            ack = self.seq[other] if flags != "S" else 0
            frame = (
                Ether(src=smac, dst=dmac)
                / IP(src=src, dst=dst, ttl=view.ttl, id=0)
                / TCP(
                    sport=sport, dport=dport, flags=flags, seq=self.seq[side], ack=ack, window=64240
                )
            )
            if payload:
                frame = frame / payload
            self.wire.frames.append((t + step * 0.00005, view.hop, bytes(frame)))
        self.seq[side] += len(payload) + (1 if flags in ("S", "SA", "FA") else 0)

    def handshake(self, t: float) -> float:
        self._emit(t, "c", "S")
        self._emit(t + 0.0002, "s", "SA")
        self._emit(t + 0.0004, "c", "A")
        return t + 0.0005

    def send(self, t: float, side: str, payload: bytes) -> float:
        """Send ``payload`` from ``side`` (``"c"`` or ``"s"``), in 1400-byte segments, then an ACK back."""
        for start in range(0, len(payload), 1400):
            self._emit(t, side, "PA", payload[start : start + 1400])
            t += 0.0001
        self._emit(t + 0.0001, "s" if side == "c" else "c", "A")
        return t + 0.0002


@dataclass
class Wire:
    """All frames of one scenario."""

    frames: list[tuple[float, str, bytes]] = field(default_factory=list)


def _resp(*words: str) -> bytes:
    out = f"*{len(words)}\r\n".encode()
    for word in words:
        data = word.encode()
        out += b"$%d\r\n%s\r\n" % (len(data), data)
    return out


def _pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _pg_query(sql: str) -> bytes:
    return _pg_message(b"Q", sql.encode() + b"\0")


def _pg_rows() -> bytes:
    fields = b"".join(
        name + b"\0" + struct.pack("!IhIhih", 0, 0, 23, 4, -1, 0)
        for name in (b"id", b"name", b"price")
    )
    row_description = _pg_message(b"T", struct.pack("!h", 3) + fields)
    values = [b"3", b"item 3", b"11.10"]
    data_row = _pg_message(
        b"D", struct.pack("!h", 3) + b"".join(struct.pack("!i", len(v)) + v for v in values)
    )
    return row_description + data_row + _pg_message(b"C", b"SELECT 1\0") + _pg_message(b"Z", b"I")


ITEM = b'{"id": 3, "name": "item 3", "price": "11.10"}'


def _client_request(rid: str, target: str) -> bytes:
    return (
        f"GET {target}?rid={rid} HTTP/1.1\r\nHost: shop.example.com\r\n"
        f"User-Agent: osilab-lab-client/1\r\nX-Request-Id: {rid}\r\n\r\n"
    ).encode()


def _with_xff(head: bytes, client: str) -> bytes:
    return head[:-2] + f"X-Forwarded-For: {client}\r\n\r\n".encode()


def _nginx_to_app(rid: str, target: str, xff: str | None) -> bytes:
    lines = [
        f"GET {target}?rid={rid} HTTP/1.1",
        "Host: shop.example.com",
        f"X-Request-Id: {rid}",
        "User-Agent: osilab-lab-client/1",
    ]
    if xff:
        lines.append(f"X-Forwarded-For: {xff}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _http_response(body: bytes, ctype: str, served_by: str | None = None) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    if served_by:
        head += f"X-Served-By: {served_by}\r\n"
    return head.encode() + b"\r\n" + body


class _Backend:
    """The app side of one instance: its pooled Redis and PostgreSQL connections."""

    def __init__(self, wire: Wire, app: str, app_ip: str, app_port_base: int) -> None:
        macs = interface_macs()
        self.redis = Conn(
            wire,
            [View("api-redis", app_ip, "192.0.2.30", macs[f"{app}-data"], macs["api-redis"])],
            app_port_base,
            6379,
        )
        self.db = Conn(
            wire,
            [View("api-db", app_ip, "192.0.2.40", macs[f"{app}-data"], macs["api-db"])],
            app_port_base + 1,
            5432,
        )

    def item(self, t: float, rid: str, cached: bool) -> float:
        t = self.redis.send(t, "c", _resp("SET", f"rid:{rid}", "item:3", "EX", "300"))
        t = self.redis.send(t + 0.0003, "s", b"+OK\r\n")
        t = self.redis.send(t + 0.0003, "c", _resp("GET", "item:3"))
        if cached:
            return self.redis.send(t + 0.0003, "s", b"$%d\r\n%s\r\n" % (len(ITEM), ITEM))
        t = self.redis.send(t + 0.0003, "s", b"$-1\r\n")
        t = self.db.send(
            t + 0.0003,
            "c",
            _pg_query(f"/* rid={rid} */ SELECT id, name, price FROM items WHERE id = 3"),
        )
        t = self.db.send(t + 0.002, "s", _pg_rows())
        t = self.redis.send(t + 0.0003, "c", _resp("SET", "item:3", ITEM.decode(), "EX", "300"))
        return self.redis.send(t + 0.0003, "s", b"+OK\r\n")


def _app_response(rid: str, cached: bool, app: str) -> bytes:
    body = b'{"item": %s, "cache": "%s", "rid": "%s", "app": "%s"}' % (
        ITEM,
        b"hit" if cached else b"miss",
        rid.encode(),
        app.encode(),
    )
    return _http_response(body, "application/json; charset=utf-8")


def _topology(directory: Path, hops: tuple[str, ...], scenario: str) -> None:
    """``topology.json`` and the balancer configs beside the capture, as the lab writes them."""
    (directory / "topology.json").write_text(json.dumps(LAB.to_json(hops), indent=1))
    write_configs(SCENARIOS[scenario], directory)
    # The ALB config's mTLS listener names the lab CA's PEM as its TrustStore; the lab copies
    # the CA it made at record time beside the capture, so this folder takes the bundled one.
    trust_store = CAPTURES / "alb" / ALB_MTLS_TRUST_STORE
    if (directory / "alb.config.json").is_file() and ALB_MTLS_TRUST_STORE in (
        directory / "alb.config.json"
    ).read_text():
        shutil.copy(trust_store, directory / ALB_MTLS_TRUST_STORE)


def build_alb(directory: Path) -> Path:
    """The ALB scenario: r0001 (uncached /api), r0002 (cached /api, other instance), r0003 (static)."""
    macs = interface_macs()
    wire = Wire()
    t0 = 1_764_352_800.0
    backends = {
        "web1": _Backend(wire, "api1", "192.0.2.21", 41000),
        "web2": _Backend(wire, "api2", "192.0.2.22", 42000),
    }
    client = Conn(
        wire,
        [
            View(
                "client-alb", "198.51.100.7", "203.0.113.10", macs["client-alb"], macs["alb-client"]
            )
        ],
        51514,
        80,
    )
    t = client.handshake(t0)
    instance_ip = {"web1": "192.0.2.11", "web2": "192.0.2.12"}
    app_of = {"web1": ("api1", "192.0.2.21"), "web2": ("api2", "192.0.2.22")}
    plan = [
        ("r0001", "/api/items/3", "web1", False),
        ("r0002", "/api/items/3", "web2", True),
        ("r0003", "/static/app.js", "web1", None),
    ]
    for number, (rid, target, web, cached) in enumerate(plan):
        head = _client_request(rid, target)
        t = client.send(t + 0.01, "c", head)
        back = Conn(
            wire,
            [
                View(
                    f"alb-{web}",
                    "192.0.2.2",
                    instance_ip[web],
                    macs[f"alb-{web}"],
                    macs[f"{web}-alb"],
                )
            ],
            33000 + number,
            80,
        )
        t = back.handshake(t + 0.0002)
        t = back.send(t, "c", _with_xff(head, "198.51.100.7"))
        if cached is None:
            response = _http_response(b"console.log('osilab');\n", "application/javascript", web)
        else:
            app, app_ip = app_of[web]
            upstream = Conn(
                wire,
                [
                    View(
                        f"{web}-api",
                        instance_ip[web],
                        app_ip,
                        macs[f"{web}-api"],
                        macs[f"api-{web}"],
                    )
                ],
                47000 + number,
                8080,
            )
            t = upstream.handshake(t + 0.0002)
            t = upstream.send(t, "c", _nginx_to_app(rid, target, "198.51.100.7"))
            t = backends[web].item(t + 0.0005, rid, cached)
            app_response = _app_response(rid, cached, app)
            t = upstream.send(t + 0.0005, "s", app_response)
            response = app_response.replace(
                b"\r\n\r\n", f"\r\nX-Served-By: {web}\r\n\r\n".encode(), 1
            )
        t = back.send(t + 0.0003, "s", response)
        t = client.send(t + 0.0003, "s", response)
    _topology(
        directory,
        ("client-alb", "alb-web1", "alb-web2", "web1-api", "web2-api", "api-redis", "api-db"),
        "alb",
    )
    path = directory / "alb.pcapng"
    write_pcapng(
        path,
        ["client-alb", "alb-web1", "alb-web2", "web1-api", "web2-api", "api-redis", "api-db"],
        wire.frames,
    )
    return path


def build_nlb(directory: Path, *, cached: bool = True) -> Path:
    """The NLB scenario: r0101 for /api/items/3 through the NLB (one connection, DNAT)."""
    macs = interface_macs()
    wire = Wire()
    t0 = 1_764_352_900.0
    backend = _Backend(wire, "api1", "192.0.2.21", 41000)
    client = Conn(
        wire,
        [
            View(
                "client-nlb", "198.51.100.7", "203.0.113.20", macs["client-nlb"], macs["nlb-client"]
            ),
            View(
                "nlb-web1", "198.51.100.7", "192.0.2.11", macs["nlb-web1"], macs["web1-nlb"], ttl=63
            ),
        ],
        52000,
        80,
    )
    t = client.handshake(t0)
    rid, target = "r0101", "/api/items/3"
    head = _client_request(rid, target)
    t = client.send(t + 0.01, "c", head)
    upstream = Conn(
        wire,
        [View("web1-api", "192.0.2.11", "192.0.2.21", macs["web1-api"], macs["api-web1"])],
        47100,
        8080,
    )
    t = upstream.handshake(t + 0.0002)
    t = upstream.send(t, "c", _nginx_to_app(rid, target, None))
    t = backend.item(t + 0.0005, rid, cached)
    app_response = _app_response(rid, cached, "api1")
    t = upstream.send(t + 0.0005, "s", app_response)
    response = app_response.replace(b"\r\n\r\n", b"\r\nX-Served-By: web1\r\n\r\n", 1)
    client.send(t + 0.0003, "s", response)
    hops = ("client-nlb", "nlb-web1", "nlb-web2", "web1-api", "web2-api", "api-redis", "api-db")
    _topology(directory, hops, "nlb")
    path = directory / "nlb.pcapng"
    write_pcapng(path, list(hops), wire.frames)
    return path

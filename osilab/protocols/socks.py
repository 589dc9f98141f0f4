"""SOCKS 4/4a/5 on a TCP stream: the proxy handshake, then the client's own protocol.

Theory of operation
-------------------
A SOCKS client (RFC 1928 for version 5; the SOCKS 4 and 4a memos for the older ones)
connects to the proxy, usually on TCP 1080, and asks it to CONNECT to the real server:

* SOCKS 4: ``04 01 port(16) ipv4(32) userid NUL`` (4a: the address 0.0.0.x, then a host
  name and NUL); the proxy answers 8 bytes, ``00 5a`` meaning granted.
* SOCKS 5: a greeting (``05``, the number of methods, the methods), the proxy's choice
  (``05 method``), an optional sub-negotiation (user/password, RFC 1929), then the request
  ``05 cmd 00 atyp address port`` and the reply of the same shape.

After the reply the proxy relays bytes both ways: the rest of the stream is the client's
own protocol (HTTP, TLS...), which this parser hands to the parser for it. Like tshark,
every relayed segment also shows a ``socks`` layer, under the inner protocol's messages.

What this module must not know: packets, reassembly, files.
"""

from __future__ import annotations

from typing import Any

from osilab.capture.dissect import looks_like_http
from osilab.capture.layer import ip_text
from osilab.capture.tls_records import looks_like_tls
from osilab.protocols import AppMessage, Direction
from osilab.protocols.http import HttpParser
from osilab.protocols.tls import TlsParser
from osilab.streams.keys import FlowKey

__all__ = ["SocksParser"]


class SocksParser:
    """Sans-IO SOCKS parser for one flow (both directions).

    >>> from osilab.protocols import Direction
    >>> parser = SocksParser()
    >>> [m.summary for m in parser.feed(Direction.TO_SERVER, bytes.fromhex("040100500a000001") + b"\\0", 5, 0.0)]
    ['SOCKS 4 CONNECT to 10.0.0.1:80']
    """

    protocol = "socks"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        self.flow = flow
        self.keylog = keylog
        self.version: int | None = None
        self.target: str | None = None  # host:port the client asked for
        self._steps = {Direction.TO_SERVER: 0, Direction.TO_CLIENT: 0}  # handshake messages seen
        self._relaying = False
        self._inner: Any = None

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        if not data:
            return []
        if self._relaying:
            return self._relay(direction, data, packet_no, time)
        step = self._steps[direction]
        self._steps[direction] = step + 1
        fields: dict[str, Any] = {"stage": "complete", "version": data[0]}
        if self.version is None:
            self.version = data[0]
        summary = self._handshake(direction, step, data, fields)
        if self._done():
            self._relaying = True
        return [AppMessage("socks", direction, packet_no, packet_no, len(data), summary, fields, time)]

    def _handshake(self, direction: Direction, step: int, data: bytes, fields: dict[str, Any]) -> str:
        """One handshake message's summary (and fields)."""
        client = direction is Direction.TO_SERVER
        if self.version == 4:
            if client and len(data) >= 8:
                port, address = int.from_bytes(data[2:4], "big"), ip_text(data[4:8])
                if data[4:7] == b"\0\0\0" and data[7]:  # 4a: the host name follows the user id
                    rest = data[8:].split(b"\0")
                    address = rest[1].decode("ascii", "replace") if len(rest) > 1 else address
                self.target = f"{address}:{port}"
                fields["command"], fields["remote_name"] = data[1], self.target
                return f"SOCKS 4 {'CONNECT' if data[1] == 1 else 'BIND'} to {self.target}"
            granted = len(data) >= 2 and data[1] == 0x5A
            fields["results"] = data[1] if len(data) > 1 else None
            return f"SOCKS 4 reply: {'granted' if granted else 'rejected'}"
        if client and step == 0:
            return f"SOCKS 5 greeting, {data[1] if len(data) > 1 else 0} methods offered"
        if not client and step == 0:
            return f"SOCKS 5 method chosen: {data[1] if len(data) > 1 else '?'}"
        if len(data) >= 5 and data[0] == 5:
            kind = "request" if client else "reply"
            if client:
                self.target = _socks5_address(data)
            return f"SOCKS 5 {kind} {self.target or ''}".rstrip()
        return "SOCKS 5 authentication"

    def _done(self) -> bool:
        """The handshake is over: SOCKS 4 after one message each way, SOCKS 5 after two or more."""
        need = 1 if self.version == 4 else 2
        return self._steps[Direction.TO_CLIENT] >= need and self._steps[Direction.TO_SERVER] >= need

    def _relay(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        out = [AppMessage("socks", direction, packet_no, packet_no, len(data),
                          f"SOCKS relayed data, {len(data)} bytes", {"stage": "relay"}, time)]
        if self._inner is None:
            if looks_like_http(data):
                self._inner = HttpParser(self.flow)
            elif looks_like_tls(data, 0, len(data)):
                self._inner = TlsParser(self.flow, keylog=self.keylog)
            else:
                return out
        return out + list(self._inner.feed(direction, data, packet_no, time))

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        return list(self._inner.gap(direction, size, packet_no)) if self._inner is not None else []

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        if self._inner is not None and hasattr(self._inner, "end"):
            return list(self._inner.end(direction, packet_no, time))
        return []

    def close(self) -> list[AppMessage]:
        return list(self._inner.close()) if self._inner is not None else []


def _socks5_address(data: bytes) -> str | None:
    """The address and port of a SOCKS 5 request (RFC 1928 §4: atyp 1 IPv4, 3 name, 4 IPv6)."""
    atyp = data[3]
    if atyp == 1 and len(data) >= 10:
        return f"{ip_text(data[4:8])}:{int.from_bytes(data[8:10], 'big')}"
    if atyp == 3 and len(data) >= 5 + data[4] + 2:
        end = 5 + data[4]
        return f"{data[5:end].decode('ascii', 'replace')}:{int.from_bytes(data[end:end + 2], 'big')}"
    if atyp == 4 and len(data) >= 22:
        return f"[{ip_text(data[4:20])}]:{int.from_bytes(data[20:22], 'big')}"
    return None

"""The PROXY protocol, v1 (text) and v2 (binary): who the client really was.

Theory of operation
-------------------
A TCP proxy or L4 balancer that opens its own connection to the target hides the
client: the target sees the balancer's address. An AWS NLB with "proxy protocol v2"
enabled, HAProxy with ``send-proxy``, and others fix that by *prepending a header* to the
stream before the client's first byte (haproxy.org, "The PROXY protocol", versions 1 and
2). The target reads the header, learns the original addresses and ports, and then reads
the client's bytes as usual.

* **v1** is one text line of at most 107 bytes::

      PROXY TCP4 198.51.100.7 203.0.113.10 51514 443\\r\\n

  (``TCP4``, ``TCP6`` or ``UNKNOWN``).
* **v2** is binary: a 12-byte signature ``\\r\\n\\r\\n\\0\\r\\nQUIT\\n``, a byte holding the
  version (2) and the command (``LOCAL`` 0: a health check from the proxy itself; ``PROXY``
  1), a byte holding the address family (``INET``, ``INET6``, ``UNIX``) and transport
  (``STREAM``, ``DGRAM``), a 2-byte length, the addresses, then TLVs (type, 2-byte length,
  value): ALPN, authority (the SNI), a unique id, TLS facts, and AWS's own type ``0xEA``
  carrying the VPC endpoint id.

:func:`parse` reads either version; :func:`build_v2` writes a v2 header, as an NLB does.
Hostile input (a bad line, a length beyond the bytes, cut TLVs) gives a damaged
:class:`ProxyHeader` or a ``DecodeError``, never another exception.

What this module must not know: packets, reassembly, sockets.

References:
    haproxy/haproxy doc/proxy-protocol.txt; AWS, "Network Load Balancers: Proxy protocol".
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.errors import DecodeError
from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import FlowKey

__all__ = [
    "ProxyParser",
    "ProxyHeader",
    "Tlv",
    "parse",
    "build_v2",
    "SIGNATURE",
    "TLV_TYPES",
]

#: The v2 signature (12 bytes).
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

#: TLV types (proxy-protocol.txt §2.2; 0xEA is AWS's PP2_TYPE_AWS).
TLV_TYPES: MappingProxyType[int, str] = MappingProxyType({
    0x01: "ALPN", 0x02: "AUTHORITY", 0x03: "CRC32C", 0x04: "NOOP", 0x05: "UNIQUE_ID",
    0x20: "SSL", 0x30: "NETNS", 0xEA: "AWS",
})

_FAMILIES = {0x0: "UNSPEC", 0x1: "INET", 0x2: "INET6", 0x3: "UNIX"}
_TRANSPORTS = {0x0: "UNSPEC", 0x1: "STREAM", 0x2: "DGRAM"}
_ADDRESS_SIZES = {0x1: 12, 0x2: 36, 0x3: 216}


@dataclass(frozen=True, slots=True)
class Tlv:
    """One v2 type-length-value entry (``type`` 0xEA with value ``b"\\x01vpce-..."`` is AWS's)."""

    type: int
    value: bytes

    @property
    def name(self) -> str:
        return TLV_TYPES.get(self.type, f"0x{self.type:02x}")


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A parsed PROXY header.

    Attributes:
        version: 1 or 2.
        command: ``"PROXY"`` or ``"LOCAL"`` (v1 is always PROXY; ``UNKNOWN`` lines are LOCAL-like).
        family: ``"TCP4"``/``"TCP6"``/``"UNKNOWN"`` (v1) or ``"INET"``/``"INET6"``/``"UNIX"``/``"UNSPEC"`` (v2).
        transport: ``"STREAM"``, ``"DGRAM"`` or ``"UNSPEC"`` (v1: STREAM).
        src, dst: the original client and the address it connected to (None when not given).
        src_port, dst_port: their ports (None when not given).
        tlvs: v2 TLVs in wire order.
        length: bytes the header takes on the stream.
        damaged: why part of it could not be read, else None.
    """

    version: int
    command: str
    family: str
    transport: str
    src: str | None
    dst: str | None
    src_port: int | None
    dst_port: int | None
    tlvs: tuple[Tlv, ...]
    length: int
    damaged: str | None = None

    def tlv(self, name_or_type: str | int) -> bytes | None:
        """The first TLV's value with this name (``"AUTHORITY"``) or type, else None."""
        for tlv in self.tlvs:
            if tlv.type == name_or_type or tlv.name == name_or_type:
                return tlv.value
        return None


def header_length(data: bytes) -> int | None:
    """Bytes of the header at the start of ``data``, or None until enough bytes arrived."""
    if data.startswith(SIGNATURE):
        return 16 + int.from_bytes(data[14:16], "big") if len(data) >= 16 else None
    end = data.find(b"\r\n", 0, 108)
    if end < 0:
        return None if len(data) < 108 else 108
    return end + 2


def _parse_v1(data: bytes) -> ProxyHeader:
    end = data.find(b"\r\n", 0, 108)
    if end < 0:
        raise DecodeError("PROXY v1 line has no CRLF within 107 bytes", layer="proxy")
    words = data[:end].decode("ascii", "replace").split(" ")
    length = end + 2
    if len(words) < 2 or words[0] != "PROXY":
        raise DecodeError("not a PROXY v1 line", layer="proxy")
    family = words[1]
    if family == "UNKNOWN":
        return ProxyHeader(1, "LOCAL", family, "STREAM", None, None, None, None, (), length)
    if family not in ("TCP4", "TCP6") or len(words) != 6:
        return ProxyHeader(1, "PROXY", family, "STREAM", None, None, None, None, (), length,
                           f"PROXY v1 line has {len(words)} words, family {family!r}")
    try:
        src, dst = str(ipaddress.ip_address(words[2])), str(ipaddress.ip_address(words[3]))
        src_port, dst_port = int(words[4]), int(words[5])
        if not (0 <= src_port <= 65535 and 0 <= dst_port <= 65535):
            raise ValueError("port out of range")
    except ValueError as exc:
        return ProxyHeader(1, "PROXY", family, "STREAM", None, None, None, None, (), length,
                           f"PROXY v1 address or port is malformed ({exc})")
    return ProxyHeader(1, "PROXY", family, "STREAM", src, dst, src_port, dst_port, (), length)


def _parse_v2(data: bytes) -> ProxyHeader:
    if len(data) < 16:
        raise DecodeError(f"PROXY v2 needs 16 bytes, {len(data)} here", layer="proxy")
    version, command_code = data[12] >> 4, data[12] & 0x0F
    family_code, transport_code = data[13] >> 4, data[13] & 0x0F
    size = int.from_bytes(data[14:16], "big")
    length = 16 + size
    family = _FAMILIES.get(family_code, f"0x{family_code:x}")
    transport = _TRANSPORTS.get(transport_code, f"0x{transport_code:x}")
    command = {0: "LOCAL", 1: "PROXY"}.get(command_code, f"0x{command_code:x}")
    damaged = None
    if version != 2:
        damaged = f"PROXY v2 header says version {version}"
    if len(data) < length:
        return ProxyHeader(version, command, family, transport, None, None, None, None, (), length,
                           f"PROXY v2 header of {length} bytes cut after {len(data)}")
    body = data[16:length]
    src = dst = None
    src_port = dst_port = None
    address_size = _ADDRESS_SIZES.get(family_code, 0)
    if address_size > len(body):
        damaged = f"address block needs {address_size} bytes, the length field gives {len(body)}"
        address_size = 0
    elif family_code == 0x1:
        src, dst = str(ipaddress.IPv4Address(body[0:4])), str(ipaddress.IPv4Address(body[4:8]))
        src_port, dst_port = int.from_bytes(body[8:10], "big"), int.from_bytes(body[10:12], "big")
    elif family_code == 0x2:
        src, dst = str(ipaddress.IPv6Address(body[0:16])), str(ipaddress.IPv6Address(body[16:32]))
        src_port, dst_port = int.from_bytes(body[32:34], "big"), int.from_bytes(body[34:36], "big")
    elif family_code == 0x3:
        src = body[0:108].split(b"\x00", 1)[0].decode("utf-8", "replace")
        dst = body[108:216].split(b"\x00", 1)[0].decode("utf-8", "replace")
    tlvs: list[Tlv] = []
    position = address_size
    while position + 3 <= len(body):
        kind, tlv_size = body[position], int.from_bytes(body[position + 1 : position + 3], "big")
        value = body[position + 3 : position + 3 + tlv_size]
        if len(value) < tlv_size:
            damaged = damaged or f"TLV 0x{kind:02x} of {tlv_size} bytes runs past the header"
            break
        tlvs.append(Tlv(kind, value))
        position += 3 + tlv_size
    else:
        if position < len(body):
            damaged = damaged or f"{len(body) - position} stray bytes after the TLVs"
    return ProxyHeader(version, command, family, transport, src, dst, src_port, dst_port,
                       tuple(tlvs), length, damaged)


def parse(data: bytes) -> ProxyHeader:
    """Parse a PROXY v1 or v2 header at the start of ``data``.

    Raises :class:`~osilab.errors.DecodeError` when ``data`` is no PROXY header at all;
    a header that is recognisable but malformed comes back with ``damaged`` set.

    >>> parse(b"PROXY TCP4 198.51.100.7 203.0.113.10 51514 443\\r\\n").src
    '198.51.100.7'
    """
    if data.startswith(SIGNATURE):
        return _parse_v2(bytes(data))
    if data.startswith(b"PROXY "):
        return _parse_v1(bytes(data))
    raise DecodeError("no PROXY v1 or v2 signature", layer="proxy")


def build_v2(
    src: str | None = None,
    dst: str | None = None,
    src_port: int = 0,
    dst_port: int = 0,
    *,
    command: str = "PROXY",
    transport: str = "STREAM",
    tlvs: tuple[Tlv, ...] | list[tuple[int, bytes]] = (),
) -> bytes:
    """Build a PROXY v2 header, as an NLB with proxy protocol v2 sends it to a target.

    ``command="LOCAL"`` with no addresses gives a health-check header.

    >>> header = build_v2("198.51.100.7", "203.0.113.10", 51514, 443, tlvs=[(0xEA, b"\\x01vpce-1")])
    >>> parsed = parse(header)
    >>> (parsed.src, parsed.src_port, parsed.tlv("AWS"))
    ('198.51.100.7', 51514, b'\\x01vpce-1')
    """
    commands = {"LOCAL": 0, "PROXY": 1}
    transports = {"UNSPEC": 0, "STREAM": 1, "DGRAM": 2}
    if command not in commands or transport not in transports:
        raise DecodeError(f"unknown command {command!r} or transport {transport!r}", layer="proxy")
    body = b""
    family = 0
    if src is not None and dst is not None:
        try:
            source, destination = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        except ValueError as exc:
            raise DecodeError(f"not an IP address ({exc})", layer="proxy") from None
        if source.version != destination.version:
            raise DecodeError("source and destination are of different IP versions", layer="proxy")
        if not (0 <= src_port <= 65535 and 0 <= dst_port <= 65535):
            raise DecodeError("port out of range", layer="proxy")
        family = 1 if source.version == 4 else 2
        body = source.packed + destination.packed + src_port.to_bytes(2, "big") + dst_port.to_bytes(2, "big")
    for tlv in tlvs:
        kind, value = (tlv.type, tlv.value) if isinstance(tlv, Tlv) else tlv
        if not 0 <= kind <= 255 or len(value) > 65535:
            raise DecodeError(f"TLV type {kind} or length {len(value)} out of range", layer="proxy")
        body += bytes([kind]) + len(value).to_bytes(2, "big") + value
    if len(body) > 65535:
        raise DecodeError("PROXY v2 header longer than 65535 bytes", layer="proxy")
    fam_byte = (family << 4) | (transports[transport] if family else 0)
    return SIGNATURE + bytes([0x20 | commands[command], fam_byte]) + len(body).to_bytes(2, "big") + body


def _fields(header: ProxyHeader) -> dict[str, Any]:
    fields: dict[str, Any] = {"stage": "complete", "version": header.version}
    if header.version == 1:
        fields["v1.proto"] = header.family
    else:
        fields.update({"v2.cmd": header.command, "v2.addr_family": header.family,
                       "v2.protocol": header.transport, "v2.length": header.length - 16})
        if header.tlvs:
            fields["v2.tlv.type"] = tuple(t.type for t in header.tlvs)
    if header.src is not None:
        ipv6 = header.src and ":" in header.src
        fields["src.ipv6" if ipv6 else "src.ipv4"] = header.src
        fields["dst.ipv6" if ipv6 else "dst.ipv4"] = header.dst
        fields["src"], fields["dst"] = header.src, header.dst
    if header.src_port is not None:
        fields["srcport"], fields["dstport"] = header.src_port, header.dst_port
    return fields


class ProxyParser:
    """Sans-IO parser for the PROXY header at the start of a flow (bytes after it are ignored:
    the dispatcher sniffs them again and gives them to their own parser)."""

    protocol = "proxy"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        # One constructor for every parser (the table in osilab.pipeline.dispatch);
        # ``keylog`` is for TLS, which this protocol does not carry.
        self.flow = flow
        self._buffer = bytearray()
        self._first = 0
        self._done = False

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """Bytes from the start of the flow; returns the header once it is complete."""
        if self._done or direction is not Direction.TO_SERVER:
            return []
        if not self._buffer:
            self._first = packet_no
        self._buffer += data[: 70000 - len(self._buffer)]
        size = header_length(bytes(self._buffer[:16]) if self._buffer.startswith(SIGNATURE)
                             else bytes(self._buffer[:108]))
        if size is None or len(self._buffer) < size:
            return []
        self._done = True
        try:
            header = parse(bytes(self._buffer[:size]))
        except DecodeError as exc:
            return [AppMessage("proxy", direction, self._first, packet_no, size,
                               f"PROXY: {exc.reason}", {"stage": "complete"}, time, None, exc.reason)]
        if header.version == 1:
            where = f"{header.src}:{header.src_port} -> {header.dst}:{header.dst_port}"
            summary = f"PROXY v1 {header.family} {where if header.src else ''}".rstrip()
        else:
            summary = f"PROXY v2 {header.command} {header.family}"
            if header.src is not None:
                summary += f" {header.src}:{header.src_port} -> {header.dst}:{header.dst_port}"
            if header.tlvs:
                summary += " TLVs " + ",".join(t.name for t in header.tlvs)
        return [AppMessage("proxy", direction, self._first, packet_no, size, summary,
                           _fields(header), time, header, header.damaged)]

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """A gap before the header completed: nothing more can be read."""
        self._done = True
        return []

    def close(self) -> list[AppMessage]:
        """Nothing pending is reported (a cut header shows as the flow's raw bytes)."""
        return []

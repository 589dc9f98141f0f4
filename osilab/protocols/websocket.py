"""WebSocket (RFC 6455) on a TCP stream, after HTTP/1.1 has switched to it with ``101``.

Theory of operation
-------------------
A WebSocket connection starts as an HTTP/1.1 request (RFC 6455 §4.1): ``GET`` with
``Upgrade: websocket``, ``Connection: Upgrade``, ``Sec-WebSocket-Version: 13`` and a
random 16-byte ``Sec-WebSocket-Key`` in base64. A server that agrees answers
``101 Switching Protocols`` with ``Sec-WebSocket-Accept``: the base64 SHA-1 of the key
followed by the fixed GUID ``258EAFA5-E914-47DA-95CA-C5AB0DC85B11`` (§4.2.2), proof that
it read *this* handshake. From the byte after the 101's empty line, the connection carries
no HTTP at all but *frames*, both ways, until a Close frame each way (§5.5.1) and the FIN.
:class:`~osilab.protocols.http.HttpParser` sees the 101 and hands the rest of the stream
to :class:`WebSocketParser` with the handshake (:func:`handshake`).

One frame (§5.2)::

      0                   1                   2                   3
      0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
     +-+-+-+-+-------+-+-------------+-------------------------------+
     |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
     |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
     |N|V|V|V|       |S|             |   (if payload len==126/127)   |
     | |1|2|3|       |K|             |                               |
     +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
     |     Extended payload length continued, if payload len == 127  |
     + - - - - - - - - - - - - - - - +-------------------------------+
     |                               |Masking-key, if MASK set to 1  |
     +-------------------------------+-------------------------------+
     | Masking-key (continued)       |          Payload Data         |
     +-------------------------------- - - - - - - - - - - - - - - - +

* a length of 0-125 is the length; 126 means a 16-bit length follows, 127 a 64-bit one
  (its top bit must be 0), always in network byte order and in the fewest bytes (§5.2);
* every frame from client to server is *masked* (§5.3): byte ``i`` of the payload is
  XORed with byte ``i % 4`` of the 4-byte key, so that a proxy that does not speak
  WebSocket cannot be fed bytes that look like HTTP (cache poisoning, §10.3). Frames from
  the server are never masked;
* a *message* is one frame with FIN set, or a first frame (text 0x1 / binary 0x2, FIN
  clear) then continuation frames (0x0) until one with FIN (fragmentation, §5.4);
* control frames (close 0x8, ping 0x9, pong 0xA) have FIN set, at most 125 bytes of
  payload, and may come between the fragments of a message (§5.5). A Close payload is a
  2-byte status code and a UTF-8 reason (§5.5.1, §7.4);
* with the ``permessage-deflate`` extension (RFC 7692) RSV1 on a message's first frame
  says its payload is DEFLATE data; the receiver appends ``00 00 ff ff`` and inflates it,
  with one sliding window per direction kept across messages unless the handshake
  negotiated ``*_no_context_takeover`` (§7.2.2). osilab inflates where it can: the
  handshake was seen and no byte of the direction was lost.

What the parser reports: one :class:`~osilab.protocols.AppMessage` per frame, with
``fields["stage"] == "frame"`` and a :class:`WebSocketFrame` as ``message``, on the packet
that carries the frame's last byte (as tshark shows it); and, when a frame ends a message,
one more with ``stage == "message"`` (not a layer of its own) whose ``message`` is the
reassembled :class:`WebSocketMessage`. Field names follow Wireshark's ``websocket.*``
without the prefix. Memory is bounded: at most :data:`MAX_KEPT` payload bytes of a frame
or message are kept; longer ones are counted, not stored.

WebSocket over HTTP/2 (RFC 8441, an extended ``CONNECT`` with ``:protocol websocket``) is
out of scope: :func:`rfc8441_note` says so where a request asks for it.

What this module must not know: packets, reassembly, files, balancers.

References:
    RFC 6455 (The WebSocket Protocol), RFC 7692 (Compression Extensions for WebSocket),
    RFC 8441 (Bootstrapping WebSockets with HTTP/2).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass, replace
from types import MappingProxyType

from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import Endpoint, FlowKey

__all__ = [
    "OPCODES",
    "CLOSE_CODES",
    "GUID",
    "MAX_KEPT",
    "accept_for",
    "opcode_name",
    "handshake",
    "rfc8441_note",
    "Handshake",
    "WebSocketFrame",
    "WebSocketMessage",
    "WebSocketParser",
    "read_frame_header",
    "encode_frame",
]

#: The GUID every server appends to the client's key (RFC 6455 §1.3).
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Opcode -> name (RFC 6455 §5.2, §11.8); 0x3-0x7 and 0xB-0xF are reserved.
OPCODES: MappingProxyType[int, str] = MappingProxyType(
    {0x0: "continuation", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}
)

#: Close status codes (RFC 6455 §7.4.1, IANA "WebSocket Close Code Number Registry").
CLOSE_CODES: MappingProxyType[int, str] = MappingProxyType(
    {
        1000: "normal closure",
        1001: "going away",
        1002: "protocol error",
        1003: "unsupported data",
        1005: "no status received",  # never on the wire (§7.4.1)
        1006: "abnormal closure",  # never on the wire
        1007: "invalid frame payload data",
        1008: "policy violation",
        1009: "message too big",
        1010: "mandatory extension",
        1011: "internal server error",
        1012: "service restart",
        1013: "try again later",
        1014: "bad gateway",
        1015: "TLS handshake failure",  # never on the wire
    }
)

#: Most payload bytes of one frame (and of one reassembled message) kept in memory.
MAX_KEPT = 1 << 20

#: How many payload bytes a summary and ``osilab websocket`` show.
_SHOWN = 24
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2
_UNKNOWN_FLOW = FlowKey("tcp", Endpoint("0.0.0.0", 0), Endpoint("0.0.0.0", 0))


def opcode_name(opcode: int) -> str:
    """``"text"``, ``"ping"``... (:data:`OPCODES`), or ``"reserved 0x3"``."""
    return OPCODES.get(opcode, f"reserved 0x{opcode:x}")


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key`` (RFC 6455 §4.2.2).

    >>> accept_for("dGhlIHNhbXBsZSBub25jZQ==")  # the RFC's own example (§1.3)
    's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
    """
    digest = hashlib.sha1(key.strip().encode("ascii", "replace") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _tokens(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class Handshake:
    """The opening handshake of one WebSocket connection (RFC 6455 §4), as seen on the wire.

    Attributes:
        key: the client's ``Sec-WebSocket-Key``.
        accept: the server's ``Sec-WebSocket-Accept``.
        accept_ok: whether ``accept`` is :func:`accept_for` ``key`` (None: one is missing).
        version: ``Sec-WebSocket-Version`` (13 is the only one, §4.1).
        offered_protocols: subprotocols the client offered (``Sec-WebSocket-Protocol``).
        protocol: the subprotocol the server chose, or None.
        offered_extensions: the client's ``Sec-WebSocket-Extensions``.
        extensions: the server's ``Sec-WebSocket-Extensions`` (what is in force).
        deflate: ``permessage-deflate`` is in force (RFC 7692).
        client_no_context_takeover, server_no_context_takeover: the RFC 7692 §7.1.1
            parameters: that side starts each message with an empty window.
    """

    key: str | None
    accept: str | None
    accept_ok: bool | None
    version: str | None = None
    offered_protocols: tuple[str, ...] = ()
    protocol: str | None = None
    offered_extensions: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    deflate: bool = False
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False

    @property
    def summary(self) -> str:
        check = {True: "accept OK", False: "accept WRONG", None: "accept not checked"}
        parts = [f"WebSocket handshake, {check[self.accept_ok]}"]
        if self.protocol:
            parts.append(f"subprotocol {self.protocol}")
        if self.extensions:
            parts.append("extensions " + ", ".join(self.extensions))
        return "; ".join(parts)


def handshake(
    request_headers: tuple[tuple[str, str], ...], response_headers: tuple[tuple[str, str], ...]
) -> Handshake:
    """Read the handshake from the Upgrade request's and the 101 response's headers.

    >>> h = handshake((("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),),
    ...               (("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ...                ("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover")))
    >>> h.accept_ok, h.deflate, h.client_no_context_takeover
    (True, True, True)
    """

    def first(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
        values = [v for k, v in headers if k.lower() == name]
        return ", ".join(values) if values else None

    key = first(request_headers, "sec-websocket-key")
    accept = first(response_headers, "sec-websocket-accept")
    extensions = _tokens(first(response_headers, "sec-websocket-extensions"))
    deflate = next((e for e in extensions if e.split(";")[0].strip() == "permessage-deflate"), "")
    params = {p.strip().split("=")[0] for p in deflate.split(";")[1:]}
    return Handshake(
        key=key,
        accept=accept,
        accept_ok=None if key is None or accept is None else accept.strip() == accept_for(key),
        version=first(request_headers, "sec-websocket-version"),
        offered_protocols=_tokens(first(request_headers, "sec-websocket-protocol")),
        protocol=first(response_headers, "sec-websocket-protocol"),
        offered_extensions=_tokens(first(request_headers, "sec-websocket-extensions")),
        extensions=extensions,
        deflate=bool(deflate),
        client_no_context_takeover="client_no_context_takeover" in params,
        server_no_context_takeover="server_no_context_takeover" in params,
    )


def rfc8441_note(method: str, headers: tuple[tuple[str, str], ...]) -> str | None:
    """A note for an HTTP/2 extended CONNECT that asks for WebSocket (RFC 8441), else None.

    >>> rfc8441_note("CONNECT", ((":protocol", "websocket"),))[:40]
    'WebSocket over HTTP/2 (RFC 8441, extende'
    """
    protocol = next((v for k, v in headers if k == ":protocol"), None)
    if method == "CONNECT" and protocol is not None and protocol.lower() == "websocket":
        return (
            "WebSocket over HTTP/2 (RFC 8441, extended CONNECT with :protocol websocket) is "
            "out of osilab's scope: its DATA frames are not read as WebSocket frames"
        )
    return None


class _Opcoded:
    """What a frame and a message share: an opcode (RFC 6455 §5.2), and its name."""

    __slots__ = ()
    opcode: int

    @property
    def kind(self) -> str:
        """The opcode's name: ``"text"``, ``"close"``... (:func:`opcode_name`)."""
        return opcode_name(self.opcode)


@dataclass(frozen=True, slots=True)
class WebSocketFrame(_Opcoded):
    """One frame, header fields in wire order (RFC 6455 §5.2), payload unmasked.

    Attributes:
        fin: FIN, the last frame of its message.
        rsv: RSV1-RSV3 as a 3-bit number (RSV1 = 4: permessage-deflate's "compressed").
        opcode: the opcode (:data:`OPCODES`).
        masked: MASK.
        payload_length: the payload length, whichever of the 7/16/64-bit forms carried it.
        length_bits: 7, 16 or 64: the form used.
        masking_key: the 4-byte key, or None.
        payload: the payload, unmasked (at most :data:`MAX_KEPT` bytes).
        header_length: bytes before the payload (2 to 14).
        close_code, close_reason: a Close frame's status code and reason (§5.5.1).
        problem: what breaks RFC 6455 in this frame, or None.
    """

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload_length: int
    length_bits: int
    masking_key: bytes | None
    payload: bytes
    header_length: int
    close_code: int | None = None
    close_reason: str | None = None
    problem: str | None = None

    @property
    def control(self) -> bool:
        """Close, ping and pong (and reserved 0xB-0xF) are control frames (§5.5)."""
        return self.opcode >= 0x8


@dataclass(frozen=True, slots=True)
class WebSocketMessage(_Opcoded):
    """One message: a frame with FIN, or fragments reassembled (RFC 6455 §5.4).

    Attributes:
        flow, direction: where it travelled.
        opcode: the first frame's opcode (text, binary, close, ping, pong).
        length: payload bytes on the wire, every fragment together.
        data: the payload (inflated when compressed and inflatable), at most :data:`MAX_KEPT`.
        frames: how many frames carried it.
        first_packet, last_packet: the packets of its first and last byte.
        time: capture time of ``last_packet``.
        compressed: RSV1 was set (permessage-deflate).
        inflated: the data was inflated (None: not compressed).
        close_code, close_reason: for a Close message.
        note: why the data is not what the application got (too long, not inflatable...).
        handshake: the connection's opening handshake, when it was seen.
    """

    flow: FlowKey
    direction: Direction
    opcode: int
    length: int
    data: bytes
    frames: int
    first_packet: int
    last_packet: int
    time: float
    compressed: bool = False
    inflated: bool | None = None
    close_code: int | None = None
    close_reason: str | None = None
    note: str | None = None
    handshake: Handshake | None = None

    @property
    def text(self) -> str | None:
        """A text message's data as UTF-8 (§5.6), or None."""
        return self.data.decode("utf-8", "replace") if self.opcode == 0x1 else None


def read_frame_header(data: bytes | bytearray) -> tuple[bool, int, int, bool, int, int, bytes | None, int] | None:
    """The header at the start of ``data``, or None while it is incomplete.

    Returns ``(fin, rsv, opcode, masked, payload_length, length_bits, masking_key,
    header_length)``.

    >>> read_frame_header(bytes.fromhex("810548656c6c6f"))  # RFC 6455 §5.7: unmasked "Hello"
    (True, 0, 1, False, 5, 7, None, 2)
    >>> read_frame_header(bytes.fromhex("827f0000000000010000"))[4:6]  # 64 KiB: 64-bit length
    (65536, 64)
    """
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    fin, rsv, opcode = bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F
    masked, length = bool(second & 0x80), second & 0x7F
    at, bits = 2, 7
    if length == 126:
        if len(data) < 4:
            return None
        length, at, bits = int.from_bytes(data[2:4], "big"), 4, 16
    elif length == 127:
        if len(data) < 10:
            return None
        length, at, bits = int.from_bytes(data[2:10], "big"), 10, 64
    key = None
    if masked:
        if len(data) < at + 4:
            return None
        key, at = bytes(data[at : at + 4]), at + 4
    return fin, rsv, opcode, masked, length, bits, key, at


def _unmask(payload: bytes, key: bytes | None, offset: int = 0) -> bytes:
    """XOR with the masking key (RFC 6455 §5.3); ``offset``: payload bytes already unmasked."""
    if key is None or not payload:
        return payload
    turned = key[offset % 4 :] + key[: offset % 4]
    stream = (turned * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        len(payload), "big"
    )


def encode_frame(
    payload: bytes, opcode: int = 0x1, *, fin: bool = True, mask: bytes | None = None, rsv: int = 0
) -> bytes:
    """The bytes of one frame (lengths in the fewest bytes, RFC 6455 §5.2); for tests.

    >>> encode_frame(b"Hello", mask=bytes.fromhex("37fa213d")).hex()  # RFC 6455 §5.7
    '818537fa213d7f9f4d5158'
    """
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + size.to_bytes(8, "big")
    return head + (mask + _unmask(payload, mask) if mask is not None else payload)


def _problem(
    fin: bool, rsv: int, opcode: int, masked: bool, length: int, bits: int, direction: Direction,
    deflate: bool,
) -> str | None:
    """What in a frame header breaks RFC 6455 (and RFC 7692's use of RSV1), or None."""
    if opcode not in OPCODES:
        return f"reserved opcode 0x{opcode:x} (§5.2)"
    if rsv & ~(4 if deflate else 0):
        return f"RSV bits 0x{rsv:x} set without an extension that defines them (§5.2)"
    if opcode >= 0x8 and (not fin or length > 125):
        return "a control frame must have FIN and at most 125 bytes (§5.5)"
    if bits == 64 and length >> 63:
        return "the 64-bit length's most significant bit must be 0 (§5.2)"
    if (bits == 16 and length < 126) or (bits == 64 and length < 1 << 16):
        return "the length is not in the fewest bytes (§5.2)"
    if masked is not (direction is Direction.TO_SERVER):
        side = "client frames must be masked" if not masked else "server frames must not be masked"
        return f"{side} (§5.1)"
    return None


class _Way:
    """One direction's reading state: the frame being read and the message being built."""

    __slots__ = ("buffer", "header", "kept", "seen", "first_packet", "message", "inflater", "lost")

    def __init__(self) -> None:
        self.buffer = bytearray()  # bytes of the frame header not yet complete
        self.header: tuple | None = None  # the current frame's header, once read
        self.kept = bytearray()  # the current frame's payload (masked), up to MAX_KEPT
        self.seen = 0  # payload bytes of the current frame seen so far
        self.first_packet = 0  # the packet of the current frame's first byte
        self.message: list | None = None  # [opcode, rsv, first_packet, parts, length, frames]
        self.inflater: zlib._Decompress | None = None
        self.lost: str | None = None  # why this direction can no longer be framed


class WebSocketParser:
    """RFC 6455 frames of one connection after its ``101`` (sans-IO; see the module doc).

    >>> p = WebSocketParser()
    >>> frames = p.feed(Direction.TO_CLIENT, bytes.fromhex("810548656c6c6f"), 7, 0.5)
    >>> [(m.fields["stage"], m.summary) for m in frames]
    [('frame', 'WebSocket text [FIN] 5 bytes: Hello'), ('message', 'WebSocket text message, 5 bytes: Hello')]
    """

    protocol = "websocket"

    def __init__(
        self,
        flow: FlowKey | None = None,
        *,
        keylog: str | None = None,
        shake: Handshake | None = None,
    ) -> None:
        # One constructor for every parser (osilab.pipeline.dispatch); no TLS here.
        self.flow = flow or _UNKNOWN_FLOW
        self.handshake = shake
        self._ways = {Direction.TO_SERVER: _Way(), Direction.TO_CLIENT: _Way()}

    # -- the StreamParser contract -------------------------------------------------------

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        way = self._ways[direction]
        out: list[AppMessage] = []
        if way.lost is not None:
            return out
        at = 0
        while at < len(data):
            if way.header is None:
                if not way.buffer:
                    way.first_packet = packet_no
                before = len(way.buffer)
                way.buffer += data[at : at + 14]  # a header is at most 14 bytes
                header = read_frame_header(way.buffer)
                if header is None:
                    return out  # everything left was taken into the buffer
                at += header[-1] - before
                way.buffer = bytearray()
                way.header, way.kept, way.seen = header, bytearray(), 0
            length = way.header[4]
            take = min(length - way.seen, len(data) - at)
            if len(way.kept) < MAX_KEPT:
                way.kept += data[at : at + min(take, MAX_KEPT - len(way.kept))]
            way.seen += take
            at += take
            if way.seen >= length:
                out += self._frame_done(direction, way, packet_no, time)
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Lost bytes: frame boundaries are gone for this direction (no resynchronising)."""
        way = self._ways[direction]
        if way.lost is not None:
            return []
        way.lost = f"{size} bytes never captured: the frames after them cannot be found"
        return [self._damaged(direction, packet_no, way.lost)]

    def close(self) -> list[AppMessage]:
        out = []
        for direction, way in self._ways.items():
            if way.lost is None and (way.header is not None or way.buffer):
                out.append(self._damaged(direction, way.first_packet, "frame cut short by the end of the flow"))
        return out

    # -- frames and messages -------------------------------------------------------------

    def _frame_done(self, direction: Direction, way: _Way, packet_no: int, time: float) -> list[AppMessage]:
        header = way.header
        assert header is not None
        fin, rsv, opcode, masked, length, bits, key, header_length = header
        way.header = None
        payload = _unmask(bytes(way.kept), key)
        deflate = self.handshake is not None and self.handshake.deflate
        problem = _problem(fin, rsv, opcode, masked, length, bits, direction, deflate)
        code = reason = None
        if opcode == 0x8 and len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            reason = payload[2:].decode("utf-8", "replace")
        frame = WebSocketFrame(
            fin, rsv, opcode, masked, length, bits, key, payload, header_length, code, reason, problem
        )
        if opcode == 0x0 and way.message is None and problem is None:
            problem = "a continuation frame with no message to continue (§5.4)"
            frame = replace(frame, problem=problem)
        out = [self._frame_message(direction, frame, way.first_packet, packet_no, time)]
        if frame.control:
            out.append(self._message(direction, [opcode, rsv, way.first_packet, [payload], length, 1], frame, packet_no, time, way))
        elif opcode in (0x1, 0x2) or (opcode == 0x0 and way.message is not None):
            if opcode != 0x0:
                way.message = [opcode, rsv, way.first_packet, [], 0, 0]
            building = way.message
            assert building is not None
            if sum(len(p) for p in building[3]) < MAX_KEPT:
                building[3].append(payload)
            building[4] += length
            building[5] += 1
            if fin:
                way.message = None
                out.append(self._message(direction, building, frame, packet_no, time, way))
        return out

    def _inflate(self, way: _Way, direction: Direction, data: bytes) -> tuple[bytes, str | None]:
        shake = self.handshake
        if shake is None:
            return data, "compressed (RSV1) but the handshake was not seen: not inflated"
        fresh = (
            shake.client_no_context_takeover
            if direction is Direction.TO_SERVER
            else shake.server_no_context_takeover
        )
        if way.inflater is None or fresh:
            way.inflater = zlib.decompressobj(-15)
        try:
            return way.inflater.decompress(data + _DEFLATE_TAIL, MAX_KEPT), None
        except zlib.error as exc:
            way.inflater = None
            return data, f"compressed, and inflating failed ({exc}): an earlier message is missing?"

    def _message(
        self, direction: Direction, building: list, frame: WebSocketFrame, packet_no: int, time: float, way: _Way
    ) -> AppMessage:
        opcode, rsv, first_packet, parts, length, frames = building
        data = b"".join(parts)[:MAX_KEPT]
        note = f"{length} bytes, only the first {MAX_KEPT} kept" if length > MAX_KEPT else None
        compressed = bool(rsv & 4) and self.handshake is not None and self.handshake.deflate
        inflated: bool | None = None
        if compressed and note is None:
            data, note = self._inflate(way, direction, data)
            inflated = note is None
        message = WebSocketMessage(
            self.flow, direction, opcode, length, data, frames, first_packet, packet_no, time,
            compressed, inflated, frame.close_code if opcode == 0x8 else None,
            frame.close_reason if opcode == 0x8 else None, note, self.handshake,
        )  # fmt: skip
        summary = f"WebSocket {message.kind} message, {len(data)} bytes"
        if frames > 1:
            summary += f" in {frames} frames"
        if compressed:
            summary += f" (inflated from {length})" if inflated else " (compressed)"
        shown = _shown(message.opcode, data, message.close_code, message.close_reason)
        return AppMessage(
            protocol="websocket",
            direction=direction,
            first_packet=first_packet,
            last_packet=packet_no,
            length=length,
            summary=summary + (f": {shown}" if shown else ""),
            fields={"stage": "message", "layer": False, "opcode": opcode, "frames": frames,
                    "compressed": compressed, "length": len(data)},
            time=time,
            message=message,
            damaged=None,
        )  # fmt: skip

    def _frame_message(
        self, direction: Direction, frame: WebSocketFrame, first_packet: int, packet_no: int, time: float
    ) -> AppMessage:
        flags = "".join(
            f" [{name}]" for name, on in (("FIN", frame.fin), ("RSV1", frame.rsv & 4), ("MASKED", frame.masked)) if on
        )
        shown = _shown(frame.opcode, frame.payload, frame.close_code, frame.close_reason, rsv=frame.rsv)
        fields = {
            "stage": "frame",
            "fin": frame.fin,
            "rsv": frame.rsv,
            "opcode": frame.opcode,
            "mask": frame.masked,
            "payload_length": frame.payload_length,
            "masking_key": frame.masking_key.hex() if frame.masking_key else None,
        }
        if frame.close_code is not None:
            fields["payload.close.status_code"] = frame.close_code
            fields["payload.close.reason"] = frame.close_reason
        return AppMessage(
            protocol="websocket",
            direction=direction,
            first_packet=first_packet,
            last_packet=packet_no,
            length=frame.header_length + frame.payload_length,
            summary=f"WebSocket {frame.kind}{flags} {frame.payload_length} bytes" + (f": {shown}" if shown else ""),
            fields=fields,
            time=time,
            message=frame,
            damaged=frame.problem,
        )

    def _damaged(self, direction: Direction, packet_no: int, why: str) -> AppMessage:
        return AppMessage(
            "websocket", direction, packet_no, packet_no, 0, f"websocket: {why}",
            {"stage": "error", "layer": False}, 0.0, None, why,
        )  # fmt: skip


def _shown(opcode: int, data: bytes, code: int | None, reason: str | None, *, rsv: int = 0) -> str:
    """The first bytes of a payload for a one-line summary (text as text, else hex)."""
    if opcode == 0x8:
        if code is None:
            return "no status code"
        return f"{code} {CLOSE_CODES.get(code, 'application code')}" + (f" {reason!r}" if reason else "")
    if not data:
        return ""
    head = data[:_SHOWN]
    more = "..." if len(data) > _SHOWN else ""
    if opcode == 0x1 and not rsv & 4:
        return head.decode("utf-8", "replace") + more
    return head.hex() + more

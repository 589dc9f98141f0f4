"""QUIC frames (RFC 9000 §12.4, §19): what a decrypted packet's payload is made of.

A packet's payload is a sequence of frames, each a variable-length type followed by
fields whose layout that type fixes (there is no frame length on the wire, so a frame of
an unknown type cannot be skipped). This module reads them into :class:`QuicFrame`\\ s;
:mod:`osilab.protocols.quic` decrypts the packets and acts on the frames (CRYPTO to TLS,
STREAM to HTTP/3, NEW_CONNECTION_ID to the connection-ID table).

What this module must not know: packets, keys, connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from osilab.errors import DecodeError
from osilab.protocols._varint import Truncated as _Short
from osilab.protocols._varint import read_varint

__all__ = ["QuicFrame", "parse_frames", "FRAME_TYPES"]

#: Frame types (RFC 9000 §19, §12.4; DATAGRAM RFC 9221), named as Wireshark names them.
FRAME_TYPES: MappingProxyType[int, str] = MappingProxyType({
    0x00: "PADDING", 0x01: "PING", 0x02: "ACK", 0x03: "ACK", 0x04: "RESET_STREAM",
    0x05: "STOP_SENDING", 0x06: "CRYPTO", 0x07: "NEW_TOKEN",
    **dict.fromkeys(range(0x08, 0x10), "STREAM"),
    0x10: "MAX_DATA", 0x11: "MAX_STREAM_DATA", 0x12: "MAX_STREAMS", 0x13: "MAX_STREAMS",
    0x14: "DATA_BLOCKED", 0x15: "STREAM_DATA_BLOCKED", 0x16: "STREAMS_BLOCKED",
    0x17: "STREAMS_BLOCKED", 0x18: "NEW_CONNECTION_ID", 0x19: "RETIRE_CONNECTION_ID",
    0x1A: "PATH_CHALLENGE", 0x1B: "PATH_RESPONSE", 0x1C: "CONNECTION_CLOSE",
    0x1D: "CONNECTION_CLOSE", 0x1E: "HANDSHAKE_DONE", 0x30: "DATAGRAM", 0x31: "DATAGRAM",
})  # fmt: skip

#: Which varint fields each simple frame type carries after its type (RFC 9000 §19).
_VARINT_FIELDS: MappingProxyType[int, tuple[str, ...]] = MappingProxyType({
    0x04: ("stream_id", "error_code", "final_size"), 0x05: ("stream_id", "error_code"),
    0x10: ("maximum",), 0x11: ("stream_id", "maximum"), 0x12: ("maximum",), 0x13: ("maximum",),
    0x14: ("maximum",), 0x15: ("stream_id", "maximum"), 0x16: ("maximum",), 0x17: ("maximum",),
    0x19: ("sequence",), 0x01: (), 0x1E: (),
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuicFrame:
    """One frame of a decrypted packet (RFC 9000 §19); unused fields keep their defaults.

    Attributes:
        type: the frame type code.
        name: its name (:data:`FRAME_TYPES`).
        offset: CRYPTO and STREAM: where ``data`` starts in its stream.
        data: CRYPTO/STREAM/DATAGRAM bytes, NEW_TOKEN's token, PATH_* data.
        stream_id: STREAM, RESET_STREAM, STOP_SENDING, MAX_STREAM_DATA...
        fin: STREAM: the last bytes of the stream.
        connection_id: NEW_CONNECTION_ID: a connection ID the sender issues to its peer.
        values: the frame's other integer fields, by name (``sequence``, ``error_code``...).
        reason: CONNECTION_CLOSE's reason phrase.
    """

    type: int
    name: str
    offset: int = 0
    data: bytes = b""
    stream_id: int | None = None
    fin: bool = False
    connection_id: bytes = b""
    values: tuple[tuple[str, int], ...] = ()
    reason: str = ""


def _frame(payload: bytes, at: int) -> tuple[QuicFrame, int]:
    kind, pos = read_varint(payload, at)
    name = FRAME_TYPES.get(kind)
    if name is None:
        raise _Short(f"unknown frame type 0x{kind:x} at offset {at}")
    if kind == 0x00:  # a run of PADDING is one frame here, as Wireshark shows it
        end = pos
        while end < len(payload) and payload[end] == 0:
            end += 1
        return QuicFrame(kind, name, values=(("length", end - at),)), end
    if kind in _VARINT_FIELDS:
        values = []
        for key in _VARINT_FIELDS[kind]:
            value, pos = read_varint(payload, pos)
            values.append((key, value))
        stream = dict(values).get("stream_id")
        return QuicFrame(kind, name, stream_id=stream, values=tuple(values)), pos
    if kind in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges (, ECN)
        largest, pos = read_varint(payload, pos)
        delay, pos = read_varint(payload, pos)
        count, pos = read_varint(payload, pos)
        for _ in range(2 * count + 1 + (3 if kind == 0x03 else 0)):
            _, pos = read_varint(payload, pos)
        return QuicFrame(kind, name, values=(("largest_acknowledged", largest),
                                             ("ack_delay", delay))), pos  # fmt: skip
    if kind == 0x06 or kind == 0x07 or 0x08 <= kind <= 0x0F or kind in (0x30, 0x31):
        stream_id = offset = None
        if 0x08 <= kind <= 0x0F:
            stream_id, pos = read_varint(payload, pos)
        if kind == 0x06 or (0x08 <= kind <= 0x0F and kind & 0x04):
            offset, pos = read_varint(payload, pos)
        if kind in (0x06, 0x07, 0x31) or (0x08 <= kind <= 0x0F and kind & 0x02):
            length, pos = read_varint(payload, pos)
        else:
            length = len(payload) - pos  # STREAM without LEN, DATAGRAM 0x30: to the end
        if pos + length > len(payload):
            raise _Short(f"{name} frame at offset {at} declares {length} bytes")
        data = payload[pos : pos + length]
        fin = 0x08 <= kind <= 0x0F and bool(kind & 0x01)
        return QuicFrame(kind, name, offset or 0, data, stream_id, fin), pos + length
    if kind == 0x18:  # NEW_CONNECTION_ID: sequence, retire prior to, length, CID, reset token
        sequence, pos = read_varint(payload, pos)
        retire, pos = read_varint(payload, pos)
        if pos >= len(payload) or pos + 1 + payload[pos] + 16 > len(payload):
            raise _Short(f"NEW_CONNECTION_ID frame at offset {at} is cut short")
        size = payload[pos]
        cid = payload[pos + 1 : pos + 1 + size]
        return QuicFrame(kind, name, connection_id=cid,
                         values=(("sequence", sequence), ("retire_prior_to", retire))), pos + 1 + size + 16  # fmt: skip
    if kind in (0x1A, 0x1B):
        if pos + 8 > len(payload):
            raise _Short(f"{name} frame at offset {at} is cut short")
        return QuicFrame(kind, name, data=payload[pos : pos + 8]), pos + 8
    # CONNECTION_CLOSE (0x1c: with the frame type that caused it; 0x1d: application close)
    error, pos = read_varint(payload, pos)
    values = [("error_code", error)]
    if kind == 0x1C:
        frame_type, pos = read_varint(payload, pos)
        values.append(("frame_type", frame_type))
    length, pos = read_varint(payload, pos)
    reason = payload[pos : pos + length].decode("utf-8", "replace")
    return QuicFrame(kind, name, values=tuple(values), reason=reason), pos + length


def parse_frames(payload: bytes) -> tuple[QuicFrame, ...]:
    """The frames of a decrypted packet payload (RFC 9000 §12.4, §19).

    Raises :class:`~osilab.errors.DecodeError` (layer ``quic``) on a frame cut short or
    of an unknown type (a type not in :data:`FRAME_TYPES` cannot be skipped: its length
    is unknown).
    """
    frames: list[QuicFrame] = []
    at = 0
    try:
        while at < len(payload):
            frame, at = _frame(payload, at)
            frames.append(frame)
    except _Short as exc:
        raise DecodeError(f"QUIC frame unreadable: {exc}", layer="quic") from None
    return tuple(frames)

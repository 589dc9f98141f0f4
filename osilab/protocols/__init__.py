"""Application protocols, and the contract every stream protocol parser keeps.

A parser is **sans-IO**: it is fed the bytes of one TCP (or UDP) conversation, in order,
one chunk per packet, and returns the application messages that each chunk completed.
It never reads files or sockets, and it knows nothing of reassembly: the streams stage
has already put the bytes in order and tells it where a gap (lost bytes) is.

Because every chunk comes from one packet, a parser knows for each message the packet
that carried its first byte and the packet that completed it. The streams stage uses the
latter to add an application :class:`~osilab.capture.packet.Layer` to that packet, as
Wireshark shows a reassembled message in the frame that completes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from osilab.streams.frozen import quick_init
from osilab.streams.keys import Direction

__all__ = ["Direction", "AppMessage", "StreamParser"]


@quick_init  # one is made for every message of a capture
@dataclass(frozen=True, slots=True)
class AppMessage:
    """One application message found in a stream.

    Attributes:
        protocol: the layer name (``"http"``, ``"tls"``, ``"resp"``, ``"pgsql"``, ``"dns"``,
            ``"proxy"``, ``"http2"``).
        direction: which way it travelled.
        first_packet: the packet carrying its first byte.
        last_packet: the packet carrying its last byte (the one that completes it).
        length: its size in bytes on the stream.
        summary: one line for a learner (``"GET /api/items HTTP/1.1"``, ``"SET user:1"``).
        fields: key fields, named as Wireshark names them without the protocol prefix.
        time: capture time of ``last_packet``.
        message: the rich parsed object when there is one (an HttpRequest, a TLS
            ClientHello record...), else ``None``.
        damaged: why the message could not be fully decoded, or ``None``.
    """

    protocol: str
    direction: Direction
    first_packet: int
    last_packet: int
    length: int
    summary: str
    fields: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0
    message: Any = None
    damaged: str | None = None


class StreamParser(Protocol):
    """What the streams stage needs of a protocol parser (one instance per flow)."""

    protocol: str

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """Bytes that follow, in order, the last ones fed in this direction."""
        ...

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """``size`` bytes in this direction were never captured; resynchronise if possible."""
        ...

    def close(self) -> list[AppMessage]:
        """The flow ended: return what is complete, and mark what was cut short."""
        ...

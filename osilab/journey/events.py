"""The journey's records: what one device did at one layer, one frame as shown, one event.

A journey (:class:`osilab.journey.trip.Journey`) is a list of :class:`JourneyEvent`: one
device handling the request's PDU. Each event says what the device read on the way
**in**, from layer 1 upwards, and where it stopped, and what it kept, rewrote or created
on the way **out**, from the top down, one :class:`LayerStep` per layer with its one
sentence. :data:`BEHAVIOURS` names the ways a device can handle a PDU, as observed in
the capture (:mod:`osilab.journey.path` tells them apart).

These are plain frozen records with a ``to_json``; they know nothing of how they were
found, and nothing of HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osilab.capture.packet import Packet
from osilab.journey._index import hop_of
from osilab.journey.network import Device

__all__ = [
    "LayerStep",
    "PacketView",
    "JourneyEvent",
    "BEHAVIOURS",
    "BALANCER_ROLES",
    "MODEL",
    "CAPTURE",
    "TOPOLOGY",
]

#: How a device handled a PDU, as observed: behaviour -> what it means.
BEHAVIOURS: Mapping[str, str] = {
    "origin": "creates the PDU (nothing read: it starts here)",
    "bridge": "forwards the frame by MAC address: reads layer 2 only",
    "forward-l4": "forwards the packet by addresses and ports: reads up to layer 4, rewrites addresses",
    "proxy-l4": "ends the TCP connection and relays the byte stream over a connection of its own, unread",
    "proxy-l7": "reads the message up to layer 7 and sends it on over a connection of its own",
    "tunnel": "after an HTTP Upgrade, copies the bytes to the connection it opened for the "
    "Upgrade: reads up to layer 4 in effect (carried, not read)",
    "endpoint": "reads the message up to layer 7 and answers or asks on",
    "sink": "reads the message up to layer 7: the journey ends here",
    "drop": "reads up to the layer where it finds the PDU belongs to nothing it knows, and "
    "drops it: nothing goes on (a QUIC server given a connection ID it never issued)",
}

#: Lab roles that are load balancers (their request event is the one a comparison looks at).
BALANCER_ROLES = frozenset({"alb", "nlb", "l4proxy"})

#: Where a step's sentence comes from: the balancer model, the packets alone, the topology.
MODEL = "balancer model"
CAPTURE = "capture"
TOPOLOGY = "topology"


@dataclass(frozen=True, slots=True)
class LayerStep:
    """What one device did at one layer.

    Attributes:
        osi: the OSI layer number (1-7).
        name: the protocol at that layer (``"phy"`` for layer 1, ``"eth"``, ``"ip"``...).
        action: ``"read"``, ``"stop"`` (read, and went no higher), ``"kept"``,
            ``"rewrote"``, ``"created"`` or ``"sent"``.
        detail: the values, as a learner would read them off the packet.
        why: one sentence.
        source: where the sentence comes from: ``"balancer model"``, ``"capture"``
            (explained from the packets alone) or ``"topology"``.
    """

    osi: int
    name: str
    action: str
    detail: str
    why: str
    source: str = CAPTURE

    def to_json(self) -> dict[str, Any]:
        return {
            "osi": self.osi,
            "name": self.name,
            "action": self.action,
            "detail": self.detail,
            "why": self.why,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class PacketView:
    """One captured frame, as the view shows it: bytes and the layers that own them."""

    no: int
    time: float
    hop: str
    data: bytes
    layers: tuple[tuple[str, int, int, int, str], ...]  # (name, osi, offset, length, summary)

    @classmethod
    def of(cls, packet: Packet) -> PacketView:
        layers = tuple(
            (lay.name, lay.osi, lay.offset, lay.length, lay.summary) for lay in packet.layers
        )
        return cls(packet.no, packet.time, hop_of(packet), bytes(packet.data), layers)

    def to_json(self, limit: int = 320) -> dict[str, Any]:
        return {
            "no": self.no,
            "hop": self.hop,
            "length": len(self.data),
            "hex": self.data[:limit].hex(),
            "layers": [
                {"name": name, "osi": osi, "offset": offset, "length": length, "summary": summary}
                for name, osi, offset, length, summary in self.layers
            ],
        }


@dataclass(frozen=True, slots=True)
class JourneyEvent:
    """One device handling the request's PDU.

    Attributes:
        index: position in the journey, from 0.
        time: capture time of the packet the device received (or sent, for the origin).
        device: who acts.
        behaviour: a key of :data:`BEHAVIOURS` (observed, see the module docstring).
        direction: ``"request"`` (towards the server or the store) or ``"response"``.
        came_from, goes_to: the devices before and after (``None`` at the ends).
        packet_in, packet_out: the frames received and sent (``None`` at the ends; for
            a bridge both are the same frame).
        in_layers: what the device read, from layer 1 upwards, ending where it stopped.
        out_layers: what it kept, rewrote or created on the way down, from the top.
        message: the application message in words (request line, Redis command, SQL...).
        summary: one sentence.
    """

    index: int
    time: float
    device: Device
    behaviour: str
    direction: str
    came_from: str | None
    goes_to: str | None
    packet_in: PacketView | None
    packet_out: PacketView | None
    in_layers: tuple[LayerStep, ...]
    out_layers: tuple[LayerStep, ...]
    message: str
    summary: str

    @property
    def stopped_at(self) -> int:
        """The highest OSI layer the device read (0 when it read nothing: the origin)."""
        return max((step.osi for step in self.in_layers), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "time": self.time,
            "device": self.device.name,
            "role": self.device.role,
            "title": self.device.title,
            "behaviour": self.behaviour,
            "direction": self.direction,
            "came_from": self.came_from,
            "goes_to": self.goes_to,
            "stopped_at": self.stopped_at,
            "message": self.message,
            "summary": self.summary,
            "in": [step.to_json() for step in self.in_layers],
            "out": [step.to_json() for step in self.out_layers],
            "packet_in": self.packet_in.to_json() if self.packet_in else None,
            "packet_out": self.packet_out.to_json() if self.packet_out else None,
        }

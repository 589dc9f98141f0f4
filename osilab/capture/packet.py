"""The packet model: a frame's bytes and the ordered stack of layers found in them.

A :class:`Packet` is one captured frame: its number (1-based, as Wireshark numbers
frames), its capture time, the interface it was seen on and its bytes. Its
:attr:`Packet.layers` are dissected lazily, the first time something asks, and kept.
Each layer is a :class:`~osilab.capture.layer.Layer`: one protocol header, where it sits
in the frame and in the OSI and TCP/IP models, and the fields a learner needs.

The convenience facts (``proto``, ``ip_src``, ``src_port``, ``tcp_flags``, ``payload``...)
come from :attr:`Packet.facts`, the same :class:`~osilab.capture.facts.FlowFacts` the fast
path gives: read straight from the bytes when the frame is a common one, else from the
layers. A packet and the fast path therefore cannot disagree about a flow.

This module knows nothing of files: the reader makes packets, the dissector fills their
layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from osilab.capture.dissect import dissect
from osilab.capture.facts import FlowFacts, layer_facts, quick_facts
from osilab.capture.layer import Layer

__all__ = ["Layer", "Packet", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG"]

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


class Packet:
    """One captured frame and its layers.

    Build packets with :func:`osilab.read`; this constructor is for the reader and tests.

    Attributes:
        no: the frame number, counted from 1 as Wireshark does.
        time: capture time, seconds since the Unix epoch.
        interface: index of the capture interface (pcapng), 0 for pcap.
        interface_name: the interface's name, when the file records one.
        linktype: the LINKTYPE_ value that says what the frame starts with.
        data: the captured bytes of the frame.
        wire_length: the frame's length on the wire (more than ``len(data)`` when the
            capture cut it at its snap length).
        comment: the pcapng packet comment, when there is one.
        read_error: set by the reader when the record itself was damaged.
    """

    __slots__ = (
        "no", "time", "interface", "interface_name", "linktype", "data", "wire_length",
        "comment", "read_error", "_layers", "_facts",
    )

    def __init__(
        self,
        no: int,
        time: float,
        data: bytes,
        linktype: int = 1,
        *,
        wire_length: int | None = None,
        interface: int = 0,
        interface_name: str | None = None,
        comment: str | None = None,
        read_error: str | None = None,
        layers: tuple[Layer, ...] | None = None,
    ) -> None:
        self.no = no
        self.time = time
        self.data = data
        self.linktype = linktype
        self.wire_length = len(data) if wire_length is None else wire_length
        self.interface = interface
        self.interface_name = interface_name
        self.comment = comment
        self.read_error = read_error
        self._layers = layers
        self._facts: FlowFacts | None = None

    # -- layers -----------------------------------------------------------------------

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layer stack, bottom (link) first; dissected on first use and kept."""
        if self._layers is None:
            self._layers = dissect(self.data, self.linktype)
        return self._layers

    def layer(self, name: str) -> Layer | None:
        """The first layer called ``name``, or ``None``."""
        for lay in self.layers:
            if lay.name == name:
                return lay
        return None

    def __getitem__(self, name: str) -> Layer:
        found = self.layer(name)
        if found is None:
            raise KeyError(f"packet {self.no} has no {name!r} layer (it has {self.names()})")
        return found

    def __contains__(self, name: object) -> bool:
        return any(lay.name == name for lay in self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def names(self) -> list[str]:
        """The layer names, bottom first: ``['eth', 'ip', 'tcp', 'http']``."""
        return [lay.name for lay in self.layers]

    def with_layers(self, extra: tuple[Layer, ...]) -> Packet:
        """A copy with application layers appended (used by stream-aware dissection)."""
        base = tuple(lay for lay in self.layers if lay.name != "data") if extra else self.layers
        return Packet(
            self.no, self.time, self.data, self.linktype,
            wire_length=self.wire_length, interface=self.interface,
            interface_name=self.interface_name, comment=self.comment,
            read_error=self.read_error, layers=base + extra,
        )

    @property
    def damaged(self) -> str | None:
        """Why this packet could not be fully read or decoded, or ``None`` when it could."""
        if self.read_error:
            return self.read_error
        for lay in self.layers:
            if lay.damaged:
                return f"{lay.name}: {lay.damaged}"
        return None

    # -- the facts balancers and streams need, without walking the stack each time -----

    @property
    def facts(self) -> FlowFacts:
        """This packet's flow facts (computed once): the fast reading of the bytes when the
        layers are not dissected yet and the frame is a common one, else the layers'."""
        facts = self._facts
        if facts is None:
            if self._layers is None and self.read_error is None:
                facts = quick_facts(self.no, self.time, self.linktype, self.data,
                                    self.wire_length, self.interface)  # fmt: skip
            if facts is None:
                facts = layer_facts(self.no, self.time, self.interface, self.data,
                                    self.wire_length, self.layers, self.read_error)  # fmt: skip
            self._facts = facts
        return facts

    @property
    def proto(self) -> str | None:
        """``"tcp"`` or ``"udp"`` when the packet carries one, else ``None``."""
        return self.facts.proto

    @property
    def ip_src(self) -> str | None:
        return self.facts.src

    @property
    def ip_dst(self) -> str | None:
        return self.facts.dst

    @property
    def src_port(self) -> int | None:
        return self.facts.src_port

    @property
    def dst_port(self) -> int | None:
        return self.facts.dst_port

    @property
    def tcp_flags(self) -> int | None:
        return self.facts.tcp_flags

    @property
    def tcp_seq(self) -> int | None:
        return self.facts.tcp_seq

    @property
    def tcp_ack(self) -> int | None:
        return self.facts.tcp_ack

    @property
    def payload_offset(self) -> int:
        """Where the transport payload starts in :attr:`data` (end of frame when none)."""
        return self.facts.payload_offset

    @property
    def payload(self) -> bytes:
        """The TCP or UDP payload, bounded by the IP length (Ethernet padding excluded)."""
        return self.facts.payload

    # -- display ------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: number, time and the top layer's summary."""
        top = self.layers[-1] if self.layers else None
        what = top.summary if top else "empty frame"
        flag = f"  [damaged: {self.damaged}]" if self.damaged else ""
        return f"#{self.no}  {' / '.join(self.names())}  {what}{flag}"

    def __repr__(self) -> str:
        return f"<Packet #{self.no} {'/'.join(self.names())} {len(self.data)} bytes>"

    def show(self, file: Any = None) -> None:
        """Print the packet as a learner reads it: one block per layer, bottom first."""
        from osilab.capture.display import packet_text

        print(packet_text(self), file=file)

    def _repr_html_(self) -> str:
        from osilab.capture.display import packet_html

        return packet_html(self)

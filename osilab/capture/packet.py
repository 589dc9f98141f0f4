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
from operator import attrgetter
from typing import Any

from osilab.capture.dissect import dissect
from osilab.capture.facts import FlowFacts, layer_facts, quick_facts
from osilab.capture.layer import Layer

__all__ = ["Layer", "Packet", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG"]

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def _fact(field: str, doc: str) -> Any:
    """A read-only :class:`Packet` attribute: the :class:`FlowFacts` field ``field`` of
    :attr:`Packet.facts` (a property over ``attrgetter("facts.<field>")``)."""
    return property(attrgetter(f"facts.{field}"), doc=doc)


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

    def __getitem__(self, name: str) -> Any:
        """``pkt["tcp"]``: the first layer of that name; ``pkt["tcp.dstport"]``: a field by
        its Wireshark name (the layer before the first dot). A KeyError lists what there is."""
        found = self.layer(name)
        if found is not None:
            return found
        layer, dot, _field = name.partition(".")
        holder = self.layer(layer) if dot else None
        if holder is not None:
            return holder[name]
        raise KeyError(f"packet {self.no} has no {layer!r} layer (it has {self.names()})")

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

    # Each of these is the field of :attr:`facts` of the same meaning, read through
    # (``attrgetter`` keeps it as fast as reading the field itself).
    proto: str | None = _fact("proto", '``"tcp"`` or ``"udp"`` when the packet carries one, else ``None``.')
    ip_src: str | None = _fact("src", "The (outermost) IP source address as text, ``None`` without IP.")
    ip_dst: str | None = _fact("dst", "The (outermost) IP destination address as text.")
    src_port: int | None = _fact("src_port", "The TCP or UDP source port.")
    dst_port: int | None = _fact("dst_port", "The TCP or UDP destination port.")
    tcp_flags: int | None = _fact("tcp_flags", "The 9 TCP flag bits (FIN 0x01 ... NS 0x100).")
    tcp_seq: int | None = _fact("tcp_seq", "The TCP sequence number (RFC 9293 SEG.SEQ).")
    tcp_ack: int | None = _fact("tcp_ack", "The TCP acknowledgment number (SEG.ACK).")
    payload_offset: int = _fact("payload_offset", "Where the transport payload starts in :attr:`data` (end of frame when none).")
    payload: bytes = _fact("payload", "The TCP or UDP payload, bounded by the IP length (Ethernet padding excluded).")

    # -- display ------------------------------------------------------------------------

    def _top_run(self) -> tuple[Layer, ...]:
        """The top layer and the layers of the same protocol right under it: the messages of
        one protocol a segment completes (five PostgreSQL messages in one segment)."""
        layers = self.layers
        if not layers:
            return ()
        start = len(layers) - 1
        while start > 0 and layers[start - 1].name == layers[-1].name:
            start -= 1
        return layers[start:]

    def stack_text(self) -> str:
        """The layer stack as one line, a protocol repeated at the top counted once:
        ``eth(2) ip(3) tcp(4) pgsql(7)x5`` (tshark's frame.protocols names it once too)."""
        run = self._top_run()
        below = self.layers[: len(self.layers) - len(run)]
        text = " ".join(f"{lay.name}({lay.osi})" for lay in below)
        if run:
            top = f"{run[0].name}({run[0].osi})" + (f"x{len(run)}" if len(run) > 1 else "")
            text = f"{text} {top}" if text else top
        return text

    def top_summary(self) -> str:
        """What the packet carries, in one line: the top layer's summary, or for several
        messages of one protocol (pipelined requests, PostgreSQL's Parse/Bind/Execute/Sync),
        how many and each one's summary, as tshark's Info column lists them all."""
        run = self._top_run()
        if not run:
            return "empty frame"
        if len(run) == 1:
            return run[0].summary
        return f"{len(run)} {run[0].name} messages: " + " | ".join(lay.summary for lay in run)

    def summary(self) -> str:
        """One line: number, layer names and what the packet carries (:meth:`top_summary`)."""
        flag = f"  [damaged: {self.damaged}]" if self.damaged else ""
        return f"#{self.no}  {' / '.join(self.names())}  {self.top_summary()}{flag}"

    def __repr__(self) -> str:
        return f"<Packet #{self.no} {'/'.join(self.names())} {len(self.data)} bytes>"

    def to_scapy(self) -> Any:
        """This frame as a scapy packet to edit: built from its bytes by the class scapy binds
        to its link type (``conf.l2types``), with its time, wire length, comment and interface.
        ``bytes()`` of it is the frame again. (From scapy: :mod:`osilab.capture.scapy_bridge`.)

        >>> import osilab                                                    # doctest: +SKIP
        >>> osilab.read("captures/alb/alb.pcapng")[3].to_scapy().summary()   # doctest: +SKIP
        'Ether / IP / TCP 198.51.100.10:40000 > 203.0.113.10:http S'
        """
        from scapy.config import conf
        from scapy.packet import Raw

        built = conf.l2types.num2layer.get(self.linktype, Raw)(self.data)
        built.time = self.time
        built.wirelen = self.wire_length
        if self.comment:
            built.comment = self.comment.encode()
        if self.interface_name:
            built.sniffed_on = self.interface_name
        return built

    def show(self, file: Any = None) -> None:
        """Print the packet as a learner reads it: one block per layer, bottom first."""
        from osilab.capture.display import packet_text

        print(packet_text(self), file=file)

    def _repr_html_(self) -> str:
        from osilab.capture.display import packet_html

        return packet_html(self)

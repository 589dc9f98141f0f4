"""The packet model: a frame's bytes and the ordered stack of layers found in them.

A :class:`Packet` is one captured frame: its number (1-based, as Wireshark numbers
frames), its capture time, the interface it was seen on and its bytes. Its
:attr:`Packet.layers` are dissected lazily, the first time something asks, and kept.

A :class:`Layer` is one protocol header inside the frame: *which* protocol, *where* its
header bytes are (``offset`` and ``length`` in the frame), *where it sits* in the OSI
and TCP/IP models, the few fields a learner needs (named as Wireshark names them, without
the protocol prefix: ``pkt["tcp"]["srcport"]`` is Wireshark's ``tcp.srcport``) and a
one-line summary.

This module knows nothing of files: the reader makes packets, the dissector fills their
layers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Layer", "Packet", "TCP_FIN", "TCP_SYN", "TCP_RST", "TCP_PSH", "TCP_ACK", "TCP_URG"]

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


@dataclass(frozen=True, slots=True)
class Layer:
    """One protocol header inside a frame.

    Attributes:
        name: osilab's name for the protocol (Wireshark's short name: ``eth``, ``ip``, ``tcp``...).
        osi: the OSI layer number (1-7); see :mod:`osilab.layers` for the honest misfits.
        tcpip: the RFC 1122 layer: ``"link"``, ``"internet"``, ``"transport"`` or ``"application"``.
        offset: where the header starts in the frame, in bytes.
        length: how many bytes of header (for application messages: of message) it covers
            in this frame.
        fields: the key fields, by Wireshark field name without the protocol prefix.
        summary: one line, as a learner would say it.
        damaged: why this layer could not be fully decoded, or ``None``.
    """

    name: str
    osi: int
    tcpip: str
    offset: int
    length: int
    fields: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    damaged: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def get(self, key: str, default: Any = None) -> Any:
        """A field's value, or ``default`` when the layer does not have it."""
        return self.fields.get(key, default)

    def wireshark_field(self, key: str) -> str:
        """The full Wireshark display-filter name of one of this layer's fields."""
        return f"{self.name}.{key}"

    def to_json(self) -> dict[str, Any]:
        """The layer as the CLI's JSON contract has it (plus fields and summary)."""
        out: dict[str, Any] = {
            "name": self.name,
            "osi": self.osi,
            "tcpip": self.tcpip,
            "offset": self.offset,
            "length": self.length,
            "summary": self.summary,
        }
        if self.damaged:
            out["damaged"] = self.damaged
        return out


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
        self._facts: Any = None

    # -- layers -----------------------------------------------------------------------

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layer stack, bottom (link) first; dissected on first use and kept."""
        if self._layers is None:
            from osilab.capture.dissect import dissect  # the dissector imports this module

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

    def _transport(self) -> tuple[str | None, Layer | None, Layer | None]:
        facts = self._facts
        if facts is None:
            net = trans = None
            proto = None
            for lay in self.layers:
                if lay.name in ("ip", "ipv6") and net is None and "src" in lay.fields:
                    net = lay
                elif lay.name in ("tcp", "udp") and net is not None and "srcport" in lay.fields:
                    trans, proto = lay, lay.name
                    break
            facts = self._facts = (proto, net, trans)
        return facts

    @property
    def proto(self) -> str | None:
        """``"tcp"`` or ``"udp"`` when the packet carries one, else ``None``."""
        return self._transport()[0]

    @property
    def ip_src(self) -> str | None:
        net = self._transport()[1]
        return net.fields["src"] if net else None

    @property
    def ip_dst(self) -> str | None:
        net = self._transport()[1]
        return net.fields["dst"] if net else None

    @property
    def src_port(self) -> int | None:
        trans = self._transport()[2]
        return trans.fields["srcport"] if trans else None

    @property
    def dst_port(self) -> int | None:
        trans = self._transport()[2]
        return trans.fields["dstport"] if trans else None

    @property
    def tcp_flags(self) -> int | None:
        proto, _, trans = self._transport()
        return trans.fields["flags"] if proto == "tcp" and trans else None

    @property
    def tcp_seq(self) -> int | None:
        proto, _, trans = self._transport()
        return trans.fields["seq"] if proto == "tcp" and trans else None

    @property
    def tcp_ack(self) -> int | None:
        proto, _, trans = self._transport()
        return trans.fields["ack"] if proto == "tcp" and trans else None

    @property
    def payload_offset(self) -> int:
        """Where the transport payload starts in :attr:`data` (end of frame when none)."""
        trans = self._transport()[2]
        if trans is None:
            return len(self.data)
        return trans.offset + trans.length

    @property
    def payload(self) -> bytes:
        """The TCP or UDP payload, bounded by the IP length (Ethernet padding excluded)."""
        trans = self._transport()[2]
        if trans is None:
            return b""
        start = trans.offset + trans.length
        size = trans.fields.get("len" if trans.name == "tcp" else "payload_len", 0)
        return self.data[start : start + size]

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

"""scapy in and out: :func:`from_scapy` reads scapy packets as a Capture, :func:`to_scapy`
gives scapy one frame to edit.

scapy is the tool people build and edit packets with; osilab is the one that shows them as
layers, flows and balancer decisions. The bridge between them is the frame's bytes and
the *link type* that says what those bytes start with (LINKTYPE_ETHERNET 1, LINKTYPE_IPV4
228...): scapy keeps that mapping in ``conf.l2types``, and this module only asks it.

:func:`from_scapy` writes the packets to a temporary pcapng file (the one writer,
:class:`~osilab.capture.pcapng.CaptureWriter`) and opens it with :func:`osilab.read`, so
the result is a real :class:`~osilab.capture.Capture`: every view (flows, HTTP, replay)
works on it as on a file. The file goes when the Capture does. Each scapy packet keeps
its time, its comment (``pkt.comment``), its wire length and the interface it was
sniffed on (``pkt.sniffed_on``: one pcapng interface per name).

Sending crafted traffic belongs inside the lab's network namespaces only
(:mod:`osilab.lab`): build and look here, send there.

>>> from scapy.all import Ether, IP, TCP                        # doctest: +SKIP
>>> cap = from_scapy([Ether() / IP(dst="192.0.2.1") / TCP(dport=80, flags="S")])  # doctest: +SKIP
>>> cap[0].names()                                              # doctest: +SKIP
['eth', 'ip', 'tcp']
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterable
from typing import Any

from osilab.capture.files import Interface
from osilab.capture.packet import Packet
from osilab.capture.pcapng import CaptureWriter
from osilab.capture.reader import Capture, read
from osilab.errors import UsageError

__all__ = ["from_scapy", "to_scapy"]


def _l2types() -> Any:
    from scapy.config import conf

    return conf.l2types


def _linktype(packet: Any, l2types: Any) -> int:
    """The LINKTYPE_ of a scapy packet's first layer (Ether -> 1, IP -> 228, IPv6 -> 229)."""
    for cls in type(packet).__mro__:
        number = l2types.layer2num.get(cls)
        if number is not None:
            return int(number)
    raise UsageError(
        f"scapy packet {packet.summary()!r} starts with {type(packet).__name__}, which no "
        "pcap link type carries: start it with Ether(), IP() or IPv6()"
    )


def from_scapy(packets: Iterable[Any]) -> Capture:
    """scapy packets (a ``PacketList``, ``sniff()``'s or ``rdpcap()``'s result, a list) as
    a :class:`~osilab.capture.Capture`, numbered from 1 in the order given.

    Raises:
        UsageError: a packet whose first layer has no link type (a bare ``TCP()``).
    """
    l2types = _l2types()
    handle, path = tempfile.mkstemp(prefix="osilab-scapy-", suffix=".pcapng")
    names: dict[tuple[str | None, int], int] = {}
    interfaces: list[Interface] = []
    try:
        with os.fdopen(handle, "wb") as out, CaptureWriter(out, interfaces=lambda: interfaces) as writer:
            for no, packet in enumerate(packets, 1):
                linktype = _linktype(packet, l2types)
                data = bytes(packet)
                name = getattr(packet, "sniffed_on", None)
                key = (name, linktype)
                if key not in names:
                    names[key] = len(names)
                    interfaces.append(Interface(names[key], linktype, name, None, 0, 1e-9))
                time = float(packet.time)
                wire = getattr(packet, "wirelen", None) or len(data)
                writer.write(Packet(no, time, data, linktype, wire_length=wire,
                                    interface=names[key], comment=_comment(packet)))  # fmt: skip
        capture = read(path)
    except BaseException:
        os.unlink(path)
        raise
    weakref.finalize(capture, os.unlink, path)
    return capture


def _comment(packet: Any) -> str | None:
    comment = getattr(packet, "comment", None)
    if isinstance(comment, bytes):
        return comment.decode("utf-8", "replace")
    return comment or None


def to_scapy(packet: Packet) -> Any:
    """The frame as a scapy packet to edit: :meth:`Packet.to_scapy <osilab.capture.Packet.to_scapy>`."""
    return packet.to_scapy()

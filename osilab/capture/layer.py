"""One protocol header inside a frame: the :class:`Layer` every view of a packet shows.

A :class:`Layer` says *which* protocol, *where* its header bytes are (``offset`` and
``length`` in the frame), *where it sits* in the OSI and TCP/IP models, the few fields a
learner needs (named as Wireshark names them, without the protocol prefix:
``pkt["tcp"]["srcport"]`` is Wireshark's ``tcp.srcport``) and a one-line summary.

The text forms of addresses live here too (:func:`ip_text`, :func:`mac_text`), in one
bounded cache that the dissector and the flow-facts fast path share: a capture holds few
distinct addresses, and each is formatted once.

Tunnels nest whole packets inside packets (VXLAN carries an Ethernet frame inside UDP,
GRE an IP packet inside IP). A layer's ``depth`` says how many tunnels it is inside: 0 for
the outer packet, 1 for the packet a tunnel carries, and so on (:attr:`Layer.inner`). The
tunnel's own header belongs to the packet that carries it.

This module is the bottom of the capture stage: the dissector (:mod:`.dissect`) makes
layers (with :func:`new_layer`, which files the protocol in the taxonomy), the packet
(:mod:`.packet`) holds them, and neither is imported here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from osilab.layers import PROTOCOLS

__all__ = ["Layer", "new_layer", "cut_layer", "ip_text", "mac_text"]


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
        depth: how many tunnels this layer is inside (0: the outer packet). The layers of
            a VXLAN frame's inner packet have depth 1; VXLAN in VXLAN gives depth 2.
    """

    name: str
    osi: int
    tcpip: str
    offset: int
    length: int
    fields: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    damaged: str | None = None
    depth: int = 0

    @property
    def inner(self) -> bool:
        """True when this layer belongs to a packet carried inside a tunnel."""
        return self.depth > 0

    def __getitem__(self, key: str) -> Any:
        """A field by its name, bare (``"dstport"``) or as Wireshark writes it
        (``"tcp.dstport"``); a name the layer lacks is a KeyError listing the ones it has."""
        fields = self.fields
        if key in fields:
            return fields[key]
        bare = key[len(self.name) + 1 :] if key.startswith(self.name + ".") else None
        if bare is not None and bare in fields:
            return fields[bare]
        raise KeyError(f"the {self.name} layer has no field {key!r}; its fields: "
                       f"{', '.join(fields) or '(none)'}")  # fmt: skip

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
        if self.depth:
            out["depth"] = self.depth
        return out


#: Layer name -> (OSI layer, TCP/IP layer): looked up for every layer the dissector makes.
_PLACES = {name: (p.osi, p.tcpip) for name, p in PROTOCOLS.items()}


def new_layer(name: str, offset: int, length: int, fields: dict, summary: str,
              damaged: str | None = None) -> Layer:  # fmt: skip
    """A layer of protocol ``name``, filed in the OSI and TCP/IP models by :mod:`osilab.layers`."""
    osi, tcpip = _PLACES[name]
    return Layer(name, osi, tcpip, offset, length, fields, summary, damaged)


def cut_layer(name: str, offset: int, end: int, need: int) -> Layer:
    """The damaged layer of a ``name`` header that needs ``need`` bytes but the frame ends at ``end``."""
    have = max(0, end - offset)
    return new_layer(
        name, offset, have, {},
        f"{name}: truncated ({have} of {need} header bytes)",
        f"{name} header needs {need} bytes at frame offset {offset}, only {have} captured",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Address text, cached
# ---------------------------------------------------------------------------------------

#: Packed IPv4 (4 bytes) or IPv6 (16 bytes) address -> its text. Hardware addresses have
#: a dict of their own: a 4-byte MAC-like address must not come back as an IPv4 text.
IP_TEXT: dict[bytes, str] = {}
_MAC_TEXT: dict[bytes, str] = {}
#: Entries kept per cache; past it, text is still made, only no longer kept.
TEXT_CACHE_LIMIT = 65_536


def ip_text(raw: bytes) -> str:
    """``b"\\xc0\\x00\\x02\\x01"`` -> ``"192.0.2.1"``; 16 bytes -> the RFC 5952 IPv6 text.

    >>> ip_text(bytes((192, 0, 2, 1))), ip_text(bytes(15) + b"\\x01")
    ('192.0.2.1', '::1')
    """
    text = IP_TEXT.get(raw)
    if text is None:
        raw = bytes(raw)
        if len(raw) == 4:
            text = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
        else:
            text = str(ipaddress.ip_address(raw))
        if len(IP_TEXT) < TEXT_CACHE_LIMIT:
            IP_TEXT[raw] = text
    return text


def mac_text(raw: bytes) -> str:
    """A hardware address as Wireshark writes it: ``"02:00:00:00:00:01"``."""
    text = _MAC_TEXT.get(raw)
    if text is None:
        text = raw.hex(":")
        if len(_MAC_TEXT) < TEXT_CACHE_LIMIT:
            _MAC_TEXT[bytes(raw)] = text
    return text

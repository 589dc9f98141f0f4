"""Turn one hop's classic pcap file into a pcapng file whose interface has a name.

tcpdump writes classic pcap (libpcap has no pcapng writer), and classic pcap has no
place for an interface name: ``mergecap`` would label every hop "unknown". pcapng
(draft-ietf-opsawg-pcapng) does: its Interface Description Block (IDB) carries the
options ``if_name`` (code 2) and ``if_description`` (code 3). So each hop's pcap is
rewritten here as pcapng with one named IDB, and ``mergecap`` then keeps the names.

This module only transforms bytes. It knows nothing of the lab, files or processes.

Block layout used (all little-endian, every block padded to 32 bits)::

    Section Header Block  0x0A0D0D0A  byte-order magic 0x1A2B3C4D, version 1.0
    Interface Description 0x00000001  linktype, snaplen, options(if_name, if_description, if_tsresol)
    Enhanced Packet Block 0x00000006  interface 0, timestamp (64-bit, in if_tsresol units),
                                      captured length, original length, data
"""

from __future__ import annotations

import struct

from osilab.errors import CaptureError

__all__ = ["pcap_to_pcapng"]

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 6),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 6),  # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 9),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 9),  # big-endian, nanoseconds
}


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def pcap_to_pcapng(pcap: bytes, interface_name: str, description: str = "") -> bytes:
    """Rewrite a classic pcap capture as pcapng with one interface called ``interface_name``.

    Timestamps keep their resolution (``if_tsresol`` 6 for microseconds, 9 for
    nanoseconds); every packet becomes an Enhanced Packet Block on interface 0.
    A file cut in the middle of a record (a capture stopped the hard way) keeps every
    whole record before the cut.

    >>> header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    >>> out = pcap_to_pcapng(header, "alb-web1")
    >>> out[:4] == b"\\x0a\\x0d\\x0d\\x0a" and b"alb-web1" in out
    True
    """
    if len(pcap) < 24 or pcap[:4] not in _PCAP_MAGIC:
        raise CaptureError("not a classic pcap file (bad magic number)", offset=0)
    order, resolution = _PCAP_MAGIC[pcap[:4]]
    _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(order + "HHiIII", pcap[4:24])
    section = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(0, b""))
    options = _option(2, interface_name.encode())
    if description:
        options += _option(3, description.encode())
    options += _option(9, bytes([resolution])) + _option(0, b"")
    interface = _block(0x00000001, struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen) + options)
    blocks = [section, interface]
    offset = 24
    units = 10**resolution
    while offset + 16 <= len(pcap):
        seconds, fraction, captured, original = struct.unpack(
            order + "IIII", pcap[offset : offset + 16]
        )
        data = pcap[offset + 16 : offset + 16 + captured]
        if len(data) < captured:
            break
        timestamp = seconds * units + fraction
        body = struct.pack(
            "<IIIII", 0, timestamp >> 32, timestamp & 0xFFFFFFFF, captured, original
        ) + _pad(data)
        blocks.append(_block(0x00000006, body))
        offset += 16 + captured
    return b"".join(blocks)

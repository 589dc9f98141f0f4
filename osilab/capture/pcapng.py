"""The pcapng and pcap formats as data: magic numbers, block types, options; and the writer.

Theory of operation
-------------------
Two file formats carry captured frames:

* **pcap** (tcpdump's classic format): a 24-byte global header (a magic number that also
  gives the byte order and the timestamp resolution, micro- or nanoseconds, then the snap
  length and *one* link type), then per frame a 16-byte record header (seconds, fraction,
  captured length, original length) and the frame bytes.
* **pcapng** (draft-ietf-opsawg-pcapng): a sequence of typed blocks, each
  ``type (u32), total length (u32), body, total length again``, padded to 32 bits. A
  Section Header Block (SHB) gives the byte order; Interface Description Blocks (IDB)
  declare each interface (link type, snap length, and options such as its name and
  timestamp resolution); Enhanced Packet Blocks (EPB) carry frames, each naming its
  interface. Options are ``code (u16), length (u16), value`` padded to 32 bits, ended by
  code 0. One file can mix link types and hops: a capture of seven hops is one file.

This module is the one codec for both directions: the record walk
(:mod:`osilab.capture.files`) reads with these constants and :func:`options`, and the
writers here (:func:`write_pcapng`, :func:`pcap_to_pcapng`) build blocks with the same
constants, so a file osilab writes is one osilab (and Wireshark) reads back.

The writers only transform records into bytes: :func:`write_pcapng` writes to a path or
an open binary handle it is given, and knows nothing of the lab.

Block layout written (little-endian, every block padded to 32 bits)::

    Section Header Block  0x0A0D0D0A  byte-order magic 0x1A2B3C4D, version 1.0
    Interface Description 0x00000001  linktype, snaplen, options(if_name, if_description, if_tsresol)
    Enhanced Packet Block 0x00000006  interface, timestamp (64-bit, in if_tsresol units),
                                      captured length, original length, data, options(opt_comment)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, BinaryIO

from osilab.errors import CaptureError

if TYPE_CHECKING:
    from osilab.capture.files import Interface

__all__ = [
    "PCAP_MAGICS",
    "SHB",
    "IDB",
    "PB",
    "SPB",
    "EPB",
    "KNOWN_BLOCKS",
    "BYTE_ORDER_MAGIC",
    "OPT_COMMENT",
    "IF_NAME",
    "IF_DESCRIPTION",
    "IF_TSRESOL",
    "options",
    "option_text",
    "tsresol",
    "block",
    "option",
    "write_pcapng",
    "write",
    "CaptureWriter",
    "PCAP_EXTENSIONS",
    "pcap_to_pcapng",
]

#: pcap magic number (as the file's first 4 bytes) -> (struct byte order, timestamp digits:
#: 6 for microseconds, 9 for nanoseconds).
PCAP_MAGICS: MappingProxyType[bytes, tuple[str, int]] = MappingProxyType({
    b"\xd4\xc3\xb2\xa1": ("<", 6),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 6),  # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 9),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 9),  # big-endian, nanoseconds
})  # fmt: skip

# pcapng block types (draft-ietf-opsawg-pcapng §10.1)
SHB = 0x0A0D0D0A  #: Section Header Block: its bytes read the same in either byte order
IDB = 0x00000001  #: Interface Description Block
PB = 0x00000002  #: Packet Block (obsolete, still read)
SPB = 0x00000003  #: Simple Packet Block: no timestamp, interface 0
EPB = 0x00000006  #: Enhanced Packet Block
#: Every block type a resynchronisation may land on (with name resolution 4, interface
#: statistics 5 and decryption secrets 0x0A, which carry no frames).
KNOWN_BLOCKS = frozenset({SHB, IDB, PB, SPB, 0x04, 0x05, EPB, 0x0A})
#: The SHB's byte-order magic, as written in the file's own byte order.
BYTE_ORDER_MAGIC = 0x1A2B3C4D

# Option codes (§3.5, §4.2, §4.3)
_OPT_END = 0
OPT_COMMENT = 1  #: opt_comment, in any block: UTF-8 text
IF_NAME = 2  #: if_name of an IDB
IF_DESCRIPTION = 3  #: if_description of an IDB
IF_TSRESOL = 9  #: if_tsresol of an IDB: one byte, see :func:`tsresol`


# ---------------------------------------------------------------------------------------
# Reading: options
# ---------------------------------------------------------------------------------------


def options(body: bytes, start: int, order: str) -> dict[int, bytes]:
    """A block's options from ``body[start:]``: code -> value (the first of each code).

    >>> options(b"\\x02\\x00\\x03\\x00eth\\x00\\x00\\x00\\x00\\x00", 0, "<")
    {2: b'eth'}
    """
    found: dict[int, bytes] = {}
    p = start
    while p + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, p)
        if code == _OPT_END:
            break
        found.setdefault(code, body[p + 4 : p + 4 + size])
        p += 4 + ((size + 3) & ~3)
    return found


def option_text(raw: bytes | None) -> str | None:
    """An option's UTF-8 text (trailing NULs dropped), or None when it is absent."""
    return raw.rstrip(b"\x00").decode("utf-8", "replace") if raw is not None else None


def tsresol(raw: bytes | None) -> float:
    """if_tsresol: seconds per timestamp unit. The high bit says a power of 2, else of 10;
    absent means microseconds.

    >>> tsresol(None), tsresol(b"\\x09"), tsresol(b"\\x8a")
    (1e-06, 1e-09, 0.0009765625)
    """
    if not raw:
        return 1e-6
    value = raw[0]
    return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value


# ---------------------------------------------------------------------------------------
# Writing: blocks
# ---------------------------------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def option(code: int, value: bytes) -> bytes:
    """One option, padded to 32 bits (code 0 with an empty value ends a list)."""
    return struct.pack("<HH", code, len(value)) + _pad(value)


def block(block_type: int, body: bytes) -> bytes:
    """One block: type, total length, body (padded), total length again."""
    body = _pad(body)
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


_END = option(_OPT_END, b"")
_SECTION = block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _END)


def _interface_block(linktype: int, snaplen: int, name: str | None, description: str | None,
                     digits: int) -> bytes:  # fmt: skip
    opts = option(IF_NAME, name.encode()) if name is not None else b""
    if description:
        opts += option(IF_DESCRIPTION, description.encode())
    opts += option(IF_TSRESOL, bytes([digits])) + _END
    return block(IDB, struct.pack("<HHI", linktype & 0xFFFF, 0, snaplen) + opts)


def _packet_block(interface: int, ticks: int, data: bytes, wire_length: int,
                  comment: str | None = None) -> bytes:  # fmt: skip
    body = struct.pack(
        "<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), wire_length
    ) + _pad(data)
    if comment:
        body += option(OPT_COMMENT, comment.encode()) + _END
    return block(EPB, body)


def _digits(resolution: float) -> int:
    """The if_tsresol power of ten for a resolution osilab reads (1e-6 -> 6)."""
    for digits in range(10):
        if abs(10.0**-digits - resolution) <= resolution * 1e-9:
            return digits
    return 9


def _ticks(time: float, digits: int) -> int:
    """Seconds -> timestamp units, exact for every time the reader made from units."""
    seconds = int(time)
    return seconds * 10**digits + round((time - seconds) * 10**digits)


#: File extension -> format written by :func:`write`: classic pcap for ``.pcap`` (and
#: tcpdump's ``.cap``/``.dmp``), pcapng for everything else.
PCAP_EXTENSIONS = frozenset({".pcap", ".cap", ".dmp"})


class CaptureWriter:
    """Write packets one at a time as pcapng (or classic pcap): the one writer.

    Items are :class:`~osilab.capture.Packet` objects or record tuples
    ``(no, time, linktype, data, wire_length, interface, ...)`` as
    :meth:`Capture.records() <osilab.capture.Capture.records>` gives them.

    pcapng: each record goes to the interface its ``interface`` index names. An interface
    is described (an IDB) before its first packet: from ``interfaces`` when that names it
    (its name, description, snap length and timestamp resolution kept), else from the
    record (its link type, no name, microsecond timestamps: pcap's and pcapng's default;
    finer times are then rounded to the microsecond). A packet's ``comment`` becomes the
    EPB's ``opt_comment``, which Wireshark shows as the frame's comment.

    pcap (``fmt="pcap"``) has one link type and no interfaces or comments: a packet of
    another link type is a :class:`CaptureError` (write pcapng instead); nanosecond
    timestamps are kept when the first packet's interface has them.
    """

    def __init__(self, target: str | os.PathLike[str] | BinaryIO, *, interfaces: Any = None,
                 fmt: str = "pcapng") -> None:  # fmt: skip
        if fmt not in ("pcapng", "pcap"):
            raise CaptureError(f"cannot write the format {fmt!r} (pcapng or pcap)")
        self.format = fmt
        self.name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else None
        self._handle: BinaryIO = open(target, "wb") if self.name is not None else target  # type: ignore[arg-type, assignment]
        self._interfaces = interfaces
        self._described: dict[int, tuple[int, int]] = {}  # record interface -> (IDB index, digits)
        self._pcap: tuple[int, int] | None = None  # (linktype, digits) once the header is written
        self.count = 0
        if fmt == "pcapng":
            self._handle.write(_SECTION)
            if not callable(interfaces):
                for iface in interfaces or ():
                    self._describe(iface.index, iface.linktype, iface)

    @classmethod
    def to_path(cls, path: str | os.PathLike[str], *, interfaces: Any = None) -> CaptureWriter:
        """A writer of ``path`` in the format its name says: pcap for ``.pcap`` (and
        ``.cap``, ``.dmp``: :data:`PCAP_EXTENSIONS`), else pcapng."""
        fmt = "pcap" if os.path.splitext(os.fspath(path))[1].lower() in PCAP_EXTENSIONS else "pcapng"
        return cls(path, interfaces=interfaces, fmt=fmt)

    def _known(self, index: int) -> Interface | None:
        for iface in self._known_all():
            if iface.index == index:
                return iface
        return None

    def _known_all(self) -> list[Interface]:
        known = self._interfaces() if callable(self._interfaces) else self._interfaces
        return sorted(known or (), key=lambda iface: iface.index)

    def _describe_up_to(self, index: int, linktype: int) -> tuple[int, int]:
        """Describe interface ``index``, and first every known one numbered before it, so
        the written file numbers its interfaces as the source did."""
        for iface in self._known_all():
            if iface.index <= index and iface.index not in self._described:
                self._describe(iface.index, iface.linktype, iface)
        found = self._described.get(index)
        return found if found is not None else self._describe(index, linktype, None)

    def _describe(self, index: int, linktype: int, iface: Interface | None) -> tuple[int, int]:
        digits = _digits(iface.resolution) if iface is not None else 6
        if iface is not None:
            block_ = _interface_block(iface.linktype, iface.snaplen, iface.name, iface.description,
                                      digits)  # fmt: skip
        else:
            block_ = _interface_block(linktype, 0, None, None, digits)
        self._handle.write(block_)
        found = self._described[index] = (len(self._described), digits)
        return found

    def write(self, item: Any) -> None:
        """Write one packet or record."""
        if isinstance(item, tuple):
            _no, time, linktype, data, wire_length, index = item[:6]
            comment = None
        else:
            time, linktype, data = item.time, item.linktype, item.data
            wire_length, index, comment = item.wire_length, item.interface, item.comment
        wire_length = max(wire_length, len(data))
        if self.format == "pcap":
            self._write_pcap(time, linktype, data, wire_length, index)
            return
        found = self._described.get(index)
        if found is None:
            found = self._describe_up_to(index, linktype)
        self._handle.write(_packet_block(found[0], _ticks(time, found[1]), data, wire_length,
                                         comment))  # fmt: skip
        self.count += 1

    def _write_pcap(self, time: float, linktype: int, data: bytes, wire_length: int,
                    index: int) -> None:  # fmt: skip
        if self._pcap is None:
            iface = self._known(index)
            digits = 9 if iface is not None and _digits(iface.resolution) == 9 else 6
            magic = 0xA1B23C4D if digits == 9 else 0xA1B2C3D4
            snaplen = iface.snaplen if iface is not None and iface.snaplen else 262144
            self._handle.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
            self._pcap = (linktype, digits)
        if linktype != self._pcap[0]:
            raise CaptureError(
                f"a pcap file holds one link type ({self._pcap[0]}), and this packet is of "
                f"link type {linktype}: write pcapng (.pcapng) instead",
                file=self.name, packet=self.count + 1,
            )
        ticks = _ticks(time, self._pcap[1])
        units = 10 ** self._pcap[1]
        self._handle.write(struct.pack("<IIII", ticks // units, ticks % units, len(data),
                                       wire_length) + data)  # fmt: skip
        self.count += 1

    def close(self) -> None:
        """Flush, and close the file when the writer opened it."""
        if self.format == "pcap" and self._pcap is None:  # an empty pcap still has a header
            self._handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
            self._pcap = (1, 6)
        if self.name is not None:
            self._handle.close()
        else:
            self._handle.flush()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_pcapng(
    records: Iterable[Any],
    target: str | os.PathLike[str] | BinaryIO,
    *,
    interfaces: Any = None,
) -> int:
    """Write packets or records as one pcapng section; returns how many were written.

    ``records`` are :class:`~osilab.capture.Packet` objects or record tuples (see
    :class:`CaptureWriter`). ``interfaces`` (for example a capture's
    :attr:`~osilab.capture.Capture.interfaces` after a read, or ``lambda:
    cap.interfaces`` during one) describe the interfaces, names and timestamp resolutions
    kept. A packet's ``comment`` becomes the EPB's ``opt_comment``.

    >>> import os, tempfile, osilab
    >>> path = os.path.join(tempfile.mkdtemp(), "one.pcapng")
    >>> write_pcapng([(1, 1.5, 1, bytes(14), 14, 0)], path)
    1
    >>> list(osilab.read(path).records())
    [(1, 1.5, 1, b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00', 14, 0)]
    """
    with CaptureWriter(target, interfaces=interfaces) as writer:
        for item in records:
            writer.write(item)
    return writer.count


def write(packets: Iterable[Any], path: str | os.PathLike[str], *, interfaces: Any = None) -> int:
    """Write packets (a :class:`~osilab.capture.Capture`, a list, any iterable of packets or
    records) to ``path``: classic pcap for a ``.pcap`` name, pcapng otherwise. Returns how
    many were written.

    pcapng keeps what pcap cannot: several link types and interfaces (hops) in one file,
    their names, and each packet's comment. Given a Capture, its interfaces are kept;
    ``interfaces`` (a sequence, or ``lambda: cap.interfaces`` while ``cap`` is read) names
    them for packets that come from elsewhere (a filter, a generator).

    >>> import os, tempfile, osilab
    >>> out = os.path.join(tempfile.mkdtemp(), "first.pcapng")
    >>> osilab.write(osilab.read("captures/alb/alb.pcapng").head(3), out)   # doctest: +SKIP
    3
    """
    if interfaces is None and hasattr(packets, "interfaces"):
        source = packets
        interfaces = lambda: source.interfaces  # noqa: E731 - read as the capture is read
    with CaptureWriter.to_path(path, interfaces=interfaces) as writer:
        for item in packets:
            writer.write(item)
    return writer.count


def pcap_to_pcapng(pcap: bytes, interface_name: str, description: str = "") -> bytes:
    """Rewrite a classic pcap capture as pcapng with one interface called ``interface_name``.

    tcpdump writes classic pcap (libpcap has no pcapng writer), and classic pcap has no
    place for an interface name: ``mergecap`` would label every hop "unknown". pcapng's
    IDB does (``if_name``, ``if_description``), so the lab rewrites each hop's pcap here,
    and ``mergecap`` then keeps the names.

    Timestamps keep their resolution and stay exact integers (``if_tsresol`` 6 for
    microseconds, 9 for nanoseconds): the record headers are copied field by field, not
    through float seconds. Every packet becomes an Enhanced Packet Block on interface 0.
    A file cut in the middle of a record (a capture stopped the hard way) keeps every
    whole record before the cut.

    >>> header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    >>> out = pcap_to_pcapng(header, "alb-web1")
    >>> out[:4] == b"\\x0a\\x0d\\x0d\\x0a" and b"alb-web1" in out
    True
    """
    if len(pcap) < 24 or pcap[:4] not in PCAP_MAGICS:
        raise CaptureError("not a classic pcap file (bad magic number)", offset=0)
    order, digits = PCAP_MAGICS[pcap[:4]]
    snaplen, linktype = struct.unpack_from(order + "II", pcap, 16)
    blocks = [_SECTION, _interface_block(linktype, snaplen, interface_name, description, digits)]
    header = struct.Struct(order + "IIII")
    offset = 24
    units = 10**digits
    while offset + 16 <= len(pcap):
        seconds, fraction, captured, original = header.unpack_from(pcap, offset)
        data = pcap[offset + 16 : offset + 16 + captured]
        if len(data) < captured:
            break
        blocks.append(_packet_block(0, seconds * units + fraction, data, original))
        offset += 16 + captured
    return b"".join(blocks)

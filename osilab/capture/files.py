"""The one record walk: a pcap or pcapng file (plain or gzip) -> its records, in order.

Theory of operation
-------------------
A capture file is a header followed by records, one per captured frame (the formats are
described in :mod:`osilab.capture.pcapng`). The format is recognised from the first
bytes, never from the file name (a ``.pcap`` file is often pcapng). gzip-compressed files
are decompressed on the fly, with a size limit so that a small "zip bomb" cannot fill
memory or disk.

:class:`RecordWalk` reads the file through one sliding window (1 MiB reads: constant
memory on multi-GB files) and yields one :class:`Record` per frame. Every consumer walks
through here: :class:`~osilab.capture.Capture` (packets, :meth:`records`), the flow-facts
fast path (:mod:`osilab.capture.facts`) that feeds the NLB and the stream tracker. The
common record (a whole pcap record, a well-formed EPB) costs one ``struct`` call and one
copy of the frame bytes.

The rules it keeps when a file is damaged:

* a damaged record adds a :class:`~osilab.errors.CaptureError` to :attr:`RecordWalk.errors`
  that names the file, the packet number and the byte offset in the file;
* then the walk looks for the next good record (pcap: the next plausible record header,
  two in a row; pcapng: the next block whose type is known and whose two lengths agree),
  so that nothing else is lost;
* a record that is there but cut (at the end of the file, or a packet block shorter than
  its frame) is still yielded, with ``read_error`` saying why.

What this module must not know: layers, flows, balancers. It reads records; callers decide.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from osilab.capture.pcapng import (
    EPB,
    IDB,
    IF_DESCRIPTION,
    IF_NAME,
    IF_TSRESOL,
    KNOWN_BLOCKS,
    OPT_COMMENT,
    PB,
    PCAP_MAGICS,
    SHB,
    SPB,
    option_text,
    options,
    tsresol,
)
from osilab.errors import CaptureError

__all__ = [
    "Interface",
    "Record",
    "RECORD_FIELDS",
    "RecordWalk",
    "ReadCallback",
    "hop_name",
    "open_capture",
    "sniff",
    "MAX_DECOMPRESSED",
    "MAX_RECORD",
]

#: Frames larger than this are refused as damaged, as libpcap does (262144 bytes).
MAX_RECORD = 262_144
#: The default ceiling on a gzip capture's decompressed size (4 GiB).
MAX_DECOMPRESSED = 4 * 1024**3
_CHUNK = 1 << 20
_SHB_MAGIC = struct.pack(">I", SHB)
_LITTLE_BOM, _BIG_BOM = b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"

#: Called with the number of bytes just read from the file (about once per MiB): how a
#: progress bar at the edge follows a read without this module knowing of bars.
ReadCallback = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class Interface:
    """One capture interface (pcapng IDB; pcap files have exactly one).

    ``index`` counts every interface of the file from 0, across sections, as Wireshark's
    ``frame.interface_id`` does; ``resolution`` is seconds per timestamp unit.
    """

    index: int
    linktype: int
    name: str | None = None
    description: str | None = None
    snaplen: int = 0
    resolution: float = 1e-6
    comment: str | None = None


def hop_name(interfaces: Sequence[Interface], index: int, tunnel: str = "") -> str:
    """The name of the hop a frame was captured on: its interface's name, else ``if<N>``,
    then ``/`` and the tunnels it came through when it came through any
    (:attr:`FlowKey.tunnel <osilab.streams.keys.FlowKey>`).

    The lab writes each hop's name (from topology.json) into its pcapng IDB; a pcap file,
    or an interface without ``if_name``, is ``if0``, ``if1``... as pcapng numbers them.

    >>> hop_name([Interface(0, 1, "client-alb")], 0), hop_name([], 1)
    ('client-alb', 'if1')
    >>> hop_name([], 0, "vxlan 42 192.0.2.1-192.0.2.2")
    'if0/vxlan 42 192.0.2.1-192.0.2.2'
    """
    name = interfaces[index].name if 0 <= index < len(interfaces) else None
    return f"{name or f'if{index}'}/{tunnel}" if tunnel else name or f"if{index}"


#: One frame as the file holds it: ``(no, time, linktype, data, wire_length, interface,
#: read_error)``, the fields named in :data:`RECORD_FIELDS`. A plain tuple, not a named
#: one: the walk makes one per frame, and a NamedTuple would cost the hot path (an NLB
#: replay of ~450k packets a second) about a tenth of its time (0.1 µs a record).
Record = tuple[int, float, int, bytes, int, int, "str | None"]

#: The fields of a :data:`Record`, in order.
RECORD_FIELDS = (
    "no",  # the frame number, from 1, as Wireshark counts
    "time",  # capture time, seconds since the epoch
    "linktype",  # the LINKTYPE_ value: what the frame starts with
    "data",  # the captured bytes
    "wire_length",  # the frame's length on the wire (at least len(data))
    "interface",  # the Interface index (0 for pcap)
    "read_error",  # why the record itself is damaged, or None
)


# ---------------------------------------------------------------------------------------
# Opening: sniff the format, undo gzip
# ---------------------------------------------------------------------------------------


def sniff(magic: bytes, path: str) -> str:
    """``"pcap"``, ``"pcapng"`` or ``"gzip"`` from a file's first 4 bytes; else CaptureError."""
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic in PCAP_MAGICS:
        return "pcap"
    if magic == _SHB_MAGIC:
        return "pcapng"
    if len(magic) < 4:
        raise CaptureError(f"file is {len(magic)} bytes long, too short to be a capture",
                           file=path, offset=0)  # fmt: skip
    raise CaptureError(
        f"not a capture file: starts with {magic.hex(' ')}, which is neither pcap "
        "(a1 b2 c3 d4 / a1 b2 3c 4d in either byte order), pcapng (0a 0d 0d 0a) nor gzip",
        file=path, offset=0)  # fmt: skip


class _LimitedReader(io.RawIOBase):
    """Passes bytes through until ``limit`` bytes have been read, then refuses more."""

    def __init__(self, inner: BinaryIO | gzip.GzipFile, limit: int, path: str) -> None:
        self._inner, self._left, self._path, self._limit = inner, limit, path, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self._inner.read(min(len(buffer), self._left + 1))
        if len(data) > self._left:
            raise CaptureError(
                f"gzip capture decompresses to more than {self._limit} bytes, the limit "
                "(pass max_decompressed= to read it anyway)", file=self._path)  # fmt: skip
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def open_capture(path: str, max_decompressed: int = MAX_DECOMPRESSED) -> tuple[BinaryIO, str]:
    """An open stream of the capture's bytes (gzip undone) and its format.

    The format is ``"pcap"`` or ``"pcapng"``, with ``"+gzip"`` when compressed.
    """
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
    kind = sniff(raw.read(4), path)
    raw.seek(0)
    if kind != "gzip":
        return raw, kind  # type: ignore[return-value]
    stream = io.BufferedReader(
        _LimitedReader(gzip.GzipFile(fileobj=raw), max_decompressed, path), _CHUNK
    )
    try:
        inner = sniff(stream.peek(4)[:4], path)
    except (OSError, EOFError) as exc:
        raw.close()
        raise CaptureError(f"bad gzip data: {exc}", file=path, offset=0) from None
    if inner == "gzip":
        raw.close()
        raise CaptureError("gzip inside gzip is not read", file=path, offset=0)
    return stream, inner + "+gzip"  # type: ignore[return-value]


class _Window:
    """A sliding window over a stream, so that a record can be read whole from ``data``.

    Positions are indexes into ``data``; ``base`` is the file offset of ``data[0]``, so a
    position's file offset is ``base + pos`` (what the errors report).
    """

    __slots__ = ("stream", "data", "base", "eof", "progress")

    def __init__(self, stream: BinaryIO, progress: ReadCallback | None) -> None:
        self.stream = stream
        self.data = b""
        self.base = 0
        self.eof = False
        self.progress = progress

    def fill(self, pos: int, n: int) -> tuple[bytes, int]:
        """Slide and read until ``data[pos:pos+n]`` is there or the file ends.

        Returns the window's bytes and the new position of ``pos`` in them."""
        data = self.data
        while len(data) - pos < n and not self.eof:
            more = self.stream.read(max(_CHUNK, n))
            if not more:
                self.eof = True
                break
            if self.progress is not None:
                self.progress(len(more))
            self.base += pos
            data = self.data = data[pos:] + more
            pos = 0
        return data, pos


# ---------------------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------------------


class RecordWalk:
    """One pass over a capture file's records: iterate it (once) for :class:`Record` items.

    While it runs, :attr:`errors` gathers every damaged record (in file order),
    :attr:`interfaces` every interface described so far, :attr:`comments` the pcapng
    packet comments by frame number, and :attr:`packets_read` the last frame number given.

    ``interface`` yields only the frames of that interface (a balancer's hop): the others
    are still read (and counted, their comments kept, their damage reported) but not
    copied out, which is half the walk on a capture of two hops.

    >>> walk = RecordWalk("captures/alb/alb.pcapng")       # doctest: +SKIP
    >>> sum(1 for _ in walk), walk.errors                   # doctest: +SKIP
    (1979, [])
    """

    def __init__(self, path: str, *, max_decompressed: int = MAX_DECOMPRESSED,
                 progress: ReadCallback | None = None, interface: int | None = None) -> None:  # fmt: skip
        self.path = path
        self.interface = interface
        self.max_decompressed = max_decompressed
        self.progress = progress
        self.errors: list[CaptureError] = []
        self.interfaces: list[Interface] = []
        self.comments: dict[int, str] = {}
        self.format = "?"
        self.packets_read = 0

    def __iter__(self) -> Generator[Record, None, None]:
        stream, kind = open_capture(self.path, self.max_decompressed)
        self.format = kind
        try:
            window = _Window(stream, self.progress)
            if kind.startswith("pcapng"):
                yield from self._pcapng(window)
            elif self.interface is None or self.interface == 0:
                yield from self._pcap(window)
            else:  # a pcap file has interface 0 only: read for its damage, nothing to give
                for _record in self._pcap(window):
                    pass
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self._error(f"could not read further: {exc}", self.packets_read + 1, None)
        finally:
            stream.close()

    def leading_interfaces(self) -> list[Interface]:
        """The interfaces described before the first frame (reads no further)."""
        records = self.__iter__()
        try:
            next(records, None)
        finally:
            records.close()
        return self.interfaces

    def _error(self, reason: str, packet: int | None, offset: int | None) -> None:
        self.errors.append(CaptureError(reason, file=self.path, packet=packet, offset=offset))

    # -- pcap ---------------------------------------------------------------------------

    def _pcap(self, window: _Window) -> Iterator[Record]:
        data, pos = window.fill(0, 24)
        if len(data) < 24:
            raise CaptureError(f"pcap global header is cut short: {len(data)} of 24 bytes",
                               file=self.path, offset=0)  # fmt: skip
        order, digits = PCAP_MAGICS[data[:4]]
        resolution = 10.0**-digits
        snaplen, linktype = struct.unpack_from(order + "II", data, 16)
        linktype &= 0x0FFFFFFF  # the top bits may carry FCS information
        self.interfaces.append(Interface(0, linktype, None, None, snaplen, resolution))
        header = struct.Struct(order + "IIII")
        unpack = header.unpack_from
        limit = max(MAX_RECORD, snaplen if snaplen < 16 * MAX_RECORD else 0)
        pos = 24
        no = 0
        last_seconds = None
        while True:
            if len(data) - pos < 16:
                data, pos = window.fill(pos, 16)
                if len(data) - pos < 16:
                    break
            seconds, fraction, caplen, wirelen = unpack(data, pos)
            no += 1
            if caplen > limit:
                self._error(f"record header claims a {caplen}-byte packet, more than the maximum "
                            f"{limit}: the file is damaged here", no, window.base + pos)  # fmt: skip
                no -= 1  # the bad header was not a packet
                data, pos = _pcap_resync(window, pos + 1, header, limit, last_seconds)
                if pos < 0:
                    return
                continue
            start = pos + 16
            if len(data) - start < caplen:
                data, start = window.fill(start, caplen)
                if len(data) - start < caplen:
                    have = len(data) - start
                    self._error(f"packet record cut off at the end of the file: {have} of "
                                f"{caplen} bytes", no, window.base + start - 16)  # fmt: skip
                    self.packets_read = no
                    yield (no, seconds + fraction * resolution, linktype, data[start:], wirelen, 0,
                           f"record cut off at the end of the file ({have} of {caplen} bytes)")
                    return
            pos = start + caplen
            last_seconds = seconds
            self.packets_read = no
            yield (no, seconds + fraction * resolution, linktype, data[start:pos],
                   wirelen if wirelen > caplen else caplen, 0, None)  # fmt: skip
        if pos < len(data):
            self._error(f"{len(data) - pos} stray bytes at the end of the file, too few "
                        "for a record header", no + 1, window.base + pos)  # fmt: skip

    # -- pcapng -------------------------------------------------------------------------

    def _pcapng(self, window: _Window) -> Iterator[Record]:
        order = "<"
        head = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        word = struct.Struct("<I").unpack_from
        common = struct.Struct("<IIIIIII").unpack_from  # block type and length, then the EPB's
        largest = 16 * MAX_RECORD
        only = self.interface
        no = 0
        section: list[Interface] = []  # this section's IDBs, in order
        quick: list[tuple[int, float, int]] = []  # the same: (linktype, resolution, index)
        data, pos = b"", 0
        while True:
            # The common block first, in one struct call: a well-formed EPB of a described
            # interface, whole in the window, with the frame inside it. Anything else goes
            # the long way below: the checks one by one, each failure said, the window
            # slid when a block is cut by its end (then such an EPB comes back here).
            if len(data) - pos >= 28:
                block_type, length, iface_id, ts_high, ts_low, caplen, wirelen = common(data, pos)
                if (block_type == EPB and iface_id < len(quick) and caplen <= length - 32
                        and not length % 4 and length <= largest and len(data) - pos >= length
                        and word(data, pos + length - 4)[0] == length):  # fmt: skip
                    start = pos
                    pos += length
                    no += 1
                    linktype, resolution, index = quick[iface_id]
                    if length - 32 > ((caplen + 3) & ~3):  # options after the frame
                        self._packet_options(data[start + 8 : pos - 4], caplen, order, no)
                    self.packets_read = no
                    if only is None or index == only:
                        yield (no, ((ts_high << 32) | ts_low) * resolution, linktype,
                               data[start + 28 : start + 28 + caplen],
                               wirelen if wirelen > caplen else caplen, index, None)  # fmt: skip
                    continue
            if len(data) - pos < 12:
                data, pos = window.fill(pos, 12)
                if len(data) - pos < 12:
                    return
            if data[pos : pos + 4] == _SHB_MAGIC:  # a Section Header Block sets the byte order
                bom = data[pos + 8 : pos + 12]
                if bom == _LITTLE_BOM or bom == _BIG_BOM:
                    order = "<" if bom == _LITTLE_BOM else ">"
                    head = struct.Struct(order + "II").unpack_from
                    epb = struct.Struct(order + "IIIII").unpack_from
                    word = struct.Struct(order + "I").unpack_from
                    common = struct.Struct(order + "IIIIIII").unpack_from
                    section = []
                    quick = []
                else:
                    self._error(f"section header has an unknown byte-order magic {bom.hex(' ')}",
                                no + 1, window.base + pos + 8)  # fmt: skip
                    data, pos = _pcapng_resync(window, pos + 4, order)
                    if pos < 0:
                        return
                    continue
            block_type, length = head(data, pos)
            if length < 12 or length % 4 or length > 16 * MAX_RECORD:
                self._error(f"pcapng block of type 0x{block_type:08x} has an impossible length "
                            f"{length} (must be a multiple of 4, at least 12)", no + 1,
                            window.base + pos + 4)  # fmt: skip
                data, pos = _pcapng_resync(window, pos + 4, order)
                if pos < 0:
                    return
                continue
            if len(data) - pos < length:
                data, pos = window.fill(pos, length)
                if len(data) - pos < length:
                    self._error(f"pcapng block cut off at the end of the file: {len(data) - pos} "
                                f"of {length} bytes", no + 1, window.base + pos)  # fmt: skip
                    return
            if word(data, pos + length - 4)[0] != length:
                self._error(f"pcapng block length {length} and trailing length "
                            f"{word(data, pos + length - 4)[0]} disagree", no + 1,
                            window.base + pos + length - 4)  # fmt: skip
                data, pos = _pcapng_resync(window, pos + 4, order)
                if pos < 0:
                    return
                continue
            if block_type == EPB and length >= 32:
                iface_id, _high, _low, caplen, _wire = epb(data, pos + 8)
                if iface_id < len(quick) and caplen <= length - 32:
                    continue  # a common block, now whole in the window: read at the top
            start = pos
            pos += length
            if block_type in (EPB, PB, SPB):
                no += 1
                found = self._odd_packet(block_type, data[start + 8 : pos - 4], order, no,
                                         window.base + start, section)  # fmt: skip
                if found is not None:
                    self.packets_read = no
                    if only is None or found[5] == only:
                        yield found
            elif block_type == IDB:
                iface = self._interface(data[start + 8 : pos - 4], order, no, window.base + start)
                if iface is not None:
                    section.append(iface)
                    quick.append((iface.linktype, iface.resolution, iface.index))
            # Other blocks (name resolution, statistics, decryption secrets...) carry no frames.

    def _interface(self, body: bytes, order: str, no: int, offset: int) -> Interface | None:
        """An Interface Description Block: link type, snap length and the options."""
        if len(body) < 8:
            self._error("interface description block too short", no + 1, offset)
            return None
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
        opts = options(body, 8, order)
        iface = Interface(len(self.interfaces), linktype, option_text(opts.get(IF_NAME)),
                          option_text(opts.get(IF_DESCRIPTION)), snaplen,
                          tsresol(opts.get(IF_TSRESOL)), option_text(opts.get(OPT_COMMENT)))  # fmt: skip
        self.interfaces.append(iface)
        return iface

    def _packet_options(self, body: bytes, caplen: int, order: str, no: int) -> None:
        """Keep a packet block's comment (the only option osilab shows)."""
        comment = options(body, 20 + ((caplen + 3) & ~3), order).get(OPT_COMMENT)
        if comment is not None:
            self.comments[no] = option_text(comment) or ""

    def _odd_packet(self, block_type: int, body: bytes, order: str, no: int, offset: int,
                    section: list[Interface]) -> Record | None:  # fmt: skip
        """A packet block the common path does not read: cut, obsolete or simple."""
        if block_type == SPB:  # Simple Packet Block: no timestamp, interface 0
            if not section or len(body) < 4:
                self._error("simple packet block before any interface" if not section
                            else "simple packet block too short", no, offset)  # fmt: skip
                return None
            iface = section[0]
            wirelen = struct.unpack_from(order + "I", body, 0)[0]
            data = body[4 : 4 + min(wirelen, iface.snaplen or wirelen)]
            return (no, 0.0, iface.linktype, data, wirelen, iface.index, None)
        if len(body) < 20:
            self._error("packet block too short for its header", no, offset)
            return None
        if block_type == EPB:
            iface_id, ts_high, ts_low, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
        else:  # the obsolete Packet Block: a 16-bit interface and a drop count
            iface_id, _drops, ts_high, ts_low, caplen, wirelen = struct.unpack_from(
                order + "HHIIII", body, 0)  # fmt: skip
        if iface_id >= len(section):
            self._error(f"packet names interface {iface_id}, which was never described", no,
                        offset + 8)  # fmt: skip
            return None
        iface = section[iface_id]
        data = body[20 : 20 + caplen]
        problem = None
        if len(data) < caplen:
            problem = f"packet block holds {len(data)} bytes but claims {caplen}"
            self._error(problem, no, offset + 20)
        self._packet_options(body, caplen, order, no)
        time = ((ts_high << 32) | ts_low) * iface.resolution
        return (no, time, iface.linktype, data, max(wirelen, len(data)), iface.index, problem)


def _pcap_resync(window: _Window, pos: int, header: struct.Struct, limit: int,
                 last_seconds: int | None) -> tuple[bytes, int]:  # fmt: skip
    """After a damaged record header, the window and the position of the next plausible
    one (two in a row, or one that ends the file exactly); -1 when there is none."""
    unpack = header.unpack_from
    while True:
        data, pos = window.fill(pos, 16)
        if len(data) - pos < 16:
            return data, -1
        stop = len(data) - 16
        p = pos
        while p <= stop:
            seconds, fraction, caplen, wirelen = unpack(data, p)
            if (caplen <= limit and caplen <= wirelen <= 0x40000 and fraction < 1_000_000_000
                    and (last_seconds is None or abs(seconds - last_seconds) < 86400)):  # fmt: skip
                nxt = p + 16 + caplen
                if nxt + 16 <= len(data):
                    s2, _f2, c2, w2 = unpack(data, nxt)
                    if c2 <= limit and c2 <= w2 and abs(s2 - seconds) < 86400:
                        return data, p
                elif window.eof and nxt == len(data):
                    return data, p
            p += 1
        pos = max(pos, stop + 1)
        if window.eof:
            return data, -1


def _pcapng_resync(window: _Window, pos: int, order: str) -> tuple[bytes, int]:
    """The window and the position of the next block whose type is known and whose two
    lengths agree, searched from ``pos`` 4 bytes at a time (blocks are 4-byte aligned);
    -1 if none."""
    head = struct.Struct(order + "II").unpack_from
    while True:
        data, pos = window.fill(pos, 12)
        if len(data) - pos < 12:
            return data, -1
        block_type, length = head(data, pos)
        if block_type in KNOWN_BLOCKS and 12 <= length <= 16 * MAX_RECORD and length % 4 == 0:
            data, pos = window.fill(pos, length)
            if (len(data) - pos >= length
                    and struct.unpack_from(order + "I", data, pos + length - 4)[0] == length):  # fmt: skip
                return data, pos
        pos += 4

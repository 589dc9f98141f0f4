"""Reading capture files: pcap and pcapng, plain or gzip-compressed, as a stream.

Theory of operation
-------------------
A capture file is a header followed by records, one per captured frame:

* **pcap** (tcpdump's classic format): a 24-byte global header (a magic number that also
  gives the byte order and the timestamp resolution, micro- or nanoseconds, then the snap
  length and *one* link type), then per packet a 16-byte record header (seconds, fraction,
  captured length, original length) and the frame bytes.
* **pcapng** (the IETF draft-ietf-opsawg-pcapng): a sequence of typed blocks. A Section
  Header Block (SHB) gives the byte order; Interface Description Blocks (IDB) declare each
  interface (its link type, name and timestamp resolution); Enhanced Packet Blocks (EPB)
  carry frames, each naming its interface. One file can therefore mix Ethernet and Linux
  cooked frames from several interfaces.

The format is recognised from the first bytes, never from the file name (a ``.pcap`` file
is often pcapng). gzip-compressed files are decompressed on the fly, with a size limit so
that a small "zip bomb" cannot fill memory or disk.

The reader holds one read buffer at a time (constant memory on multi-GB files) and yields
records in file order. When a record is damaged it records an
:class:`~osilab.errors.CaptureError` that names the file, the packet number and the byte
offset, then tries to find the next good record so that nothing else is lost.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from osilab.capture.packet import Packet
from osilab.errors import CaptureError

__all__ = ["Capture", "Interface", "read", "MAX_DECOMPRESSED", "MAX_RECORD"]

#: Frames larger than this are refused as damaged, as libpcap does (262144 bytes).
MAX_RECORD = 262_144
#: The default ceiling on a gzip capture's decompressed size (4 GiB).
MAX_DECOMPRESSED = 4 * 1024**3
_CHUNK = 1 << 20

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True, slots=True)
class Interface:
    """One capture interface (pcapng IDB; pcap files have exactly one)."""

    index: int
    linktype: int
    name: str | None = None
    description: str | None = None
    snaplen: int = 0
    resolution: float = 1e-6
    comment: str | None = None


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
                "(pass max_decompressed= to read it anyway)", file=self._path)
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class _Buffer:
    """A sliding window over a byte stream: ``need(n)`` guarantees n bytes from ``pos``."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], object] | None = None) -> None:
        self.stream = stream
        self.progress = progress
        self.data = b""
        self.pos = 0
        self.base = 0  # file offset of data[0]
        self.eof = False

    def need(self, n: int) -> bool:
        while len(self.data) - self.pos < n and not self.eof:
            more = self.stream.read(max(_CHUNK, n))
            if not more:
                self.eof = True
                break
            if self.progress is not None:
                self.progress(len(more))
            self.base += self.pos
            self.data = self.data[self.pos:] + more
            self.pos = 0
        return len(self.data) - self.pos >= n

    @property
    def offset(self) -> int:
        return self.base + self.pos


class Capture:
    """A capture file, read lazily: iterate it for :class:`Packet` objects.

    Iterating twice reads the file twice; nothing is kept in memory between packets.

    Attributes:
        path: the file.
        errors: every :class:`CaptureError` met during the last read, in file order. Reading
            goes on after a damaged record wherever the next record can be found.
        interfaces: the interfaces seen so far (all of them once a read has finished).
        format: ``"pcap"`` or ``"pcapng"`` (with ``+gzip`` when compressed).
        progress: ``None``, or a callable the readers call with the number of bytes they
            have just read (about once per MiB): how a progress bar follows a read.

    Example:
        >>> import osilab
        >>> cap = osilab.read("captures/alb/alb.pcapng")      # doctest: +SKIP
        >>> for pkt in cap:                                      # doctest: +SKIP
        ...     print(pkt.no, pkt.names())
    """

    def __init__(self, path: str | os.PathLike[str], *, max_decompressed: int = MAX_DECOMPRESSED) -> None:
        self.path = os.fspath(path)
        self.max_decompressed = max_decompressed
        self.errors: list[CaptureError] = []
        self.interfaces: list[Interface] = []
        self.format = "?"
        self.packets_read = 0
        self.progress: Callable[[int], object] | None = None
        if not os.path.exists(self.path):
            raise CaptureError("no such file", file=self.path)
        if os.path.isdir(self.path):
            raise CaptureError("is a folder, not a capture file", file=self.path)
        with open(self.path, "rb") as f:  # fail early on a file that is no capture at all
            self._sniff(f.read(4))

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def _sniff(self, magic: bytes) -> str:
        if magic[:2] == b"\x1f\x8b":
            return "gzip"
        if magic in _PCAP_MAGICS:
            return "pcap"
        if magic == _PCAPNG_SHB:
            return "pcapng"
        if len(magic) < 4:
            raise CaptureError(f"file is {len(magic)} bytes long, too short to be a capture",
                               file=self.path, offset=0)
        raise CaptureError(
            f"not a capture file: starts with {magic.hex(' ')}, which is neither pcap "
            "(a1 b2 c3 d4 / a1 b2 3c 4d in either byte order), pcapng (0a 0d 0d 0a) nor gzip",
            file=self.path, offset=0)

    def _open(self) -> tuple[BinaryIO, str]:
        raw = open(self.path, "rb")  # noqa: SIM115 - closed by records()
        kind = self._sniff(raw.read(4))
        raw.seek(0)
        if kind != "gzip":
            return raw, kind
        stream = io.BufferedReader(_LimitedReader(gzip.GzipFile(fileobj=raw), self.max_decompressed,
                                                  self.path), _CHUNK)
        try:
            inner = self._sniff(stream.peek(4)[:4])
        except (OSError, EOFError) as exc:
            raw.close()
            raise CaptureError(f"bad gzip data: {exc}", file=self.path, offset=0) from None
        if inner == "gzip":
            raw.close()
            raise CaptureError("gzip inside gzip is not read", file=self.path, offset=0)
        return stream, inner + "+gzip"  # type: ignore[return-value]

    # -- iteration ----------------------------------------------------------------------

    def records(self) -> Iterator[tuple[int, float, int, bytes, int, int]]:
        """The fast path: ``(no, time, linktype, data, wire_length, interface)`` per frame.

        Damaged records are skipped here (and listed in :attr:`errors`); use iteration
        over the Capture to see them as damaged packets.
        """
        for rec in self._records():
            if rec[6] is None:
                yield rec[:6]

    def __iter__(self) -> Iterator[Packet]:
        names = {}
        for no, time, linktype, data, wire, iface, problem, _file_offset in self._records():
            if iface not in names:
                names[iface] = self.interfaces[iface].name if iface < len(self.interfaces) else None
            pkt = Packet(no, time, data, linktype, wire_length=wire, interface=iface,
                         interface_name=names[iface], read_error=problem)
            pkt.comment = self._comments.pop(no, None) if self._comments else None
            yield pkt

    def _records(self) -> Iterator[tuple]:
        self.errors = []
        self.packets_read = 0
        self._comments: dict[int, str] = {}
        stream, kind = self._open()
        self.format = kind
        try:
            buf = _Buffer(stream, self.progress)
            if kind.startswith("pcapng"):
                yield from self._pcapng(buf)
            else:
                yield from self._pcap(buf)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            self._error(f"could not read further: {exc}", self.packets_read + 1, None)
        finally:
            stream.close()

    def _error(self, reason: str, packet: int | None, offset: int | None) -> None:
        self.errors.append(CaptureError(reason, file=self.path, packet=packet, offset=offset))

    # -- pcap ---------------------------------------------------------------------------

    def _pcap(self, buf: _Buffer) -> Iterator[tuple]:
        if not buf.need(24):
            raise CaptureError(f"pcap global header is cut short: {len(buf.data)} of 24 bytes",
                               file=self.path, offset=0)
        order, resolution = _PCAP_MAGICS[buf.data[:4]]
        _vmaj, _vmin, _zone, _sig, snaplen, linktype = struct.unpack_from(order + "HHiIII", buf.data, 4)
        linktype &= 0x0FFFFFFF  # the top bits may carry FCS information
        self.interfaces = [Interface(0, linktype, None, None, snaplen, resolution)]
        buf.pos = 24
        header = struct.Struct(order + "IIII")
        limit = max(MAX_RECORD, snaplen if snaplen < 16 * MAX_RECORD else 0)
        no = 0
        last_seconds = None
        while buf.need(16):
            start = buf.offset
            seconds, fraction, caplen, wirelen = header.unpack_from(buf.data, buf.pos)
            no += 1
            if caplen > limit:
                self._error(f"record header claims a {caplen}-byte packet, more than the maximum "
                            f"{limit}: the file is damaged here", no, start)
                if not self._pcap_resync(buf, header, limit, last_seconds):
                    return
                no -= 1  # the bad header was not a packet
                continue
            buf.pos += 16
            if not buf.need(caplen):
                have = len(buf.data) - buf.pos
                self._error(f"packet record cut off at the end of the file: {have} of {caplen} bytes",
                            no, start)
                data = buf.data[buf.pos:]
                buf.pos = len(buf.data)
                self.packets_read = no
                yield (no, seconds + fraction * resolution, linktype, data, wirelen, 0,
                       f"record cut off at the end of the file ({have} of {caplen} bytes)", start)
                return
            data = buf.data[buf.pos:buf.pos + caplen]
            buf.pos += caplen
            last_seconds = seconds
            self.packets_read = no
            yield no, seconds + fraction * resolution, linktype, data, max(wirelen, caplen), 0, None, start
        if buf.pos < len(buf.data):
            self._error(f"{len(buf.data) - buf.pos} stray bytes at the end of the file, too few for a "
                        "record header", no + 1, buf.offset)

    def _pcap_resync(self, buf: _Buffer, header: struct.Struct, limit: int,
                     last_seconds: int | None) -> bool:
        """After a damaged record header, look for the next plausible one (two in a row)."""
        buf.pos += 1
        while buf.need(16):
            window = buf.data
            p = buf.pos
            stop = len(window) - 16
            while p <= stop:
                seconds, fraction, caplen, wirelen = header.unpack_from(window, p)
                if (caplen <= limit and caplen <= wirelen <= 0x40000 and fraction < 1_000_000_000
                        and (last_seconds is None or abs(seconds - last_seconds) < 86400)):
                    nxt = p + 16 + caplen
                    if nxt + 16 <= len(window):
                        s2, f2, c2, w2 = header.unpack_from(window, nxt)
                        if c2 <= limit and c2 <= w2 and abs(s2 - seconds) < 86400:
                            buf.pos = p
                            return True
                    elif buf.eof and nxt == len(window):
                        buf.pos = p
                        return True
                p += 1
            buf.pos = max(buf.pos, stop + 1)
            if buf.eof:
                break
        return False

    # -- pcapng -------------------------------------------------------------------------

    def _pcapng(self, buf: _Buffer) -> Iterator[tuple]:
        order = "<"
        no = 0
        section_interfaces: list[int] = []  # IDB index in this section -> self.interfaces index
        while buf.need(12):
            start = buf.offset
            block_type = struct.unpack_from(order + "I", buf.data, buf.pos)[0]
            if buf.data[buf.pos:buf.pos + 4] == _PCAPNG_SHB:
                bom = buf.data[buf.pos + 8:buf.pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    self._error(f"section header has an unknown byte-order magic {bom.hex(' ')}",
                                no + 1, start + 8)
                    buf.pos += 4
                    if not self._pcapng_resync(buf, order):
                        return
                    continue
                block_type = 0x0A0D0D0A
                section_interfaces = []
            length = struct.unpack_from(order + "I", buf.data, buf.pos + 4)[0]
            if length < 12 or length % 4 or length > 16 * MAX_RECORD:
                self._error(f"pcapng block of type 0x{block_type:08x} has an impossible length "
                            f"{length} (must be a multiple of 4, at least 12)", no + 1, start + 4)
                buf.pos += 4
                if not self._pcapng_resync(buf, order):
                    return
                continue
            if not buf.need(length):
                self._error(f"pcapng block cut off at the end of the file: {len(buf.data) - buf.pos} of "
                            f"{length} bytes", no + 1, start)
                return
            block = buf.data[buf.pos:buf.pos + length]
            trailer = struct.unpack_from(order + "I", block, length - 4)[0]
            if trailer != length:
                self._error(f"pcapng block length {length} and trailing length {trailer} disagree",
                            no + 1, start + length - 4)
                buf.pos += 4
                if not self._pcapng_resync(buf, order):
                    return
                continue
            buf.pos += length
            body = block[8:length - 4]
            if block_type == 1:  # Interface Description Block
                if len(body) < 8:
                    self._error("interface description block too short", no + 1, start)
                    continue
                linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
                opts = _options(body, 8, order)
                resolution = _tsresol(opts.get(9))
                iface = Interface(len(self.interfaces), linktype, _text(opts.get(2)), _text(opts.get(3)),
                                  snaplen, resolution, _text(opts.get(1)))
                section_interfaces.append(iface.index)
                self.interfaces.append(iface)
            elif block_type in (6, 2):  # Enhanced Packet Block / obsolete Packet Block
                no += 1
                if len(body) < 20:
                    self._error("packet block too short for its header", no, start)
                    continue
                if block_type == 6:
                    iface_id, ts_high, ts_low, caplen, wirelen = struct.unpack_from(order + "IIIII", body, 0)
                else:
                    iface_id, _drops, ts_high, ts_low, caplen, wirelen = struct.unpack_from(
                        order + "HHIIII", body, 0)
                problem = None
                if iface_id >= len(section_interfaces):
                    self._error(f"packet names interface {iface_id}, which was never described", no, start + 8)
                    continue
                iface = self.interfaces[section_interfaces[iface_id]]
                data = body[20:20 + caplen]
                if len(data) < caplen:
                    problem = f"packet block holds {len(data)} bytes but claims {caplen}"
                    self._error(problem, no, start + 20)
                opts = _options(body, 20 + ((caplen + 3) & ~3), order)
                if 1 in opts:
                    self._comments[no] = _text(opts[1]) or ""
                ts = ((ts_high << 32) | ts_low) * iface.resolution
                self.packets_read = no
                yield no, ts, iface.linktype, data, max(wirelen, len(data)), iface.index, problem, start
            elif block_type == 3:  # Simple Packet Block: no timestamp, interface 0
                no += 1
                if not section_interfaces:
                    self._error("simple packet block before any interface", no, start)
                    continue
                iface = self.interfaces[section_interfaces[0]]
                wirelen = struct.unpack_from(order + "I", body, 0)[0]
                data = body[4:4 + min(wirelen, iface.snaplen or wirelen)]
                self.packets_read = no
                yield no, 0.0, iface.linktype, data, wirelen, iface.index, None, start
            # Other blocks (name resolution, statistics, decryption secrets...) carry no frames.

    def _pcapng_resync(self, buf: _Buffer, order: str) -> bool:
        """Look for the next block whose type is known and whose two lengths agree.

        The search starts at ``buf.pos`` (callers step past the bad block first) and moves
        forward 4 bytes at a time, as blocks are 4-byte aligned.
        """
        known = {1, 2, 3, 4, 5, 6, 0x0A, 0x0A0D0D0A}
        while buf.need(12):
            block_type, length = struct.unpack_from(order + "II", buf.data, buf.pos)
            if block_type in known and 12 <= length <= 16 * MAX_RECORD and length % 4 == 0 \
                    and buf.need(length) \
                    and struct.unpack_from(order + "I", buf.data, buf.pos + length - 4)[0] == length:
                return True
            buf.pos += 4
        return False

    # -- display ------------------------------------------------------------------------

    def head(self, n: int = 10) -> list[Packet]:
        """The first ``n`` packets (reads only that far)."""
        out = []
        for pkt in self:
            out.append(pkt)
            if len(out) >= n:
                break
        return out

    def __repr__(self) -> str:
        return f"<Capture {self.path}>"

    def _repr_html_(self) -> str:
        from osilab.capture.display import capture_html

        return capture_html(self)


def _options(body: bytes, p: int, order: str) -> dict[int, bytes]:
    """pcapng options: (code u16, length u16, value padded to 4 bytes) until code 0."""
    found: dict[int, bytes] = {}
    while p + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, p)
        if code == 0:
            break
        found.setdefault(code, body[p + 4:p + 4 + size])
        p += 4 + ((size + 3) & ~3)
    return found


def _text(raw: bytes | None) -> str | None:
    return raw.rstrip(b"\x00").decode("utf-8", "replace") if raw is not None else None


def _tsresol(raw: bytes | None) -> float:
    """if_tsresol: the high bit says power of 2, else power of 10; default microseconds."""
    if not raw:
        return 1e-6
    value = raw[0]
    return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -value


def read(path: str | os.PathLike[str], *, max_decompressed: int = MAX_DECOMPRESSED) -> Capture:
    """Open a capture file (pcap or pcapng, optionally gzip-compressed) for streaming.

    Nothing but the first bytes is read now: iterate the returned :class:`Capture` for its
    packets, numbered from 1 as Wireshark numbers frames.

    Raises:
        CaptureError: the file does not exist or is not a capture file.
    """
    return Capture(path, max_decompressed=max_decompressed)

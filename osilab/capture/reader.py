"""A capture file as a stream of packets: :func:`read` and :class:`Capture`.

:func:`read` checks that the file is a capture (pcap or pcapng, plain or gzip: see
:mod:`osilab.capture.pcapng` for the formats) and returns a :class:`Capture` without
reading it. Iterating the capture walks its records (:class:`~osilab.capture.files.RecordWalk`,
the one record walk) and makes each a :class:`~osilab.capture.packet.Packet`, whose layers
are dissected only when asked for. Nothing is kept between packets, so a multi-GB file
reads in constant memory; iterating twice reads the file twice.

A damaged record adds a :class:`~osilab.errors.CaptureError` to :attr:`Capture.errors`
(naming the file, the packet number and the byte offset) and reading goes on with the
next good record.

The fast views skip the packets: :meth:`Capture.records` gives the raw records, and
:func:`osilab.capture.facts.flow_facts` each packet's flow facts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from osilab.capture.files import (
    MAX_DECOMPRESSED,
    MAX_RECORD,
    Interface,
    Record,
    RecordWalk,
    hop_name,
    sniff,
)
from osilab.capture.packet import Packet
from osilab.errors import CaptureError

__all__ = ["Capture", "Interface", "read", "MAX_DECOMPRESSED", "MAX_RECORD"]


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
        self.progress: Callable[[int], object] | None = None
        self._walk: RecordWalk | None = None
        self._interfaces_known = False
        if not os.path.exists(self.path):
            raise CaptureError("no such file", file=self.path)
        if os.path.isdir(self.path):
            raise CaptureError("is a folder, not a capture file", file=self.path)
        with open(self.path, "rb") as f:  # fail early on a file that is no capture at all
            sniff(f.read(4), self.path)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def format(self) -> str:
        """``"pcap"`` or ``"pcapng"``, ``+gzip`` when compressed; ``"?"`` before a read."""
        return self._walk.format if self._walk is not None else "?"

    @property
    def packets_read(self) -> int:
        """The number of the last frame the last (or current) read gave."""
        return self._walk.packets_read if self._walk is not None else 0

    def hop_name(self, interface: int) -> str:
        """The name of the hop (capture interface) ``interface``: pcapng's ``if_name``,
        which the lab writes from topology.json, else ``if<N>`` (a pcap file is ``if0``).

        Known without a full read: on first use, the interfaces described before the
        first frame are read (the lab and mergecap describe every interface there); a read
        in progress knows every interface it has met.

        >>> import osilab
        >>> osilab.read("captures/alb/alb.pcapng").hop_name(0)   # doctest: +SKIP
        'client-alb'
        """
        if interface >= len(self.interfaces) and not self._interfaces_known:
            found = self._new_walk(progress=None).leading_interfaces()
            if len(found) > len(self.interfaces):
                self.interfaces = found
            self._interfaces_known = True
        return hop_name(self.interfaces, interface)

    # -- iteration ----------------------------------------------------------------------

    def _new_walk(self, progress: Callable[[int], object] | None) -> RecordWalk:
        return RecordWalk(self.path, max_decompressed=self.max_decompressed, progress=progress)

    def raw_records(self, *, progress: Callable[[int], object] | None = None) -> Iterator[Record]:
        """Every record, damaged ones included, as :class:`~osilab.capture.files.Record`.

        ``(no, time, linktype, data, wire_length, interface, read_error)``: the one walk
        that packets, :meth:`records` and the flow facts are made from. ``read_error`` is
        the reason a record is damaged (what ``Packet.read_error`` holds), else ``None``.
        ``progress`` overrides :attr:`progress` for this read.
        """
        walk = self._walk = self._new_walk(progress if progress is not None else self.progress)
        self.errors = walk.errors
        self.interfaces = walk.interfaces
        return iter(walk)

    def records(self) -> Iterator[tuple[int, float, int, bytes, int, int]]:
        """The fast path: ``(no, time, linktype, data, wire_length, interface)`` per frame.

        Damaged records are skipped here (and listed in :attr:`errors`); use iteration
        over the Capture to see them as damaged packets.
        """
        for record in self.raw_records():
            if record[6] is None:
                yield record[:6]

    def __iter__(self) -> Iterator[Packet]:
        names: dict[int, str | None] = {}
        records = self.raw_records()
        comments = self._walk.comments if self._walk is not None else {}
        for no, time, linktype, data, wire, iface, problem in records:
            if iface not in names:
                names[iface] = self.interfaces[iface].name if iface < len(self.interfaces) else None
            pkt = Packet(no, time, data, linktype, wire_length=wire, interface=iface,
                         interface_name=names[iface], read_error=problem)  # fmt: skip
            pkt.comment = comments.pop(no, None) if comments else None
            yield pkt

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


def read(path: str | os.PathLike[str], *, max_decompressed: int = MAX_DECOMPRESSED) -> Capture:
    """Open a capture file (pcap or pcapng, optionally gzip-compressed) for streaming.

    Nothing but the first bytes is read now: iterate the returned :class:`Capture` for its
    packets, numbered from 1 as Wireshark numbers frames.

    Raises:
        CaptureError: the file does not exist or is not a capture file.
    """
    return Capture(path, max_decompressed=max_decompressed)

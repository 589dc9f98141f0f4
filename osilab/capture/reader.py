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

import copy
import os
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, overload

from osilab.capture.files import (
    MAX_DECOMPRESSED,
    MAX_RECORD,
    Interface,
    Record,
    RecordWalk,
    hop_name,
    sniff,
)
from osilab.capture.filter import compile_filter
from osilab.capture.packet import Packet
from osilab.capture.tables import Rows, packet_rows
from osilab.errors import CaptureError

__all__ = ["Capture", "Interface", "read", "MAX_DECOMPRESSED", "MAX_RECORD", "LEN_LIMIT"]

#: ``len(cap)`` counts files up to this size on its own; past it, ``cap.count()`` does.
LEN_LIMIT = 64 * 2**20


def _stamp(path: str) -> tuple[int, int]:
    """What says a file is unchanged: its modification time and size."""
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


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
        self._count: tuple[tuple[int | None, ...], int] | None = None  # (file stamp, packets)
        #: Only the frames of this interface (hop), or every frame (``None``): see :meth:`on_interface`.
        self.interface: int | None = None
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

    def hop_name(self, interface: int, tunnel: str = "") -> str:
        """The name of the hop (capture interface) ``interface``: pcapng's ``if_name``,
        which the lab writes from topology.json, else ``if<N>`` (a pcap file is ``if0``);
        for a flow that came through a tunnel, ``"<that name>/<tunnel>"``
        (:func:`~osilab.capture.files.hop_name`).

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
        return hop_name(self.interfaces, interface, tunnel)

    # -- iteration ----------------------------------------------------------------------

    def _new_walk(self, progress: Callable[[int], object] | None,
                  interface: int | None = None) -> RecordWalk:  # fmt: skip
        return RecordWalk(self.path, max_decompressed=self.max_decompressed, progress=progress,
                          interface=interface)  # fmt: skip

    def raw_records(self, *, progress: Callable[[int], object] | None = None) -> Iterator[Record]:
        """Every record, damaged ones included, as :class:`~osilab.capture.files.Record`.

        ``(no, time, linktype, data, wire_length, interface, read_error)``: the one walk
        that packets, :meth:`records` and the flow facts are made from. ``read_error`` is
        the reason a record is damaged (what ``Packet.read_error`` holds), else ``None``.
        ``progress`` overrides :attr:`progress` for this read.
        """
        walk = self._walk = self._new_walk(progress if progress is not None else self.progress,
                                           self.interface)  # fmt: skip
        self.errors = walk.errors
        self.interfaces = walk.interfaces
        return iter(walk)

    def on_interface(self, interface: int) -> Capture:
        """The same file seen on one interface (hop) only: frames keep their numbers.

        A balancer stands on one hop of a multi-hop capture; every view of this capture
        (packets, :meth:`records`, the flow facts) gives only that interface's frames.

        >>> import osilab
        >>> front = osilab.read("captures/alb/alb.pcapng").on_interface(0)   # doctest: +SKIP
        """
        view = copy.copy(self)
        view.interface = interface
        view._walk = None
        return view

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

    # -- a sequence, where that is cheap -------------------------------------------------

    def count(self) -> int:
        """How many packets the file holds (damaged ones included): one fast record walk,
        remembered while the file is unchanged."""
        stamp = (*_stamp(self.path), getattr(self, "interface", None))  # a hop view counts its own
        if self._count is None or self._count[0] != stamp:
            self._count = (stamp, sum(1 for _ in self.raw_records()))
        return self._count[1]

    def __len__(self) -> int:
        """The packet count, for files up to :data:`LEN_LIMIT` bytes (or once counted).

        A capture is read lazily, so ``len`` would read the whole file; past the limit it
        says so and how to ask anyway (``cap.count()``).
        """
        if self._count is None and os.path.getsize(self.path) > LEN_LIMIT:
            raise TypeError(
                f"len() of {self.name} would read the whole file "
                f"({os.path.getsize(self.path) / 2**20:.0f} MiB): use cap.count(), which does"
            )
        return self.count()

    @overload
    def __getitem__(self, index: int) -> Packet: ...

    @overload
    def __getitem__(self, index: slice) -> list[Packet]: ...

    def __getitem__(self, index: int | slice) -> Packet | list[Packet]:
        """``cap[i]``: the packet at Python index ``i`` (from 0, so ``cap[0].no == 1``);
        ``cap[i:j]`` a list. Reads the file up to there; a negative index counts the file
        first. For Wireshark's frame number use :meth:`frame`."""
        if isinstance(index, slice):
            start, stop, step = index.start, index.stop, index.step
            if any(v is not None and v < 0 for v in (start, stop)) or (step or 1) < 0:
                start, stop, step = index.indices(self.count())
            return list(islice(self, start, stop, step))
        if not isinstance(index, int):
            raise TypeError(f"a Capture is indexed by packet position, not {type(index).__name__}"
                            " (a frame number: cap.frame(n); a layer: pkt[name])")  # fmt: skip
        position = index + self.count() if index < 0 else index
        found = next(islice(self, position, None), None) if position >= 0 else None
        if found is None:
            raise IndexError(f"{self.name} has no packet at index {index} "
                             f"(it holds {self.count()} packets)")  # fmt: skip
        return found

    def frame(self, no: int) -> Packet:
        """The packet Wireshark numbers ``no`` (from 1): ``cap.frame(5) is cap[4]``'s twin."""
        if no < 1:
            raise IndexError(f"frame numbers start at 1, as Wireshark's do (got {no})")
        return self[no - 1]

    def filter(self, expression: str) -> Iterator[Packet]:
        """The packets that pass a Wireshark display filter (:mod:`osilab.capture.filter`),
        each frame dissected alone; the filter is read now, so a bad one raises at once.

        For the stream-aware view -- a message split over segments on the frame that
        completes it, as Wireshark shows it -- use ``osilab.pipeline.select_packets(cap, expr)``.

        >>> import osilab
        >>> [p.no for p in osilab.read("captures/alb/alb.pcapng").filter("tcp.flags.syn == 1")][:2]  # doctest: +SKIP
        [1, 2]
        """
        return compile_filter(expression).select(self)

    # -- tables ---------------------------------------------------------------------------

    def table(self) -> Rows:
        """The packet table (:mod:`osilab.capture.tables`): one row per packet, the keys
        of ``osilab layers --json``; each packet dissected alone (for the stream-aware
        layers, ``osilab.capture.tables.packet_rows(lambda: osilab.pipeline.annotate(cap))``)."""
        return packet_rows(lambda: self)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table``, one row per packet (needs ``pip install 'osilab[tables]'``)."""
        return self.table().to_arrow()

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per packet, typed columns (needs pyarrow and pandas)."""
        return self.table().to_pandas()

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

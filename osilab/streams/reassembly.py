"""TCP reassembly for one direction of a connection: segments in, ordered bytes out.

The job
-------
TCP hands the application a *byte stream*, but the wire carries *segments*: pieces of
that stream, each labelled with the sequence number of its first byte (RFC 9293 §3.4).
On a capture the pieces can arrive twice (retransmission), late (out of order), overlap
each other, or never arrive at all (lost before the capture point). A
:class:`StreamReassembler` turns the segments of **one direction** back into the stream:

* it delivers bytes strictly in sequence order, as :class:`Chunk` s. Each chunk holds
  bytes from **one packet**, so every byte keeps the number of the packet that carried it
  and a message can say "started in packet 4, headers complete in packet 6";
* it holds early (out-of-order) segments until the bytes before them arrive;
* it marks bytes that never arrive as a :class:`Gap`, never silently joining the bytes on
  either side of the hole.

Rules it keeps
--------------
*Sequence numbers are 32-bit and wrap* (RFC 9293 §3.4): every comparison is made modulo
2**32, relative to the next expected byte, so a connection that crosses 2**32 is not
broken. Internally bytes are counted by an unbounded *stream offset* (0 = the first byte
after the SYN, or the first byte seen when the capture started mid-stream).

*SYN and FIN each consume one sequence number* and carry no stream byte: the first data
byte is ISN + 1, and the FIN's number is one past the last data byte.

*A capture that starts mid-stream* starts the stream at the first segment seen that carries
data (or a FIN). Bytes that turn up later with lower numbers are taken for retransmissions
of data sent before the capture started, and ignored.

*One overlap policy: the first copy wins.* A byte, once received (delivered or held), is
never replaced by a later copy: retransmissions and overlapping segments only fill bytes
not seen before. Real stacks differ here (Ptacek & Newsham 1998 and Novak 2005 describe
the "overlap" evasions this allows); osilab takes the rule Wireshark's reassembly uses, so
its streams agree with what a learner sees in Wireshark. Overlapping copies that *differ*
are counted in :attr:`StreamReassembler.conflicts`.

*Memory is bounded.* At most :data:`MAX_BUFFERED_BYTES` of early data are held per
direction. When a segment would pass that limit, the hole in front of the held data is
given up: a :class:`Gap` is reported and the held data is delivered after it. Delivered
bytes are never kept here: whoever consumes the chunks decides what to keep.

What this module must not know: packets, flows, files or any application protocol. It
takes numbers and bytes and returns records.

References:
    RFC 9293 (TCP) §3.4 sequence numbers, §3.10.7.4 segment arrival; RFC 1982 serial
    number arithmetic (the idea behind the modulo comparisons).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass

__all__ = [
    "Chunk",
    "Gap",
    "StreamReassembler",
    "MAX_BUFFERED_BYTES",
    "SEQ_MODULUS",
    "seq_diff",
]

#: Sequence numbers live in 0 .. 2**32 - 1 and wrap (RFC 9293 §3.4).
SEQ_MODULUS = 1 << 32
_HALF = 1 << 31

#: Most out-of-order bytes held per direction before the hole in front of them is given up
#: (4 MiB: more than any receive window on the captures osilab is meant for).
MAX_BUFFERED_BYTES = 4 * 1024 * 1024

_SYN, _FIN, _RST = 0x02, 0x01, 0x04


def seq_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit sequence numbers, as a signed number in [-2**31, 2**31).

    >>> seq_diff(5, 2**32 - 3)   # 5 comes 8 bytes after 2**32 - 3, across the wrap
    8
    """
    return ((a - b + _HALF) % SEQ_MODULUS) - _HALF


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes of the stream, in order, all carried by one packet.

    Attributes:
        data: the bytes.
        offset: stream offset of the first byte (0 = first byte after the SYN).
        packet_no: the packet that carried these bytes.
        time: that packet's capture time.
        delivered_at: the packet whose arrival made these bytes readable in order. It is
            ``packet_no`` for in-order data; for data that arrived early it is the packet
            that filled the hole before it (the moment a receiver could read it).
    """

    data: bytes
    offset: int
    packet_no: int
    time: float
    delivered_at: int

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes of the stream that were never captured: a hole, kept visible.

    Attributes:
        offset: stream offset where the hole starts.
        size: how many bytes are missing.
        packet_no: the packet at which the hole was given up (0 at the end of the capture).
        reason: why it was given up, in words.
    """

    offset: int
    size: int
    packet_no: int
    reason: str

    @property
    def end(self) -> int:
        return self.offset + self.size


# A held (early) piece: (start offset, end offset, data, packet number, time).
_Held = tuple[int, int, bytes, int, float]


class StreamReassembler:
    """Reassemble one direction of a TCP connection (sans-IO).

    Feed every segment of that direction with :meth:`segment`; it returns the chunks and
    gaps the segment made readable, in stream order. Call :meth:`finish` when the flow
    ends to give up any hole that is left and deliver what was held behind it.

    >>> r = StreamReassembler()
    >>> _ = r.segment(1000, 0x02, b"", 1, 0.0)               # SYN: ISN 1000
    >>> [c.data for c in r.segment(1006, 0x10, b"world", 3, 0.2)]   # early: held
    []
    >>> [(c.data, c.packet_no) for c in r.segment(1001, 0x10, b"hello", 2, 0.1)]
    [(b'hello', 2), (b'world', 3)]
    """

    __slots__ = (
        "max_buffered",
        "_base",
        "_next",
        "_fin",
        "_held",
        "_held_bytes",
        "finished",
        "syn_seen",
        "retransmitted_bytes",
        "conflicts",
        "gaps",
        "delivered_bytes",
    )

    def __init__(self, max_buffered: int = MAX_BUFFERED_BYTES) -> None:
        self.max_buffered = max_buffered
        self._base: int | None = None  # sequence number of stream offset 0
        self._next = 0  # stream offset of the next byte to deliver
        self._fin: int | None = None  # stream offset of the FIN, once seen
        self._held: list[_Held] = []  # early pieces, sorted, never overlapping
        self._held_bytes = 0
        #: True once every byte up to the FIN has been delivered (or given up).
        self.finished = False
        #: True when the SYN of this direction was seen (the stream starts at ISN + 1).
        self.syn_seen = False
        #: Bytes received again after their first copy (retransmissions, overlaps).
        self.retransmitted_bytes = 0
        #: Overlapping copies whose bytes differed from the first copy.
        self.conflicts = 0
        #: Holes given up so far.
        self.gaps = 0
        #: Bytes delivered in order so far.
        self.delivered_bytes = 0

    # -- public -------------------------------------------------------------------------

    @property
    def next_offset(self) -> int:
        """Stream offset of the next byte expected."""
        return self._next

    @property
    def buffered_bytes(self) -> int:
        """Early bytes held, waiting for the hole in front of them."""
        return self._held_bytes

    @property
    def started(self) -> bool:
        """Whether the stream's origin (ISN or first seen byte) is known."""
        return self._base is not None

    @property
    def receive_next(self) -> int | None:
        """RCV.NXT as the receiver of this direction has it, as far as the capture shows:
        the sequence number after the last in-order byte (and after the FIN once it is
        reached); None before the stream's origin is known."""
        if self._base is None:
            return None
        fin_reached = self._fin is not None and self._next >= self._fin
        return (self._base + self._next + (1 if fin_reached else 0)) % SEQ_MODULUS

    def reset_acceptable(self, seq: int, window: int | None = None) -> bool:
        """Whether a RST with sequence number ``seq``, sent in this direction, resets.

        RFC 9293 §3.10.7.3: a RST is acceptable when its number is in the receive window
        (``window`` bytes from RCV.NXT: the RFC 793 rule); the full check, RFC 9293's
        "exactly matches the next expected sequence number" (RFC 5961 §3.2, which Linux,
        Windows and the BSDs implement), is ``window=None``. An in-window but inexact RST
        only draws a challenge ACK, and one outside the window is dropped: either way
        the connection goes on, and the data after it is still data. Before anything of
        this direction is known (a RST answering a SYN), every RST is acceptable.

        >>> r = StreamReassembler()
        >>> _ = r.segment(1000, 0x02, b"", 1, 0.0)
        >>> _ = r.segment(1001, 0x18, b"hello", 2, 0.1)
        >>> r.reset_acceptable(1006), r.reset_acceptable(1010), r.reset_acceptable(1010, 65535)
        (True, False, True)
        """
        expected = self.receive_next
        if expected is None:
            return True
        ahead = seq_diff(seq, expected)
        if window is None:
            return ahead == 0
        return 0 <= ahead < window

    def offset_of(self, seq: int) -> int | None:
        """The stream offset of sequence number ``seq`` (None before the stream started)."""
        if self._base is None:
            return None
        return self._next + seq_diff(seq, (self._base + self._next) % SEQ_MODULUS)

    def segment(
        self,
        seq: int,
        flags: int,
        payload: bytes,
        packet_no: int,
        time: float,
        missing: int = 0,
    ) -> list[Chunk | Gap]:
        """One segment of this direction: returns what became readable, in order.

        Args:
            seq: the segment's sequence number (the SYN's own number for a SYN).
            flags: the TCP flag bits (SYN 0x02, FIN 0x01 matter here).
            payload: the captured payload bytes.
            packet_no, time: the packet carrying the segment.
            missing: payload bytes the segment carried but the capture cut off (snap
                length); they become a gap right after ``payload``.
        """
        if flags & _SYN:
            if self._base is None or (not self.syn_seen and self._next == 0 and not self._held):
                self._base = (seq + 1) % SEQ_MODULUS
                self.syn_seen = True
            seq = (seq + 1) % SEQ_MODULUS  # the SYN takes one number; data follows it
        if self._base is None:
            if not payload and not missing and not flags & _FIN:
                return []  # a bare ACK tells nothing about where the stream starts
            self._base = seq
        start = self._next + seq_diff(seq, (self._base + self._next) % SEQ_MODULUS)
        out: list[Chunk | Gap] = []
        if flags & _FIN and self._fin is None:
            self._fin = start + len(payload) + missing
        if self.finished:
            if payload:
                self.retransmitted_bytes += len(payload)
            return out
        if self._fin is not None:  # nothing after the FIN belongs to the stream
            limit = self._fin - start
            if limit < len(payload):
                payload = payload[: max(0, limit)]
                missing = 0
            elif limit < len(payload) + missing:
                missing = limit - len(payload)
        if payload:
            self._accept(start, payload, packet_no, time, out)
        if missing > 0:
            self._accept_missing(start + len(payload), missing, packet_no, out)
        self._check_fin()
        return out

    def in_order(self, seq: int, flags: int, payload: bytes, missing: int = 0) -> bool:
        """Take a segment at once when it is plainly the next bytes: True if it was taken.

        The common case of a healthy connection -- payload starting exactly at the next
        offset, nothing held, no SYN or FIN, nothing cut off, no FIN seen yet -- is
        what :meth:`segment` would deliver as one :class:`Chunk` of this packet, readable
        at once; here the caller keeps the ``payload`` it already has, and no chunk is
        built. False: nothing was done, give the segment to :meth:`segment`.

        >>> r = StreamReassembler()
        >>> _ = r.segment(1000, 0x02, b"", 1, 0.0)
        >>> r.in_order(1001, 0x18, b"hello"), r.in_order(1010, 0x18, b"later"), r.next_offset
        (True, False, 5)
        """
        if (
            flags & (_SYN | _FIN)
            or missing
            or not payload
            or self._held
            or self._fin is not None
            or self.finished
            or self._base is None
            or (seq - self._base - self._next) % SEQ_MODULUS
        ):
            return False
        size = len(payload)
        self._next += size
        self.delivered_bytes += size
        return True

    def give_up(self, packet_no: int, reason: str) -> list[Chunk | Gap]:
        """Give up every hole in front of held data now, and deliver what was held.

        For memory pressure from outside this direction (the streams stage's budget over
        all flows, :data:`osilab.pipeline.tracker.MAX_HELD_TOTAL`): the stream goes on,
        with a :class:`Gap` saying ``reason`` where bytes were not waited for.
        """
        out: list[Chunk | Gap] = []
        while self._held:
            first = self._held[0][0]
            if first > self._next:
                self._gap(first - self._next, packet_no, reason, out)
            self._drain(packet_no, out)
        self._check_fin()
        return out

    def finish(self, packet_no: int = 0) -> list[Chunk | Gap]:
        """The flow ended: give up every hole left, deliver what was held behind it."""
        out: list[Chunk | Gap] = []
        while self._held:
            first = self._held[0][0]
            if first > self._next:
                self._gap(first - self._next, packet_no, "never captured (flow ended)", out)
            self._drain(packet_no, out)
        if self._fin is not None and self._fin > self._next and not self.finished:
            self._gap(self._fin - self._next, packet_no, "never captured before the FIN", out)
        self.finished = True
        return out

    # -- internals ----------------------------------------------------------------------

    def _accept(self, start: int, payload: bytes, packet_no: int, time: float, out: list) -> None:
        end = start + len(payload)
        nxt = self._next
        if end <= nxt:  # all of it was seen before
            self.retransmitted_bytes += len(payload)
            return
        if start < nxt:  # the front was seen before: first copy wins
            self.retransmitted_bytes += nxt - start
            payload = payload[nxt - start :]
            start = nxt
        if start == nxt and (not self._held or self._held[0][0] >= end):
            # The common case: the next bytes, nothing held in their way.
            out.append(Chunk(payload, start, packet_no, time, packet_no))
            self._next = end
            self.delivered_bytes += len(payload)
            if self._held:
                self._drain(packet_no, out)
            return
        self._hold(start, end, payload, packet_no, time)
        if self._held and self._held[0][0] <= self._next:
            self._drain(packet_no, out)
        if self._held_bytes > self.max_buffered:
            # Too much is waiting for a hole that may never be filled: give it up.
            while self._held_bytes > self.max_buffered // 2 and self._held:
                first = self._held[0][0]
                if first > self._next:
                    self._gap(
                        first - self._next,
                        packet_no,
                        f"given up: more than {self.max_buffered} bytes waited behind it",
                        out,
                    )
                self._drain(packet_no, out)

    def _accept_missing(self, start: int, size: int, packet_no: int, out: list) -> None:
        """Bytes the segment carried but the capture did not keep: a known hole."""
        if start + size <= self._next:
            return
        if start < self._next:
            size -= self._next - start
            start = self._next
        if start == self._next and not self._held:
            self._gap(size, packet_no, "cut off by the capture's snap length", out)
        # Otherwise the hole will be found and reported when the data around it arrives.

    def _hold(self, start: int, end: int, payload: bytes, packet_no: int, time: float) -> None:
        """Keep an early piece, cut down to the bytes no earlier copy holds."""
        held = self._held
        index = bisect_left(held, (start,))
        if index > 0 and held[index - 1][1] > start:
            index -= 1
        cursor = start
        pieces: list[_Held] = []
        while cursor < end:
            if index < len(held) and held[index][0] < end:
                h_start, h_end, h_data, _, _ = held[index]
                if h_start > cursor:
                    pieces.append(
                        (
                            cursor,
                            h_start,
                            payload[cursor - start : h_start - start],
                            packet_no,
                            time,
                        )
                    )
                overlap_from, overlap_to = max(cursor, h_start), min(end, h_end)
                if overlap_to > overlap_from:
                    self.retransmitted_bytes += overlap_to - overlap_from
                    if (
                        payload[overlap_from - start : overlap_to - start]
                        != h_data[overlap_from - h_start : overlap_to - h_start]
                    ):
                        self.conflicts += 1
                cursor = max(cursor, h_end)
                index += 1
            else:
                pieces.append(
                    (
                        cursor,
                        end,
                        payload if cursor == start else payload[cursor - start :],
                        packet_no,
                        time,
                    )
                )
                cursor = end
        for piece in pieces:
            insort(held, piece)
            self._held_bytes += piece[1] - piece[0]

    def _drain(self, delivered_at: int, out: list) -> None:
        """Deliver held pieces that now follow the delivered bytes."""
        held = self._held
        while held and held[0][0] <= self._next:
            start, end, data, packet_no, time = held.pop(0)
            self._held_bytes -= end - start
            if end <= self._next:
                self.retransmitted_bytes += end - start
                continue
            if start < self._next:
                self.retransmitted_bytes += self._next - start
                data = data[self._next - start :]
                start = self._next
            out.append(Chunk(data, start, packet_no, time, delivered_at))
            self._next = end
            self.delivered_bytes += end - start

    def _gap(self, size: int, packet_no: int, reason: str, out: list) -> None:
        out.append(Gap(self._next, size, packet_no, reason))
        self._next += size
        self.gaps += 1

    def _check_fin(self) -> None:
        if self._fin is not None and self._next >= self._fin and not self._held:
            self.finished = True

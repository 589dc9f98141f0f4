"""TCP reassembly: order, duplicates, overlaps, gaps, wrap-around, bounded memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osilab.streams.reassembly import SEQ_MODULUS, Chunk, Gap, StreamReassembler, seq_diff

SYN, ACK, FIN = 0x02, 0x10, 0x01


def _run(segments, isn, *, syn=True, finish=True, max_buffered=None):
    r = StreamReassembler(max_buffered) if max_buffered else StreamReassembler()
    out = []
    if syn:
        out += r.segment(isn, SYN, b"", 0, 0.0)
    for no, (offset, data) in enumerate(segments, start=1):
        out += r.segment((isn + 1 + offset) % SEQ_MODULUS, ACK, data, no, float(no))
    if finish:
        out += r.finish()
    return r, out


def _bytes(items):
    return b"".join(i.data for i in items if isinstance(i, Chunk))


@st.composite
def stream_and_segments(draw):
    data = draw(st.binary(min_size=1, max_size=300))
    cuts = (
        sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=12))))
        if len(data) > 1
        else []
    )
    bounds = [0, *cuts, len(data)]
    pieces = [(a, data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    # duplicates and overlapping re-segmentations of the same bytes
    extra = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 40)), max_size=6))
    pieces += [(a, data[a : a + n]) for a, n in extra]
    order = draw(st.permutations(pieces))
    isn = draw(st.sampled_from([0, 1000, SEQ_MODULUS - 1, SEQ_MODULUS - 50, 2**31]))
    return data, list(order), isn


@settings(max_examples=300, deadline=None)
@given(stream_and_segments())
def test_any_order_duplication_and_resegmentation_gives_the_same_bytes(case):
    data, segments, isn = case
    r, out = _run(segments, isn)
    assert _bytes(out) == data
    assert not [i for i in out if isinstance(i, Gap)]
    offsets = [i.offset for i in out if isinstance(i, Chunk)]
    assert offsets == sorted(offsets)  # delivered strictly in stream order
    assert r.buffered_bytes == 0


@settings(max_examples=200, deadline=None)
@given(stream_and_segments(), st.data())
def test_a_missing_piece_is_reported_as_a_gap_never_filled(case, draw):
    data, segments, isn = case
    if len(data) < 3:
        return
    hole_start = draw.draw(st.integers(1, len(data) - 2))
    hole_end = draw.draw(st.integers(hole_start + 1, len(data) - 1))
    # Keep only bytes outside the hole (cut every segment around it).
    kept = []
    for offset, piece in segments:
        end = offset + len(piece)
        if offset < hole_start:
            kept.append((offset, piece[: max(0, min(end, hole_start) - offset)]))
        if end > hole_end:
            start = max(offset, hole_end)
            kept.append((start, piece[start - offset :]))
    kept = [(o, p) for o, p in kept if p]
    _, out = _run(kept, isn)
    gaps = [i for i in out if isinstance(i, Gap)]
    assert sum(g.size for g in gaps) == hole_end - hole_start
    assert gaps[0].offset == hole_start
    assert _bytes(out) == data[:hole_start] + data[hole_end:]


@pytest.mark.parametrize(
    ("isn", "segments", "expected", "retransmitted"),
    [
        # in order
        (100, [(0, b"abc"), (3, b"def")], b"abcdef", 0),
        # retransmission: the first copy wins even when the bytes differ
        (100, [(0, b"abc"), (0, b"XYZ"), (3, b"def")], b"abcdef", 3),
        # overlap at the front of a later segment
        (100, [(0, b"abcd"), (2, b"CDEF")], b"abcdEF", 2),
        # out of order, then the hole is filled
        (100, [(3, b"def"), (0, b"abc")], b"abcdef", 0),
        # early pieces overlap each other: the earlier arrival keeps its bytes
        (100, [(4, b"ef"), (3, b"DEFG"), (0, b"abc")], b"abcDefG", 2),
        # sequence numbers wrap around 2**32 in the middle of the stream
        (SEQ_MODULUS - 3, [(0, b"ab"), (2, b"cd"), (4, b"ef")], b"abcdef", 0),
    ],
)
def test_reassembly_cases(isn, segments, expected, retransmitted):
    r, out = _run(segments, isn)
    assert _bytes(out) == expected
    assert r.retransmitted_bytes == retransmitted


def test_chunks_keep_the_packet_that_carried_them_and_the_one_that_delivered_them():
    _, out = _run([(3, b"def"), (0, b"abc")], 7, finish=False)
    assert [(c.data, c.packet_no, c.delivered_at) for c in out] == [(b"abc", 2, 2), (b"def", 1, 2)]


def test_syn_and_fin_take_one_sequence_number_each():
    r = StreamReassembler()
    r.segment(500, SYN, b"", 1, 0.0)
    out = r.segment(501, ACK | FIN, b"hi", 2, 0.0)  # data then FIN at 503
    assert _bytes(out) == b"hi" and r.finished
    assert r.segment(503, ACK, b"late", 3, 0.0) == []  # nothing after the FIN


def test_a_capture_that_starts_mid_stream_starts_at_the_first_segment():
    r, out = _run([(10, b"hello"), (15, b" world"), (0, b"old")], 4000, syn=False)
    assert _bytes(out) == b"hello world"
    assert r.retransmitted_bytes == 3  # bytes before the start are taken for retransmissions


def test_a_hole_before_a_fin_is_a_gap():
    r = StreamReassembler()
    r.segment(0, SYN, b"", 1, 0.0)
    r.segment(1, ACK, b"abc", 2, 0.0)
    r.segment(10, ACK | FIN, b"", 3, 0.0)
    out = r.finish(9)
    assert [(g.offset, g.size) for g in out if isinstance(g, Gap)] == [(3, 6)]


def test_the_out_of_order_buffer_is_bounded_and_gives_up_with_a_gap():
    segments = [(100 + 10 * i, bytes(10)) for i in range(20)]  # 200 early bytes, hole at 0..100
    r, out = _run(segments, 0, finish=False, max_buffered=64)
    gaps = [i for i in out if isinstance(i, Gap)]
    assert gaps and gaps[0].offset == 0 and gaps[0].size == 100
    assert r.buffered_bytes <= 64
    assert "given up" in gaps[0].reason


def test_bytes_cut_by_the_snap_length_are_a_gap():
    r = StreamReassembler()
    r.segment(0, SYN, b"", 1, 0.0)
    out = r.segment(1, ACK, b"ab", 2, 0.0, missing=8)
    out += r.segment(11, ACK, b"cd", 3, 0.0)
    assert [type(i).__name__ for i in out] == ["Chunk", "Gap", "Chunk"]
    assert out[1].size == 8


@given(st.integers(0, SEQ_MODULUS - 1), st.integers(-(2**31), 2**31 - 1))
def test_seq_diff_is_signed_modulo_two_to_the_32(base, delta):
    assert seq_diff((base + delta) % SEQ_MODULUS, base) == delta

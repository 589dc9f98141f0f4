"""Issue 14, item 3: a RST ends a connection only when its sequence number is acceptable.

RFC 9293 §3.10.7.3 (with RFC 5961 §3.2): "If the RST bit is set and the sequence number
exactly matches the next expected sequence number (RCV.NXT), then TCP endpoints MUST reset
the connection"; one in the window but inexact draws a challenge ACK, one outside it is
dropped. Either way the connection goes on, and data the peer goes on acknowledging is
still data. osilab's pipeline uses the full (exact) check; the reassembler also offers the
RFC 793 window rule.

tshark is the oracle for the data: it dissects every segment whatever the RSTs (it follows
no connection state), so where osilab keeps reading it must find tshark's requests; where
a RST is acceptable, a receiver drops what follows (RFC 9293 §3.10.7.3, "all segment
queues should be flushed") and osilab stops there while tshark does not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tcp_capture import Conversation

import osilab
from osilab.pipeline import iter_http, track
from osilab.protocols import AppMessage, Direction
from osilab.protocols.messages import HttpRequest
from osilab.streams.reassembly import StreamReassembler
from osilab.streams.tcp import TRANSITIONS, TcpInput, TcpState

ISN = 1000


def _stream(*, data: bytes = b"hello", fin: bool = False, syn: bool = True) -> StreamReassembler:
    stream = StreamReassembler()
    if syn:
        stream.segment(ISN, 0x02, b"", 1, 0.0)
    if data:
        stream.segment(ISN + 1, 0x18, data, 2, 0.1)
    if fin:
        stream.segment(ISN + 1 + len(data), 0x11, b"", 3, 0.2)
    return stream


RESETS = [
    # (name, stream, RST sequence number, window (None: the exact check), acceptable)
    ("exactly RCV.NXT", _stream(), ISN + 6, None, True),
    ("one past RCV.NXT, exact check", _stream(), ISN + 7, None, False),
    ("one past RCV.NXT, in a 64 KiB window", _stream(), ISN + 7, 65535, True),
    ("behind RCV.NXT", _stream(), ISN + 1, 65535, False),
    ("far outside the window", _stream(), ISN + 6 + 70000, 65535, False),
    ("after the FIN, which takes a number", _stream(fin=True), ISN + 7, None, True),
    ("at the FIN's own number", _stream(fin=True), ISN + 6, None, False),
    ("across the 2**32 wrap", None, 2, None, True),
    ("nothing known yet (a RST answering a SYN)", StreamReassembler(), 0, None, True),
    ("no data yet: RCV.NXT is ISN + 1", _stream(data=b""), ISN + 1, None, True),
]


@pytest.mark.parametrize(("name", "stream", "seq", "window", "acceptable"), RESETS,
                         ids=[r[0] for r in RESETS])  # fmt: skip
def test_reset_acceptable(
    name: str, stream: StreamReassembler | None, seq: int, window: int | None, acceptable: bool
) -> None:
    if stream is None:  # ISN 2**32 - 4: "hello" is 2**32 - 3 .. 1 across the wrap; RCV.NXT 2
        stream = StreamReassembler()
        stream.segment(2**32 - 4, 0x02, b"", 1, 0.0)
        stream.segment(2**32 - 3, 0x18, b"hello", 2, 0.1)
    assert stream.reset_acceptable(seq, window) is acceptable


def test_an_ignored_reset_changes_no_state() -> None:
    for state in TcpState:
        assert TRANSITIONS[(state, TcpInput.IGNORED_RST)] is state


GET_A = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
GET_B = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

CONNECTIONS = [
    # (name, the RST: (side, offset past its RCV.NXT), requests osilab reads, final state)
    ("RST far out of window from the client", ("client", 5000), ["/a", "/b"], "established"),
    ("RST in window, inexact (challenge ACK)", ("client", 10), ["/a", "/b"], "established"),
    ("RST behind RCV.NXT (an old one)", ("client", -len(GET_A)), ["/a", "/b"], "established"),
    ("RST from the server, out of window", ("server", 100_000), ["/a", "/b"], "established"),
    ("RST exactly at RCV.NXT from the client", ("client", 0), ["/a"], "reset"),
    ("RST exactly at RCV.NXT from the server", ("server", 0), ["/a"], "reset"),
]


def _capture(tmp_path: Path, side: str, offset: int) -> Path:
    conv = Conversation().handshake()
    conv.send("client", GET_A).send("server", OK)
    conv.rst(side, seq_offset=offset)
    conv.send("client", GET_B).send("server", OK)  # the peer goes on: it acknowledges /b
    return conv.write(tmp_path / "rst.pcap")


@pytest.mark.parametrize(("name", "rst", "targets", "state"), CONNECTIONS,
                         ids=[c[0] for c in CONNECTIONS])  # fmt: skip
def test_data_after_a_reset_that_is_not_acceptable(
    tmp_path: Path, name: str, rst: tuple[str, int], targets: list[str], state: str
) -> None:
    path = _capture(tmp_path, *rst)
    requests = [m.target for m in iter_http(osilab.read(path)) if isinstance(m, HttpRequest)]
    assert requests == targets
    records = [record for step in track(osilab.read(path)) for record in step.ended]
    assert [record.state for record in records] == [state]


@pytest.mark.parametrize(("name", "rst", "targets", "state"), CONNECTIONS,
                         ids=[c[0] for c in CONNECTIONS])  # fmt: skip
def test_tshark_reads_the_same_data_where_the_reset_ended_nothing(
    tmp_path: Path, tshark: str, name: str, rst: tuple[str, int], targets: list[str], state: str
) -> None:
    path = _capture(tmp_path, *rst)
    out = subprocess.run(
        # Without its sequence analysis: with it, tshark takes the RST's number (a bare
        # RST moves nothing, RFC 9293 §3.10.7.3) as the stream's new front and calls /b,
        # sent at RCV.NXT, "Out-Of-Order", so its reassembly skips it. The bytes say /b
        # is the next data.
        [tshark, "-n", "-r", str(path), "-o", "tcp.analyze_sequence_numbers:FALSE",
         "-Y", "http.request", "-T", "fields", "-e", "http.request.uri"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    if state == "reset":
        # An acceptable RST flushes the receiver's queues: a server never reads /b. tshark
        # follows no connection state and shows it; osilab, as the receiver, does not.
        assert out == ["/a", "/b"] and targets == ["/a"]
    else:
        assert out == targets


class _ReusingParser:
    """A parser that returns one list of its own each time (cleared, then filled): the
    StreamParser contract does not forbid it."""

    protocol = "demo"

    def __init__(self) -> None:
        self._out: list[AppMessage] = []

    def _give(self, summary: str) -> list[AppMessage]:
        self._out.clear()
        self._out.append(AppMessage("demo", Direction.TO_SERVER, 0, 0, 0, summary))
        return self._out

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        return self._give(f"feed {bytes(data)!r}")

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        return self._give("gap")

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        return self._give(f"end {direction.name}")

    def close(self) -> list[AppMessage]:
        return self._give("close")


def test_a_reset_with_data_keeps_what_a_list_reusing_parser_said(monkeypatch) -> None:
    """A RST carrying the next bytes goes to the parser, then closes the flow; the
    messages of both survive, in order, even from a parser that reuses its output list
    (closing it again must not overwrite what its feed returned)."""
    from osilab.pipeline import dispatch
    from osilab.pipeline.tracker import _Tracker

    monkeypatch.setattr(dispatch, "new_parser", lambda name, flow, **kw: _ReusingParser())
    tracker = _Tracker(None)
    client, server = ("10.0.0.1", 4000), ("10.0.0.2", 9000)

    def segment(src: tuple, dst: tuple, flags: int, seq: int, data: bytes, no: int) -> list[str]:
        facts = ("tcp", *src, *dst, flags, len(data), seq, data)
        return [m.message.summary for m in tracker.advance(facts, no, float(no), 54 + len(data), 0)[3]]

    segment(client, server, 0x02, 100, b"", 1)
    segment(server, client, 0x12, 500, b"", 2)
    segment(client, server, 0x10, 101, b"", 3)
    assert segment(client, server, 0x18, 101, b"one\n", 4) == ["feed b'one\\n'"]
    assert segment(client, server, 0x1C, 105, b"two", 5) == [
        "feed b'two'", "end TO_SERVER", "end TO_CLIENT", "close"]

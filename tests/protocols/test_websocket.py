"""WebSocket (RFC 6455) frames, messages and the handshake, on the RFCs' own examples.

The byte strings of the first table are RFC 6455 §5.7's examples, copied from the RFC (the
256-byte and 64 KiB ones are its headers with a payload of that size); those of the
deflate table are RFC 7692 §7.2.3's. Each is fed whole and one byte per "packet", which
must give the same frames, with the first and last packet of each.
"""

from __future__ import annotations

import pytest

from osilab.protocols import Direction
from osilab.protocols.websocket import (
    MAX_KEPT,
    WebSocketParser,
    accept_for,
    encode_frame,
    handshake,
    read_frame_header,
)

C, S = Direction.TO_SERVER, Direction.TO_CLIENT  # client frames are masked, server frames not
_256 = bytes(range(256))
_64K = bytes(i % 251 for i in range(65536))

#: RFC 6455 §5.7: (case, direction, wire bytes, [(opcode, fin, mask, payload length)...],
#: [(message opcode, data, frames)...]).
RFC6455 = [
    ("hello unmasked", S, bytes.fromhex("810548656c6c6f"), [(1, True, False, 5)], [(1, b"Hello", 1)]),
    ("hello masked", C, bytes.fromhex("818537fa213d7f9f4d5158"), [(1, True, True, 5)], [(1, b"Hello", 1)]),
    ("fragmented", S, bytes.fromhex("010348656c" "80026c6f"),
     [(1, False, False, 3), (0, True, False, 2)], [(1, b"Hello", 2)]),
    ("ping unmasked", S, bytes.fromhex("890548656c6c6f"), [(9, True, False, 5)], [(9, b"Hello", 1)]),
    ("pong masked", C, bytes.fromhex("8a8537fa213d7f9f4d5158"), [(10, True, True, 5)], [(10, b"Hello", 1)]),
    ("256 bytes, 16-bit length", S, bytes.fromhex("827e0100") + _256, [(2, True, False, 256)], [(2, _256, 1)]),
    ("64 KiB, 64-bit length", S, bytes.fromhex("827f0000000000010000") + _64K,
     [(2, True, False, 65536)], [(2, _64K, 1)]),
    ("close 1000 with a reason", C, encode_frame(b"\x03\xe8bye", 0x8, mask=b"\x01\x02\x03\x04"),
     [(8, True, True, 5)], [(8, b"\x03\xe8bye", 1)]),
    ("ping between two fragments", S, bytes.fromhex("010348656c" "8900" "80026c6f"),
     [(1, False, False, 3), (9, True, False, 0), (0, True, False, 2)], [(9, b"", 1), (1, b"Hello", 2)]),
]  # fmt: skip


def _run(parser: WebSocketParser, direction: Direction, data: bytes, per_byte: bool):
    chunks = [data[i : i + 1] for i in range(len(data))] if per_byte else [data]
    out = []
    for no, chunk in enumerate(chunks, start=1):
        out += parser.feed(direction, chunk, no, float(no))
    return out


@pytest.mark.parametrize("per_byte", [False, True], ids=["whole", "byte-per-packet"])
@pytest.mark.parametrize(("case", "direction", "wire", "frames", "messages"), RFC6455, ids=[r[0] for r in RFC6455])
def test_rfc6455_examples(case, direction, wire, frames, messages, per_byte):
    found = _run(WebSocketParser(), direction, wire, per_byte)
    got_frames = [m.message for m in found if m.fields["stage"] == "frame"]
    assert [(f.opcode, f.fin, f.masked, f.payload_length) for f in got_frames] == frames
    assert all(m.damaged is None for m in found), [m.damaged for m in found]
    got = [m.message for m in found if m.fields["stage"] == "message"]
    assert [(m.opcode, m.data, m.frames) for m in got] == messages
    assert sum(m.length for m in found if m.fields["stage"] == "frame") == len(wire)
    if per_byte:  # the last frame ends in the last byte's packet, the first starts in packet 1
        frame_messages = [m for m in found if m.fields["stage"] == "frame"]
        assert frame_messages[0].first_packet == 1 and frame_messages[-1].last_packet == len(wire)


def test_the_close_frame_says_its_code_and_reason():
    [frame, message] = WebSocketParser().feed(C, encode_frame(b"\x03\xe8bye", 0x8, mask=b"abcd"), 3, 0.0)
    assert (frame.fields["payload.close.status_code"], frame.fields["payload.close.reason"]) == (1000, "bye")
    assert (message.message.close_code, message.message.close_reason) == (1000, "bye")
    assert "1000 normal closure 'bye'" in frame.summary


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (bytes.fromhex("810548656c6c6f"), (True, 0, 1, False, 5, 7, None, 2)),
        (bytes.fromhex("8105"), (True, 0, 1, False, 5, 7, None, 2)),  # payload not needed
        (bytes.fromhex("81"), None),  # the second byte is missing
        (bytes.fromhex("827e01"), None),  # half a 16-bit length
        (bytes.fromhex("82ff00000000000100003132"), None),  # masked: the key is cut
        (bytes.fromhex("82ff000000000001000031323334"), (True, 0, 2, True, 65536, 64, b"1234", 14)),
    ],
)
def test_frame_headers(wire, expected):
    assert read_frame_header(wire) == expected


@pytest.mark.parametrize(
    ("direction", "wire", "problem"),
    [
        (S, bytes.fromhex("830100"), "reserved opcode 0x3"),
        (S, bytes.fromhex("c10100"), "RSV bits 0x4"),  # no permessage-deflate negotiated
        (S, bytes.fromhex("090100"), "control frame must have FIN"),
        (S, bytes.fromhex("897e007e") + bytes(126), "control frame must have FIN and at most 125"),
        (S, bytes.fromhex("827e0005") + b"Hello", "fewest bytes"),
        (S, bytes.fromhex("818537fa213d7f9f4d5158"), "server frames must not be masked"),
        (C, bytes.fromhex("810548656c6c6f"), "client frames must be masked"),
        (S, bytes.fromhex("800548656c6c6f"), "continuation frame with no message"),
    ],
)
def test_broken_frames_are_shown_with_the_rule_they_break(direction, wire, problem):
    [frame, *_] = WebSocketParser().feed(direction, wire, 1, 0.0)
    assert frame.damaged is not None and problem in frame.damaged


_HELLO_KEY = (("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ((("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),), True),  # RFC 6455 §1.3
        ((("Sec-WebSocket-Accept", "dGhlIHNhbXBsZSBub25jZQ=="),), False),  # echoing the key
        ((), None),  # no accept at all: not checked
    ],
)
def test_the_accept_is_checked(response, expected):
    assert handshake(_HELLO_KEY, response).accept_ok is expected


def test_the_handshake_reads_subprotocol_and_extensions():
    shake = handshake(
        _HELLO_KEY + (("Sec-WebSocket-Protocol", "chat, superchat"),
                      ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")),
        (("Sec-WebSocket-Accept", accept_for("dGhlIHNhbXBsZSBub25jZQ==")),
         ("Sec-WebSocket-Protocol", "chat"),
         ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")),
    )  # fmt: skip
    assert shake.offered_protocols == ("chat", "superchat") and shake.protocol == "chat"
    assert shake.deflate and shake.server_no_context_takeover and not shake.client_no_context_takeover


_DEFLATE = handshake(_HELLO_KEY, (("Sec-WebSocket-Extensions", "permessage-deflate"),))
_FRESH = handshake(_HELLO_KEY, (("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover"),))

#: RFC 7692 §7.2.3: (case, handshake, wire bytes, messages' (data, inflated, frames)).
RFC7692 = [
    ("one compressed message", _DEFLATE, bytes.fromhex("c107f248cdc9c90700"), [(b"Hello", True, 1)]),
    ("compressed in two fragments", _DEFLATE, bytes.fromhex("4103f248cd" "8004c9c90700"), [(b"Hello", True, 2)]),
    ("context takeover: the second Hello refers back to the first", _DEFLATE,
     bytes.fromhex("c107f248cdc9c90700" "c105f200110000"), [(b"Hello", True, 1), (b"Hello", True, 1)]),
    ("not compressed (RSV1 clear) beside compressed", _DEFLATE,
     bytes.fromhex("810548656c6c6f" "c107f248cdc9c90700"), [(b"Hello", None, 1), (b"Hello", True, 1)]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "shake", "wire", "expected"), RFC7692, ids=[r[0] for r in RFC7692])
def test_permessage_deflate_is_inflated(case, shake, wire, expected):
    found = WebSocketParser(shake=shake).feed(S, wire, 1, 0.0)
    got = [m.message for m in found if m.fields["stage"] == "message"]
    assert [(m.data, m.inflated, m.frames) for m in got] == expected
    assert all(m.damaged is None for m in found)


def test_no_context_takeover_breaks_a_message_that_needs_the_old_window():
    """With server_no_context_takeover the server may not refer back: the RFC's second
    Hello (which does) cannot be inflated, and the message says so instead of guessing."""
    found = WebSocketParser(shake=_FRESH).feed(S, bytes.fromhex("c107f248cdc9c90700" "c105f200110000"), 1, 0.0)
    first, second = [m.message for m in found if m.fields["stage"] == "message"]
    assert first.inflated and first.data == b"Hello"
    assert second.inflated is False and "inflating failed" in second.note


def test_without_the_handshake_compressed_data_is_noted_not_inflated():
    [_, message] = WebSocketParser().feed(S, bytes.fromhex("c107f248cdc9c90700"), 1, 0.0)
    # no handshake: RSV1 is not known to mean deflate, so the frame breaks §5.2
    assert message.message.compressed is False and message.message.data == bytes.fromhex("f248cdc9c90700")


def test_a_gap_stops_framing_that_direction_only():
    parser = WebSocketParser()
    assert parser.feed(S, bytes.fromhex("810548"), 1, 0.0) == []
    [lost] = parser.gap(S, 100, 2)
    assert lost.damaged and "cannot be found" in lost.damaged
    assert parser.feed(S, bytes.fromhex("810548656c6c6f"), 3, 0.0) == []
    assert [m.fields["stage"] for m in parser.feed(C, bytes.fromhex("818537fa213d7f9f4d5158"), 4, 0.0)] == ["frame", "message"]


def test_memory_is_bounded_for_a_huge_frame():
    parser = WebSocketParser()
    size = MAX_KEPT + 5000
    head = bytes.fromhex("827f") + size.to_bytes(8, "big")
    out = parser.feed(S, head, 1, 0.0)
    chunk = bytes(65536)
    no, sent = 2, 0
    while sent < size:
        piece = chunk[: size - sent]
        out += parser.feed(S, piece, no, 0.0)
        sent += len(piece)
        no += 1
    frame, message = out
    assert frame.message.payload_length == size and len(frame.message.payload) == MAX_KEPT
    assert message.message.length == size and "only the first" in message.message.note


def test_osilab_websocket_lists_the_messages_of_a_real_capture(thirdparty, capsys):
    """zeek's Jupyter capture: the 101 and its accept, 12 binary messages and a Close each way
    (tshark counts the same 14 frames: tests/protocols/test_websocket_vs_tshark.py)."""
    import json

    from osilab.cli import main

    path = thirdparty / "zeek/websocket-jupyter-behind-proxy.pcap"
    assert main(["websocket", str(path), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["binary"] * 12 + ["close", "close"]
    assert [r["direction"] for r in rows[:2]] == ["to_server", "to_client"]
    assert {r["accept_ok"] for r in rows} == {True}
    assert {r["subprotocol"] for r in rows} == {"v1.kernel.websocket.jupyter.org"}
    assert (rows[0]["first_packet"], rows[0]["length"], rows[-1]["last_packet"]) == (8, 262, 17)
    assert main(["http", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == 101  # was null before issue 19

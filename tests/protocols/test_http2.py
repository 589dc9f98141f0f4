"""HTTP/2: prior knowledge, CONTINUATION, gRPC, and the frame splitter."""

from __future__ import annotations

import osilab
from osilab.pipeline import iter_http
from osilab.protocols import Direction
from osilab.protocols.http2 import PREFACE, FrameSplitter, Http2Parser
from osilab.protocols.messages import HttpRequest, HttpResponse


def _rows(path):
    return [
        (
            type(m).__name__,
            m.stream_id,
            getattr(m, "method", None),
            getattr(m, "target", None),
            getattr(m, "status", None),
        )
        for m in iter_http(osilab.read(path))
    ]


def test_prior_knowledge_with_continuation_frames(thirdparty):
    path = thirdparty / "suricata-verify/http2-continuation-null-loopback.pcap"
    messages = list(iter_http(osilab.read(path)))
    [request] = [m for m in messages if isinstance(m, HttpRequest)]
    assert (request.method, request.target, request.host, request.stream_id) == (
        "GET",
        "/tata",
        "127.0.0.1:8080",
        1,
    )
    # The header block starts in one packet and is completed by CONTINUATION frames later.
    assert request.first_packet < request.headers_complete_packet
    assert [m.status for m in messages if isinstance(m, HttpResponse)] == [200]


def test_grpc_server_streaming(thirdparty):
    rows = _rows(thirdparty / "packt-grpc-go/grpc-server-streaming.pcapng")
    assert rows[0][:4] == ("HttpRequest", 1, "POST", rows[0][3])
    assert rows[0][3].startswith("/") and rows[-1][0] == "HttpResponse" and rows[-1][4] == 200


def test_prior_knowledge_on_an_unusual_port(thirdparty):
    rows = _rows(thirdparty / "ndpi/http2-prior-knowledge-sll.pcapng")
    assert rows == [
        ("HttpRequest", 3, "POST", "/namf-comm/v1/subscriptions", None),
        ("HttpResponse", 3, None, None, 201),
    ]


def test_frames_split_anywhere_give_the_same_frames():
    settings = bytes.fromhex("000006040000000000") + bytes.fromhex("000100010000")
    ping = bytes.fromhex("000008060000000000") + bytes(8)
    wire = PREFACE + settings + ping
    for cut in range(1, len(wire)):
        splitter = FrameSplitter(expect_preface=True)
        frames = splitter.feed(wire[:cut], 1) + splitter.feed(wire[cut:], 2)
        assert [f.type for f in frames] == [-1, 4, 6]


def test_a_gap_marks_the_direction_damaged():
    parser = Http2Parser()
    parser.feed(Direction.TO_SERVER, PREFACE, 1, 0.0)
    parser.gap(Direction.TO_SERVER, 100, 2)
    [message] = parser.feed(Direction.TO_SERVER, bytes.fromhex("000000040100000000"), 3, 0.0)
    assert message.damaged and "never captured" in message.damaged

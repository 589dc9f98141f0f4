"""The stream pipeline: annotate (stream-aware layers), conversations, follow, fragments."""

from __future__ import annotations

import osilab
from osilab.pipeline import annotate, conversations, follow, track
from osilab.protocols import Direction
from osilab.streams import Chunk, Gap


def test_a_request_split_over_segments_appears_in_the_segment_that_completes_it(thirdparty):
    path = thirdparty / "zeek/http-multipart-form-data.pcap"
    packets = list(annotate(osilab.read(path)))
    assert [p.no for p in packets] == [p.no for p in osilab.read(path)]  # same packets, same order
    with_http = [(p.no, p["http"]) for p in packets if "http" in p]
    request = next(layer for no, layer in with_http if layer.get("request"))
    [(no, _)] = [(no, layer) for no, layer in with_http if layer is request]
    assert no == 6  # tshark shows the POST in frame 6, where its body completes
    assert request["first_packet"] == 4
    assert request.length == request["reassembled_length"] > len(packets[5].payload)
    assert "reassembled: packets 4-6" in request.summary
    assert "http" not in packets[3]  # the first segment no longer claims to be the message


def test_the_completing_fragment_carries_the_transport_layer(thirdparty):
    packets = list(annotate(osilab.read(thirdparty / "chrissanders-packets/ip_frag_source.pcapng")))
    assert [p.names() for p in packets][:3] == [
        ["eth", "ip", "data"],
        ["eth", "ip", "data"],
        ["eth", "ip", "icmp", "data"],  # the echo's own payload, as tshark's icmp:data
    ]
    assert "reassembled from IP fragments, 3508 bytes" in packets[2]["icmp"].summary


def test_every_message_knows_its_flow_and_packets(thirdparty):
    messages = list(
        conversations(osilab.read(thirdparty / "suricata-verify/http-keepalive-chunked.pcap"))
    )
    assert messages and all(m.message.first_packet <= m.message.last_packet for m in messages)
    assert {str(m.flow) for m in messages} == {"192.168.3.131:55954-65.55.17.37:80"}


def test_steps_account_every_packet_and_end_every_flow(thirdparty):
    path = thirdparty / "dpkt/http-ethereal-keepalive.pcap"
    steps = list(track(osilab.read(path)))
    assert steps[-1].packet is None
    assert len(steps) - 1 == sum(1 for _ in osilab.read(path))
    ended = [record for step in steps for record in step.ended]
    assert sorted(r.index for r in ended) == list(range(len(ended)))


def test_follow_gives_the_bytes_of_both_directions_and_marks_gaps(thirdparty):
    pieces = list(follow(osilab.read(thirdparty / "zeek/http-post.pcap"), 0))
    client = b"".join(
        p.item.data
        for p in pieces
        if p.direction is Direction.TO_SERVER and isinstance(p.item, Chunk)
    )
    assert client.startswith(b"POST /post HTTP/1.1\r\n") and client.endswith(b"hello world")
    same = list(
        follow(
            osilab.read(thirdparty / "zeek/http-post.pcap"), "141.142.228.5:53595-54.243.55.129:80"
        )
    )
    assert [p.item for p in same] == [p.item for p in pieces]
    truncated = list(follow(osilab.read(thirdparty / "zeek/tcp-snaplen-truncated.pcap"), 0))
    assert truncated and all(isinstance(p.item, Gap) for p in truncated)

"""Choosing a flow's parser: content first, port second; PROXY prefixes; TLS plaintext."""

from __future__ import annotations

import inspect
from types import MappingProxyType

import pytest

from osilab.pipeline import dispatch
from osilab.pipeline.dispatch import FlowParser, proxy_header_length, sniff
from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import Endpoint, FlowKey

FLOW = FlowKey("tcp", Endpoint("198.51.100.7", 51514), Endpoint("203.0.113.10", 8080))


@pytest.mark.parametrize(
    ("first_bytes", "port", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", 22, "http"),  # content beats the port
        (b"HTTP/1.1 200 OK\r\n", 9999, "http"),  # capture started with a response
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 50051, "http2"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 443, "tls"),
        (b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n", 80, "proxy"),
        (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c", 80, "proxy"),
        (b"*1\r\n$4\r\nPING\r\n", 6379, "resp"),
        (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", 5432, "pgsql"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", 22, "raw"),
    ],
)
def test_sniff(first_bytes, port, expected):
    assert sniff(first_bytes, port) == expected


def test_proxy_header_lengths():
    assert proxy_header_length(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET") == 36
    assert proxy_header_length(b"PROXY TCP4 192.0.2.1") is None
    assert proxy_header_length(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes(12)) == 28


def test_a_proxy_header_then_http():
    parser = FlowParser(FLOW)
    wire = b"PROXY TCP4 192.0.2.1 203.0.113.10 40000 80\r\nGET /a HTTP/1.1\r\nHost: shop.example\r\n\r\n"
    messages = parser.feed(Direction.TO_SERVER, wire, 4, 0.0)
    assert [(m.protocol, m.fields.get("stage")) for m in messages][:2] == [
        ("proxy", "complete"),
        ("http", "headers"),
    ]
    assert messages[1].message.host == "shop.example" and parser.protocol == "http"


def test_short_first_segments_wait_for_enough_bytes():
    parser = FlowParser(FLOW)
    assert parser.feed(Direction.TO_SERVER, b"GE", 4, 0.0) == []
    assert parser.protocol is None
    messages = parser.feed(Direction.TO_SERVER, b"T / HTTP/1.1\r\nHost: a\r\n\r\n", 5, 0.0)
    assert (
        messages[0].message.first_packet == 4 and messages[0].message.headers_complete_packet == 5
    )


class _FakeTls:
    """Stands in for osilab.protocols.tls: hands out 'decrypted' bytes per the contract."""

    protocol = "tls"

    def __init__(self, flow, *, keylog=None):
        self.keylog = keylog

    def feed(self, direction, data, packet_no, time):
        plaintext = data[5:]  # pretend the record body is the plaintext
        return [
            AppMessage(
                "tls",
                direction,
                packet_no,
                packet_no,
                len(data),
                "application data",
                {"plaintext": plaintext, "alpn": "http/1.1"},
                time,
            )
        ]

    def gap(self, direction, size, packet_no):
        return []

    def close(self):
        return []


def test_tls_plaintext_goes_to_an_inner_http_parser(monkeypatch):
    monkeypatch.setattr(dispatch, "PARSERS", MappingProxyType({**dispatch.PARSERS, "tls": _FakeTls}))
    parser = FlowParser(FLOW, keylog="keys.txt")
    record = b"\x17\x03\x03\x00\x20" + b"GET /secret HTTP/1.1\r\nHost: a\r\n\r\n"
    messages = parser.feed(Direction.TO_SERVER, record, 7, 0.0)
    assert [m.protocol for m in messages] == ["tls", "http", "http"]
    assert messages[1].message.target == "/secret" and parser.parser.keylog == "keys.txt"


class Broken:
    """A parser whose every feed raises: a bug the capture must not be lost to."""

    def __init__(self, flow, *, keylog=None):
        pass

    def feed(self, *args):
        raise RuntimeError("boom")


def test_a_failing_parser_leaves_the_flow_raw(monkeypatch):
    monkeypatch.setattr(dispatch, "PARSERS", MappingProxyType({**dispatch.PARSERS, "resp": Broken}))
    parser = FlowParser(FlowKey("tcp", Endpoint("192.0.2.1", 5000), Endpoint("192.0.2.2", 6379)))
    [message] = parser.feed(Direction.TO_SERVER, b"*1\r\n$4\r\nPING\r\n", 3, 0.0)
    assert message.damaged and "boom" in message.damaged and parser.protocol == "raw"


def test_a_parser_failing_on_the_bytes_held_while_sniffing_says_so_once(monkeypatch):
    """The chunks held until the protocol was known are replayed to the new parser; when
    it fails on the first of them, the rest of the flow is raw: no second message blaming
    a "raw parser" for each chunk that was still held."""

    monkeypatch.setattr(dispatch, "PARSERS", MappingProxyType({**dispatch.PARSERS, "http": Broken}))
    parser = FlowParser(FlowKey("tcp", Endpoint("192.0.2.1", 5000), Endpoint("192.0.2.2", 80)))
    assert parser.feed(Direction.TO_SERVER, b"GE", 3, 0.0) == []  # a method's start: held
    assert parser.protocol is None
    found = parser.feed(Direction.TO_SERVER, b"T / HTTP/1.1\r\nHost: a\r\n\r\n", 4, 0.1)
    assert [m.damaged for m in found] == [
        "the http parser failed (RuntimeError: boom); rest of the flow left raw"
    ]
    assert parser.protocol == "raw"
    assert parser.feed(Direction.TO_SERVER, b"GET /again HTTP/1.1\r\n\r\n", 5, 0.2) == []


def test_udp_is_decided_by_port_on_the_first_datagram():
    dns = FlowParser(FlowKey("udp", Endpoint("192.0.2.1", 5000), Endpoint("192.0.2.2", 53)))
    dns.feed(Direction.TO_SERVER, b"\x16\x03\x01\x00", 1, 0.0)  # a DNS id that looks like TLS
    assert dns.protocol in ("dns", "raw") and dns.protocol != "tls"
    other = FlowParser(FlowKey("udp", Endpoint("192.0.2.1", 5000), Endpoint("192.0.2.2", 443)))
    other.feed(Direction.TO_SERVER, b"\x16\x03\x01\x00", 1, 0.0)
    assert other.protocol == "raw"


@pytest.mark.parametrize("name", sorted(dispatch.PARSERS))
def test_every_parser_is_a_protocols_class_built_one_way(name):
    """The table holds the parser classes themselves (no module names to import by
    string), each built as ``Parser(flow, keylog=...)`` and speaking its own name."""
    factory = dispatch.PARSERS[name]
    assert inspect.isclass(factory) and factory.__module__.startswith("osilab.protocols.")
    parser = dispatch.new_parser(name, FLOW, keylog="keys.txt")
    assert type(parser) is factory and parser.protocol == name


def test_the_parser_table_is_immutable_and_raw_has_no_parser():
    with pytest.raises(TypeError):
        dispatch.PARSERS["http"] = object  # type: ignore[index]
    assert dispatch.new_parser("raw", FLOW) is None


def test_a_parser_that_rejects_the_one_signature_is_not_retried(monkeypatch):
    """new_parser does not probe other signatures: a constructor error is a bug, raised."""

    class OldStyle:
        def __init__(self):  # no flow, no keylog: not the table's signature
            pass

    monkeypatch.setattr(dispatch, "PARSERS", MappingProxyType({**dispatch.PARSERS, "resp": OldStyle}))
    with pytest.raises(TypeError):
        dispatch.new_parser("resp", FLOW)

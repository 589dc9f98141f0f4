"""Hostile bytes never escape the DNS, RESP, PostgreSQL, PROXY and TLS parsers (except as
osilab's own errors), and the PROXY v2 builder round-trips through the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osilab.errors import DecodeError
from osilab.protocols import AppMessage, Direction
from osilab.protocols.dns import DnsParser, parse_message, read_name
from osilab.protocols.pgsql import PgsqlParser
from osilab.protocols.proxy import SIGNATURE, ProxyParser, Tlv, build_v2, parse
from osilab.protocols.resp import RespParser
from osilab.protocols.tls import TlsParser
from osilab.streams.keys import Endpoint, FlowKey

TCP = FlowKey("tcp", Endpoint("192.0.2.1", 40000), Endpoint("192.0.2.2", 53))
_SEEDS = st.sampled_from([
    b"\x16\x03\x01\x00\x05", b"\x17\x03\x03\xff\xff", b"\x14\x03\x03\x00\x01\x01",
    b"*3\r\n$3\r\nSET\r\n", b"$-1\r\n", b"*99999999\r\n", b"%1\r\n+k\r\n:1\r\n", b"+OK\r\n",
    b"\x00\x00\x00\x08\x04\xd2\x16\x2f", b"Q\x00\x00\x00\x05", b"S", b"N", b"Z\x00\x00\x00\x05I",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", SIGNATURE + b"\x21\x11\x00\x0c",
    b"\xc0\x0c", b"\x00\x1d", bytes(12),
])
_PIECES = st.lists(st.tuples(st.booleans(), st.one_of(_SEEDS, st.binary(max_size=60))), max_size=20)


def _drive(parser, pieces) -> list[AppMessage]:
    out: list[AppMessage] = []
    for no, (to_server, data) in enumerate(pieces, start=1):
        direction = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
        if data == b"S" and no % 4 == 0:
            out += parser.gap(direction, 7, no)
        else:
            out += parser.feed(direction, data, no, float(no))
    if hasattr(parser, "end"):
        out += parser.end(Direction.TO_SERVER, len(pieces) + 1, 0.0)
    return out + parser.close()


@pytest.mark.parametrize(
    "make",
    [lambda: TlsParser(TCP), lambda: DnsParser(TCP), lambda: DnsParser(), lambda: RespParser(TCP),
     lambda: PgsqlParser(TCP), lambda: ProxyParser(TCP)],
    ids=["tls", "dns-tcp", "dns-udp", "resp", "pgsql", "proxy"],
)
@settings(max_examples=150, deadline=None)
@given(pieces=_PIECES)
def test_parsers_are_total(make, pieces):
    for message in _drive(make(), pieces):
        assert isinstance(message, AppMessage)
        assert message.first_packet <= message.last_packet or message.first_packet == 0


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_dns_and_proxy_functions_raise_only_decode_error(data):
    for function in (parse_message, parse, lambda d: read_name(d, 0)):
        try:
            function(data)
        except DecodeError:
            pass


def test_dns_compression_loops_are_refused():
    header = bytes.fromhex("1234 0100 0001 0000 0000 0000")
    looping = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # the name points at itself
    message = parse_message(looping)
    assert message.questions == () and "loops or points forward" in message.damaged
    chain = header + b"\x01a\xc0\x0e\x00\x01\x00\x01"  # a pointer forward into itself
    assert parse_message(chain).damaged


def test_dns_over_tcp_is_length_framed_across_segments():
    query = bytes.fromhex("abcd01000001000000000000") + b"\x04shop\x07example\x00\x00\x01\x00\x01"
    wire = len(query).to_bytes(2, "big") + query
    parser = DnsParser(TCP)
    assert parser.feed(Direction.TO_SERVER, wire[:7], 4, 0.0) == []
    [message] = parser.feed(Direction.TO_SERVER, wire[7:], 5, 0.0)
    assert (message.first_packet, message.last_packet, message.fields["qry.name"]) == (4, 5, "shop.example")


def test_dns_answers_are_read():
    response = (bytes.fromhex("abcd81800001000100000000") + b"\x04shop\x07example\x00\x00\x01\x00\x01"
                + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xcb\x00\x71\x0a")
    [message] = DnsParser().feed(Direction.TO_CLIENT, response, 2, 0.0)
    assert message.fields["a"] == ("203.0.113.10",) and message.fields["flags.response"] is True
    assert message.summary == "DNS response 0xabcd A shop.example -> 203.0.113.10"


def test_huge_lengths_are_marked():
    resp = RespParser().feed(Direction.TO_CLIENT, b"$99999999999\r\n", 1, 0.0)
    assert resp and resp[0].damaged and "limit" in resp[0].damaged
    pgsql = PgsqlParser().feed(Direction.TO_CLIENT, b"D\x7f\xff\xff\xff", 1, 0.0)
    assert pgsql and pgsql[0].damaged and "beyond the limit" in pgsql[0].damaged
    deep = RespParser().feed(Direction.TO_CLIENT, b"*1\r\n" * 100, 1, 0.0)
    assert deep and "nested deeper" in deep[0].damaged


def test_pgsql_extended_query():
    parse_ = b"P" + (4 + len(b"\x00select $1::int\x00\x00\x00")).to_bytes(4, "big") + b"\x00select $1::int\x00\x00\x00"
    bind = b"B" + (4 + 2).to_bytes(4, "big") + b"\x00\x00"
    execute = b"E" + (4 + 5).to_bytes(4, "big") + b"\x00\x00\x00\x00\x00"
    sync = b"S\x00\x00\x00\x04"
    messages = PgsqlParser().feed(Direction.TO_SERVER, parse_ + bind + execute + sync, 9, 0.0)
    assert [m.fields["type"] for m in messages] == ["Parse", "Bind", "Execute", "Sync"]
    assert messages[0].fields["query"] == "select $1::int"


@pytest.mark.parametrize(
    ("src", "dst", "tlvs"),
    [
        ("198.51.100.7", "203.0.113.10", [(0xEA, b"\x01vpce-0123456789abcdef0"), (0x02, b"shop.example")]),
        ("2001:db8::7", "2001:db8::10", []),
    ],
)
def test_proxy_v2_build_then_parse_round_trips(src, dst, tlvs):
    wire = build_v2(src, dst, 51514, 443, tlvs=tlvs)
    header = parse(wire + b"GET / HTTP/1.1\r\n")
    assert (header.version, header.command, header.src, header.dst, header.src_port, header.dst_port) == (
        2, "PROXY", src, dst, 51514, 443)
    assert [(t.type, t.value) for t in header.tlvs] == tlvs
    assert header.length == len(wire) and header.damaged is None
    assert build_v2(header.src, header.dst, header.src_port, header.dst_port,
                    tlvs=tuple(Tlv(t.type, t.value) for t in header.tlvs)) == wire


def test_proxy_v2_local_and_cut_headers():
    local = parse(build_v2(command="LOCAL"))
    assert (local.command, local.family, local.src) == ("LOCAL", "UNSPEC", None)
    cut = parse(build_v2("192.0.2.1", "192.0.2.2", 1, 2)[:20])
    assert cut.damaged and "cut" in cut.damaged
    with pytest.raises(DecodeError):
        build_v2("192.0.2.1", "2001:db8::1", 1, 2)


def test_proxy_parser_reports_the_header():
    [message] = ProxyParser(TCP).feed(Direction.TO_SERVER, b"PROXY TCP4 192.0.2.1 192.0.2.2 40000 80\r\n", 3, 0.0)
    assert message.fields["src.ipv4"] == "192.0.2.1" and message.fields["dstport"] == 80
    bad = ProxyParser(TCP).feed(Direction.TO_SERVER, b"PROXY TCP4 999.1.1.1 192.0.2.2 1 2\r\n", 3, 0.0)
    assert bad[0].damaged

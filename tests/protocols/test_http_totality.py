"""Parser totality: any bytes, cut anywhere, never raise out of the HTTP parsers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from osilab.protocols import AppMessage, Direction
from osilab.protocols.http import HttpParser
from osilab.protocols.http2 import PREFACE, Http2Parser

_HTTPISH = st.sampled_from(
    [
        b"GET / HTTP/1.1\r\n",
        b"Host: a\r\n",
        b"\r\n",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 101 Switching\r\n",
        b"Upgrade: h2c\r\n",
        b"5\r\nhello\r\n0\r\n\r\n",
        b"\n",
        b" folded\r\n",
        b"\x00",
        PREFACE,
    ]
)
_PIECES = st.lists(
    st.tuples(st.booleans(), st.one_of(_HTTPISH, st.binary(max_size=40))), max_size=25
)


def _drive(parser, pieces):
    out: list[AppMessage] = []
    for no, (to_server, data) in enumerate(pieces, start=1):
        direction = Direction.TO_SERVER if to_server else Direction.TO_CLIENT
        if data == b"\x00" and no % 3 == 0:
            out += parser.gap(direction, 10, no)
        else:
            out += parser.feed(direction, data, no, float(no))
    out += parser.close()
    return out


@settings(max_examples=300, deadline=None)
@given(_PIECES)
def test_http1_parser_is_total(pieces):
    for message in _drive(HttpParser(), pieces):
        assert message.first_packet <= message.last_packet or message.damaged
        assert message.protocol in ("http", "http2")


@settings(max_examples=300, deadline=None)
@given(_PIECES)
def test_http2_parser_is_total(pieces):
    for message in _drive(Http2Parser(), pieces):
        assert message.protocol == "http2"

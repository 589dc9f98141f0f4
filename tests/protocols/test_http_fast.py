"""The plain-message reader (:mod:`osilab.protocols._http_fast`) agrees with h11 and the
desync guardian, or stays out of the way.

* On every bundled and third-party capture, HTTP parsing with the plain reader gives the
  same messages as parsing everything with h11 (the plain reader switched off).
* Table-driven: what it reads, h11 reads the same way; what it calls plain, the guardian
  calls Compliant; what it must refuse (anything h11 or the guardian has a say on), it
  refuses.
"""

from __future__ import annotations

from pathlib import Path

import h11
import pytest
from shared_paths import CAPTURES, thirdparty_captures

import osilab
import osilab.protocols.http as http_module
from osilab.pipeline import conversations
from osilab.protocols._http_fast import PLAIN, read_request, read_response
from osilab.protocols.desync import classify_head

CAPTURE_FILES = thirdparty_captures() + sorted(CAPTURES.glob("*/*.pcapng"))


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_messages_with_and_without_the_plain_reader(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [repr(m) for m in conversations(osilab.read(path))]
    monkeypatch.setattr(http_module, "read_request", lambda data: None)
    monkeypatch.setattr(http_module, "read_response", lambda data, method: None)
    slow = [repr(m) for m in conversations(osilab.read(path))]
    assert fast == slow


def test_the_benchmark_shape_is_read_plainly() -> None:
    """The lab's nginx traffic is what the plain reader is for: it must take all of it."""
    path = CAPTURES / "alb" / "alb.pcapng"
    calls = {"plain": 0, "refused": 0}
    original = http_module.read_request

    def counting(data: bytes):  # type: ignore[no-untyped-def]
        found = original(data)
        calls["plain" if found else "refused"] += 1
        return found

    import unittest.mock

    with unittest.mock.patch.object(http_module, "read_request", counting):
        for _ in conversations(osilab.read(path)):
            pass
    assert calls["plain"] > 0


def _h11_request(data: bytes) -> tuple:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    event = conn.next_event()
    body = 0
    while True:
        nxt = conn.next_event()
        if isinstance(nxt, h11.Data):
            body += len(nxt.data)
        elif isinstance(nxt, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"h11 wanted more: {nxt}")
    headers = [(k.decode(), v.decode()) for k, v in event.headers.raw_items()]
    return (event.method.decode(), event.target.decode(), event.http_version.decode(), headers,
            len(data) - len(conn.trailing_data[0]) - body, body)  # fmt: skip


PLAIN_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /?rid=l0015000 HTTP/1.1\r\nHost: shop.example.com\r\nX-Request-Id: l0015000\r\n\r\n",
    b"GET /x HTTP/1.0\r\nHost: a\r\nUser-Agent: curl/8.0  \r\nAccept:   */*\r\nEmpty:\r\n\r\n",
    b"DELETE /api/v1/items/7?force=true HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\nCookie: a=b; c=d\r\n\r\n",
    # RFC 9110 §9.1: a method is any token, case-sensitive ("get" is not GET, but a method)
    b"QUERY /users HTTP/1.1\r\nHost: a\r\n\r\n",
    b"X-VENDOR.PURGE_ALL /cache HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
]
COUNTED_REQUESTS = [  # read here, but the guardian judges them (a body-framing header)
    b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\ncontent.length: 5\r\n\r\n",
]
REFUSED_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n",  # head not whole
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nshort",  # body not whole
    b"GET / HTTP/1.1\nHost: a\r\n\r\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",  # space before the colon
    b"GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n",  # a tab (legal, h11's)
    b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",  # obs-text (legal, h11's)
    b"GET / HTTP/1.1\r\nX: 1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    b"G(E)T / HTTP/1.1\r\nHost: a\r\n\r\n",  # "(" is no token character (h11 refuses it)
    b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("data", PLAIN_REQUESTS + COUNTED_REQUESTS)
def test_what_it_reads_h11_reads_the_same(data: bytes) -> None:
    found = read_request(data + b"GET /next")
    assert found is not None
    method, target, version, headers, head_length, body, _verdict = found
    assert (method, target, version, list(headers), head_length, body) == _h11_request(data)


@pytest.mark.parametrize("data", PLAIN_REQUESTS)
def test_plain_heads_are_compliant(data: bytes) -> None:
    found = read_request(data)
    assert found is not None and found[6] == PLAIN
    assert classify_head(data[: found[4]])[1].klass == "Compliant"


@pytest.mark.parametrize("data", COUNTED_REQUESTS)
def test_framing_headers_go_to_the_guardian(data: bytes) -> None:
    found = read_request(data)
    assert found is not None and found[6] is None


@pytest.mark.parametrize("data", REFUSED_REQUESTS)
def test_refused(data: bytes) -> None:
    assert read_request(data) is None


@pytest.mark.parametrize(
    ("data", "method", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1", b"GET", (200, "OK", 2)),
        (b"HTTP/1.0 404 Not Found\r\nServer: x\r\nContent-Length: 0\r\n\r\n", b"POST", (404, "Not Found", 0)),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"HEAD", None),  # no body after HEAD
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 100 Continue\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"GET", None),
        (b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nuntil close", b"GET", None),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", b"GET", None),
    ],
)
def test_responses(data: bytes, method: bytes, expected: tuple | None) -> None:
    found = read_response(data, method)
    if expected is None:
        assert found is None
        return
    assert found is not None
    status, reason, _version, _headers, head_length, body = found
    assert (status, reason, body) == expected
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target=b"/", headers=[(b"Host", b"x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    event = conn.next_event()
    assert (event.status_code, event.reason.decode()) == (status, reason)


# ----------------------------------------------------------------------- generated heads
# Requests assembled from pieces a hostile client would use (bare LF, folded lines, CL/TE
# look-alikes, tabs, obs-text, NUL, odd versions, two Content-Lengths ...). For every one
# the plain reader accepts, h11 must read the same message and, when it says PLAIN, the
# guardian must agree the head is Compliant. The reader may refuse as often as it likes.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Mostly well-formed pieces (so that the reader accepts many heads and the comparison
# has something to compare), with a hostile one now and then.
_METHODS = st.sampled_from([b"GET"] * 6 + [b"POST", b"HEAD", b"PUT", b"get", b"G\x00T", b"OPTIONS"])
_TARGETS = st.sampled_from([b"/", b"/a?b=1"] * 4 + [b"/a b", b"*", b"/\x7f", b"/%00", b"http://x/"])
_VERSIONS = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTP/1"])
_FIELDS = st.sampled_from([b"Host: a", b"X-Y: z", b"Cookie: a=b; c=d", b"Accept:   */*"] * 4 + [
    b"Host:a", b"Host: a ", b"Content-Length: 3", b"Content-Length: 03",
    b"Content-Length: -1", b"Content-Length : 3", b"Transfer-Encoding: chunked",
    b"Transfer_Encoding: chunked", b"X: a\tb", b"X: \xe9", b"X:", b" folded", b"\tfolded",
    b"Bad Name: v", b"X: a\x00b", b"Connection: close",
])
_ENDINGS = st.sampled_from([b"\r\n"] * 12 + [b"\n", b"\r"])


@st.composite
def _generated_request(draw: st.DrawFn) -> bytes:
    line = draw(_METHODS) + b" " + draw(_TARGETS) + b" " + draw(_VERSIONS)
    fields = draw(st.lists(_FIELDS, max_size=6))
    parts = [line, *fields]
    head = b"".join(part + draw(_ENDINGS) for part in parts) + draw(_ENDINGS)
    return head + draw(st.sampled_from([b"", b"abc", b"abcdef"]))


@settings(max_examples=3000, deadline=None)
@given(_generated_request())
def test_generated_requests_read_plainly_only_when_h11_and_the_guardian_agree(data: bytes) -> None:
    stream = data + b"GET /next"
    found = read_request(stream)
    if found is None:
        return  # refused: h11 and the guardian decide, as before
    method, target, version, headers, head_length, body, verdict = found
    assert (method, target, version, list(headers), head_length, body) == _h11_request(
        stream[: head_length + body]
    ), data
    if verdict == PLAIN:
        _head, guardian = classify_head(data[:head_length])
        assert guardian.klass == "Compliant", (data, guardian)

"""Issue 14, item 2: invalid body lengths, the back end's reading, and two versions.

RFC 9112 §6.3 says when a request's body length cannot be determined: a Transfer-Encoding
whose final coding is not ``chunked``; and a Content-Length or a chunk size that does not
fit the 64 bits servers hold it in cannot be read either. The ALB's reading of the
connection stops at such a request (it answers 400, or forwards and closes). A back end
that stops at the bad length -- reads no body after such a Transfer-Encoding, or wraps the
number to 64 bits (2**64 is 0) -- reads on, and finds the requests smuggled behind it:
osilab lists those with ``reading="backend"``, and the balancer model gives them no
decision while the why of the bad request names them.

The verdicts are http-desync-guardian's: a Content-Length past 64 bits is Severe,
BadContentLength (its case "Bad Content-Length (64-bits overflow)"); a request line with
two versions is Severe, BadVersion (its case "[space] in URI resulted in a bad version");
a Transfer-Encoding list not ending in chunked is Ambiguous,
UndefinedTransferEncodingSemantics (osilab's one addition to the guardian's rules, the
RFC 9112 §6.3 case; beside a Content-Length it stays BothTeClPresent, the guardian's own
case). The guardian reads heads only, so a chunk size keeps the head's verdict.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from balancers.balancer_helpers import alb_config
from tcp_capture import Conversation

import osilab
from osilab.balancers.alb import ApplicationLoadBalancer
from osilab.cli import main
from osilab.pipeline import iter_http
from osilab.protocols import Direction
from osilab.protocols.http import HttpParser
from osilab.protocols.messages import HttpRequest

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


def _post(*headers: str) -> bytes:
    return ("POST /a HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


CASES = [
    # (name, bytes on the connection, ALB's requests (target, class, reason), back end's targets)
    (
        "Content-Length 2**64: wraps to 0",
        _post("Content-Length: 18446744073709551616") + SMUGGLED,
        [("/a", "Severe", "BadContentLength")],
        ["/smuggled"],
    ),
    (
        "Content-Length 2**64 + 5: wraps to 5",
        _post("Content-Length: 18446744073709551621") + b"hello" + SMUGGLED,
        [("/a", "Severe", "BadContentLength")],
        ["/smuggled"],
    ),
    (
        "Content-Length 2**64 - 1 fits: one big body, nothing smuggled",
        _post("Content-Length: 18446744073709551615") + SMUGGLED,
        [("/a", "Compliant", "Compliant")],
        [],
    ),
    (
        "chunk size 2**64: a back end wrapping it takes it for the last chunk",
        _post("Transfer-Encoding: chunked") + b"10000000000000000\r\n\r\n" + SMUGGLED,
        [("/a", "Compliant", "Compliant")],
        ["/smuggled"],
    ),
    (
        "chunk size after a valid chunk",
        _post("Transfer-Encoding: chunked") + b"3\r\nabc\r\n1ffffffffffffffff\r\n" + SMUGGLED,
        [("/a", "Compliant", "Compliant")],
        ["/smuggled"],
    ),
    (
        "chunk size 2**64 - 1 fits",
        _post("Transfer-Encoding: chunked") + b"ffffffffffffffff\r\n" + SMUGGLED,
        [("/a", "Compliant", "Compliant")],
        [],
    ),
    (
        "Transfer-Encoding: chunked, gzip (RFC 9112 §6.3)",
        _post("Transfer-Encoding: chunked, gzip") + SMUGGLED,
        [("/a", "Ambiguous", "UndefinedTransferEncodingSemantics")],
        ["/smuggled"],
    ),
    (
        "Transfer-Encoding: gzip, in two headers after chunked",
        _post("Transfer-Encoding: chunked", "Transfer-Encoding: gzip") + SMUGGLED,
        [("/a", "Ambiguous", "UndefinedTransferEncodingSemantics")],
        ["/smuggled"],
    ),
    (
        "Transfer-Encoding: gzip beside a Content-Length: the guardian's BothTeClPresent",
        _post("Transfer-Encoding: gzip", "Content-Length: 3") + SMUGGLED,
        [("/a", "Ambiguous", "BothTeClPresent")],
        ["/smuggled"],
    ),
    (
        # h11 reads bare "chunked" only, so this head goes to the tolerant reader, which
        # does not follow chunks: what comes after is read from the next packet's head.
        "Transfer-Encoding: gzip, chunked is fine",
        _post("Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n",
        [("/a", "Compliant", "Compliant")],
        [],
    ),
    (
        "a compliant request, then the next",
        _post("Content-Length: 2") + b"{}" + NEXT,
        [("/a", "Compliant", "Compliant"), ("/next", "Compliant", "Compliant")],
        [],
    ),
    (
        "two versions: the guardian's bad version",
        b"GET /a HTTP/1.1 HTTP/1.1\r\nHost: x\r\n\r\n",
        [("/a", "Severe", "BadVersion")],
        [],
    ),
]


def _requests(data: bytes, pieces: int = 1) -> list[HttpRequest]:
    parser = HttpParser()
    found = []
    size = -(-len(data) // pieces)
    for number, start in enumerate(range(0, len(data), size), start=1):
        found += parser.feed(Direction.TO_SERVER, data[start : start + size], number, 0.0)
    found += parser.close()
    return [m.message for m in found if m.fields.get("stage") == "headers"]


def _reason(request: HttpRequest) -> str:
    assert request.desync is not None
    return request.desync.reason or "Compliant"


@pytest.mark.parametrize(("name", "data", "alb", "backend"), CASES, ids=[c[0] for c in CASES])
def test_the_alb_reading_and_the_backend_reading(
    name: str, data: bytes, alb: list[tuple[str, str, str]], backend: list[str]
) -> None:
    requests = _requests(data)
    assert [(r.target, r.desync.klass if r.desync else None, _reason(r))
            for r in requests if r.reading == "alb"] == alb  # fmt: skip
    assert [r.target for r in requests if r.reading == "backend"] == backend
    if backend:
        first = requests[0]
        assert first.backend_would_read == ("GET /smuggled HTTP/1.1",)


@pytest.mark.parametrize(("name", "data", "alb", "backend"), CASES, ids=[c[0] for c in CASES])
def test_the_same_readings_one_byte_at_a_time_where_the_bytes_are_there(
    name: str, data: bytes, alb: list[tuple[str, str, str]], backend: list[str]
) -> None:
    """Fed in pieces, the ALB's reading is the same; the back end's too, except that a
    chunk size is only checked in bytes present when the head completed (a limit,
    written in :func:`osilab.protocols.http._invalid_length`)."""
    requests = _requests(data, pieces=3)
    assert [(r.target, _reason(r)) for r in requests if r.reading == "alb"] == [
        (target, reason) for target, _, reason in alb
    ]


def test_http_json_reading_key_and_compliant_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conv = Conversation("10.0.0.1:40000", "10.0.0.2:80").handshake()
    conv.send("client", b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    conv.send("server", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    conv.send("client", _post("Content-Length: 18446744073709551616") + SMUGGLED)
    path = conv.write(tmp_path / "smuggle.pcap")
    assert main(["http", str(path), "--json"]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(o["target"], o["desync"]["reason"], o.get("reading")) for o in objs] == [
        ("/ok", "Compliant", None),  # the ALB's own reading omits the key (design.md)
        ("/a", "BadContentLength", None),
        ("/smuggled", "Compliant", "backend"),
    ]


def test_route_decides_on_the_alb_reading_and_names_the_backend_reading(tmp_path: Path) -> None:
    conv = Conversation("10.0.0.1:40000", "10.0.0.2:80").handshake()
    conv.send("client", _post("Transfer-Encoding: chunked") + b"10000000000000000\r\n\r\n" + SMUGGLED)
    path = conv.write(tmp_path / "chunk.pcap")
    alb = ApplicationLoadBalancer(alb_config())
    for message in iter_http(osilab.read(path)):
        alb.feed(message)
    decisions = list(alb.decisions)
    assert [d.request.target for d in decisions] == ["/a"]  # no decision for /smuggled
    assert "GET /smuggled HTTP/1.1" in decisions[0].why and "back end" in decisions[0].why

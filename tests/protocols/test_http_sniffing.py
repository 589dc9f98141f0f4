"""Issue 14, item 1: any method is HTTP, binary protocols are not.

RFC 9110 §9.1: "the method token is case-sensitive", and any token is a method; the table
of known methods (:data:`osilab.capture.dissect.HTTP_METHODS`) is for display. What tells
HTTP from anything else is the whole request line (RFC 9112 §3), so:

* table-driven: request lines with unknown methods are HTTP once the line is whole;
  binary protocols' first bytes are not;
* a ``QUERY`` request (and a vendor's own method) goes through the whole pipeline as a
  request, paired with its ``200 OK``;
* on every bundled capture and every shared third-party and tunnel capture, no flow that
  tshark does not see as HTTP is sniffed as HTTP by osilab (tshark's ``http`` frames are
  the oracle; its TCP heuristic for HTTP is on by default).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from shared_paths import CAPTURES, SHARED, thirdparty_captures
from tcp_capture import Conversation

import osilab
from osilab.capture.dissect import http_line_pending, looks_like_http
from osilab.pipeline import iter_http, track
from osilab.pipeline.dispatch import FlowParser, sniff
from osilab.protocols import Direction
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

TUNNELS = SHARED / "captures" / "tunnels"
ALL_CAPTURES = (
    sorted(CAPTURES.glob("*/*.pcapng"))
    + thirdparty_captures()
    + sorted(p for p in TUNNELS.glob("*/*") if p.suffix in (".pcap", ".pcapng"))
)

SNIFFED = [
    # (first bytes, HTTP?, why)
    (b"GET / HTTP/1.1\r\n", True, "a known method"),
    (b"GET /a", True, "a known method: HTTP/0.9 or a line still arriving"),
    (b"QUERY /users HTTP/1.1\r\n", True, "QUERY (draft-ietf-httpbis-safe-method-w-body)"),
    (b"X-PURGE /cache HTTP/1.1\r\n", True, "a vendor's method: any token (RFC 9110 §9.1)"),
    (b"get /a HTTP/1.0\n", True, "lower case is another method, still a method; bare LF"),
    (b"BREW /pot HTTP/1.1\r\nHost: x\r\n", True, "RFC 2324's method, whole line"),
    (b"GET /a HTTP/1.1 HTTP/1.1\r\n", True, "a mangled line is a request the guardian judges"),
    (b"HTTP/1.1 200 OK\r\n", True, "a status line"),
    (b"X-PURGE /cache", False, "an unknown method without its version: not yet"),
    (b"X-PURGE /cache HTTP/1.1", False, "the line has not ended"),
    (b"SSH-2.0-OpenSSH_9.2p1\r\n", False, "SSH identification: no request line"),
    (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", False, "IMAP greeting"),
    (b"220 mail.example ESMTP\r\n", False, "SMTP greeting"),
    (b"USER anonymous\r\n", False, "FTP command: no version"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", False, "TLS ClientHello"),
    (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", False, "PostgreSQL SSLRequest"),
    (b"*1\r\n$4\r\nPING\r\n", False, "RESP"),
    (b"GET\x00/ HTTP/1.1\r\n", False, "NUL is not a space"),
    (b"GE T /a\r\nHTTP/1.1\r\n", False, "the version is on the next line"),
    (b"A /a\x01 HTTP/1.1\r\n", False, "a control character in the target"),
]


@pytest.mark.parametrize(("data", "expected", "why"), SNIFFED, ids=[c[2] for c in SNIFFED])
def test_what_looks_like_http(data: bytes, expected: bool, why: str) -> None:
    assert looks_like_http(data) is expected, why
    assert (sniff(data, 4000) == "http") is expected, why


@pytest.mark.parametrize(
    ("data", "pending"),
    [
        (b"X-PURGE /cache/a/very/long/path", True),  # may still become a request line
        (b"X-PURGE /cache HTTP/1.1\r\n", False),  # the line is whole: decide now
        (b"\x16\x03\x01", False),
        (b"SSH-2.0-OpenSSH", False),  # no space after the token
    ],
)
def test_an_unknown_method_waits_for_its_line(data: bytes, pending: bool) -> None:
    assert http_line_pending(data) is pending


def test_a_request_line_split_over_segments_is_still_sniffed() -> None:
    flow = FlowKey.parse("198.51.100.7:51514-203.0.113.10:4000")
    parser = FlowParser(flow)
    line = b"QUERY /" + b"a" * 40 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    out = []
    for number, start in enumerate(range(0, len(line), 20), start=1):
        out += parser.feed(Direction.TO_SERVER, line[start : start + 20], number, 0.0)
    assert parser.protocol == "http"
    assert [m.message.method for m in out if m.fields.get("stage") == "headers"] == ["QUERY"]


def test_query_and_vendor_methods_end_to_end(tmp_path: Path) -> None:
    """A QUERY and a vendor method on one keep-alive connection, each answered 200 OK."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    conv = Conversation("10.0.0.1:40000", "10.0.0.2:8081").handshake()
    conv.send("client", b"QUERY /users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    conv.send("server", answer)
    conv.send("client", b"ACME-REINDEX /i HTTP/1.1\r\nHost: x\r\n\r\n")
    conv.send("server", answer)
    found = list(iter_http(osilab.read(conv.write(tmp_path / "query.pcap"))))
    requests = [m for m in found if isinstance(m, HttpRequest)]
    responses = [m for m in found if isinstance(m, HttpResponse)]
    assert [(r.method, r.target) for r in requests] == [("QUERY", "/users"), ("ACME-REINDEX", "/i")]
    assert [(r.status, r.index) for r in responses] == [(200, 0), (200, 1)]


# ---------------------------------------------------------------------------
# Every capture: no flow tshark does not call HTTP becomes HTTP in osilab
# ---------------------------------------------------------------------------

# Flows osilab calls HTTP where tshark does not, decided from the bytes.
HTTP_BY_THE_BYTES = {
    "http-get-to-ssh-server-nsec.pcap": "'GET / HTTP/1.1' sent to port 22: tshark takes the "
    "port for SSH; the bytes are an HTTP request",
    "http-soap-post-ooo-vlan.pcap": "a lone segment to port 4176 holds 'POST /fwlink/... "
    "HTTP/1.1' and its headers; tshark's TCP heuristic does not try a mid-stream segment",
}


def _tshark_http_pairs(path: Path) -> set[frozenset[tuple[str, int]]]:
    rows = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-Y", "http.request || http.response", "-T", "fields",
         "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport",
         "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"],
        capture_output=True, text=True, timeout=120,
    ).stdout.splitlines()  # fmt: skip
    pairs = set()
    for row in rows:
        f = row.split("\t")
        if len(f) < 6 or not f[2] or not f[5]:
            continue
        src = (f[0] or f[1]).split(",")[-1]  # the innermost header of a tunnel
        dst = (f[3] or f[4]).split(",")[-1]
        pairs.add(frozenset({(src, int(f[2].split(",")[-1])), (dst, int(f[5].split(",")[-1]))}))
    return pairs


def _osilab_http_pairs(path: Path) -> set[frozenset[tuple[str, int]]]:
    pairs = set()
    for step in track(osilab.read(path)):
        for record in step.ended:
            if record.application == "http":
                key = record.key
                pairs.add(frozenset({(key.client.ip, key.client.port), (key.server.ip, key.server.port)}))
    return pairs


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_flow_becomes_http_that_tshark_does_not_see_as_http(path: Path, tshark: str) -> None:
    ours = _osilab_http_pairs(path)
    theirs = _tshark_http_pairs(path)
    extra = ours - theirs
    if path.name in HTTP_BY_THE_BYTES:
        assert extra, f"{path.name} ({HTTP_BY_THE_BYTES[path.name]}): osilab agrees with tshark now"
        return
    assert not extra, f"{path.name}: osilab calls these flows HTTP, tshark does not: {extra}"


def test_http_flow_agreement_figure(tshark: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The headline numbers: HTTP flows osilab and tshark agree on, over every capture."""
    both = only_ours = only_theirs = 0
    for path in ALL_CAPTURES:
        ours, theirs = _osilab_http_pairs(path), _tshark_http_pairs(path)
        both += len(ours & theirs)
        only_ours += len(ours - theirs)
        only_theirs += len(theirs - ours)
    print(
        f"\nmeasured: HTTP flows over {len(ALL_CAPTURES)} captures: {both} agree with tshark, "
        f"{only_ours} osilab only (by the bytes), {only_theirs} tshark only"
    )
    assert only_ours == len(HTTP_BY_THE_BYTES)

"""TLS: hellos against tshark, decryption with key logs, and hostile records."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from shared_paths import CAPTURES, THIRDPARTY, thirdparty_captures
from tshark_oracle import tshark_fields

import osilab
from osilab.lab.configs import ALB_MTLS_PORT
from osilab.pipeline import conversations, iter_http
from osilab.protocols import Direction
from osilab.protocols._tls_crypto import load_keylog
from osilab.protocols.messages import HttpRequest
from osilab.protocols.tls import ClientHello, ServerHello, TlsParser, parse_client_hello

COMMON = ("-o", "tcp.reassemble_out_of_order:TRUE")
LAB = [CAPTURES / name / f"{name}.pcapng" for name in ("alb", "nlb", "l4proxy", "smuggle")]
_VERSIONS = {"0x0301": "TLS 1.0", "0x0302": "TLS 1.1", "0x0303": "TLS 1.2"}


def _tshark_hellos(path) -> list[tuple]:
    """(frame, sni, alpn, version) per ClientHello over TCP, as tshark decodes them."""
    rows = tshark_fields(
        path,
        "frame.number",
        "tls.handshake.extensions_server_name",
        "tls.handshake.extensions_alpn_str",
        "tls.handshake.extensions.supported_version",
        "tls.handshake.version",
        options=(*COMMON, "-Y", "tcp and tls.handshake.type == 1"),
    )
    out = []
    for row in rows:
        row += [""] * (5 - len(row))
        offered = [int(v, 16) for v in row[3].split(",") if v]
        legacy = row[4].split(",")[0]
        version = "TLS 1.3" if 0x0304 in offered else _VERSIONS.get(legacy, legacy)
        alpn = tuple(a for a in row[2].split(",") if a)
        out.append((int(row[0]), row[1] or None, alpn, version))
    return out


def _our_hellos(path) -> list[tuple]:
    return [
        (m.message.last_packet, m.message.message.server_name, m.message.message.alpn,
         m.message.message.version)
        for m in conversations(osilab.read(path))
        if m.message.protocol == "tls" and isinstance(m.message.message, ClientHello)
        and m.flow.proto == "tcp"  # QUIC's hellos (CRYPTO frames): tests/protocols/test_quic.py
    ]


@pytest.mark.tshark
def test_every_client_hello_matches_tshark(tshark, thirdparty):
    total = matched = 0
    for path in [*thirdparty_captures(), *(p for p in LAB if p.exists())]:
        theirs, ours = _tshark_hellos(path), _our_hellos(path)
        total += len(theirs)
        matched += len(set(theirs) & set(ours))
        assert sorted(ours) == sorted(theirs), path.name
    print(f"\nmeasured: ClientHellos: {matched}/{total} match tshark (SNI, ALPN, version, frame)")
    assert total >= 20


@pytest.mark.parametrize(
    ("capture", "expected"),
    [
        ("suricata-verify/tls-clienthello-split-3-segments.pcap",
         (4, 6, "www.google.com", ("h2", "http/1.1"), "TLS 1.2")),
        ("zeek/tls13-chrome125-kyber-sni.pcap", (4, 4, "lh3.google.com", ("h2", "http/1.1"), "TLS 1.3")),
        ("illustrated-tls13/illustrated-tls13.pcap", (5, 5, "example.ulfheim.net", (), "TLS 1.3")),
    ],
)
def test_hellos_spanning_segments_say_where_they_started(thirdparty, capture, expected):
    hello = next(
        m.message for m in conversations(osilab.read(THIRDPARTY / capture))
        if isinstance(m.message.message, ClientHello)
    )
    found = (hello.first_packet, hello.last_packet, hello.message.server_name, hello.message.alpn,
             hello.message.version)
    assert found == expected
    assert hello.fields["handshake.extensions_server_name"] == expected[2]


def test_server_hello_gives_the_choice(thirdparty):
    servers = [
        m.message.message for m in conversations(osilab.read(THIRDPARTY / "scapy/tls_nss_example.pcap"))
        if isinstance(m.message.message, ServerHello)
    ]
    assert [(s.version, s.cipher) for s in servers] == [
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        ("TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    ]


def test_hello_retry_request_is_not_the_negotiation(thirdparty):
    messages = [m.message for m in conversations(osilab.read(THIRDPARTY / "zeek/tls13-hello-retry-request.pcap"))]
    hellos = [m for m in messages if isinstance(m.message, ClientHello)]
    retries = [m for m in messages if isinstance(m.message, ServerHello) and m.message.hello_retry]
    assert len(hellos) == 2 and len(retries) == 1


# -- decryption ---------------------------------------------------------------------------


def _tshark_requests(path, keylog) -> set[tuple]:
    """(frame, method, host, target) of HTTP/1.1 and HTTP/2 requests inside TLS, per tshark."""
    rows = tshark_fields(
        path,
        "frame.number", "http.request.method", "http.host", "http.request.uri",
        "http2.headers.method", "http2.headers.authority", "http2.headers.path",
        options=(*COMMON, "-o", f"tls.keylog_file:{keylog}", "-Y",
                 "tls and (http.request or http2.headers.method)"),
    )
    out = set()
    for row in rows:
        row += [""] * (7 - len(row))
        frame = int(row[0])
        if row[1]:
            out.add((frame, row[1], row[2], row[3]))
        for method, host, path_ in zip(row[4].split(","), row[5].split(","), row[6].split(","),
                                       strict=False):
            if method:
                out.add((frame, method, host, path_))
    return out


#: The ports the captures carry TLS on: HTTPS, and the lab ALB's mutual-TLS listener
#: (tshark decrypts every one of them with the key log).
TLS_PORTS = (443, ALB_MTLS_PORT)


def _our_requests(path, keylog) -> set[tuple]:
    return {
        (r.headers_complete_packet, r.method, r.host or "", r.target)
        for r in iter_http(osilab.read(path), keylog=str(keylog))
        if isinstance(r, HttpRequest) and r.flow.server.port in TLS_PORTS
    }


@pytest.mark.tshark
@pytest.mark.parametrize(
    ("capture", "keylog", "versions"),
    [
        (CAPTURES / "alb/alb.pcapng", CAPTURES / "alb/keylog.txt", {"HTTP/1.1", "HTTP/2"}),
        (CAPTURES / "nlb/nlb.pcapng", CAPTURES / "nlb/keylog.txt", {"HTTP/1.1"}),
        (THIRDPARTY / "zeek/tls12-https-keylog.pcap", THIRDPARTY / "zeek/tls12-https-keylog.keys.txt",
         {"HTTP/1.1"}),
        (THIRDPARTY / "scapy/tls_nss_example.pcap", THIRDPARTY / "scapy/tls_nss_example.keys.txt",
         {"HTTP/1.0"}),
    ],
    ids=["alb-h1-h2", "nlb-h1", "tls12-zeek", "tls12-and-13-scapy"],
)
def test_decrypted_requests_match_tshark(tshark, capture, keylog, versions):
    if not capture.exists():
        pytest.skip(f"{capture} is not here")
    theirs, ours = _tshark_requests(capture, keylog), _our_requests(capture, keylog)
    print(f"\nmeasured: {capture.name}: {len(theirs & ours)}/{len(theirs)} decrypted requests match tshark")
    assert theirs and ours == theirs
    found = {r.version for r in iter_http(osilab.read(capture), keylog=str(keylog))
             if isinstance(r, HttpRequest) and r.flow.server.port == 443}
    assert versions <= found


def test_tls13_decryption_gives_plaintext_and_alpn(thirdparty):
    keylog = str(THIRDPARTY / "illustrated-tls13/illustrated-tls13.keylog.txt")
    messages = [m.message for m in conversations(osilab.read(THIRDPARTY / "illustrated-tls13/illustrated-tls13.pcap"),
                                                 keylog=keylog)]
    plain = [(m.direction, m.fields["plaintext"]) for m in messages if m.fields.get("plaintext")]
    assert plain == [(Direction.TO_SERVER, b"ping"), (Direction.TO_CLIENT, b"pong")]
    assert not [m for m in messages if m.damaged]


def test_without_the_key_nothing_is_decrypted(thirdparty, tmp_path):
    empty = tmp_path / "keys.txt"
    empty.write_text("# no secrets\n")
    messages = [m.message for m in conversations(osilab.read(THIRDPARTY / "scapy/tls_nss_example.pcap"),
                                                 keylog=str(empty))]
    assert not [m for m in messages if m.fields.get("plaintext")]
    notes = [n for m in messages for n in m.fields.get("notes", ())]
    assert any("CLIENT_RANDOM" in n for n in notes)


def test_key_log_contents_never_leak(thirdparty, tmp_path):
    secret = "ab" * 48
    log = tmp_path / "keys.txt"
    log.write_text(f"CLIENT_RANDOM {'00' * 32} {secret}\nthis line is garbage {secret}\n")
    keys = load_keylog(str(log))
    assert secret not in repr(keys)
    missing = tmp_path / "absent.txt"
    parser = TlsParser(keylog=str(missing))
    hello = (THIRDPARTY / "scapy/tls_nss_example.pcap")  # any capture: the parser notes the failure
    messages = [m.message for m in conversations(osilab.read(hello), keylog=str(missing))]
    notes = [n for m in messages for n in m.fields.get("notes", ())]
    assert notes and all(str(missing) in n for n in notes)
    assert parser.keylog_path == str(missing)


def test_cli_with_keylog_lists_https_requests_and_hellos(thirdparty):
    capture, keylog = CAPTURES / "alb/alb.pcapng", CAPTURES / "alb/keylog.txt"
    out = subprocess.run(
        [sys.executable, "-m", "osilab.cli", "tls", str(capture), "--json", "--keylog", str(keylog)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows and {"flow", "packet", "sni", "alpn", "version"} <= rows[0].keys()
    assert {row["server_alpn"] for row in rows} == {"http/1.1", "h2"}
    assert all(row["sni"] == "shop.example.com" and row["version"] == "TLS 1.3" for row in rows)
    assert keylog.read_text().split()[2] not in out.stdout + out.stderr


# -- hostile input --------------------------------------------------------------------------

HELLO = bytes.fromhex("160301002f" "0100002b0303") + bytes(32) + bytes.fromhex("000002130101000000")


def _feed(parser, pieces):
    out = []
    for no, data in enumerate(pieces, start=1):
        out += parser.feed(Direction.TO_SERVER, data, no, 0.0)
    return out + parser.close()


@pytest.mark.parametrize(
    ("pieces", "why"),
    [
        ([b"\x16\x03\x01\xff\xff" + bytes(10)], "exceeds"),
        ([b"\x99\x00\x00\x00\x05hello"], "not a TLS record header"),
        ([b"\x16\x03\x01\x00\x09" + b"\x01\x00\x00\x05" + b"\x03\x03abc"], "ClientHello cut short"),
        ([HELLO[:20]], "ended inside a record"),
    ],
)
def test_hostile_records_are_marked_not_raised(pieces, why):
    messages = _feed(TlsParser(), pieces)
    assert any(m.damaged and why in m.damaged for m in messages), [m.damaged for m in messages]


def test_after_garbage_the_parser_finds_the_next_record():
    messages = _feed(TlsParser(), [b"\x99\x98\x97junk", HELLO])
    assert [type(m.message).__name__ for m in messages if m.message] == ["ClientHello"]


def test_client_hello_byte_by_byte_is_the_same():
    whole = _feed(TlsParser(), [HELLO])
    split = _feed(TlsParser(), [HELLO[i : i + 1] for i in range(len(HELLO))])
    assert [m.message for m in whole if m.message] == [m.message for m in split if m.message]


def test_every_cut_of_a_real_hello_is_total():
    body = HELLO[9:]
    for cut in range(len(body)):
        try:
            parse_client_hello(body[:cut])
        except osilab.errors.OsilabError:
            pass

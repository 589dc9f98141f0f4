"""Issue 14, item 4: a midstream flow takes client and server from what it carries.

Without a captured SYN, the flow table guesses from the ports (a service port is the
server's). The first payload says more: a request line is sent by a client, a status line
by a server (RFC 9112 §3, §4), a TLS ClientHello by a client and a ServerHello by a server
(RFC 8446 §4). The pipeline sniffs it and tells the streams stage "this endpoint is the
client" (streams/ reads no payload); a captured SYN still outranks everything.

tshark is the oracle for HTTP: the sender of its ``http.request`` frames is the client.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tcp_capture import Conversation

import osilab
from osilab.pipeline import iter_http, track
from osilab.protocols.messages import HttpRequest, HttpResponse

GET = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HELLO = bytes.fromhex("160301002f0100002b0303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"

CASES = [
    # (name, client, server, handshake?, first (side, payload), expected client, reoriented)
    ("a request from port 5000 (a service port) to 45000", "10.0.0.1:5000", "10.0.0.2:45000",
     False, ("client", GET), "10.0.0.1:5000", True),
    ("two ephemeral ports, the client's the lower", "10.0.0.1:40000", "10.0.0.2:50000",
     False, ("client", GET), "10.0.0.1:40000", True),
    ("the capture starts at the response", "10.0.0.1:40000", "10.0.0.2:50000",
     False, ("server", OK), "10.0.0.1:40000", True),
    ("the ports were right", "10.0.0.1:40000", "10.0.0.2:80",
     False, ("client", GET), "10.0.0.1:40000", False),
    ("a ClientHello from the higher port's peer", "10.0.0.1:40000", "10.0.0.2:50000",
     False, ("client", HELLO), "10.0.0.1:40000", True),
    ("bytes that tell nothing: ports decide", "10.0.0.1:40000", "10.0.0.2:50000",
     False, ("client", b"\x00\x01binary"), "10.0.0.2:50000", False),
    ("a captured SYN outranks the payload", "10.0.0.1:40000", "10.0.0.2:50000",
     True, ("server", GET), "10.0.0.1:40000", False),
]  # fmt: skip


def _capture(tmp_path: Path, client: str, server: str, handshake: bool, first: tuple[str, bytes]) -> Path:
    conv = Conversation(client, server)
    if handshake:
        conv.handshake()
    side, payload = first
    conv.send(side, payload)
    if side == "client" and payload == GET:
        conv.send("server", OK)
    return conv.write(tmp_path / "midstream.pcap")


@pytest.mark.parametrize(("name", "client", "server", "handshake", "first", "expected", "turned"),
                         CASES, ids=[c[0] for c in CASES])  # fmt: skip
def test_who_is_the_client(
    tmp_path: Path, name: str, client: str, server: str, handshake: bool,
    first: tuple[str, bytes], expected: str, turned: bool,
) -> None:  # fmt: skip
    path = _capture(tmp_path, client, server, handshake, first)
    records = [record for step in track(osilab.read(path)) for record in step.ended]
    assert len(records) == 1
    record = records[0]
    assert str(record.key.client) == expected
    assert record.reoriented is turned
    assert record.midstream is not handshake
    side, payload = first
    sent_by_client = (side == "client") == (str(record.key.client) == client)
    assert (record.payload_to_server if sent_by_client else record.payload_to_client) == len(payload)


def test_a_turned_flow_pairs_request_and_response(tmp_path: Path, tshark: str) -> None:
    path = _capture(tmp_path, "10.0.0.1:40000", "10.0.0.2:50000", False, ("client", GET))
    messages = list(iter_http(osilab.read(path)))
    request = next(m for m in messages if isinstance(m, HttpRequest))
    response = next(m for m in messages if isinstance(m, HttpResponse))
    assert str(request.flow.client) == "10.0.0.1:40000" and response.index == request.index == 0
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", "http.request", "-T", "fields", "-e", "ip.src",
         "-e", "tcp.srcport"], capture_output=True, text=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert out == ["10.0.0.1", "40000"]  # tshark's request sender is osilab's client

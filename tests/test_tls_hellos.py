"""ClientHellos in more places: after a STARTTLS upgrade, in SSL 2.0 format, and in DTLS.

Each case is a conversation built here (a TCP connection with its handshake, or UDP
datagrams) and written to a pcap; tshark reads the same file and the server name (SNI)
osilab's ``osilab tls`` view reports must be the one tshark finds
(``tls.handshake.extensions_server_name`` / ``dtls.handshake.extensions_server_name``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, Ether  # type: ignore[attr-defined]
from scapy.utils import PcapWriter  # type: ignore[import-untyped]
from shared_paths import SHARED
from tshark_oracle import tshark_fields

import osilab
from osilab.commands.tls import hellos
from osilab.pipeline import conversations

CLIENT, SERVER = "198.51.100.7", "203.0.113.10"


def client_hello(sni: str, *, dtls: int | None = None) -> bytes:
    """A ClientHello handshake message with one cipher suite and an SNI extension; for DTLS
    (``dtls`` = the version to offer) with the cookie and DTLS's handshake header."""
    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    extensions = struct.pack("!HH", 0, len(server_name)) + server_name
    if dtls == 0xFEFC:  # DTLS 1.3 says so in supported_versions (RFC 9147 §5.3)
        extensions += struct.pack("!HHBH", 43, 3, 2, 0xFEFC)
    legacy = (0xFEFD if dtls == 0xFEFC else dtls) if dtls else 0x0303
    cookie = b"\x00" if dtls else b""
    body = (struct.pack("!H", legacy) + bytes(32) + b"\x00" + cookie + struct.pack("!HH", 2, 0x1301)
            + b"\x01\x00" + struct.pack("!H", len(extensions)) + extensions)
    if dtls:
        size = len(body).to_bytes(3, "big")
        return b"\x01" + size + b"\x00\x00" + b"\x00\x00\x00" + size + body
    return b"\x01" + len(body).to_bytes(3, "big") + body


def tls_record(message: bytes) -> bytes:
    return b"\x16\x03\x01" + struct.pack("!H", len(message)) + message


def dtls_record(message: bytes, version: int) -> bytes:
    return b"\x16" + struct.pack("!H", 0xFEFF if version == 0xFEFF else 0xFEFD) + bytes(8) \
        + struct.pack("!H", len(message)) + message


SERVER_HELLO = tls_record(b"\x02\x00\x00\x26\x03\x03" + bytes(32) + b"\x00\x13\x01\x00")

#: protocol -> (server port, [(who, bytes), ...] before the ClientHello)
STARTTLS = {
    "smtp": (25, [("s", b"220 mx.example ESMTP\r\n"), ("c", b"EHLO c.example\r\n"),
                  ("s", b"250-mx.example\r\n250 STARTTLS\r\n"), ("c", b"STARTTLS\r\n"),
                  ("s", b"220 2.0.0 Ready to start TLS\r\n")]),
    "imap": (143, [("s", b"* OK IMAP4rev1 ready\r\n"), ("c", b"a001 STARTTLS\r\n"),
                   ("s", b"a001 OK Begin TLS negotiation now\r\n")]),
    "pop": (110, [("s", b"+OK POP3 ready\r\n"), ("c", b"STLS\r\n"), ("s", b"+OK Begin TLS\r\n")]),
    "ftp": (21, [("s", b"220 FTP ready\r\n"), ("c", b"AUTH TLS\r\n"), ("s", b"234 AUTH TLS OK.\r\n")]),
    "ldap": (389, [("c", bytes.fromhex("301d02010177188016") + b"1.3.6.1.4.1.1466.20037"),
                   ("s", bytes.fromhex("300c02010178070a010004000400"))]),
    "xmpp": (5222, [("c", b"<?xml version='1.0'?><stream:stream to='x.example' xmlns='jabber:client' "
                          b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"),
                    ("s", b"<?xml version='1.0'?><stream:stream from='x.example' id='1' version='1.0' "
                          b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
                          b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
                          b"</starttls></stream:features>"),
                    ("c", b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
                    ("s", b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")]),
    "mysql": (3306, [("s", bytes.fromhex("4a0000000a382e302e3330000c000000") + bytes(8) + b"\x00"
                           + bytes.fromhex("ffff210200ffdf15") + bytes(10) + bytes(13)
                           + b"caching_sha2_password\x00"),
                     ("c", bytes.fromhex("20000001") + struct.pack("<IIB", 0x00AFAA05 | 0x800, 1 << 24, 255)
                           + bytes(23))]),
}


def _tcp_pcap(path: Path, port: int, exchange: list[tuple[str, bytes]]) -> None:
    seq = {"c": 1000, "s": 5000}
    ends = {"c": (CLIENT, 40000, SERVER, port), "s": (SERVER, port, CLIENT, 40000)}
    frames = []

    def segment(who: str, flags: str, payload: bytes = b"") -> None:
        src, sport, dst, dport = ends[who]
        other = "s" if who == "c" else "c"
        frames.append(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags,
                                                           seq=seq[who], ack=seq[other]) / payload)
        seq[who] += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    segment("c", "S")
    segment("s", "SA")
    segment("c", "A")
    for who, payload in exchange:
        segment(who, "PA", payload)
    with PcapWriter(str(path), linktype=1, sync=True) as writer:
        for frame in frames:
            writer.write(frame)


def _osilab_sni(path: Path) -> list[str | None]:
    return [entry["sni"] for entry in hellos(conversations(osilab.read(path)))]


@pytest.mark.parametrize("protocol", sorted(STARTTLS))
def test_starttls_client_hello_found(tmp_path: Path, tshark: str, protocol: str) -> None:
    port, exchange = STARTTLS[protocol]
    sni = f"{protocol}.example.org"
    path = tmp_path / f"{protocol}.pcap"
    _tcp_pcap(path, port, [*exchange, ("c", tls_record(client_hello(sni))), ("s", SERVER_HELLO)])
    theirs = [row[0] for row in tshark_fields(path, "tls.handshake.extensions_server_name") if row[0]]
    assert theirs == [sni], f"tshark should find the {protocol} upgrade's hello"
    assert _osilab_sni(path) == theirs
    # without the upgrade request the same bytes are not TLS for osilab (nor for the server)
    plain = [(who, data) for who, data in exchange if b"STARTTLS" not in data.upper() and b"STLS" not in data
             and b"AUTH TLS" not in data and b"1466.20037" not in data and data[:4] != b"\x20\x00\x00\x01"]
    if protocol not in ("xmpp",):
        _tcp_pcap(path, port, [*plain, ("c", tls_record(client_hello(sni)))])
        assert _osilab_sni(path) == []


def test_sslv2_client_hello(tmp_path: Path, tshark: str) -> None:
    """An SSL 2.0 CLIENT-HELLO: its version and cipher specs; SSL 2.0 has no SNI."""
    specs = bytes.fromhex("0100800700c0030080")  # SSL_CK_RC4_128_WITH_MD5 and two more
    body = b"\x01" + struct.pack("!HHHH", 0x0002, len(specs), 0, 16) + specs + bytes(range(16))
    record = struct.pack("!H", 0x8000 | len(body)) + body
    path = tmp_path / "sslv2.pcap"
    _tcp_pcap(path, 443, [("c", record)])
    rows = tshark_fields(path, "tls.handshake.type", "tls.record.version", "tls.handshake.cipherspec")
    (row,) = [r for r in rows if r[0]]
    messages = [m.message for m in conversations(osilab.read(path)) if m.message.protocol == "tls"]
    (hello,) = messages
    assert hello.fields["handshake.version"] == int(row[1], 16) == 2
    assert len(hello.fields["handshake.cipherspecs"]) == len(row[2].split(",")) == 3
    assert hello.message is not None and hello.message.server_name is None
    (entry,) = hellos(conversations(osilab.read(path)))
    assert entry["sni"] is None and entry["version"] == "SSL 2.0"


def test_sslv2_capture_from_zeek(tshark: str) -> None:
    path = SHARED / "captures" / "tunnels" / "zeek" / "tls-ssl-v2.pcap"
    if not path.exists():
        pytest.skip("the shared tunnel captures are not here")
    (entry,) = hellos(conversations(osilab.read(path)))
    assert entry["version"] == "SSL 2.0" and entry["sni"] is None


@pytest.mark.parametrize("version", [0xFEFF, 0xFEFD, 0xFEFC])
def test_dtls_client_hello(tmp_path: Path, tshark: str, version: int) -> None:
    sni = f"dtls{version:x}.example.org"
    path = tmp_path / "dtls.pcap"
    datagram = dtls_record(client_hello(sni, dtls=version), version)
    with PcapWriter(str(path), linktype=1, sync=True) as writer:
        writer.write(Ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=40000, dport=4433) / datagram)
    rows = tshark_fields(path, "frame.protocols", "dtls.handshake.extensions_server_name",
                         options=("-d", "udp.port==4433,dtls"))
    assert rows[0][1] == sni and rows[0][0].endswith(":dtls")
    (entry,) = hellos(conversations(osilab.read(path)))
    assert entry["sni"] == sni
    assert entry["version"] == {0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3"}[version]
    (pkt,) = list(osilab.read(path))
    assert pkt.names()[-1] == "dtls" and pkt["dtls"]["handshake.extensions_server_name"] == sni

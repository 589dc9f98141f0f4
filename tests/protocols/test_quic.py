"""QUIC (RFC 9000, v2 RFC 9369): Initial decryption from the RFC test vectors, tshark's
layers and SNI on every third-party QUIC capture, and HTTP/3 through a key log.

The HTTP/3 capture is made here by aioquic's sans-IO ``QuicConnection`` (client and server
in one process, the datagrams written as a pcap with the client's key log): what its
server answered is the oracle for ``osilab http``, and tshark (which reads QUIC and its
TLS with the key log) the oracle for the layers.
"""

from __future__ import annotations

import datetime
import json
import ssl
import struct
from pathlib import Path

import pytest
from shared_paths import THIRDPARTY
from test_layers_vs_tshark import _ours
from tshark_oracle import (
    frame_protocols,
    frame_protocols_per_hop,
    quic_stream_repeats,
    to_osilab_names,
    tshark_fields,
)

import osilab
from osilab.pipeline import annotate, conversations, iter_http
from osilab.pipeline.http import paired
from osilab.protocols import Direction
from osilab.protocols._quic_crypto import QUIC_VERSIONS, decode_packet_number, initial_keys
from osilab.protocols.quic import (
    QuicConnection,
    QuicConnections,
    QuicDatagram,
    QuicParser,
    looks_like_quic,
    parse_datagram,
    parse_frames,
)
from osilab.protocols.tls import ClientHello, parse_client_hello

DCID = bytes.fromhex("8394c8f03e515708")

#: RFC 9001 Appendix A.2 (v1) and RFC 9369 Appendix A.2 (v2): the client's Initial packet,
#: protected, as the RFCs print it; its plaintext is the CRYPTO frame of a ClientHello
#: (SNI example.com, ALPN "alpn") padded to 1162 bytes.
V1_CLIENT_INITIAL = bytes.fromhex(
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934"
)
V2_CLIENT_INITIAL = bytes.fromhex(
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc"
)

#: (name, version, protected packet, client key, client iv, client hp, the unprotected
#: header the RFC prints): RFC 9001 A.1-A.2 and RFC 9369 A.1-A.2.
INITIAL_CASES = [
    ("RFC 9001 A.2 (v1)", 0x00000001, V1_CLIENT_INITIAL, "1f369613dd76d5467730efcbe3b1a22d",
     "fa044b2f42a3fd3b46fb255c", "9f50449e04a0e810283a1e9933adedd2",
     "c300000001088394c8f03e5157080000449e00000002"),
    ("RFC 9369 A.2 (v2)", 0x6B3343CF, V2_CLIENT_INITIAL, "8b1a0bc121284290a29e0971b5cd045d",
     "91f73e2351d8fa91660e909f", "45b95e15235d6f45a6b19cbcb0294ba9",
     "d36b3343cf088394c8f03e5157080000449e00000002"),
]


@pytest.mark.parametrize(("name", "version", "packet", "key", "iv", "hp", "header"), INITIAL_CASES,
                         ids=[c[0] for c in INITIAL_CASES])  # fmt: skip
def test_initial_packet_from_the_rfc(name, version, packet, key, iv, hp, header):
    """Derive the keys, remove header protection, decrypt, find the ClientHello."""
    client, _ = initial_keys(QUIC_VERSIONS[version], DCID)
    assert (client.key.hex(), client.iv.hex(), client.hp.hex()) == (key, iv, hp)
    [parsed] = parse_datagram(packet)
    assert (parsed.packet_type, parsed.version, parsed.dcid, parsed.scid) == ("Initial", version, DCID, b"")
    plain_header, number, payload = client.unprotect(packet, parsed.pn_offset, True)
    assert plain_header.hex() == header
    assert number == 2  # the RFCs' packet number, 4 bytes long once unprotected
    frames = parse_frames(payload)
    assert [f.name for f in frames] == ["CRYPTO", "PADDING"]
    assert frames[1].values == (("length", 917),)
    crypto = frames[0].data
    assert crypto[0] == 1 and int.from_bytes(crypto[1:4], "big") == len(crypto) - 4  # ClientHello
    hello = parse_client_hello(crypto[4:])
    assert (hello.server_name, hello.alpn, hello.version) == ("example.com", ("alpn",), "TLS 1.3")


@pytest.mark.parametrize("packet", [V1_CLIENT_INITIAL, V2_CLIENT_INITIAL], ids=["v1", "v2"])
def test_the_parser_reports_the_hello_as_tls(packet):
    """A datagram of the RFC's packet through :class:`QuicParser`: quic, then tls."""
    quic, tls = QuicParser().feed(Direction.TO_SERVER, packet, 1, 0.0)
    assert quic.protocol == "quic" and isinstance(quic.message, QuicDatagram)
    assert quic.message.packets[0].packet_number == 2
    assert tls.protocol == "tls" and isinstance(tls.message, ClientHello)
    assert tls.message.server_name == "example.com"


def test_a_wrong_key_is_a_note_not_an_exception():
    """One flipped ciphertext byte: the tag fails, the packet says why, nothing raises."""
    broken = bytearray(V1_CLIENT_INITIAL)
    broken[600] ^= 1
    [quic] = QuicParser().feed(Direction.TO_SERVER, bytes(broken), 1, 0.0)
    assert quic.message.packets[0].note.startswith("decryption failed")


@pytest.mark.parametrize(("largest", "truncated", "bits", "full"), [
    (0xA82F30EA, 0x9B32, 16, 0xA82F9B32),  # RFC 9000 Appendix A.3's example
    (-1, 0, 8, 0), (255, 0x00, 8, 256), (0x1FF, 0xFE, 8, 0x1FE),
])  # fmt: skip
def test_packet_numbers(largest, truncated, bits, full):
    assert decode_packet_number(largest, truncated, bits) == full


@pytest.mark.parametrize(("data", "quic"), [
    (V1_CLIENT_INITIAL, True), (V2_CLIENT_INITIAL, True),
    (bytes.fromhex("c0000000ff") + bytes(40), False),  # an unknown version: not claimed
    (bytes.fromhex("4000000001") + bytes(40), False),  # a short header proves nothing
    (b"\x16\xfe\xfd" + bytes(40), False),  # DTLS
])  # fmt: skip
def test_sniffing(data, quic):
    assert looks_like_quic(data) is quic


def _quic_captures() -> list[Path]:
    found = []
    for path in sorted(THIRDPARTY.glob("*/*.pcap*")):
        if "quic" in path.name:
            found.append(path)
    return found


#: The lab's QUIC recording (captures/quic): two hops of each connection, migrations, a key log.
LAB_QUIC = Path(__file__).resolve().parents[2] / "captures" / "quic"


def _every_quic_capture() -> list[tuple[Path, Path | None]]:
    """(capture, key log or None): the third-party set's (no key log: Initials only) and the lab set's."""
    lab = [(path, LAB_QUIC / "keylog.txt") for path in sorted(LAB_QUIC.glob("*.pcapng"))]
    return [(path, None) for path in _quic_captures()] + lab


def _to_quote(names: list[str]) -> list[str]:
    """Rule 1, a datagram quoted in an ICMP error: the layers up to its transport header.

    osilab shows what RFC 792 / RFC 4443 §3 promise a quote holds, the IP header and the
    first 8 bytes (the UDP header); the quote is no part of its flow's stream. Linux quotes
    up to 576 bytes (RFC 1812 §4.3.2.3), and tshark reads them with the live conversation's
    state -- its QUIC connection, even its 1-RTT keys -- so it lists quic (and http3) there.
    """
    for i, name in enumerate(names):
        if name in ("icmp", "icmpv6"):
            for j in range(i + 1, len(names)):
                if names[j] in ("udp", "tcp"):
                    return names[: j + 1]
    return names


def _without_repeated_http3(names: list[str]) -> list[str]:
    """Rule 2, a packet whose STREAM frames all repeat bytes already delivered (tshark's own
    offsets say so: :func:`tshark_oracle.quic_stream_repeats`): tshark 4.0 hands every STREAM
    frame to its HTTP/3 dissector, retransmission or not; osilab shows http3 where new
    stream bytes complete something, as neither shows anything above tcp on a TCP
    retransmission (RFC 9000 §13.3: lost data is sent again at its offset)."""
    return [name for name in names if name != "http3"]


@pytest.mark.tshark
@pytest.mark.parametrize(("path", "keylog"), _every_quic_capture(), ids=lambda v: getattr(v, "name", ""))
def test_layers_above_quic_agree_with_tshark(tshark, path, keylog):
    """Every frame's whole layer stack (tls and http3 above quic, with the key log where
    there is one), tshark reading one hop at a time (:func:`tshark_oracle.hop_files`:
    tshark 4.0 merges one connection's sightings on several hops into one). The only
    differences accepted are the two rules above, each counted."""
    options = ("-o", f"tls.keylog_file:{keylog}") if keylog else ()
    theirs = frame_protocols_per_hop(str(path), options)
    repeats = quic_stream_repeats(str(path), options)
    keys = str(keylog) if keylog else None
    ours = {p.no: _ours([lay.name for lay in p.layers]) for p in annotate(osilab.read(path), keylog=keys)}
    plain = {no: to_osilab_names(protocols) for no, protocols in theirs.items()}
    agree = sum(ours.get(no) == names for no, names in plain.items())
    by_rule = {"quoted": 0, "repeated": 0}
    expected: dict[int, list[str]] = {}
    for no, names in plain.items():
        mine = ours.get(no, [])
        if _to_quote(names) != names:
            names, mine = _to_quote(names), _to_quote(mine)
            by_rule["quoted"] += ours.get(no) != plain[no]
        elif no in repeats:
            names = _without_repeated_http3(names)
            by_rule["repeated"] += ours.get(no) != plain[no]
        expected[no] = names
        ours[no] = mine
    print(f"\nmeasured: {path.name}: {agree}/{len(plain)} frames agree with tshark per hop as they are; "
          f"accepted by rule: {by_rule}")
    assert ours == expected
    assert any("quic" in names for names in ours.values())
    if keylog is not None:  # decrypted: the requests are seen, on every hop that carried them
        assert sum("http3" in names for names in ours.values()) > len(ours) // 4


@pytest.mark.tshark
@pytest.mark.parametrize("path", _quic_captures(), ids=lambda p: p.name)
def test_sni_agrees_with_tshark(tshark, path):
    """The SNI of every connection, as tshark reads it from the Initial's ClientHello."""
    rows = tshark_fields(path, "udp.srcport", "tls.handshake.extensions_server_name",
                         options=("-Y", "tls.handshake.type == 1"))  # fmt: skip
    their_sni = {(int(port), sni) for port, sni in rows}
    our_sni = {(m.flow.client.port, m.message.message.server_name)
               for m in conversations(osilab.read(path)) if isinstance(m.message.message, ClientHello)}  # fmt: skip
    assert our_sni == their_sni and their_sni


# -- HTTP/3 with a key log: aioquic's client and server, in one process --------------------

aioquic = pytest.importorskip("aioquic", reason="aioquic (the dev extra) makes the HTTP/3 capture")


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.example")])
    start = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))  # fmt: skip
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return folder / "cert.pem", folder / "key.pem"


def _udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0x4000, 64, 17, 0,
                     bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split("."))))  # fmt: skip
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + udp + payload


PATHS = ("/items?page=2", "/health", "/items?page=3")
#: The client's address, and where it moves to in the migration capture (RFC 9000 §9).
CLIENT, MOVED, SERVER = ("10.0.0.1", 50000), ("10.0.0.1", 50001), ("10.0.0.2", 443)


def _h3_exchange(folder: Path, migrate: bool) -> tuple[Path, Path, list[tuple[int, str, int, int]]]:
    """aioquic's client and server, in one process: (pcap, key log, what the server
    answered: (stream, path, status, client port it came from)). With ``migrate`` the
    client sends its first request, then moves to a new UDP port with a fresh connection
    ID the server issued (``change_connection_id``, RFC 9000 §9.5) and sends the others."""
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    cert, key = _certificate(folder)
    answered: list[tuple[int, str, int, int]] = []
    with open(folder / "keys.log", "w") as keylog:
        client_config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                          server_name="lab.example", secrets_log_file=keylog)  # fmt: skip
        client_config.verify_mode = ssl.CERT_NONE
        server_config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
        server_config.load_cert_chain(str(cert), str(key))
        client_addr = CLIENT
        client = QuicConnection(configuration=client_config)
        h3_client = H3Connection(client)
        now = 1_700_000_000.0
        client.connect(SERVER, now=now)
        server = h3_server = None
        frames: list[tuple[float, bytes]] = []
        to_send = list(PATHS[:1] if migrate else PATHS)
        for _ in range(80):
            now += 0.01
            moved = False
            for data, _ in client.datagrams_to_send(now=now):
                moved = True
                frames.append((now, _udp_frame(client_addr, SERVER, data)))
                if server is None:
                    server = QuicConnection(configuration=server_config,
                                            original_destination_connection_id=data[6 : 6 + data[5]])  # fmt: skip
                    h3_server = H3Connection(server)
                server.receive_datagram(data, client_addr, now=now)
            if server is not None:
                while (event := server.next_event()) is not None:
                    for h3_event in h3_server.handle_event(event):
                        if isinstance(h3_event, HeadersReceived):
                            path = dict(h3_event.headers)[b":path"].decode()
                            status = 404 if path == "/health" else 200
                            h3_server.send_headers(h3_event.stream_id, [(b":status", str(status).encode())])
                            h3_server.send_data(h3_event.stream_id, b"hello", end_stream=True)
                            answered.append((h3_event.stream_id, path, status, client_addr[1]))
                for data, addr in server.datagrams_to_send(now=now):
                    moved = True
                    frames.append((now, _udp_frame(SERVER, addr, data)))
                    client.receive_datagram(data, SERVER, now=now)
            while (event := client.next_event()) is not None:
                h3_client.handle_event(event)
            if to_send and client._handshake_complete:  # noqa: SLF001 - aioquic has no public flag
                for path in to_send:
                    stream = client.get_next_available_stream_id()
                    h3_client.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"),
                                                    (b":authority", b"lab.example"), (b":path", path.encode()),
                                                    (b"user-agent", b"osilab-test")], end_stream=True)  # fmt: skip
                to_send = []
            elif migrate and not moved and client_addr == CLIENT and answered:
                client_addr = MOVED  # the move: a new port, and a connection ID not used yet
                client.change_connection_id()
                to_send = list(PATHS[1:])
            elif not to_send and not moved and (not migrate or client_addr == MOVED):
                break
    with open(folder / "h3.pcap", "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for time, frame in frames:
            out.write(struct.pack("<IIII", int(time), round((time % 1) * 1e6), len(frame), len(frame)))
            out.write(frame)
    return folder / "h3.pcap", folder / "keys.log", answered


@pytest.fixture(scope="module")
def h3_capture(tmp_path_factory) -> tuple[Path, Path, list[tuple[int, str, int, int]]]:
    """One connection on one flow: (pcap, key log, what the server answered)."""
    return _h3_exchange(tmp_path_factory.mktemp("h3"), migrate=False)


@pytest.fixture(scope="module")
def h3_migration(tmp_path_factory) -> tuple[Path, Path, list[tuple[int, str, int, int]]]:
    """One connection on two flows: the client moves to a new port after its first request."""
    return _h3_exchange(tmp_path_factory.mktemp("h3-migration"), migrate=True)


def test_http3_requests_as_the_server_answered(h3_capture):
    """``iter_http`` with the key log: each request (QPACK-decoded) and its response, as
    the aioquic server saw and answered them."""
    pcap, keylog, answered = h3_capture
    messages = list(iter_http(osilab.read(pcap), keylog=str(keylog)))
    requests = [(m.stream_id, m.target, m.version, m.host, m.header("user-agent"))
                for m in messages if type(m).__name__ == "HttpRequest"]  # fmt: skip
    assert requests == [(s, p, "HTTP/3", "lab.example", "osilab-test") for s, p, _, _ in answered]
    responses = sorted((m.stream_id, m.status, m.version, m.body_length)
                       for m in messages if type(m).__name__ == "HttpResponse")  # fmt: skip
    assert responses == sorted((s, status, "HTTP/3", 5) for s, _, status, _ in answered)


def test_without_the_key_log_only_the_initials_are_read(h3_capture):
    pcap, _, _ = h3_capture
    assert list(iter_http(osilab.read(pcap))) == []
    notes = [p.note for m in conversations(osilab.read(pcap)) if m.message.protocol == "quic"
             for p in m.message.message.packets if p.note]  # fmt: skip
    assert notes and all("key log" in note for note in notes)


def test_http3_after_a_migration(h3_migration):
    """The client moves to a new UDP port mid-connection: its new flow opens with a short
    header (no Initial), whose DCID is one the server issued in NEW_CONNECTION_ID. The
    capture's connection-ID table finds the connection, so its keys and its HTTP/3 state
    (QPACK tables, stream IDs) carry on: one connection, two flows."""
    pcap, keylog, answered = h3_migration
    assert {port for *_, port in answered} == {CLIENT[1], MOVED[1]}, "the exchange did move"
    messages = list(iter_http(osilab.read(pcap), keylog=str(keylog)))
    requests = [(m.stream_id, m.target, m.flow.client.port, m.version)
                for m in messages if type(m).__name__ == "HttpRequest"]  # fmt: skip
    assert requests == [(stream, path, port, "HTTP/3") for stream, path, _, port in answered]
    responses = sorted((m.stream_id, m.status, m.flow.client.port) for m in messages
                       if type(m).__name__ == "HttpResponse")  # fmt: skip
    assert responses == sorted((stream, status, port) for stream, _, status, port in answered)


def test_the_connection_table_is_per_hop():
    """The same connection ID on another hop (pcapng interface) names nothing there: each
    hop's sighting of a connection keeps its own streams."""
    table, connection = QuicConnections(), QuicConnection()
    cid = bytes.fromhex("0b6f73696c61620001f46f66")
    table.add(connection, Direction.TO_SERVER, cid, (0, ""))
    short = bytes([0x41]) + cid + bytes(24)
    assert table.find(short, (0, "")) == (connection, Direction.TO_SERVER)
    assert table.find(short, (1, "")) is None
    assert table.find(bytes([0xC1]) + bytes(40), (0, "")) is None  # a long header: not looked up
    assert len(table) == 1


def test_lab_http3_requests_are_the_servers_log():
    """captures/quic against its servers' own log (truth.json ``requests``: what web1
    answered, the stream and the client address it came from): every logged request is
    read with the key log, on the front hop and on the back hop that carried it, from
    the address the server logged -- those sent after the client's move (behind the
    QUIC-aware balancer) included. The one request stranded behind the 5-tuple balancer
    (never answered, so not in the log) is read on the front hop, with no response."""
    capture = osilab.read(LAB_QUIC / "quic.pcapng")
    truth = json.loads((LAB_QUIC / "truth.json").read_text())
    client = {r["rid"]: r for r in json.loads((LAB_QUIC / "client.json").read_text())}
    hop_of = {path["client"]: path["hop"] for path in truth["quic"]["paths"]}
    seen: dict[tuple[str, str], tuple[str, int, int | None]] = {}
    for request, response in paired(iter_http(capture, keylog=str(LAB_QUIC / "keylog.txt"))):
        assert request.version == "HTTP/3"
        status = response.status if response is not None else None
        seen[request.header("x-request-id"), capture.hop_name(request.flow.interface)] = (
            f"{request.flow.client}", request.stream_id, status)
    logged = truth["requests"]
    assert any(client[rid]["extra"]["migrated"] for rid in logged), "the log has migrated requests"
    for rid, entry in logged.items():
        for hop in ("client-nlb", hop_of[entry["client"]]):
            assert seen.get((rid, hop)) == (entry["client"], entry["stream"], client[rid]["status"]), (rid, hop)
    stranded = truth["quic"]["stranded"]
    assert stranded and all(seen.get((rid, "client-nlb"), ("", 0, 0))[2] is None for rid in stranded)
    assert {rid for rid, _ in seen} == set(client)


@pytest.mark.tshark
@pytest.mark.parametrize("capture", ["h3_capture", "h3_migration"])
def test_http3_layers_agree_with_tshark(tshark, capture, request):
    """With the key log tshark decrypts Handshake and 1-RTT too: quic, tls (the handshake
    messages in CRYPTO frames) and http3 on the same frames as osilab -- after the
    client's move to a new port too (tshark also follows a connection by its IDs)."""
    pcap, keylog, _ = request.getfixturevalue(capture)
    theirs = frame_protocols(str(pcap), ("-o", f"tls.keylog_file:{keylog}"))
    ours = {p.no: _ours([lay.name for lay in p.layers])
            for p in annotate(osilab.read(pcap), keylog=str(keylog))}  # fmt: skip
    assert ours == {no: to_osilab_names(protocols) for no, protocols in theirs.items()}
    assert any("http3" in names for names in ours.values())


@pytest.mark.parametrize("name", ["osilab.protocols.quic", "osilab.protocols._quic_crypto",
                                  "osilab.protocols._varint"])  # fmt: skip
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0

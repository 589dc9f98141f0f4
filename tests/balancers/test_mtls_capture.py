"""Mutual TLS end to end: the client's Certificate message read from a capture reaches the ALB.

The TLS layer reads the Certificate handshake message (RFC 5246 §7.4.2 in the clear in TLS
1.2; RFC 8446 §4.4.2, decrypted with the key log, in TLS 1.3), :func:`osilab.pipeline.iter_http`
tells ``on_certificate`` of each chain a client presents, and :func:`osilab.balancers.replay`
hands it to :meth:`ApplicationLoadBalancer.client_certificate`. The oracle is the lab: the alb
scenario records one connection to HAProxy's ``verify required`` listener (truth.json
``mtls``: the client certificate's subject, whether HAProxy let it in), with the lab CA's PEM
beside the capture as the listener's ``TrustStore``; tshark confirms the Certificate message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography import x509
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, replay
from osilab.balancers.config.formats import load_configs
from osilab.errors import DecodeError
from osilab.lab.configs import client_ca
from osilab.pipeline import iter_http
from osilab.protocols import Direction
from osilab.protocols.tls import TlsParser, parse_certificate

ALB = CAPTURES / "alb" / "alb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"


def _u24(data: bytes) -> bytes:
    return len(data).to_bytes(3, "big") + data


# ------------------------------------------------------------------ the message itself

CERT_A, CERT_B = b"\x30\x03\x02\x01\x01", b"\x30\x03\x02\x01\x02"  # DER-shaped stand-ins
CASES = [
    ("TLS 1.2, two certificates", _u24(_u24(CERT_A) + _u24(CERT_B)), False, (CERT_A, CERT_B)),
    ("TLS 1.2, empty list (no certificate)", _u24(b""), False, ()),
    ("TLS 1.3, context and entry extensions",
     b"\x01\x07" + _u24(_u24(CERT_A) + b"\x00\x02ab" + _u24(CERT_B) + b"\x00\x00"), True,
     (CERT_A, CERT_B)),
    ("TLS 1.3, empty list", b"\x00" + _u24(b""), True, ()),
]  # fmt: skip


@pytest.mark.parametrize(("body", "tls13", "chain"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_certificate_message(body: bytes, tls13: bool, chain: tuple[bytes, ...]) -> None:
    assert parse_certificate(body, tls13) == chain


@pytest.mark.parametrize("body", [_u24(_u24(CERT_A))[:-1], b"\x00\x00", _u24(_u24(CERT_A) + b"\x00")])
def test_cut_short_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError, match="Certificate message cut short"):
        parse_certificate(body, False)


def _handshake(kind: int, body: bytes) -> bytes:
    message = bytes([kind]) + _u24(body)
    return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message


def test_tls12_client_certificate_in_the_clear() -> None:
    """TLS 1.2: the client's Certificate follows the ServerHelloDone unencrypted; the
    server's own Certificate is reported too, but only the client's is the mTLS chain."""
    client_hello = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\xc0\x2f" + b"\x01\x00" + b"\x00\x00"
    server_hello = b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x00"
    parser = TlsParser()
    parser.feed(Direction.TO_SERVER, _handshake(1, client_hello), 1, 0.0)
    back = parser.feed(Direction.TO_CLIENT, _handshake(2, server_hello) + _handshake(11, _u24(_u24(CERT_B))), 2, 0.0)
    sent = parser.feed(Direction.TO_SERVER, _handshake(11, _u24(_u24(CERT_A))), 3, 0.0)
    assert [m.fields.get("handshake.certificates") for m in back] == [None, (CERT_B,)]
    assert [m.fields.get("handshake.certificates") for m in sent] == [(CERT_A,)]
    assert "Certificate" in sent[0].summary and sent[0].damaged is None


# ------------------------------------------------------------------ the lab capture


def _lab() -> dict:
    truth = ALB.parent / "truth.json"
    if not ALB.exists() or not truth.exists():
        pytest.skip(f"the lab capture {ALB} is not recorded (osilab lab record)")
    document = json.loads(truth.read_text())
    if "mtls" not in document:
        pytest.skip(f"{truth} predates the mTLS listener (re-record the alb scenario)")
    return document


def _config(tmp_path: Path, mode: str) -> Path:
    """The lab's own alb.config.json, the mTLS listener set to ``mode``, beside its trust store."""
    config = json.loads((ALB.parent / "alb.config.json").read_text())
    for listener in config["Listeners"]:
        if "MutualAuthentication" in listener:
            listener["MutualAuthentication"]["Mode"] = mode
    shutil.copy(ALB.parent / "alb-client-ca.pem", tmp_path / "alb-client-ca.pem")
    path = tmp_path / "alb.config.json"
    path.write_text(json.dumps(config))
    return path


def _mtls_decisions(tmp_path: Path, mode: str, port: int) -> dict[str, dict[str, str]]:
    config, _ = load_configs([_config(tmp_path, mode)], lb="alb")
    result = replay(osilab.read(ALB), ApplicationLoadBalancer(config), interface=0, keylog=str(KEYLOG))
    out = {}
    for decision in result.decisions:
        headers = dict(decision.headers_to_target)
        if decision.listener == f"HTTPS:{port}":
            out[headers.get("X-Request-Id", "?")] = headers
    return out


def test_verify_adds_the_certificate_headers(tmp_path: Path) -> None:
    truth = _lab()["mtls"]
    assert truth["accepted"], "HAProxy refused the lab's own client certificate"
    seen = _mtls_decisions(tmp_path, "verify", truth["port"])
    assert sorted(seen) == sorted(truth["requests"])
    for rid, headers in seen.items():
        assert headers["X-Amzn-Mtls-Clientcert-Subject"] == truth["client_subject"], rid
        assert headers["X-Amzn-Mtls-Clientcert-Issuer"] == "O=osilab lab,CN=osilab lab CA"
        leaf = x509.load_pem_x509_certificate(unquote(headers["X-Amzn-Mtls-Clientcert-Leaf"]).encode())
        assert format(leaf.serial_number, "x") in headers["X-Amzn-Mtls-Clientcert-Serial-Number"].lower()


def test_passthrough_forwards_the_chain(tmp_path: Path) -> None:
    truth = _lab()["mtls"]
    seen = _mtls_decisions(tmp_path, "passthrough", truth["port"])
    assert sorted(seen) == sorted(truth["requests"])
    for headers in seen.values():
        chain = x509.load_pem_x509_certificates(unquote(headers["X-Amzn-Mtls-Clientcert"]).encode())
        assert [c.subject.rfc4514_string() for c in chain] == [truth["client_subject"]]
        assert not any(name.startswith("X-Amzn-Mtls-Clientcert-") for name in headers)


def test_a_certificate_from_another_ca_is_refused(tmp_path: Path) -> None:
    """verify with a trust store of another CA: AWS ends the handshake, so every request of
    the mTLS connection is ``tls-refused`` and none reaches a target."""
    truth = _lab()["mtls"]
    path = _config(tmp_path, "verify")
    (tmp_path / "alb-client-ca.pem").write_bytes(client_ca()[0])  # a fresh, unrelated CA
    config, _ = load_configs([path], lb="alb")
    result = replay(osilab.read(ALB), ApplicationLoadBalancer(config), interface=0, keylog=str(KEYLOG))
    on_port = [d for d in result.decisions if d.listener == f"HTTPS:{truth['port']}"]
    assert len(on_port) == len(truth["requests"])
    assert [d.action for d in on_port] == ["tls-refused"] * len(truth["requests"])
    assert result.accounting["tls-refused"] == len(truth["requests"])


def test_tshark_agrees_on_the_client_certificate() -> None:
    truth = _lab()["mtls"]
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    chains: list[tuple[str, tuple[bytes, ...]]] = []
    for _ in iter_http(osilab.read(ALB).on_interface(0), keylog=str(KEYLOG),
                       on_certificate=lambda flow, chain: chains.append((str(flow), chain))):  # fmt: skip
        pass
    fields = subprocess.run(
        ["tshark", "-r", str(ALB), "-o", f"tls.keylog_file:{KEYLOG}", "-Y",
         f"frame.interface_id == 0 && tls.handshake.type == 11 && tcp.dstport == {truth['port']}",
         "-T", "fields", "-e", "tls.handshake.certificate"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split()  # fmt: skip
    assert len(fields) == len(chains) == 1  # one mTLS connection, one chain
    assert [bytes.fromhex(der.replace(":", "")) for der in fields[0].split(",")] == list(chains[0][1])

"""Mutual TLS (issue 17, item 4): passthrough and verify, with certificates built in the test.

The chain reaches the model through :meth:`ApplicationLoadBalancer.client_certificate`
(what the TLS layer's client Certificate message carries). No bundled capture records an
mTLS connection yet (recording one changes the captures many tests count from), so the
certificates here are generated: a CA, a client it issued, and a stranger it did not.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from balancers.balancer_helpers import alb_config, flow, request
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from osilab.balancers import ApplicationLoadBalancer
from osilab.errors import ConfigError

NOW = 1_700_000_000.0
START = datetime.datetime.fromtimestamp(NOW - 86400, datetime.UTC)
END = datetime.datetime.fromtimestamp(NOW + 86400 * 30, datetime.UTC)


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osilab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _cert(
    subject: str,
    issuer: str,
    key: Any,
    signer: Any,
    *,
    ca: bool,
    start=START,
    end=END,
    serial: int = 0x1A2B,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(serial).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> dict[str, x509.Certificate]:
    ca_key, client_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    return {
        "ca": _cert("Lab CA", "Lab CA", ca_key, ca_key, ca=True),
        "client": _cert("client.example.com", "Lab CA", client_key, ca_key, ca=False),
        "stranger": _cert("stranger", "Other CA", other_key, other_key, ca=False),
        "expired": _cert(
            "old",
            "Lab CA",
            client_key,
            ca_key,
            ca=False,
            start=START - datetime.timedelta(days=400),
            end=START,
        ),
    }


def _alb(
    tmp_path: Path, pki: dict[str, x509.Certificate], mode: str, **extra: Any
) -> ApplicationLoadBalancer:
    (tmp_path / "ca.pem").write_bytes(pki["ca"].public_bytes(Encoding.PEM))
    config = alb_config()
    config["Listeners"][0].update(
        {
            "Protocol": "HTTPS",
            "Port": 443,
            "MutualAuthentication": {"Mode": mode, "TrustStore": "ca.pem", **extra},
        }
    )
    path = tmp_path / "alb.json"
    path.write_text(json.dumps(config))
    return ApplicationLoadBalancer(str(path))


def _decide(alb: ApplicationLoadBalancer, chain: list[x509.Certificate] | None):
    on = flow(server_port=443)
    if chain is not None:
        alb.client_certificate(on, [c.public_bytes(Encoding.DER) for c in chain])
    return alb.request(request("/", on=on))


def test_passthrough_sends_the_chain_unverified(
    tmp_path: Path, pki: dict[str, x509.Certificate]
) -> None:
    decision = _decide(_alb(tmp_path, pki, "passthrough"), [pki["stranger"]])
    headers = dict(decision.headers_to_target)
    pem = unquote(headers["X-Amzn-Mtls-Clientcert"])
    assert x509.load_pem_x509_certificate(pem.encode()) == pki["stranger"]  # untrusted, passed on
    assert (
        "%0A" in headers["X-Amzn-Mtls-Clientcert"]
        and "+" not in unquote(headers["X-Amzn-Mtls-Clientcert"]).split("-----")[0]
    )
    assert "passthrough" in decision.why and decision.forwarded


VERIFY = [
    # (chain, forwarded?, what the why says)
    (["client"], True, "is trusted"),
    (["client", "ca"], True, "is trusted"),
    (["stranger"], False, "no CA of the trust store"),
    (["expired"], False, "not valid at the capture's time"),
    ([], False, "sent no certificate"),
]


@pytest.mark.parametrize(("chain", "forwarded", "said"), VERIFY)
def test_verify_mode(
    tmp_path: Path, pki: dict[str, x509.Certificate], chain: list[str], forwarded: bool, said: str
) -> None:
    decision = _decide(_alb(tmp_path, pki, "verify"), [pki[name] for name in chain])
    assert decision.forwarded is forwarded and said in decision.why
    if not forwarded:
        assert (decision.action, decision.status) == ("tls-refused", None)
        return
    headers = dict(decision.headers_to_target)
    assert headers["X-Amzn-Mtls-Clientcert-Serial-Number"] == "1A2B"
    assert headers["X-Amzn-Mtls-Clientcert-Subject"] == "CN=client.example.com,O=osilab"
    assert headers["X-Amzn-Mtls-Clientcert-Issuer"] == "CN=Lab CA,O=osilab"
    assert (
        headers["X-Amzn-Mtls-Clientcert-Validity"]
        == "NotBefore=2023-11-13T22:13:20Z;NotAfter=2023-12-14T22:13:20Z"
    )
    assert (
        x509.load_pem_x509_certificate(unquote(headers["X-Amzn-Mtls-Clientcert-Leaf"]).encode())
        == pki["client"]
    )


def test_ignore_expiry_and_renamed_headers(
    tmp_path: Path, pki: dict[str, x509.Certificate]
) -> None:
    alb = _alb(tmp_path, pki, "verify", IgnoreClientCertificateExpiry=True)
    assert _decide(alb, [pki["expired"]]).forwarded
    config = json.loads((tmp_path / "alb.json").read_text())
    config["Listeners"][0]["Attributes"] = {
        "routing.http.request.x_amzn_mtls_clientcert_subject.header_name": "X-Client-Subject"
    }
    (tmp_path / "alb.json").write_text(json.dumps(config))
    headers = dict(
        _decide(
            ApplicationLoadBalancer(str(tmp_path / "alb.json")), [pki["client"]]
        ).headers_to_target
    )
    assert (
        headers["X-Client-Subject"] == "CN=client.example.com,O=osilab"
        and "X-Amzn-Mtls-Clientcert-Subject" not in headers
    )


def test_unknown_handshake_is_said_not_guessed(
    tmp_path: Path, pki: dict[str, x509.Certificate]
) -> None:
    decision = _decide(_alb(tmp_path, pki, "verify"), None)
    assert (
        decision.forwarded and "does not show this connection's client Certificate" in decision.why
    )


@pytest.mark.parametrize(
    ("listener", "message"),
    [
        (
            {"Protocol": "HTTP", "Port": 80, "MutualAuthentication": {"Mode": "passthrough"}},
            "needs an HTTPS listener",
        ),
        (
            {
                "Protocol": "HTTPS",
                "Port": 443,
                "MutualAuthentication": {
                    "Mode": "verify",
                    "TrustStoreArn": "arn:aws:elasticloadbalancing:x",
                },
            },
            "cannot fetch TrustStoreArn",
        ),
        (
            {"Protocol": "HTTPS", "Port": 443, "MutualAuthentication": {"Mode": "strict"}},
            "Mode is one of",
        ),
    ],
)
def test_mutual_authentication_config(listener: dict[str, Any], message: str) -> None:
    from osilab.balancers.config import parse_config

    config = alb_config()
    config["Listeners"][0].update(listener)
    with pytest.raises(ConfigError, match=message):
        parse_config(config)

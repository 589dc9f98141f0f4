"""Mutual TLS at an ALB: the client's certificate, passed through or verified.

Theory of operation
-------------------
An HTTPS listener's ``MutualAuthentication.Mode`` is ``off``, ``passthrough`` or
``verify`` (Nov 2023; ``lb-reference.md`` §6, [ALB-UG mutual-authentication]):

``passthrough``
    The ALB does not check the client's certificate chain; it sends the whole chain to
    the target in ``X-Amzn-Mtls-Clientcert``, URL-encoded PEM (``+``, ``=``, ``/`` kept).
``verify``
    The ALB checks the chain against its trust store while it negotiates TLS. A client
    without a certificate, or with one no trusted CA issued (or expired, unless
    ``IgnoreClientCertificateExpiry``), never finishes the handshake: no HTTP request
    reaches any target. A verified client's requests carry
    ``X-Amzn-Mtls-Clientcert-Serial-Number`` (hex), ``-Issuer`` and ``-Subject`` (RFC
    2253 / RFC 4514 strings), ``-Validity`` (``NotBefore=...;NotAfter=...``, ISO 8601)
    and ``-Leaf`` (the leaf, URL-encoded PEM).

The certificate comes from the client's ``Certificate`` handshake message (RFC 8446
§4.4.2; RFC 5246 §7.4.6), which :mod:`osilab.protocols.tls` reads: in the clear in TLS
1.2, decrypted with the key log in TLS 1.3. :func:`client_headers` turns a chain (DER
certificates, leaf first) into the headers and the sentence of the decision's why, or
the reason the handshake would have been refused. Times are the capture's. The listener's
``routing.http.request.*.header_name`` attributes rename these headers.

This module knows certificates and the listener's configuration, nothing of packets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from osilab.balancers.config.model import MutualAuthentication

__all__ = ["MtlsOutcome", "client_headers", "url_pem"]

CLIENTCERT = "X-Amzn-Mtls-Clientcert"


@dataclass(frozen=True, slots=True)
class MtlsOutcome:
    """What mTLS adds to a request's headers, or why the handshake was refused."""

    headers: tuple[tuple[str, str], ...] = ()
    refused: str | None = None
    why: str = ""


def url_pem(certificates: Sequence[x509.Certificate]) -> str:
    """The certificates as PEM, URL-encoded with ``+``, ``=`` and ``/`` kept (AWS's form)."""
    pem = b"".join(cert.public_bytes(Encoding.PEM) for cert in certificates)
    return quote(pem.decode("ascii"), safe="+=/")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _trust_problem(
    chain: Sequence[x509.Certificate], mtls: MutualAuthentication, now: float
) -> str | None:
    """Why verify mode refuses the chain, or ``None`` when a trusted CA issued it."""
    anchors = [x509.load_der_x509_certificate(der) for der in mtls.trust_store]
    moment = datetime.fromtimestamp(now, UTC)
    for cert in chain:
        if not mtls.ignore_expiry and not (
            cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc
        ):
            return (
                f"certificate {cert.subject.rfc4514_string()} is not valid at the capture's "
                f"time (valid {_iso(cert.not_valid_before_utc)} to {_iso(cert.not_valid_after_utc)})"
            )
    current = chain[0]
    intermediates = list(chain[1:])
    for _ in range(len(chain) + 1):
        if any(_issued_by(current, anchor) for anchor in anchors):
            return None
        parent = next((c for c in intermediates if _issued_by(current, c)), None)
        if parent is None:
            break
        intermediates.remove(parent)
        current = parent
    return (
        f"no CA of the trust store {mtls.trust_store_source} issued "
        f"{chain[0].subject.rfc4514_string()} (issuer {chain[0].issuer.rfc4514_string()})"
    )


def _renamed(
    headers: list[tuple[str, str]], renamed: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    names = {old.lower(): new for old, new in renamed}
    return tuple((names.get(name.lower(), name), value) for name, value in headers)


def client_headers(
    mtls: MutualAuthentication,
    chain: Sequence[bytes] | None,
    now: float,
    renamed: Sequence[tuple[str, str]] = (),
) -> MtlsOutcome:
    """The mTLS headers for a request whose connection presented ``chain`` (DER, leaf first).

    ``chain`` is ``None`` when the capture did not show the handshake (or it could not be
    decrypted), ``()`` when the client sent an empty Certificate message.
    """
    if mtls.mode == "off":
        return MtlsOutcome()
    if chain is None:
        return MtlsOutcome(
            why=f"; mutual TLS ({mtls.mode}): the capture does not show this connection's client Certificate message, so no X-Amzn-Mtls-* header is modelled"
        )
    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    if mtls.mode == "passthrough":
        if not certificates:
            return MtlsOutcome(
                why="; mutual TLS passthrough: the client sent no certificate, so no X-Amzn-Mtls-Clientcert"
            )
        headers = [(CLIENTCERT, url_pem(certificates))]
        return MtlsOutcome(
            _renamed(headers, renamed),
            why=f"; mutual TLS passthrough: the client's chain of {len(certificates)} certificate(s) ({certificates[0].subject.rfc4514_string()}) goes to the target unverified in {CLIENTCERT}",
        )
    if not certificates:
        return MtlsOutcome(
            refused="in mutual TLS verify mode the client sent no certificate, so the ALB ends the TLS handshake and no request reaches a target"
        )
    problem = _trust_problem(certificates, mtls, now)
    if problem is not None:
        return MtlsOutcome(
            refused=f"in mutual TLS verify mode {problem}, so the ALB ends the TLS handshake and no request reaches a target"
        )
    leaf = certificates[0]
    serial = f"{leaf.serial_number:X}"
    headers = [
        (f"{CLIENTCERT}-Serial-Number", serial if len(serial) % 2 == 0 else "0" + serial),
        (f"{CLIENTCERT}-Issuer", leaf.issuer.rfc4514_string()),
        (f"{CLIENTCERT}-Subject", leaf.subject.rfc4514_string()),
        (f"{CLIENTCERT}-Validity", f"NotBefore={_iso(leaf.not_valid_before_utc)};NotAfter={_iso(leaf.not_valid_after_utc)}"),
        (f"{CLIENTCERT}-Leaf", url_pem([leaf])),
    ]  # fmt: skip
    return MtlsOutcome(
        _renamed(headers, renamed),
        why=f"; mutual TLS verify: {leaf.subject.rfc4514_string()} is trusted by {mtls.trust_store_source}, so the target gets the X-Amzn-Mtls-Clientcert-* headers",
    )

"""An HTTPS listener's extras: mutual TLS and the header-modification attributes.

- ``MutualAuthentication`` (Nov 2023, ``lb-reference.md`` §6): ``off``, ``passthrough``
  (the client's chain goes to the target in ``X-Amzn-Mtls-Clientcert``) or ``verify``
  (checked against a trust store; osilab reads it from the PEM file named by
  ``TrustStore``, since it cannot fetch ``TrustStoreArn`` from AWS);
- header modification [ALB-UG header-modification]: ``routing.http.response.*.header_value``
  adds a response header (HSTS, CORS, CSP...), ``routing.http.response.server.enabled``
  keeps or drops ``Server``, ``routing.http.request.*.header_name`` renames the mTLS and
  TLS headers the ALB adds to requests.

This module is a part of :mod:`osilab.balancers.config.parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from osilab.balancers.config.model import MutualAuthentication
from osilab.balancers.config.readers import Context, as_bool, check_keys
from osilab.errors import ConfigError

__all__ = ["MTLS_MODES", "mutual_authentication", "header_modification"]

MTLS_MODES = ("off", "passthrough", "verify")
_MTLS_KEYS = {"Mode", "TrustStore", "TrustStoreArn", "IgnoreClientCertificateExpiry",
              "TrustStoreAssociationStatus", "AdvertiseTrustStoreCaNames"}  # fmt: skip


def mutual_authentication(
    obj: Mapping[str, Any], protocol: str, where: str, context: Context
) -> MutualAuthentication:
    """``MutualAuthentication`` (HTTPS only); verify reads the PEM file named by ``TrustStore``."""
    raw = obj.get("MutualAuthentication")
    if raw is None:
        return MutualAuthentication()
    raw = check_keys(raw, _MTLS_KEYS, f"{where} MutualAuthentication")
    mode = str(raw.get("Mode", "off")).lower()
    if mode not in MTLS_MODES:
        raise ConfigError(f"{where}: MutualAuthentication.Mode is one of {', '.join(MTLS_MODES)}")
    if mode != "off" and protocol != "HTTPS":
        raise ConfigError(f"{where}: mutual TLS needs an HTTPS listener")
    for key, why in (
        ("TrustStoreArn", "osilab reads the trust store from the PEM file in MutualAuthentication.TrustStore"),
        ("TrustStoreAssociationStatus", "an inventory fact"),
        ("AdvertiseTrustStoreCaNames", "the model reads the handshake, it does not send a CertificateRequest"),
    ):  # fmt: skip
        if key in raw:
            context.warn(f"MutualAuthentication.{key}", why)
    if mode != "verify":
        return MutualAuthentication(mode)
    source = raw.get("TrustStore")
    if not isinstance(source, str) or not source:
        raise ConfigError(
            f"{where}: verify mode needs a trust store; osilab cannot fetch TrustStoreArn from "
            "AWS, so name the CA bundle's PEM file in MutualAuthentication.TrustStore"
        )
    from cryptography import x509  # (imported here: only a verify-mode listener needs it)
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        certificates = x509.load_pem_x509_certificates(context.read(source, "TrustStore"))
    except ValueError as exc:
        raise ConfigError(
            f"{where}: TrustStore {source!r} is not a PEM CA bundle ({exc})"
        ) from None
    ignore = raw.get("IgnoreClientCertificateExpiry", False)
    return MutualAuthentication(
        mode,
        tuple(cert.public_bytes(Encoding.DER) for cert in certificates),
        source,
        ignore is True or str(ignore).lower() == "true",
    )


def _header_name(attribute_part: str) -> str:
    """``strict_transport_security`` -> ``Strict-Transport-Security``."""
    return "-".join(word.capitalize() for word in attribute_part.split("_"))


def header_modification(
    attrs: Mapping[str, str], where: str
) -> tuple[tuple[tuple[str, str], ...], bool, tuple[tuple[str, str], ...]]:
    """(response headers added, Server kept, request headers renamed) from the listener's
    header-modification attributes [ALB-UG header-modification]."""
    added, renamed = [], []
    for key, value in attrs.items():
        parts = key.split(".")
        if key.startswith("routing.http.response.") and parts[-1] == "header_value":
            added.append((_header_name(parts[3]), value))
        elif key.startswith("routing.http.request.") and parts[-1] == "header_name":
            if not value or not value.replace("-", "").isalnum():
                raise ConfigError(f"{where}: {key} must be a header name, not {value!r}")
            renamed.append((_header_name(parts[3]), value))
    key = "routing.http.response.server.enabled"
    server = as_bool(attrs.get(key, "true"), key, where)
    return tuple(added), server, tuple(renamed)

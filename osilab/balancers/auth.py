"""Who is asking: the ALB's ``jwt-validation`` and ``authenticate-oidc``/``-cognito`` actions.

Theory of operation
-------------------
On an HTTPS listener a rule may check the client before its terminal action; the
actions run in ascending ``Order`` and each check either lets the request go on to the
next action or answers by itself (``lb-reference.md`` §1.3, §6):

``jwt-validation`` [ALB-UG listener-verify-jwt]
    The token is the ``Authorization: Bearer <JWT>`` header. The ALB checks the
    signature (RS256 only) with the keys of the configured JWKS, then the claims:
    ``iss`` must be the configured Issuer and ``exp`` must be present (both required);
    ``nbf`` and ``iat`` are checked when present; then up to 10 additional claims. A
    valid token is forwarded unchanged; anything else gets **401**. Times are compared
    with the capture's time (the packet where the request's headers were complete),
    never with the clock of the machine that runs osilab. The JWS layout is RFC 7515
    §7.1 (compact serialization), the claims RFC 7519 §4.1.

``authenticate-oidc`` / ``authenticate-cognito`` [ALB-UG listener-authenticate-users]
    A browser with the session cookie (``AWSELBAuthSessionCookie``, or its shards
    ``-0``, ``-1``...) goes on to the next action. Without one, the ALB answers **302**
    to the identity provider's authorization endpoint (``OnUnauthenticatedRequest``
    ``authenticate``, the default), **401** (``deny``), or lets it through (``allow``).
    The model never talks to an identity provider and cannot decrypt AWS's session
    cookie: it takes the cookie's presence as a session.

Every outcome carries the sentence the decision's why uses. This module knows requests,
cookies and keys; nothing of packets or targets.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from cryptography.hazmat.primitives.hashes import SHA256

from osilab.balancers.config.model import Action, AuthenticateConfig, JwtClaim, JwtValidationConfig
from osilab.protocols.messages import HttpRequest

__all__ = ["Check", "bearer_token", "jwt_problem", "check_action"]


@dataclass(frozen=True, slots=True)
class Check:
    """One check action's outcome: go on (``status`` ``None``) or the ALB's own answer."""

    status: int | None
    why: str
    location: str | None = None

    @property
    def passed(self) -> bool:
        return self.status is None


def bearer_token(request: HttpRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1), or ``None``."""
    value = request.header("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | str:
    """(header, claims, signature, signing input) of a compact JWS, or what is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        return f"a JWT has 3 dot-separated parts, this one has {len(parts)}"
    try:
        header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        return "the token's parts are not base64url JSON"
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "the token's header and claims must be JSON objects"
    return header, claims, signature, f"{parts[0]}.{parts[1]}".encode()


def _signature_problem(
    header: Mapping[str, Any], signature: bytes, signed: bytes, config: JwtValidationConfig
) -> str | None:
    if header.get("alg") != "RS256":
        return f"the token is signed with {header.get('alg')!r}; AWS accepts RS256 only"
    kid = header.get("kid")
    keys = [key for key in config.jwks if kid is None or key[0] == kid]
    if not keys:
        return f"no key with kid {kid!r} in the JWKS {config.jwks_source}"
    for _, modulus, exponent in keys:
        public = RSAPublicNumbers(exponent, modulus).public_key()
        try:
            public.verify(signature, signed, PKCS1v15(), SHA256())
            return None
        except InvalidSignature:
            continue
    return f"the RS256 signature does not verify with the JWKS {config.jwks_source}"


def _claim_values(value: Any, claim: JwtClaim) -> list[str] | None:
    if claim.format == "single-string":
        return [value] if isinstance(value, str) else None
    if claim.format == "string-array":
        return [str(v) for v in value] if isinstance(value, list) else None
    return value.split() if isinstance(value, str) else None


def _claims_problem(
    claims: Mapping[str, Any], config: JwtValidationConfig, now: float
) -> str | None:
    if claims.get("iss") != config.issuer:
        return f"iss {claims.get('iss')!r} is not the issuer {config.issuer!r}"
    times = {}
    for name in ("exp", "nbf", "iat"):
        if name in claims:
            if isinstance(claims[name], bool) or not isinstance(claims[name], int | float):
                return f"{name} must be a NumericDate (seconds since 1970), not {claims[name]!r}"
            times[name] = float(claims[name])
    if "exp" not in times:
        return "the token has no exp claim, which AWS requires"
    if now >= times["exp"]:
        return f"the token expired {now - times['exp']:.0f} s before the request (exp {times['exp']:.0f})"
    if "nbf" in times and now < times["nbf"]:
        return f"the token is not valid before {times['nbf']:.0f} (nbf), {times['nbf'] - now:.0f} s after the request"
    if "iat" in times and times["iat"] > now:
        return f"the token was issued {times['iat'] - now:.0f} s after the request (iat)"
    for claim in config.claims:
        values = _claim_values(claims.get(claim.name), claim)
        if values is None:
            return f"claim {claim.name} is missing or not a {claim.format}"
        if not set(values) & set(claim.values):
            return (
                f"claim {claim.name} {claims[claim.name]!r} holds none of {', '.join(claim.values)}"
            )
    return None


def jwt_problem(token: str, config: JwtValidationConfig, now: float) -> str | None:
    """Why ``token`` fails ``config`` at capture time ``now``, or ``None`` when it is valid."""
    parsed = _segments(token)
    if isinstance(parsed, str):
        return parsed
    header, claims, signature, signed = parsed
    return _signature_problem(header, signature, signed, config) or _claims_problem(
        claims, config, now
    )


def _jwt(config: JwtValidationConfig, request: HttpRequest) -> Check:
    token = bearer_token(request)
    if token is None:
        return Check(
            401,
            "jwt-validation: the request has no Authorization: Bearer token, so the ALB answers 401",
        )
    problem = jwt_problem(token, config, request.time)
    if problem is not None:
        return Check(401, f"jwt-validation: {problem}, so the ALB answers 401")
    return Check(
        None,
        f"jwt-validation: the bearer token is valid (RS256, iss {config.issuer}) at the capture's time, so it goes on unchanged",
    )


def _session(config: AuthenticateConfig, jar: Mapping[str, str]) -> bool:
    return config.session_cookie in jar or f"{config.session_cookie}-0" in jar


def _authenticate(
    kind: str, config: AuthenticateConfig, request: HttpRequest, jar: Mapping[str, str]
) -> Check:
    never = "the model never talks to an identity provider"
    if _session(config, jar):
        return Check(
            None,
            f"{kind}: the request carries {config.session_cookie}, taken as a signed-in session ({never} and cannot decrypt the cookie)",
        )
    if config.on_unauthenticated == "allow":
        return Check(
            None,
            f"{kind}: no {config.session_cookie}, and OnUnauthenticatedRequest is allow, so it goes on unauthenticated",
        )
    if config.on_unauthenticated == "deny":
        return Check(
            401,
            f"{kind}: no {config.session_cookie}, and OnUnauthenticatedRequest is deny, so the ALB answers 401",
        )
    host = (request.host or "").split(":", 1)[0]
    query = urlencode(
        {"client_id": config.client_id, "redirect_uri": f"https://{host}/oauth2/idpresponse",
         "response_type": "code", "scope": config.scope},
        quote_via=quote,
    )  # fmt: skip
    location = f"{config.authorization_endpoint}?{query}"
    return Check(
        302,
        f"{kind}: no {config.session_cookie} cookie, so the ALB sends the browser to the identity provider's authorization endpoint ({never}; AWS adds an opaque state parameter)",
        location,
    )


def check_action(action: Action, request: HttpRequest, jar: Mapping[str, str]) -> Check:
    """Run one check action (``jwt-validation``, ``authenticate-*``) on a request.

    ``jar`` is the request's cookies by name.
    """
    if action.jwt is not None:
        return _jwt(action.jwt, request)
    if action.authenticate is not None:
        return _authenticate(action.type, action.authenticate, request, jar)
    raise ValueError(f"{action.type} is not a check action")

"""Rule actions: terminal ``forward``, ``redirect``, ``fixed-response``, and the checks before them.

Theory of operation
-------------------
Every rule (and every listener's default rule) runs its actions in ascending ``Order``
and ends in exactly one terminal action (``lb-reference.md`` §1.3, [ALB-UG
load-balancer-listeners.md]):

- ``forward`` sends the request to one target group, or to up to 5 by weight (0-999),
  optionally sticky to the group by the ``AWSALBTG`` cookie;
- ``redirect`` makes the ALB answer 301/302 itself, with a Location built from the
  placeholders ``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}``, ``#{query}``;
- ``fixed-response`` makes the ALB answer with a status, content type and body.

Before it, on HTTPS listeners only, a rule may check who is asking (``lb-reference.md`` §6):

- ``jwt-validation`` checks a bearer token against the keys of a JWKS document
  (RS256 only; ``iss``, ``exp`` required; ``nbf``, ``iat`` when present; up to 10
  additional claims). osilab reads no network: ``JwksEndpoint`` names a local file;
- ``authenticate-oidc`` / ``authenticate-cognito`` send a browser without a session
  cookie to the identity provider (302); osilab never talks to one.

An NLB listener can only forward. :func:`parse_actions` checks the common keys, then
hands each action to the one function of its ``Type`` in :data:`_ACTION_PARSERS`.
Every problem raises :class:`~osilab.errors.RuleError` naming the rule. This module is a
part of :mod:`osilab.balancers.config.parse`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.balancers.config.model import (
    NETWORK,
    TERMINAL_ACTIONS,
    Action,
    AuthenticateConfig,
    FixedResponseConfig,
    JwtClaim,
    JwtValidationConfig,
    RedirectConfig,
    TargetGroup,
    WeightedTargetGroup,
    target_group_name,
)
from osilab.errors import RuleError

__all__ = [
    "MAX_TARGET_GROUPS_PER_FORWARD",
    "MAX_WEIGHT",
    "FIXED_RESPONSE_CONTENT_TYPES",
    "HTTPS_ONLY_ACTIONS",
    "parse_jwks",
    "parse_actions",
]

MAX_TARGET_GROUPS_PER_FORWARD = 5
MAX_WEIGHT = 999

FIXED_RESPONSE_CONTENT_TYPES = (
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
)

_FIXED_STATUS = re.compile(r"^(2|4|5)\d\d$")

_ACTION_KEYS = (
    "Type",
    "Order",
    "TargetGroupArn",
    "TargetGroupName",
    "ForwardConfig",
    "RedirectConfig",
    "FixedResponseConfig",
    "JwtValidationConfig",
    "AuthenticateOidcConfig",
    "AuthenticateCognitoConfig",
)
#: Actions AWS allows on HTTPS listeners only (``lb-reference.md`` §6).
HTTPS_ONLY_ACTIONS = ("jwt-validation", "authenticate-oidc", "authenticate-cognito")

#: JWKS limits [ALB-UG listener-verify-jwt]; claim formats of ``AdditionalClaims``.
_JWKS_MAX_BYTES = 150 * 1024
_JWKS_MAX_KEYS = 10
_MAX_CLAIMS = 10
_CLAIM_FORMATS = ("single-string", "string-array", "space-separated-values")
_UNAUTHENTICATED = ("authenticate", "deny", "allow")

#: The parts of a redirect, and the placeholders each may use [ALB-UG load-balancer-listeners.md].
_REDIRECT_PLACEHOLDERS = {
    "Protocol": ("#{protocol}",),
    "Host": ("#{host}",),
    "Port": ("#{port}",),
    "Path": ("#{host}", "#{port}", "#{path}"),
    "Query": ("#{protocol}", "#{host}", "#{port}", "#{path}", "#{query}"),
}


def _no_files(reference: str, what: str) -> bytes:
    raise RuleError(f"{what} {reference!r} names a file, and no file reader was given")


def _no_warnings(field: str, why: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Rule:
    """What an action's checks need to know of the rule it ends.

    ``read(reference, what)`` returns the bytes of a file the action names (a JWKS);
    ``warn(field, why)`` names a field accepted but not modelled.
    """

    label: str
    listener_protocol: str
    groups: Mapping[str, TargetGroup]
    read: Callable[[str, str], bytes] = _no_files
    warn: Callable[[str, str], None] = _no_warnings

    def error(self, reason: str, field: str | None = None) -> RuleError:
        return RuleError(reason, rule=self.label, field=field)


def _unknown_keys(
    obj: Mapping[str, Any], allowed: tuple[str, ...], where: str, rule: _Rule
) -> None:
    for key in obj:
        if key not in allowed:
            raise rule.error(f"unknown key {key!r} in {where}")


# --------------------------------------------------------------------------- forward


def _weighted_groups(forward: Mapping[str, Any], rule: _Rule) -> list[WeightedTargetGroup]:
    """The ``ForwardConfig.TargetGroups`` list, each with its weight (0-999, default 1)."""
    listed = []
    for item in forward.get("TargetGroups", []):
        ref = (
            item.get("TargetGroupName") or item.get("TargetGroupArn")
            if isinstance(item, Mapping)
            else None
        )
        if not ref:
            raise rule.error(
                "each ForwardConfig target group needs TargetGroupArn or TargetGroupName"
            )
        weight = item.get("Weight", 1)
        if not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise rule.error(
                f"target group weight must be an integer 0-999, not {weight!r}", "Weight"
            )
        listed.append(WeightedTargetGroup(target_group_name(ref), weight))
    return listed


def _group_stickiness(forward: Mapping[str, Any], rule: _Rule) -> tuple[bool, int]:
    """``TargetGroupStickinessConfig``: (enabled, duration in seconds)."""
    stickiness = forward.get("TargetGroupStickinessConfig") or {}
    sticky = bool(stickiness.get("Enabled", False))
    seconds = int(stickiness.get("DurationSeconds", 0) or 0)
    if sticky and not 1 <= seconds <= 604800:
        raise rule.error("TargetGroupStickinessConfig.DurationSeconds must be 1-604800")
    return sticky, seconds


def _check_forward(entries: list[WeightedTargetGroup], sticky: bool, rule: _Rule) -> None:
    """The limits of one forward action: 1-5 distinct, known groups, some weight above 0."""
    if not entries:
        raise rule.error("a forward action needs a target group")
    if len(entries) > MAX_TARGET_GROUPS_PER_FORWARD:
        raise rule.error(f"a forward action can have at most 5 target groups, not {len(entries)}")
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise rule.error("a target group appears twice in one forward action")
    for name in names:
        if name not in rule.groups:
            raise rule.error(f"target group {name!r} not found")
    if sum(entry.weight for entry in entries) == 0:
        raise rule.error("at least one target group in a forward action needs a weight above 0")
    if len(entries) > 1 and any(rule.groups[n].stickiness == "app_cookie" for n in names):
        raise rule.error(
            "application-based stickiness (app_cookie) is not supported with weighted target groups"
        )
    if len(entries) > 1 and not sticky and any(rule.groups[n].stickiness for n in names):
        raise rule.error(
            "target group stickiness must be enabled when a weighted target group has stickiness on"
        )


def _forward(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``forward``: ``TargetGroupArn``/``TargetGroupName``, or a weighted ``ForwardConfig``."""
    entries: list[WeightedTargetGroup] = []
    single = obj.get("TargetGroupName") or obj.get("TargetGroupArn")
    if single:
        entries.append(WeightedTargetGroup(target_group_name(single), 1))
    forward = obj.get("ForwardConfig")
    sticky, sticky_seconds = False, 0
    if forward is not None:
        if not isinstance(forward, Mapping):
            raise rule.error("'ForwardConfig' must be an object")
        _unknown_keys(
            forward, ("TargetGroups", "TargetGroupStickinessConfig"), "ForwardConfig", rule
        )
        listed = _weighted_groups(forward, rule)
        if single and listed and [g.name for g in listed] != [entries[0].name]:
            raise rule.error("TargetGroupArn and ForwardConfig name different target groups")
        if listed:
            entries = listed
        sticky, sticky_seconds = _group_stickiness(forward, rule)
    _check_forward(entries, sticky, rule)
    return Action("forward", order, tuple(entries), sticky, sticky_seconds)


# --------------------------------------------------------------------------- redirect


def _redirect_parts(config: Mapping[str, Any], rule: _Rule) -> dict[str, str]:
    """The parts a redirect sets, each using only the placeholders AWS allows there."""
    parts = {
        key: str(config[key])
        for key in ("Protocol", "Host", "Port", "Path", "Query")
        if key in config
    }
    for key, value in parts.items():
        for placeholder in re.findall(r"#\{[a-z]+\}", value):
            if placeholder not in _REDIRECT_PLACEHOLDERS[key]:
                raise rule.error(
                    f"{placeholder} is not allowed in the redirect {key}", "RedirectConfig"
                )
        if key != "Port" and len(value) > 128:
            raise rule.error(f"the redirect {key} is longer than 128 characters")
    return parts


def _redirect(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``redirect``: HTTP_301/302 to a URL that must differ from the request's (or it loops)."""
    config = obj.get("RedirectConfig")
    if not isinstance(config, Mapping):
        raise rule.error("a redirect action needs 'RedirectConfig'")
    _unknown_keys(
        config, ("Protocol", "Host", "Port", "Path", "Query", "StatusCode"), "RedirectConfig", rule
    )
    status = config.get("StatusCode")
    if status not in ("HTTP_301", "HTTP_302"):
        raise rule.error(f"redirect StatusCode must be HTTP_301 or HTTP_302, not {status!r}")
    parts = _redirect_parts(config, rule)
    protocol = parts.get("Protocol", "#{protocol}")
    if protocol not in ("HTTP", "HTTPS", "#{protocol}"):
        raise rule.error(
            f"redirect Protocol must be HTTP, HTTPS or #{{protocol}}, not {protocol!r}"
        )
    if rule.listener_protocol == "HTTPS" and protocol == "HTTP":
        raise rule.error("you cannot redirect HTTPS to HTTP", "RedirectConfig")
    path = parts.get("Path", "/#{path}")
    if not path.startswith("/"):
        raise rule.error("the redirect Path must start with '/'", "RedirectConfig")
    port = parts.get("Port", "#{port}")
    if port != "#{port}" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise rule.error(f"redirect Port must be 1-65535 or #{{port}}, not {port!r}")
    redirect = RedirectConfig(
        status_code=status,
        protocol=protocol,
        host=parts.get("Host", "#{host}"),
        port=port,
        path=path,
        query=parts.get("Query", "#{query}"),
    )
    unchanged = (
        redirect.protocol in ("#{protocol}", rule.listener_protocol)
        and redirect.host == "#{host}"
        and redirect.port in ("#{port}",)
        and redirect.path == "/#{path}"
    )
    if unchanged:
        raise rule.error(
            "a redirect must change the protocol, host, port or path, or it would loop",
            "RedirectConfig",
        )
    return Action("redirect", order, redirect=redirect)


# --------------------------------------------------------------------------- fixed-response


def _fixed_response(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``fixed-response``: a 2xx/4xx/5xx status, one of five content types, <= 1024 bytes."""
    config = obj.get("FixedResponseConfig")
    if not isinstance(config, Mapping):
        raise rule.error("a fixed-response action needs 'FixedResponseConfig'")
    _unknown_keys(config, ("StatusCode", "ContentType", "MessageBody"), "FixedResponseConfig", rule)
    status = str(config.get("StatusCode", ""))
    if not _FIXED_STATUS.match(status):
        raise rule.error(f"fixed-response StatusCode must match ^(2|4|5)\\d\\d$, not {status!r}")
    content_type = config.get("ContentType")
    if content_type is not None and content_type not in FIXED_RESPONSE_CONTENT_TYPES:
        raise rule.error(
            f"fixed-response ContentType must be one of {', '.join(FIXED_RESPONSE_CONTENT_TYPES)}"
        )
    body = str(config.get("MessageBody", ""))
    if len(body) > 1024:
        raise rule.error("fixed-response MessageBody is longer than 1024 characters")
    return Action(
        "fixed-response", order, fixed_response=FixedResponseConfig(status, content_type, body)
    )


# --------------------------------------------------------------------------- jwt-validation


def _b64url_int(text: Any, where: str) -> int:
    if not isinstance(text, str) or not text:
        raise RuleError(f"{where}: an RSA key needs 'n' and 'e' (base64url)")
    try:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")
    except (ValueError, TypeError):
        raise RuleError(f"{where}: {text[:20]!r} is not base64url") from None


def parse_jwks(data: bytes, where: str) -> tuple[tuple[str, int, int], ...]:
    """The RSA keys ``(kid, n, e)`` of a JWKS document (RFC 7517 §5), within AWS's limits.

    >>> parse_jwks(b'{"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}', "jwks")
    (('k1', 65537, 65537),)
    """
    if len(data) > _JWKS_MAX_BYTES:
        raise RuleError(f"{where}: a JWKS is at most 150 KB, this one is {len(data)} bytes")
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise RuleError(f"{where}: not a JWKS JSON document ({exc})") from None
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list) or not keys:
        raise RuleError(f"{where}: a JWKS needs a non-empty 'keys' list (RFC 7517 §5)")
    if len(keys) > _JWKS_MAX_KEYS:
        raise RuleError(f"{where}: a JWKS may hold at most 10 keys, this one has {len(keys)}")
    found = []
    for key in keys:
        if isinstance(key, Mapping) and key.get("kty") == "RSA":
            kid = str(key.get("kid", ""))
            found.append((kid, _b64url_int(key.get("n"), where), _b64url_int(key.get("e"), where)))
    if not found:
        raise RuleError(
            f"{where}: the JWKS has no RSA key, and RS256 is the only algorithm AWS accepts"
        )
    return tuple(found)


def _claims(raw: Any, rule: _Rule) -> tuple[JwtClaim, ...]:
    """``AdditionalClaims``: up to 10 of ``{Format, Name, Values}``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > _MAX_CLAIMS:
        raise rule.error("AdditionalClaims is a list of at most 10 claims", "JwtValidationConfig")
    claims = []
    for item in raw:
        if not isinstance(item, Mapping) or set(item) - {"Format", "Name", "Values"}:
            raise rule.error("an additional claim is {'Format', 'Name', 'Values'}")
        kind, name, values = item.get("Format"), item.get("Name"), item.get("Values")
        if kind not in _CLAIM_FORMATS:
            raise rule.error(f"a claim Format is one of {', '.join(_CLAIM_FORMATS)}, not {kind!r}")
        if not isinstance(name, str) or not name or name in ("iss", "exp", "nbf", "iat"):
            raise rule.error(f"claim Name {name!r}: iss, exp, nbf and iat are always checked")
        if not isinstance(values, list) or not 1 <= len(values) <= 10:
            raise rule.error(f"claim {name}: Values is a list of 1-10 strings")
        claims.append(JwtClaim(name, kind, tuple(str(v) for v in values)))
    return tuple(claims)


def _jwt_validation(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``jwt-validation``: Issuer, a JWKS (a local file here), additional claims."""
    config = obj.get("JwtValidationConfig")
    if not isinstance(config, Mapping):
        raise rule.error("a jwt-validation action needs 'JwtValidationConfig'")
    _unknown_keys(
        config, ("Issuer", "JwksEndpoint", "AdditionalClaims"), "JwtValidationConfig", rule
    )
    issuer, endpoint = config.get("Issuer"), config.get("JwksEndpoint")
    if not isinstance(issuer, str) or not issuer or len(issuer) > 256:
        raise rule.error("JwtValidationConfig.Issuer is required (at most 256 characters)")
    if not isinstance(endpoint, str) or not endpoint:
        raise rule.error("JwtValidationConfig.JwksEndpoint is required")
    keys = parse_jwks(rule.read(endpoint, "JwksEndpoint"), f"JWKS {endpoint}")
    jwt = JwtValidationConfig(issuer, endpoint, keys, _claims(config.get("AdditionalClaims"), rule))
    return Action("jwt-validation", order, jwt=jwt)


# --------------------------------------------------------------------------- authenticate


#: Fields of the authenticate configs the model reads; the rest are named in a warning.
_AUTH_READ = {
    "authenticate-oidc": ("AuthorizationEndpoint", "ClientId"),
    "authenticate-cognito": ("UserPoolArn", "UserPoolClientId", "UserPoolDomain"),
}
_AUTH_COMMON = ("SessionCookieName", "Scope", "OnUnauthenticatedRequest")
_AUTH_UNREAD = {
    "authenticate-oidc": ("Issuer", "TokenEndpoint", "UserInfoEndpoint", "ClientSecret",
                          "UseExistingClientSecret"),
    "authenticate-cognito": (),
}  # fmt: skip
_AUTH_UNREAD_COMMON = ("SessionTimeout", "AuthenticationRequestExtraParams")


def _authorization_endpoint(kind: str, config: Mapping[str, Any], rule: _Rule) -> tuple[str, str]:
    """(the IdP's authorization endpoint, the client id) of an OIDC or Cognito config."""
    for key in _AUTH_READ[kind]:
        if not isinstance(config.get(key), str) or not config[key]:
            raise rule.error(f"an {kind} action needs '{key}'")
    if kind == "authenticate-oidc":
        return str(config["AuthorizationEndpoint"]), str(config["ClientId"])
    domain = str(config["UserPoolDomain"])
    region = str(config["UserPoolArn"]).split(":")[3:4] or [""]
    host = domain if "." in domain else f"{domain}.auth.{region[0]}.amazoncognito.com"
    return f"https://{host}/oauth2/authorize", str(config["UserPoolClientId"])


def _authenticate(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``authenticate-oidc`` / ``authenticate-cognito``: a session cookie, or a 302 to the IdP."""
    kind = str(obj["Type"])
    key = "AuthenticateOidcConfig" if kind == "authenticate-oidc" else "AuthenticateCognitoConfig"
    config = obj.get(key)
    if not isinstance(config, Mapping):
        raise rule.error(f"an {kind} action needs '{key}'")
    unread = _AUTH_UNREAD[kind] + _AUTH_UNREAD_COMMON
    _unknown_keys(config, _AUTH_READ[kind] + _AUTH_COMMON + unread, key, rule)
    for name in unread:
        if name in config:
            rule.warn(f"{key}.{name}", "the model never talks to an identity provider")
    endpoint, client = _authorization_endpoint(kind, config, rule)
    on_unauthenticated = str(config.get("OnUnauthenticatedRequest", "authenticate"))
    if on_unauthenticated not in _UNAUTHENTICATED:
        raise rule.error(f"OnUnauthenticatedRequest is one of {', '.join(_UNAUTHENTICATED)}")
    authenticate = AuthenticateConfig(
        kind,
        endpoint,
        client,
        session_cookie=str(config.get("SessionCookieName", "AWSELBAuthSessionCookie")),
        scope=str(config.get("Scope", "openid")),
        on_unauthenticated=on_unauthenticated,
    )
    return Action(kind, order, authenticate=authenticate)


#: Action ``Type`` -> the function that checks it and builds the :class:`Action`.
_ACTION_PARSERS: Mapping[str, Callable[[Mapping[str, Any], int, _Rule], Action]] = MappingProxyType(
    {
        "forward": _forward,
        "redirect": _redirect,
        "fixed-response": _fixed_response,
        "jwt-validation": _jwt_validation,
        "authenticate-oidc": _authenticate,
        "authenticate-cognito": _authenticate,
    }
)


# --------------------------------------------------------------------------- one action, a list


def _parse_action(obj: Any, lb_type: str, rule: _Rule) -> Action:
    if not isinstance(obj, Mapping):
        raise rule.error(f"an action must be an object, not {obj!r}")
    _unknown_keys(obj, _ACTION_KEYS, "an action", rule)
    kind = obj.get("Type")
    order = obj.get("Order", 1)
    if isinstance(order, bool) or not isinstance(order, int | str) or not str(order).isdigit():
        raise rule.error(f"an action's Order is a number 1-50000, not {order!r}", "Actions")
    if lb_type == NETWORK and kind != "forward":
        raise rule.error(f"an NLB listener can only forward, not {kind!r}", "Actions")
    if kind in HTTPS_ONLY_ACTIONS and rule.listener_protocol != "HTTPS":
        raise rule.error(f"{kind} actions are allowed on HTTPS listeners only", "Actions")
    parser = _ACTION_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise rule.error(f"unknown action type {kind!r} ({', '.join(_ACTION_PARSERS)})", "Actions")
    return parser(obj, int(order), rule)


def parse_actions(
    raw: Any,
    label: str,
    listener_protocol: str,
    lb_type: str,
    groups: Mapping[str, TargetGroup],
    *,
    read: Callable[[str, str], bytes] = _no_files,
    warn: Callable[[str, str], None] = _no_warnings,
) -> tuple[Action, ...]:
    """The ``Actions`` of the rule ``label`` in ``Order``: checks first, one terminal action last.

    ``groups`` are the configuration's target groups by name (a forward must name them);
    ``read(reference, what)`` reads a file an action names (a JWKS), ``warn(field, why)``
    names a field accepted but not modelled.

    >>> parse_actions([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    ...               "7", "HTTP", "application", {})[0].fixed_response.status_code
    '404'
    """
    if not isinstance(raw, list) or not raw:
        raise RuleError("at least one action is required", rule=label, field="Actions")
    rule = _Rule(label, listener_protocol, groups, read, warn)
    actions = sorted(
        (_parse_action(item, lb_type, rule) for item in raw), key=lambda action: action.order
    )
    terminal = [action for action in actions if action.type in TERMINAL_ACTIONS]
    orders = [action.order for action in actions]
    if len(terminal) != 1 or actions[-1].type not in TERMINAL_ACTIONS:
        raise RuleError(
            "exactly one of forward, redirect or fixed-response is allowed, and it must be last",
            rule=label,
            field="Actions",
        )
    if len(set(orders)) != len(orders):
        raise RuleError(
            "two actions have the same Order (Order is required when a rule has several actions)",
            rule=label,
            field="Actions",
        )
    return tuple(actions)

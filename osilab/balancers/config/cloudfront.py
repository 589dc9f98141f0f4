"""A CloudFront distribution's configuration, as ``aws cloudfront get-distribution-config`` prints it.

Theory of operation
-------------------
A CloudFront distribution is the edge in front of an ALB (or an S3 bucket). A team can
always print its configuration::

    aws cloudfront get-distribution-config --id E2LAB > dist.json
    aws cloudfront get-cache-policy --id <CachePolicyId> > policy.json

The first prints ``{"ETag": ..., "DistributionConfig": {...}}``; the distribution config
holds ``Origins.Items`` (where the edge fetches from), ``DefaultCacheBehavior`` and
``CacheBehaviors.Items`` (each with a ``PathPattern``, a ``TargetOriginId``, a
``ViewerProtocolPolicy`` and either a ``CachePolicyId`` or the legacy ``ForwardedValues``
with ``MinTTL``/``DefaultTTL``/``MaxTTL``). A cache policy decides the **cache key**:
which headers, cookies and query strings make two requests "the same object"; an origin
request policy adds what is forwarded to the origin without being in the key.

osilab reads one JSON/YAML document: the ``get-distribution-config`` output (or its bare
``DistributionConfig``), plus optional keys of its own beside it:

- ``CachePolicies`` / ``OriginRequestPolicies``: a list of ``get-cache-policy`` /
  ``get-origin-request-policy`` outputs, for the policies the behaviors name by id
  (AWS's managed policies, :data:`MANAGED_CACHE_POLICIES`, are known already);
- ``OriginAddresses``: ``{DomainName: "ip"}``, the DNS answer for each origin's domain
  name (CloudFront origins are names, never addresses; osilab reads no network);
- ``ViaId``: the edge's name in ``Via: 1.1 <id>.cloudfront.net (CloudFront)`` (default
  ``osilab``; CloudFront's own is an opaque id per edge server).

Facts (``lb-reference.md`` §6; CloudFront-DG distribution-web-values-specify, cache-key,
controlling-the-cache-key, Expiration): behaviors are matched in list order, first match
wins, the default behavior is ``*``; ``PathPattern`` is case-sensitive, ``*`` matches
any run of characters (also ``/``) and ``?`` exactly one, against the path without the
query; ``ViewerProtocolPolicy`` is ``allow-all`` | ``redirect-to-https`` (301) |
``https-only`` (403).

This module only reads and checks configuration; :mod:`osilab.balancers.cdn` models the
edge. Errors are :class:`~osilab.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osilab.balancers.config.readers import read_document  # the one reader of configs
from osilab.errors import ConfigError

__all__ = [
    "KeyPart",
    "CachePolicy",
    "OriginRequestPolicy",
    "Origin",
    "CacheBehavior",
    "DistributionConfig",
    "MANAGED_CACHE_POLICIES",
    "MANAGED_ORIGIN_REQUEST_POLICIES",
    "VIEWER_PROTOCOL_POLICIES",
    "parse_distribution",
    "load_distribution",
    "is_distribution",
]

#: What a behavior does with a viewer's request by its scheme (CloudFront-DG, ViewerProtocolPolicy).
VIEWER_PROTOCOL_POLICIES = ("allow-all", "redirect-to-https", "https-only")

#: ``HeaderBehavior`` / ``CookieBehavior`` / ``QueryStringBehavior`` values a cache policy
#: or an origin request policy may use (``allViewer*`` only in origin request policies).
_PART_BEHAVIORS = ("none", "whitelist", "allExcept", "all", "allViewer",
                   "allViewerAndWhitelistCloudFront")  # fmt: skip


@dataclass(frozen=True, slots=True)
class KeyPart:
    """One part of a cache key or an origin request: headers, cookies or query strings.

    ``behavior`` is AWS's word (``none``, ``whitelist``, ``allExcept``, ``all``,
    ``allViewer``...); ``names`` the listed ones. Header names compare without case,
    cookie and query-string names with case (HTTP says so: RFC 9110 §5.1, RFC 6265 §5.3).
    """

    behavior: str = "none"
    names: tuple[str, ...] = ()
    case_sensitive: bool = True

    def selects(self, name: str) -> bool:
        """Whether ``name`` is in this part."""
        if self.behavior == "none":
            return False
        if self.behavior in ("all", "allViewer"):
            return True
        listed = self.names if self.case_sensitive else tuple(n.lower() for n in self.names)
        wanted = name if self.case_sensitive else name.lower()
        if self.behavior == "allExcept":
            return wanted not in listed
        if self.behavior == "allViewerAndWhitelistCloudFront":
            return True
        return wanted in listed


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A cache policy: the TTLs and what is in the cache key (CloudFront-DG controlling-the-cache-key)."""

    id: str
    name: str
    min_ttl: float
    default_ttl: float
    max_ttl: float
    headers: KeyPart
    cookies: KeyPart
    query_strings: KeyPart

    @property
    def caches(self) -> bool:
        """False for a policy like CachingDisabled: every TTL 0, nothing is ever stored."""
        return self.max_ttl > 0


@dataclass(frozen=True, slots=True)
class OriginRequestPolicy:
    """What the edge forwards to the origin beyond the cache key (never part of the key)."""

    id: str
    name: str
    headers: KeyPart
    cookies: KeyPart
    query_strings: KeyPart

    @property
    def forwards_host(self) -> bool:
        """``AllViewer`` forwards the viewer's Host; ``AllViewerExceptHostHeader`` does not."""
        return self.headers.selects("host")


def _part(behavior: str, *names: str, case_sensitive: bool = True) -> KeyPart:
    return KeyPart(behavior, names, case_sensitive)


_NONE = _part("none")

#: AWS's managed cache policies, by id (CloudFront-DG using-managed-cache-policies).
MANAGED_CACHE_POLICIES: dict[str, CachePolicy] = {
    policy.id: policy
    for policy in (
        CachePolicy("658327ea-f89d-4fab-a63d-7e88639e58f6", "Managed-CachingOptimized",
                    1, 86400, 31536000, _part("none", case_sensitive=False), _NONE, _NONE),
        CachePolicy("b2884449-e4de-46a7-ac36-70bc7f1ddd6d",
                    "Managed-CachingOptimizedForUncompressedObjects",
                    1, 86400, 31536000, _part("none", case_sensitive=False), _NONE, _NONE),
        CachePolicy("4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "Managed-CachingDisabled",
                    0, 0, 0, _part("none", case_sensitive=False), _NONE, _NONE),
    )
}  # fmt: skip

#: AWS's managed origin request policies, by id (CloudFront-DG using-managed-origin-request-policies).
MANAGED_ORIGIN_REQUEST_POLICIES: dict[str, OriginRequestPolicy] = {
    policy.id: policy
    for policy in (
        OriginRequestPolicy("216adef6-5c7f-47e4-b989-5492eafa07d3", "Managed-AllViewer",
                            _part("allViewer", case_sensitive=False), _part("all"), _part("all")),
        OriginRequestPolicy("b689b0a8-53d0-40ab-baf2-68738e2966ac",
                            "Managed-AllViewerExceptHostHeader",
                            _part("allExcept", "host", case_sensitive=False), _part("all"),
                            _part("all")),
        OriginRequestPolicy("88a5eaf4-2fd4-4709-b370-b4c650ea3fcf", "Managed-CORS-S3Origin",
                            _part("whitelist", "origin", "access-control-request-headers",
                                  "access-control-request-method", case_sensitive=False),
                            _NONE, _NONE),
        OriginRequestPolicy("acba4595-bd28-49b8-b9fe-13317c0390fa",
                            "Managed-UserAgentRefererHeaders",
                            _part("whitelist", "user-agent", "referer", case_sensitive=False),
                            _NONE, _NONE),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the edge fetches what it does not have (``Origins.Items[]``).

    ``address`` is ``ip:port`` when the document's ``OriginAddresses`` resolves the
    domain name, else ``DomainName:port``; ``protocol`` is the origin protocol policy
    (``http-only``, ``https-only``, ``match-viewer``; an S3 origin speaks HTTPS).
    """

    id: str
    domain_name: str
    address: str
    protocol: str
    origin_path: str = ""
    custom_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CacheBehavior:
    """One cache behavior: a path pattern, an origin, a viewer protocol policy, a cache policy."""

    path_pattern: str
    target_origin_id: str
    viewer_protocol_policy: str
    allowed_methods: tuple[str, ...]
    cached_methods: tuple[str, ...]
    cache_policy: CachePolicy
    origin_request_policy: OriginRequestPolicy | None
    regex: re.Pattern[str]

    @property
    def name(self) -> str:
        """``/static/*``, or ``Default (*)`` for the default behavior."""
        return "Default (*)" if self.path_pattern == "*" else self.path_pattern

    def matches(self, path: str) -> bool:
        """Whether the request path (no query) matches ``PathPattern`` (case-sensitive)."""
        return self.regex.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class DistributionConfig:
    """A distribution: origins, ordered behaviors, the default one, and error caching.

    ``error_caching`` maps an error status to its ``ErrorCachingMinTTL`` (seconds);
    statuses not listed use CloudFront's default of 10 seconds.
    """

    origins: tuple[Origin, ...]
    behaviors: tuple[CacheBehavior, ...]
    default: CacheBehavior
    aliases: tuple[str, ...] = ()
    comment: str = ""
    edge_id: str = "lab"
    error_caching: tuple[tuple[int, float], ...] = ()

    def behavior_for(self, path: str) -> CacheBehavior:
        """The first behavior whose ``PathPattern`` matches ``path``, else the default."""
        for behavior in self.behaviors:
            if behavior.matches(path):
                return behavior
        return self.default

    def origin(self, origin_id: str) -> Origin:
        for origin in self.origins:
            if origin.id == origin_id:
                return origin
        raise ConfigError(f"no origin with Id {origin_id!r} (origins: "
                          f"{', '.join(o.id for o in self.origins)})")  # fmt: skip


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``PathPattern`` as a regular expression: ``*`` any run, ``?`` one character.

    >>> bool(pattern_regex("/static/*").fullmatch("/static/css/a.css"))
    True
    >>> bool(pattern_regex("images/*.jp?g").fullmatch("/images/a.jpeg"))
    True
    >>> bool(pattern_regex("/Static/*").fullmatch("/static/a"))
    False
    """
    if pattern != "*" and not pattern.startswith(("/", "*")):
        pattern = "/" + pattern  # CloudFront: "the leading / is optional"
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.S)


def _items(obj: Any, where: str) -> list[Any]:
    """The ``Items`` of an AWS ``{"Quantity": n, "Items": [...]}`` list (or a plain list)."""
    if obj is None:
        return []
    if isinstance(obj, list):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where} must be an object with Items, not {type(obj).__name__}")
    items = obj.get("Items") or []
    if not isinstance(items, list):
        raise ConfigError(f"{where}.Items must be a list")
    quantity = obj.get("Quantity")
    if quantity is not None and quantity != len(items):
        raise ConfigError(f"{where}: Quantity {quantity} but {len(items)} Items")
    return items


def _ttl(obj: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = obj.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{key} must be a number of seconds >= 0, not {value!r}")
    return float(value)


def _key_part(obj: Any, kind: str, where: str, *, origin_request: bool = False) -> KeyPart:
    """``HeadersConfig`` / ``CookiesConfig`` / ``QueryStringsConfig`` of a policy."""
    plural = {"Header": "Headers", "Cookie": "Cookies", "QueryString": "QueryStrings"}[kind]
    if obj is None:
        return KeyPart(case_sensitive=kind != "Header")
    behavior = obj.get(f"{kind}Behavior", "none")
    allowed = _PART_BEHAVIORS if origin_request else _PART_BEHAVIORS[:4]
    if behavior not in allowed:
        raise ConfigError(f"{where}.{kind}Behavior {behavior!r} is not one of {', '.join(allowed)}")
    names = tuple(str(n) for n in _items(obj.get(plural), f"{where}.{plural}"))
    return KeyPart(behavior, names, case_sensitive=kind != "Header")


def _cache_policy(document: Mapping[str, Any], where: str) -> CachePolicy:
    """A ``get-cache-policy`` output (or its ``CachePolicy``) -> :class:`CachePolicy`."""
    policy = document.get("CachePolicy", document)
    config = policy.get("CachePolicyConfig", policy)
    keys = config.get("ParametersInCacheKeyAndForwardedToOrigin") or {}
    inner = f"{where}.ParametersInCacheKeyAndForwardedToOrigin"
    return CachePolicy(
        id=str(policy.get("Id") or config.get("Name") or where),
        name=str(config.get("Name", "")),
        min_ttl=_ttl(config, "MinTTL", 0, where),
        default_ttl=_ttl(config, "DefaultTTL", 86400, where),
        max_ttl=_ttl(config, "MaxTTL", 31536000, where),
        headers=_key_part(keys.get("HeadersConfig"), "Header", inner),
        cookies=_key_part(keys.get("CookiesConfig"), "Cookie", inner),
        query_strings=_key_part(keys.get("QueryStringsConfig"), "QueryString", inner),
    )


def _origin_request_policy(document: Mapping[str, Any], where: str) -> OriginRequestPolicy:
    policy = document.get("OriginRequestPolicy", document)
    config = policy.get("OriginRequestPolicyConfig", policy)
    return OriginRequestPolicy(
        id=str(policy.get("Id") or config.get("Name") or where),
        name=str(config.get("Name", "")),
        headers=_key_part(config.get("HeadersConfig"), "Header", where, origin_request=True),
        cookies=_key_part(config.get("CookiesConfig"), "Cookie", where, origin_request=True),
        query_strings=_key_part(config.get("QueryStringsConfig"), "QueryString", where,
                                origin_request=True),
    )  # fmt: skip


def _legacy_policy(behavior: Mapping[str, Any], where: str) -> CachePolicy:
    """The legacy cache settings (``ForwardedValues`` and the behavior's TTLs) as a policy:
    what is forwarded is what is in the key (CloudFront-DG, legacy cache settings)."""
    forwarded = behavior.get("ForwardedValues") or {}
    cookies = forwarded.get("Cookies") or {}
    forward = cookies.get("Forward", "none")
    cookie_part = KeyPart(
        {"none": "none", "whitelist": "whitelist", "all": "all"}.get(forward, "none"),
        tuple(_items(cookies.get("WhitelistedNames"), f"{where}.ForwardedValues.Cookies")),
    )
    if forwarded.get("QueryString"):
        keys = tuple(_items(forwarded.get("QueryStringCacheKeys"), f"{where}.QueryStringCacheKeys"))
        query_part = KeyPart("whitelist", keys) if keys else KeyPart("all")
    else:
        query_part = KeyPart("none")
    headers = tuple(_items(forwarded.get("Headers"), f"{where}.ForwardedValues.Headers"))
    header_part = (
        KeyPart("all", case_sensitive=False)
        if "*" in headers
        else KeyPart("whitelist" if headers else "none", headers, case_sensitive=False)
    )
    return CachePolicy(
        id=f"legacy:{where}",
        name="legacy cache settings",
        min_ttl=_ttl(behavior, "MinTTL", 0, where),
        default_ttl=_ttl(behavior, "DefaultTTL", 86400, where),
        max_ttl=_ttl(behavior, "MaxTTL", 31536000, where),
        headers=header_part,
        cookies=cookie_part,
        query_strings=query_part,
    )


def _methods(obj: Any, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    if obj is None:
        return default
    return tuple(str(m).upper() for m in _items(obj, where))


def _behavior(
    obj: Mapping[str, Any],
    where: str,
    policies: Mapping[str, CachePolicy],
    request_policies: Mapping[str, OriginRequestPolicy],
    origins: Sequence[Origin],
    *,
    default: bool = False,
) -> CacheBehavior:
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where} must be an object")
    pattern = "*" if default else obj.get("PathPattern")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}.PathPattern is required (a cache behavior matches by path)")
    origin = obj.get("TargetOriginId")
    if origin not in {o.id for o in origins}:
        raise ConfigError(
            f"{where}.TargetOriginId {origin!r} names no origin "
            f"(Origins.Items: {', '.join(o.id for o in origins) or 'none'})"
        )
    viewer = obj.get("ViewerProtocolPolicy", "allow-all")
    if viewer not in VIEWER_PROTOCOL_POLICIES:
        raise ConfigError(
            f"{where}.ViewerProtocolPolicy {viewer!r} is not one of {', '.join(VIEWER_PROTOCOL_POLICIES)}"
        )
    allowed_obj = obj.get("AllowedMethods")
    allowed = _methods(allowed_obj, ("HEAD", "GET"), f"{where}.AllowedMethods")
    cached_obj = allowed_obj.get("CachedMethods") if isinstance(allowed_obj, Mapping) else None
    cached = _methods(cached_obj, ("HEAD", "GET"), f"{where}.AllowedMethods.CachedMethods")
    policy_id = obj.get("CachePolicyId")
    if policy_id:
        if policy_id not in policies:
            raise ConfigError(
                f"{where}.CachePolicyId {policy_id!r} is neither a managed policy nor in "
                "CachePolicies (add the 'aws cloudfront get-cache-policy' output there)"
            )
        policy = policies[policy_id]
    elif "ForwardedValues" in obj or "MinTTL" in obj:
        policy = _legacy_policy(obj, where)
    else:
        raise ConfigError(f"{where} needs a CachePolicyId or the legacy ForwardedValues")
    request_id = obj.get("OriginRequestPolicyId")
    if request_id and request_id not in request_policies:
        raise ConfigError(
            f"{where}.OriginRequestPolicyId {request_id!r} is neither a managed policy nor in "
            "OriginRequestPolicies"
        )
    return CacheBehavior(
        path_pattern=pattern,
        target_origin_id=str(origin),
        viewer_protocol_policy=str(viewer),
        allowed_methods=allowed,
        cached_methods=cached,
        cache_policy=policy,
        origin_request_policy=request_policies[request_id] if request_id else None,
        regex=pattern_regex(pattern),
    )


def _origin(obj: Mapping[str, Any], where: str, addresses: Mapping[str, str]) -> Origin:
    if not isinstance(obj, Mapping) or not obj.get("Id") or not obj.get("DomainName"):
        raise ConfigError(f"{where} needs an Id and a DomainName")
    custom = obj.get("CustomOriginConfig")
    if custom is not None:
        protocol = custom.get("OriginProtocolPolicy", "match-viewer")
        port = (
            custom.get("HTTPSPort", 443) if protocol == "https-only" else custom.get("HTTPPort", 80)
        )
    else:  # an S3 origin (S3OriginConfig): CloudFront speaks HTTPS to S3
        protocol, port = "https-only", 443
    domain = str(obj["DomainName"])
    headers = tuple(
        (str(h["HeaderName"]), str(h["HeaderValue"]))
        for h in _items(obj.get("CustomHeaders"), f"{where}.CustomHeaders")
    )
    return Origin(
        id=str(obj["Id"]),
        domain_name=domain,
        address=f"{addresses.get(domain, domain)}:{port}",
        protocol=str(protocol),
        origin_path=str(obj.get("OriginPath") or ""),
        custom_headers=headers,
    )


def is_distribution(data: Any) -> bool:
    """Whether ``data`` is a distribution config (the CLI output or its bare DistributionConfig)."""
    return isinstance(data, Mapping) and (
        "DistributionConfig" in data or ("Origins" in data and "DefaultCacheBehavior" in data)
    )


def parse_distribution(data: Mapping[str, Any]) -> DistributionConfig:
    """A ``get-distribution-config`` output (with osilab's optional keys) -> :class:`DistributionConfig`.

    >>> dist = parse_distribution({"DistributionConfig": {
    ...     "Origins": {"Quantity": 1, "Items": [{"Id": "web", "DomainName": "alb.example.com",
    ...         "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}}]},
    ...     "DefaultCacheBehavior": {"TargetOriginId": "web", "ViewerProtocolPolicy": "allow-all",
    ...         "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}},
    ...     "OriginAddresses": {"alb.example.com": "203.0.113.10"}})
    >>> dist.behavior_for("/x").name, dist.origin("web").address
    ('Default (*)', '203.0.113.10:80')
    """
    if not is_distribution(data):
        raise ConfigError(
            "not a CloudFront distribution config: expected the output of "
            "'aws cloudfront get-distribution-config' (a DistributionConfig with Origins and "
            "DefaultCacheBehavior)"
        )
    config = data.get("DistributionConfig", data)
    addresses = {str(k): str(v) for k, v in (data.get("OriginAddresses") or {}).items()}
    policies = dict(MANAGED_CACHE_POLICIES)
    for index, item in enumerate(data.get("CachePolicies") or []):
        policy = _cache_policy(item, f"CachePolicies[{index}]")
        policies[policy.id] = policy
    request_policies = dict(MANAGED_ORIGIN_REQUEST_POLICIES)
    for index, item in enumerate(data.get("OriginRequestPolicies") or []):
        request_policy = _origin_request_policy(item, f"OriginRequestPolicies[{index}]")
        request_policies[request_policy.id] = request_policy
    origins = tuple(
        _origin(item, f"Origins.Items[{i}]", addresses)
        for i, item in enumerate(_items(config.get("Origins"), "Origins"))
    )
    if not origins:
        raise ConfigError("Origins.Items is empty: a distribution needs at least one origin")
    behaviors = tuple(
        _behavior(item, f"CacheBehaviors.Items[{i}]", policies, request_policies, origins)
        for i, item in enumerate(_items(config.get("CacheBehaviors"), "CacheBehaviors"))
    )
    default = _behavior(config["DefaultCacheBehavior"], "DefaultCacheBehavior", policies,
                        request_policies, origins, default=True)  # fmt: skip
    errors = tuple(
        (int(item["ErrorCode"]), float(item.get("ErrorCachingMinTTL", 10)))
        for item in _items(config.get("CustomErrorResponses"), "CustomErrorResponses")
    )
    return DistributionConfig(
        origins=origins,
        behaviors=behaviors,
        default=default,
        aliases=tuple(str(a) for a in _items(config.get("Aliases"), "Aliases")),
        comment=str(config.get("Comment") or ""),
        edge_id=str(data.get("ViaId") or "osilab"),
        error_caching=errors,
    )


def load_distribution(
    source: str | Path | Mapping[str, Any] | DistributionConfig,
) -> DistributionConfig:
    """Read a distribution config from a JSON/YAML file (or pass a dict / config through)."""
    if isinstance(source, DistributionConfig):
        return source
    if isinstance(source, Mapping):
        return parse_distribution(source)
    path = Path(source)
    data = read_document(path)
    try:
        return parse_distribution(data)
    except ConfigError as exc:
        raise exc.at(file=str(path)) from None

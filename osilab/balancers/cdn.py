"""A sans-IO model of a CloudFront distribution: the edge cache in front of the ALB.

Theory of operation
-------------------
An ALB forwards every request; an edge cache answers some of them itself. For each
request a viewer sends, :class:`CloudFrontDistribution` does what CloudFront documents
(``lb-reference.md`` §6; CloudFront-DG distribution-web-values-specify, cache-key,
Expiration, RequestAndResponseBehaviorCustomOrigin):

1. **Behavior.** The first cache behavior whose ``PathPattern`` matches the path (list
   order), else the default behavior (``*``).
2. **Viewer protocol.** A plain-HTTP request under ``redirect-to-https`` gets a 301 to
   the ``https://`` URL, under ``https-only`` a 403: ``Redirect`` / ``Error from
   cloudfront``, answered at the edge. So is a method the behavior does not allow (403).
3. **Cache key.** The host, the path, and the headers, cookies and query strings the
   behavior's cache policy names. Two requests with the same key are one object.
4. **Lookup**, at the request's capture time: a fresh copy is a ``Hit`` (no origin sees
   the request); a stale copy with a validator (``ETag``, ``Last-Modified``) is
   revalidated by a conditional request, and the origin's 304 makes it a ``RefreshHit``;
   anything else is a ``Miss``. A policy whose TTLs are all 0 (CachingDisabled) never
   stores: every request is a ``Miss``.
5. **Store.** The origin's response says how long the object stays fresh:
   ``s-maxage``, else ``max-age``, else ``Expires`` - ``Date``, clamped to the policy's
   ``MinTTL``..``MaxTTL``; no header: ``DefaultTTL``; ``no-store``/``no-cache``/``private``:
   not stored unless ``MinTTL`` > 0. Errors (403, 404, 500...) are kept
   ``ErrorCachingMinTTL`` (10 s by default).

The model learns what the origin said from the responses the viewer receives (the edge
passes the origin's ``Cache-Control``, ``ETag`` and ``Last-Modified`` through), so it is
fed both requests and responses, as :func:`osilab.balancers.replay.replay` does. It never
reads the ``X-Cache`` header the edge answered with: that is what the model is judged by.

Each :class:`CdnDecision` keeps the decision keys of ``osilab route`` (``target_group`` =
the origin's id, ``target`` = its address, both ``None`` when no origin was asked) and
adds ``cache``, ``behavior``, ``origin`` and the ``cache_key``.

The model touches no file, socket or clock.
"""

from __future__ import annotations

import email.utils
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from osilab.balancers import explain
from osilab.balancers.config.cloudfront import (
    CacheBehavior,
    DistributionConfig,
    KeyPart,
    load_distribution,
)
from osilab.balancers.decision import KEEP_DECISIONS, Decision, DecisionKeeper, DecisionList
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

__all__ = [
    "CdnDecision",
    "CachedObject",
    "CloudFrontDistribution",
    "CACHE_STATUSES",
    "object_ttl",
    "cache_control",
]

#: ``X-Cache`` values, ``<status> from cloudfront``, and the decision's action for each.
CACHE_STATUSES = {"Hit": "cache-hit", "Miss": "forward", "RefreshHit": "forward",
                  "Redirect": "redirect", "Error": "deny"}  # fmt: skip

#: Statuses CloudFront caches by the origin's headers (CloudFront-DG, HTTP status codes
#: that CloudFront caches); the errors below are kept for ``ErrorCachingMinTTL``.
_CACHED_STATUSES = frozenset({200, 203, 300, 301, 410})
_ERROR_STATUSES = frozenset({400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504})
_DEFAULT_ERROR_TTL = 10.0

#: Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded by a proxy.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "transfer-encoding",
                         "upgrade", "proxy-connection", "proxy-authorization"})  # fmt: skip

#: Most objects the model keeps (least recently used out first, as an edge evicts the
#: unpopular ones) and most requests waiting for their response.
MAX_OBJECTS = 100_000
_MAX_PENDING = 10_000

_SCHEME_PORTS = {443: "https"}


@dataclass(frozen=True, slots=True)
class CachedObject:
    """One object in the edge's cache: when it was stored, for how long, and its validators."""

    key: str
    stored_at: float
    stored_packet: int
    ttl: float
    ttl_from: str
    etag: str | None
    last_modified: str | None
    length: int
    origin: str

    def fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    @property
    def revalidatable(self) -> bool:
        return self.etag is not None or self.last_modified is not None


@dataclass(frozen=True, slots=True)
class CdnDecision(Decision):
    """A :class:`~osilab.balancers.decision.Decision` of the edge, with its cache facts.

    Attributes:
        cache: ``Hit``, ``Miss``, ``RefreshHit``, ``Redirect`` or ``Error`` (``X-Cache``).
        behavior: the cache behavior's ``PathPattern`` (``Default (*)``).
        origin: the behavior's origin id (also for a hit: the origin it spared).
        cache_key: the cache key, when the behavior caches.
        cached_bytes: the body bytes the edge served from its own copy, which the origin did
            not send: a hit's, and a RefreshHit's (the origin answered 304, no body).
    """

    cache: str = "Miss"
    behavior: str = "Default (*)"
    origin: str | None = None
    cache_key: str | None = None
    cached_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        data = Decision.to_json(self)
        data.update(cache=self.cache, behavior=self.behavior, origin=self.origin)
        if self.cache_key is not None:
            data["cache_key"] = self.cache_key
        if self.cached_bytes:
            data["cached_bytes"] = self.cached_bytes
        return data

    def summary(self) -> str:
        return f"{Decision.summary(self)} [{self.cache} from cloudfront, {self.behavior}]"


def cache_control(value: str | None) -> dict[str, str]:
    """``Cache-Control`` directives (RFC 9111 §5.2), names lower-cased.

    >>> cache_control('public, max-age=300, s-maxage="60"')
    {'public': '', 'max-age': '300', 's-maxage': '60'}
    """
    directives: dict[str, str] = {}
    for part in (value or "").split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            directives[name.lower()] = argument.strip().strip('"')
    return directives


def _seconds(text: str) -> float | None:
    return float(text) if text.isdigit() else None


def _expires(headers: Mapping[str, str]) -> float | None:
    try:
        expires = email.utils.parsedate_to_datetime(headers["expires"])
        date = email.utils.parsedate_to_datetime(headers["date"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (expires - date).total_seconds())


def object_ttl(
    status: int,
    headers: Mapping[str, str],
    behavior: CacheBehavior,
    error_caching: Mapping[int, float] = {},  # noqa: B006 - read only
) -> tuple[float, str] | None:
    """How long the edge keeps a response, and from what; ``None``: not stored.

    ``headers`` are the response's, names lower-cased.

    >>> from osilab.balancers.config.cloudfront import parse_distribution
    >>> dist = parse_distribution({"Origins": {"Items": [{"Id": "o", "DomainName": "o"}]},
    ...     "DefaultCacheBehavior": {"TargetOriginId": "o", "MinTTL": 10, "DefaultTTL": 60,
    ...                              "MaxTTL": 100, "ForwardedValues": {}}})
    >>> object_ttl(200, {"cache-control": "max-age=5"}, dist.default)
    (10.0, 'Cache-Control max-age=5, raised to MinTTL 10')
    >>> object_ttl(200, {}, dist.default)
    (60.0, 'DefaultTTL (no Cache-Control or Expires)')
    """
    policy = behavior.cache_policy
    if not policy.caches:
        return None
    if status in _ERROR_STATUSES:
        ttl = error_caching.get(status, _DEFAULT_ERROR_TTL)
        return (ttl, f"ErrorCachingMinTTL for {status}") if ttl > 0 else None
    if status not in _CACHED_STATUSES:
        return None
    directives = cache_control(headers.get("cache-control"))
    if {"no-store", "no-cache", "private"} & directives.keys():
        said = ", ".join(sorted({"no-store", "no-cache", "private"} & directives.keys()))
        return (policy.min_ttl, f"MinTTL (the origin said {said})") if policy.min_ttl else None
    value, source = None, ""
    for directive in ("s-maxage", "max-age"):
        if directive in directives and (value := _seconds(directives[directive])) is not None:
            source = f"Cache-Control {directive}={directives[directive]}"
            break
    if value is None and (value := _expires(headers)) is not None:
        source = "Expires - Date"
    if value is None:
        return policy.default_ttl, "DefaultTTL (no Cache-Control or Expires)"
    if value < policy.min_ttl:
        return policy.min_ttl, f"{source}, raised to MinTTL {policy.min_ttl:g}"
    if value > policy.max_ttl:
        return policy.max_ttl, f"{source}, lowered to MaxTTL {policy.max_ttl:g}"
    return value, source


def _cookies(request: HttpRequest) -> list[tuple[str, str]]:
    pairs = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            for part in value.split(";"):
                key, sep, val = part.strip().partition("=")
                if sep:
                    pairs.append((key, val))
    return pairs


def _selected(pairs: list[tuple[str, str]], *parts: KeyPart | None) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if any(p is not None and p.selects(k) for p in parts)]


@dataclass(frozen=True, slots=True)
class _Pending:
    decision: CdnDecision
    behavior: CacheBehavior


class CloudFrontDistribution(DecisionKeeper):
    """The edge of one distribution: feed it requests and responses, read its decisions.

    Args:
        config: a :class:`~osilab.balancers.config.cloudfront.DistributionConfig`, the
            ``get-distribution-config`` dict, or the path of its JSON/YAML file.
        keep_decisions: most decisions kept (:data:`~osilab.balancers.decision.KEEP_DECISIONS`).

    >>> # edge = CloudFrontDistribution("captures/cdn/cdn.config.json")
    >>> # [d.cache for d in replay(osilab.read(f), edge, keylog=k).decisions]
    """

    kind = "cdn"
    lb_type = "cdn"

    def __init__(  # noqa: D107 - not DecisionKeeper's: a distribution is no BalancerConfig
        self,
        config: DistributionConfig | Mapping[str, Any] | str | Path,
        *,
        keep_decisions: int | None = KEEP_DECISIONS,
    ) -> None:
        self.distribution = load_distribution(config)
        self.keep_decisions = keep_decisions
        self.decisions_dropped = 0
        self.on_decision: Callable[[Decision], object] | None = None
        self._decisions: list[Decision] = []
        self._cache: OrderedDict[str, CachedObject] = OrderedDict()
        self._pending: dict[tuple[FlowKey, int], _Pending] = {}
        self._cf_ids = itertools.count(1)
        self._errors = dict(self.distribution.error_caching)

    # -- what replay() calls ------------------------------------------------------
    def connection_opened(self, flow: FlowKey, packet: int, time: float | None = None) -> None:
        """The edge needs nothing from the SYN (it decides per request)."""

    def connection_ended(self, flow: FlowKey) -> None:
        """Forget the requests of a connection that ended without their responses."""
        for pending in [k for k in self._pending if k[0] == flow]:
            del self._pending[pending]

    def feed(self, message: HttpRequest | HttpResponse) -> CdnDecision | None:
        """A request: decide it. A response: store what the origin sent, if cacheable."""
        if isinstance(message, HttpResponse):
            self._learn(message)
            return None
        return self.decide(message)

    @property
    def decisions(self) -> DecisionList:
        """Every decision kept so far, in packet order; per target = per origin address."""
        return DecisionList(self._decisions, targets=[o.address for o in self.distribution.origins])

    @property
    def cached(self) -> Iterator[CachedObject]:
        """The objects in the cache now (oldest first)."""
        return iter(self._cache.values())

    # -- deciding -----------------------------------------------------------------
    def decide(self, request: HttpRequest) -> CdnDecision:
        """The edge's answer to one viewer request (see the module's steps 1-4)."""
        config = self.distribution
        behavior = config.behavior_for(request.path)
        position = next((i for i, b in enumerate(config.behaviors) if b is behavior), None)
        behavior_why = explain.cdn_behavior_why(
            request.path, behavior.name, position, len(config.behaviors)
        )
        scheme = _SCHEME_PORTS.get(request.flow.server.port, "http")
        seen: tuple[str, ...] = ("tcp.dstport", "http.request.method", "http.request.uri.path")
        base: dict[str, Any] = dict(
            unit="request", flow=request.flow, request=request,
            decided_at=request.headers_complete_packet, time=request.time,
            behavior=behavior.name, origin=behavior.target_origin_id,
            listener=f"{scheme.upper()}:{request.flow.server.port}",
        )  # fmt: skip
        policy = behavior.viewer_protocol_policy
        if scheme == "http" and policy != "allow-all":
            redirect = policy == "redirect-to-https"
            location = f"https://{request.host or ''}{request.target}" if redirect else None
            status = 301 if redirect else 403
            why = explain.cdn_answer_why(request=request, behavior_why=behavior_why, scheme=scheme,
                                         policy=policy, status=status, location=location)  # fmt: skip
            return self._keep(CdnDecision(
                **base, target_group=None, target=None, seen=(*seen, "http.host"), why=why,
                action="redirect" if redirect else "deny", status=status, location=location,
                cache="Redirect" if redirect else "Error",
            ))  # fmt: skip
        if request.method.upper() not in behavior.allowed_methods:
            why = explain.cdn_method_why(request=request, behavior_why=behavior_why,
                                         allowed=", ".join(behavior.allowed_methods))  # fmt: skip
            return self._keep(CdnDecision(
                **base, target_group=None, target=None, seen=seen, why=why, action="deny",
                status=403, cache="Error",
            ))  # fmt: skip
        caches = behavior.cache_policy.caches and request.method.upper() in behavior.cached_methods
        key, key_seen = self._key(request, behavior) if caches else (None, ())
        seen = (*seen, *key_seen)
        stored = self._cache.get(key) if key is not None else None
        if stored is not None and stored.fresh(request.time):
            self._cache.move_to_end(stored.key)
            why = explain.cdn_hit_why(request=request, behavior_why=behavior_why, key=stored.key,
                                      stored_packet=stored.stored_packet,
                                      age=request.time - stored.stored_at, ttl=stored.ttl,
                                      ttl_from=stored.ttl_from)  # fmt: skip
            return self._keep(CdnDecision(
                **base, target_group=None, target=None, seen=seen, why=why, action="cache-hit",
                cache="Hit", cache_key=key, cached_bytes=stored.length,
            ))  # fmt: skip
        if stored is not None and stored.revalidatable:
            cache = "RefreshHit"
            reason = (f"the stored copy went stale {request.time - stored.stored_at - stored.ttl:.1f}"
                      f" s ago (TTL {stored.ttl:g} s), so the edge revalidates it with a conditional"
                      " request; an unchanged object's 304 Not Modified makes it a RefreshHit")  # fmt: skip
        elif stored is not None:
            cache, reason = "Miss", "the stored copy is stale and has no validator"
        elif key is not None:
            cache, reason = "Miss", "the edge has no copy of this object yet"
        else:
            cache = "Miss"
            reason = (f"the behavior does not cache {request.method} requests" if
                      behavior.cache_policy.caches else
                      f"its cache policy {behavior.cache_policy.name or behavior.cache_policy.id} "
                      "stores nothing (every TTL 0)")  # fmt: skip
        origin = config.origin(behavior.target_origin_id)
        line, headers = self._origin_request(
            request, behavior, stored if cache == "RefreshHit" else None
        )
        why = explain.cdn_forward_why(request=request, behavior_why=behavior_why, key=key,
                                      reason=reason, origin=origin.id, target=origin.address,
                                      cache=cache)  # fmt: skip
        decision = self._keep(CdnDecision(
            **base, target_group=origin.id, target=origin.address, seen=seen, why=why,
            action="forward", cache=cache, cache_key=key, headers_to_target=headers,
            request_line_to_target=line, client_ip_at_target=request.flow.client.ip,
            cached_bytes=stored.length if stored is not None and cache == "RefreshHit" else 0,
        ))  # fmt: skip
        if key is not None and len(self._pending) < _MAX_PENDING:
            self._pending[(request.flow, self._position(request))] = _Pending(decision, behavior)
        return decision

    @staticmethod
    def _position(message: HttpRequest | HttpResponse) -> int:
        return message.stream_id if message.stream_id is not None else message.index

    def _key(self, request: HttpRequest, behavior: CacheBehavior) -> tuple[str, tuple[str, ...]]:
        """The cache key, and the fields read to build it."""
        policy = behavior.cache_policy
        seen: list[str] = ["http.host"]
        key = f"{(request.host or '').lower()}{request.path}"
        query = _selected(parse_qsl(request.query, keep_blank_values=True), policy.query_strings)
        if policy.query_strings.behavior != "none":
            seen.append("http.request.uri.query")
        if query:
            key += "?" + urlencode(query)
        headers = [(n.lower(), v) for n, v in request.headers if policy.headers.selects(n)]
        if policy.headers.behavior != "none":
            seen.extend(f"http.{n}" for n in policy.headers.names)
        if headers:
            key += " headers:" + ",".join(f"{n}={v}" for n, v in headers)
        if policy.cookies.behavior != "none":
            seen.append("http.cookie")
        cookies = _selected(_cookies(request), policy.cookies)
        if cookies:
            key += " cookies:" + ";".join(f"{n}={v}" for n, v in cookies)
        return key, tuple(dict.fromkeys(seen))

    def _origin_request(
        self, request: HttpRequest, behavior: CacheBehavior, stale: CachedObject | None
    ) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The request line and headers the origin receives (CloudFront-DG,
        RequestAndResponseBehaviorCustomOrigin): what the cache policy and the origin
        request policy forward, the origin's Host unless the viewer's is forwarded,
        ``Via``, ``X-Forwarded-For`` with the viewer's address, ``X-Amz-Cf-Id``, and for
        a revalidation the conditional headers."""
        cache, extra = behavior.cache_policy, behavior.origin_request_policy
        origin = self.distribution.origin(behavior.target_origin_id)
        parts_h = (cache.headers, extra.headers if extra else None)
        parts_c = (cache.cookies, extra.cookies if extra else None)
        parts_q = (cache.query_strings, extra.query_strings if extra else None)
        query = _selected(parse_qsl(request.query, keep_blank_values=True), *parts_q)
        line = f"{request.method} {origin.origin_path}{request.path}"
        line += ("?" + urlencode(query) if query else "") + " HTTP/1.1"
        headers: list[tuple[str, str]] = []
        forwarded_host = any(p is not None and p.selects("host") for p in parts_h)
        headers.append(("Host", (request.host or "") if forwarded_host else origin.domain_name))
        via, xff = None, None
        for name, value in request.headers:
            lname = name.lower()
            if lname in _HOP_BY_HOP or lname in ("host", "cookie"):
                continue
            if lname == "via":
                via = value
            elif lname == "x-forwarded-for":
                xff = value
            elif any(p is not None and p.selects(name) for p in parts_h):
                headers.append((name, value))
        if not any(n.lower() == "user-agent" for n, _ in headers):
            headers.append(("User-Agent", "Amazon CloudFront"))
        cookies = _selected(_cookies(request), *parts_c)
        if cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies)))
        hop = f"1.1 {self.distribution.edge_id}.cloudfront.net (CloudFront)"
        headers.append(("Via", f"{via}, {hop}" if via else hop))
        viewer = request.flow.client.ip
        headers.append(("X-Forwarded-For", f"{xff}, {viewer}" if xff else viewer))
        headers.append(("X-Amz-Cf-Id", f"osilab-{next(self._cf_ids):06d}"))
        headers.extend(origin.custom_headers)
        if stale is not None and stale.etag is not None:
            headers.append(("If-None-Match", stale.etag))
        if stale is not None and stale.last_modified is not None:
            headers.append(("If-Modified-Since", stale.last_modified))
        return line, tuple(headers)

    # -- storing ------------------------------------------------------------------
    def _learn(self, response: HttpResponse) -> None:
        pending = self._pending.pop((response.flow, self._position(response)), None)
        if pending is None:
            return
        decision = pending.decision
        headers = {name.lower(): value for name, value in response.headers}
        kept = object_ttl(response.status, headers, pending.behavior, self._errors)
        key = decision.cache_key
        if key is None:
            return
        if kept is None:
            self._cache.pop(key, None)
            return
        ttl, ttl_from = kept
        self._cache[key] = CachedObject(
            key=key, stored_at=response.time, stored_packet=response.headers_complete_packet,
            ttl=ttl, ttl_from=ttl_from, etag=headers.get("etag"),
            last_modified=headers.get("last-modified"), length=response.body_length,
            origin=decision.origin or "",
        )  # fmt: skip
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_OBJECTS:
            self._cache.popitem(last=False)

    def _keep(self, decision: CdnDecision) -> CdnDecision:
        self._record(decision)  # DecisionKeeper's: the cap and on_decision
        return decision

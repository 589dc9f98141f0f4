"""The CloudFront edge model, table-driven from ``lb-reference.md`` §6 and the CloudFront-DG.

Each table row is one documented fact: behaviors matched in list order (first match),
``PathPattern`` case-sensitive with ``*``/``?`` on the path without the query, the viewer
protocol policies (301 / 403), the cache key (query strings, cookies, headers of the cache
policy), TTLs (s-maxage over max-age, Min/Max clamping, DefaultTTL, no-store), the
revalidation (RefreshHit), and the origin request (Host, Via, X-Forwarded-For).
"""

from __future__ import annotations

from typing import Any

import pytest

from osilab import CloudFrontDistribution
from osilab.balancers.cdn import CdnDecision, object_ttl
from osilab.balancers.config.cloudfront import parse_distribution, pattern_regex
from osilab.balancers.tables import DECISION_COLUMNS
from osilab.errors import ConfigError
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import Endpoint, FlowKey

OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"


def distribution(**overrides: Any) -> dict[str, Any]:
    """Two origins, three behaviors in a deliberate order, one custom cache policy."""
    config: dict[str, Any] = {
        "DistributionConfig": {
            "Origins": {"Quantity": 2, "Items": [
                {"Id": "s3", "DomainName": "bucket.example.com",
                 "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}},
                {"Id": "alb", "DomainName": "alb.example.com",
                 "CustomOriginConfig": {"HTTPPort": 80, "OriginProtocolPolicy": "http-only"}},
            ]},
            "DefaultCacheBehavior": {"TargetOriginId": "alb", "ViewerProtocolPolicy": "allow-all",
                                     "CachePolicyId": DISABLED, "OriginRequestPolicyId": ALL_VIEWER,
                                     "AllowedMethods": {"Quantity": 7, "Items": [
                                         "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]}},
            "CacheBehaviors": {"Quantity": 3, "Items": [
                {"PathPattern": "/static/private/*", "TargetOriginId": "alb",
                 "ViewerProtocolPolicy": "https-only", "CachePolicyId": DISABLED},
                {"PathPattern": "/static/*", "TargetOriginId": "s3",
                 "ViewerProtocolPolicy": "redirect-to-https", "CachePolicyId": "keyed"},
                {"PathPattern": "*.jp?g", "TargetOriginId": "s3",
                 "ViewerProtocolPolicy": "allow-all", "CachePolicyId": OPTIMIZED},
            ]},
        },
        "CachePolicies": [{"CachePolicy": {"Id": "keyed", "CachePolicyConfig": {
            "Name": "keyed", "MinTTL": 5, "DefaultTTL": 60, "MaxTTL": 600,
            "ParametersInCacheKeyAndForwardedToOrigin": {
                "HeadersConfig": {"HeaderBehavior": "whitelist",
                                  "Headers": {"Quantity": 1, "Items": ["Accept-Language"]}},
                "CookiesConfig": {"CookieBehavior": "whitelist",
                                  "Cookies": {"Quantity": 1, "Items": ["lang"]}},
                "QueryStringsConfig": {"QueryStringBehavior": "whitelist",
                                       "QueryStrings": {"Quantity": 1, "Items": ["v"]}}}}}}],
        "OriginAddresses": {"bucket.example.com": "192.0.2.50", "alb.example.com": "203.0.113.10"},
    }  # fmt: skip
    config.update(overrides)
    return config


def request(target: str, *, at: float = 0.0, port: int = 443, method: str = "GET",
            headers: tuple[tuple[str, str], ...] = (), index: int = 0, client_port: int = 40000) -> HttpRequest:  # fmt: skip
    flow = FlowKey("tcp", Endpoint("198.51.100.7", client_port), Endpoint("203.0.113.40", port))
    return HttpRequest(flow, index, method, target, "HTTP/1.1",
                       (("Host", "shop.example.com"), *headers), 1, 1 + index, at)  # fmt: skip


def response(req: HttpRequest, *, at: float, status: int = 200, length: int = 1000,
             headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:  # fmt: skip
    return HttpResponse(req.flow, req.index, status, "OK", "HTTP/1.1", headers,
                        10 + req.index, 10 + req.index, at, body_length=length)  # fmt: skip


# -- behaviors: first match in list order, the default last ------------------------------
@pytest.mark.parametrize(
    ("path", "behavior", "origin"),
    [
        ("/static/app.js", "/static/*", "s3"),
        ("/static/private/key.pem", "/static/private/*", "alb"),  # listed first: it wins
        ("/static/", "/static/*", "s3"),
        ("/Static/app.js", "Default (*)", "alb"),  # case-sensitive
        ("/img/cat.jpeg", "*.jp?g", "s3"),  # ? is one character, * crosses /
        ("/img/cat.jpg", "Default (*)", "alb"),  # ? needs exactly one
        ("/api/items/1", "Default (*)", "alb"),
    ],
)
def test_the_first_matching_path_pattern_wins(path: str, behavior: str, origin: str) -> None:
    edge = CloudFrontDistribution(distribution())
    decision = edge.decide(request(path + "?x=1"))  # the query is never matched
    assert (decision.behavior, decision.origin) == (behavior, origin)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [("/static/*", "/static/a/b.css", True), ("static/*", "/static/a", True),
     ("/a?c", "/abc", True), ("/a?c", "/ac", False), ("/a.c", "/abc", False), ("*", "/", True)],
)  # fmt: skip
def test_path_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(pattern_regex(pattern).fullmatch(path)) is matches


# -- the viewer protocol policy: answered at the edge ------------------------------------
@pytest.mark.parametrize(
    ("path", "port", "action", "cache", "status", "location"),
    [
        ("/static/app.js", 80, "redirect", "Redirect", 301, "https://shop.example.com/static/app.js?x=1"),
        ("/static/private/k", 80, "deny", "Error", 403, None),
        ("/static/private/k", 443, "forward", "Miss", None, None),
        ("/api/items", 80, "forward", "Miss", None, None),  # allow-all
    ],
)  # fmt: skip
def test_viewer_protocol_policy(path: str, port: int, action: str, cache: str,
                                status: int | None, location: str | None) -> None:  # fmt: skip
    decision = CloudFrontDistribution(distribution()).decide(request(path + "?x=1", port=port))
    assert (decision.action, decision.cache, decision.status, decision.location) == (
        action, cache, status, location)  # fmt: skip
    assert (decision.target is None) is (action != "forward")


def test_a_method_the_behavior_does_not_allow_is_refused_at_the_edge() -> None:
    decision = CloudFrontDistribution(distribution()).decide(request("/static/a.js", method="POST"))
    assert (decision.action, decision.cache, decision.status) == ("deny", "Error", 403)
    assert "allows only HEAD, GET" in decision.why


# -- the cache key: only what the cache policy names --------------------------------------
@pytest.mark.parametrize(
    ("second", "headers", "cache"),
    [
        ("/static/a.js", (), "Hit"),
        ("/static/a.js?utm=1", (), "Hit"),  # utm is not in the key
        ("/static/a.js?v=2", (), "Miss"),  # v is
        ("/static/a.js", (("Cookie", "session=9"),), "Hit"),  # session is not in the key
        ("/static/a.js", (("Cookie", "lang=fr"),), "Miss"),  # lang is
        ("/static/a.js", (("accept-language", "fr"),), "Miss"),  # header names: no case
        ("/static/b.js", (), "Miss"),
    ],
)
def test_the_cache_key(second: str, headers: tuple[tuple[str, str], ...], cache: str) -> None:
    edge = CloudFrontDistribution(distribution())
    first = request("/static/a.js", at=0.0)
    edge.feed(first)
    edge.feed(response(first, at=0.1, headers=(("Cache-Control", "max-age=60"),)))
    decision = edge.decide(request(second, at=1.0, headers=headers, index=1))
    assert decision.cache == cache, decision.why


def test_a_caching_disabled_behavior_never_stores() -> None:
    edge = CloudFrontDistribution(distribution())
    for index in range(2):
        sent = request("/api/items", at=index, index=index)
        assert edge.feed(sent).cache == "Miss"  # type: ignore[union-attr]
        edge.feed(response(sent, at=index + 0.1, headers=(("Cache-Control", "max-age=600"),)))
    assert list(edge.cached) == []


# -- TTLs: the origin's headers within the policy's bounds --------------------------------
@pytest.mark.parametrize(
    ("status", "headers", "ttl"),
    [
        (200, {"cache-control": "max-age=30"}, 30.0),
        (200, {"cache-control": "max-age=30, s-maxage=90"}, 90.0),  # s-maxage wins
        (200, {"cache-control": "max-age=1"}, 5.0),  # raised to MinTTL
        (200, {"cache-control": "max-age=99999"}, 600.0),  # lowered to MaxTTL
        (200, {}, 60.0),  # DefaultTTL
        (200, {"expires": "Thu, 01 Jan 2026 00:02:00 GMT", "date": "Thu, 01 Jan 2026 00:00:00 GMT"}, 120.0),
        (200, {"cache-control": "no-store"}, 5.0),  # MinTTL > 0 still caches
        (404, {}, 10.0),  # ErrorCachingMinTTL's default
        (302, {"cache-control": "max-age=30"}, None),  # not a cached status
    ],
)  # fmt: skip
def test_how_long_an_object_stays(status: int, headers: dict[str, str], ttl: float | None) -> None:
    behavior = parse_distribution(distribution()).behavior_for("/static/a")
    kept = object_ttl(status, headers, behavior)
    assert (kept[0] if kept else None) == ttl


def test_no_store_is_not_kept_when_min_ttl_is_zero() -> None:
    behavior = parse_distribution(distribution()).behavior_for(
        "/x.jpeg"
    )  # CachingOptimized: MinTTL 1
    assert object_ttl(200, {"cache-control": "no-store"}, behavior) == (
        1.0,
        "MinTTL (the origin said no-store)",
    )
    legacy = parse_distribution({"Origins": {"Items": [{"Id": "o", "DomainName": "o"}]},
                                 "DefaultCacheBehavior": {"TargetOriginId": "o", "MinTTL": 0,
                                                          "ForwardedValues": {}}})  # fmt: skip
    assert object_ttl(200, {"cache-control": "private"}, legacy.default) is None


# -- hit, expiry, revalidation ------------------------------------------------------------
def test_an_object_expires_and_is_revalidated() -> None:
    edge = CloudFrontDistribution(distribution())
    validators = (("Cache-Control", "max-age=10"), ("ETag", '"v1"'),
                  ("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT"))  # fmt: skip
    steps = [(0.0, "Miss"), (5.0, "Hit"), (12.0, "RefreshHit"), (13.0, "Hit"), (30.0, "RefreshHit")]
    seen = []
    for index, (at, _expected) in enumerate(steps):
        sent = request("/static/a.js", at=at, index=index)
        decision = edge.feed(sent)
        assert isinstance(decision, CdnDecision)
        seen.append(decision.cache)
        if decision.target is not None:
            edge.feed(response(sent, at=at + 0.1, headers=validators))
        if decision.cache == "RefreshHit":
            assert ("If-None-Match", '"v1"') in decision.headers_to_target
    assert seen == [expected for _at, expected in steps]


def test_a_stale_object_without_validators_is_a_miss() -> None:
    edge = CloudFrontDistribution(distribution())
    first = request("/static/a.js", at=0.0)
    edge.feed(first)
    edge.feed(response(first, at=0.0, headers=(("Cache-Control", "max-age=10"),)))
    assert edge.decide(request("/static/a.js", at=20.0, index=1)).cache == "Miss"


def test_a_hit_names_the_bytes_the_origin_did_not_send() -> None:
    edge = CloudFrontDistribution(distribution())
    first = request("/static/a.js")
    edge.feed(first)
    edge.feed(response(first, at=0.1, length=4321, headers=(("Cache-Control", "max-age=60"),)))
    hit = edge.decide(request("/static/a.js", at=1.0, index=1))
    assert (hit.action, hit.cached_bytes, hit.target_group, hit.target) == (
        "cache-hit",
        4321,
        None,
        None,
    )
    data = hit.to_json()
    # design.md's route keys first, in order, then the CDN's own
    assert list(data)[:8] == list(DECISION_COLUMNS)[:8]
    assert {"action", "cache", "behavior", "origin"} <= set(data)
    assert data["origin"] == "s3" and "no origin sees the request" in data["why"]


# -- the origin request -------------------------------------------------------------------
def test_the_origin_request() -> None:
    edge = CloudFrontDistribution(distribution())
    to_s3 = edge.decide(
        request(
            "/static/a.js?v=2&utm=x",
            headers=(
                ("Cookie", "lang=fr; session=1"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("User-Agent", "ua"),
            ),
        )
    )
    headers = dict(to_s3.headers_to_target)
    assert to_s3.request_line_to_target == "GET /static/a.js?v=2 HTTP/1.1"
    assert headers["Host"] == "bucket.example.com"  # the origin's name, not the viewer's
    assert headers["Cookie"] == "lang=fr"
    assert headers["X-Forwarded-For"] == "10.0.0.1, 198.51.100.7"  # the viewer appended
    assert headers["Via"] == "1.1 osilab.cloudfront.net (CloudFront)"
    assert headers["User-Agent"] == "Amazon CloudFront"  # not in the key or the policy
    assert to_s3.target == "192.0.2.50:80"
    to_alb = edge.decide(request("/api/x?a=1", headers=(("User-Agent", "ua"),), index=1))
    assert dict(to_alb.headers_to_target)["Host"] == "shop.example.com"  # AllViewer forwards it
    assert dict(to_alb.headers_to_target)["User-Agent"] == "ua"
    assert to_alb.request_line_to_target == "GET /api/x?a=1 HTTP/1.1"


# -- configuration errors name the field ---------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["DistributionConfig"]["DefaultCacheBehavior"].update(TargetOriginId="nope"),
         "DefaultCacheBehavior.TargetOriginId 'nope' names no origin"),
        (lambda d: d["DistributionConfig"]["CacheBehaviors"]["Items"][0].update(
            ViewerProtocolPolicy="https"), "CacheBehaviors.Items[0].ViewerProtocolPolicy 'https'"),
        (lambda d: d["DistributionConfig"]["CacheBehaviors"]["Items"][1].update(CachePolicyId="x"),
         "CacheBehaviors.Items[1].CachePolicyId 'x' is neither a managed policy"),
        (lambda d: d["DistributionConfig"]["CacheBehaviors"].update(Quantity=9),
         "CacheBehaviors: Quantity 9 but 3 Items"),
        (lambda d: d.pop("DistributionConfig"), "not a CloudFront distribution config"),
    ],
)  # fmt: skip
def test_configuration_errors(change: Any, message: str) -> None:
    document = distribution()
    change(document)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_distribution(document)

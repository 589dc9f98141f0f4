"""ALB rule conditions: every condition type with the examples and edge cases of lb-reference.md §1.2."""

from __future__ import annotations

import pytest
from balancers.balancer_helpers import alb_config, flow, request, rule

from osilab.balancers.config import parse_config
from osilab.balancers.rules import evaluate_rules, match_condition, wildcard_match


def _condition(cond: dict):
    """Parse one condition through the real config path (so validation runs too)."""
    config = parse_config(alb_config([rule("10", [cond])]))
    return config.listeners[0].rules[0].conditions[0]


def path(*values):
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def host(*values):
    return {"Field": "host-header", "HostHeaderConfig": {"Values": list(values)}}


def header(name, *values):
    return {
        "Field": "http-header",
        "HttpHeaderConfig": {"HttpHeaderName": name, "Values": list(values)},
    }


def method(*values):
    return {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": list(values)}}


def query(*pairs):
    return {"Field": "query-string", "QueryStringConfig": {"Values": list(pairs)}}


def source(*cidrs):
    return {"Field": "source-ip", "SourceIpConfig": {"Values": list(cidrs)}}


CASES = [
    # (id, condition, request kwargs, expected match)
    # path-pattern: case-sensitive, anchored, * crosses '/', query excluded
    ("path exact", path("/api"), {"target": "/api"}, True),
    ("path /api does not match /api/x", path("/api"), {"target": "/api/items"}, False),
    ("path /api/* does not match /api", path("/api/*"), {"target": "/api"}, False),
    ("path /api/* matches /api/", path("/api/*"), {"target": "/api/"}, True),
    ("path * crosses slashes", path("/img/*"), {"target": "/img/a/b.jpg"}, True),
    ("path case-sensitive", path("/api/*"), {"target": "/API/items"}, False),
    ("path query excluded", path("/api/items"), {"target": "/api/items?id=3"}, True),
    ("path query not matchable", path("*id*"), {"target": "/api/items?id=3"}, False),
    ("path ? is one char", path("/v?/x"), {"target": "/v1/x"}, True),
    ("path ? not zero chars", path("/v?/x"), {"target": "/v/x"}, False),
    ("path ? not two chars", path("/v?/x"), {"target": "/v10/x"}, False),
    ("path OR within values", path("/a", "/b"), {"target": "/b"}, True),
    ("path suffix wildcard", path("*.jpg"), {"target": "/img/cat.jpg"}, True),
    # host-header: case-insensitive, wildcards, whole value
    ("host exact", host("shop.example.com"), {"host": "shop.example.com"}, True),
    ("host case-insensitive", host("shop.example.com"), {"host": "SHOP.Example.COM"}, True),
    ("host *.example.com matches sub", host("*.example.com"), {"host": "test.example.com"}, True),
    ("host *.example.com not apex", host("*.example.com"), {"host": "example.com"}, False),
    ("host anchored", host("example.com"), {"host": "notexample.com"}, False),
    ("host ? one char", host("www?.example.com"), {"host": "www2.example.com"}, True),
    ("host missing", host("shop.example.com"), {"host": None}, False),
    (
        "host with port needs regex",
        host("shop.example.com"),
        {"host": "shop.example.com:8080"},
        False,
    ),
    # http-header: name and value case-insensitive, wildcards in values
    (
        "header wildcard value",
        header("User-Agent", "*Chrome*"),
        {"headers": (("User-Agent", "Mozilla Chrome/120"),)},
        True,
    ),
    (
        "header name case-insensitive",
        header("user-agent", "*chrome*"),
        {"headers": (("USER-AGENT", "x CHROME y"),)},
        True,
    ),
    ("header value anchored", header("X-Env", "prod"), {"headers": (("X-Env", "preprod"),)}, False),
    ("header absent", header("X-Env", "*"), {}, False),
    (
        "header OR values",
        header("User-Agent", "*Chrome*", "*Safari*"),
        {"headers": (("User-Agent", "Safari/17"),)},
        True,
    ),
    # http-request-method: exact, case-sensitive
    ("method exact", method("GET"), {"method": "GET"}, True),
    ("method case-sensitive", method("GET"), {"method": "get"}, False),
    ("method custom", method("CUSTOM-METHOD"), {"method": "CUSTOM-METHOD"}, True),
    ("method HEAD is not GET", method("GET"), {"method": "HEAD"}, False),
    # query-string: key/value case-insensitive with wildcards; no Key = any key
    ("query key=value", query({"Key": "version", "Value": "v1"}), {"target": "/?version=v1"}, True),
    (
        "query case-insensitive",
        query({"Key": "version", "Value": "v1"}),
        {"target": "/?VERSION=V1"},
        True,
    ),
    (
        "query wrong value",
        query({"Key": "version", "Value": "v1"}),
        {"target": "/?version=v2"},
        False,
    ),
    ("query any key", query({"Value": "*example*"}), {"target": "/?a=1&q=my-example-x"}, True),
    ("query wildcard key", query({"Key": "ver*", "Value": "v?"}), {"target": "/?version=v2"}, True),
    ("query none", query({"Key": "version", "Value": "v1"}), {"target": "/items"}, False),
    ("query percent-decoded", query({"Key": "q", "Value": "a b"}), {"target": "/?q=a%20b"}, True),
    # source-ip: the TCP peer, never X-Forwarded-For
    ("source in cidr", source("198.51.100.0/24"), {}, True),
    ("source /32", source("198.51.100.7/32"), {}, True),
    ("source outside", source("192.0.2.0/24"), {}, False),
    (
        "source ignores XFF",
        source("192.0.2.0/24"),
        {"headers": (("X-Forwarded-For", "192.0.2.50"),)},
        False,
    ),
    ("source ipv6", source("2001:db8::/32"), {"on": flow(client_ip="2001:db8::7")}, True),
    (
        "source v4 cidr vs v6 peer",
        source("198.51.100.0/24"),
        {"on": flow(client_ip="2001:db8::7")},
        False,
    ),
]


@pytest.mark.parametrize(
    ("condition", "kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_condition(condition: dict, kwargs: dict, expected: bool) -> None:
    result = match_condition(_condition(condition), request(**kwargs))
    assert result.matched is expected, result.why
    assert result.seen, "a match must say which field it read"
    assert result.why


SEEN = [
    (path("/x"), ("http.request.uri.path",)),
    (host("a.example.com"), ("http.host",)),
    (header("User-Agent", "*"), ("http.user_agent",)),
    (method("GET"), ("http.request.method",)),
    (query({"Value": "x"}), ("http.request.uri.query",)),
    (source("192.0.2.0/24"), ("ip.src",)),
]


@pytest.mark.parametrize(("condition", "seen"), SEEN)
def test_condition_reports_the_field_it_read(condition: dict, seen: tuple) -> None:
    assert match_condition(_condition(condition), request()).seen == seen


def test_source_ip_why_says_xff_is_ignored() -> None:
    result = match_condition(
        _condition(source("192.0.2.0/24")), request(headers=(("X-Forwarded-For", "192.0.2.50"),))
    )
    assert "X-Forwarded-For" in result.why and "TCP peer" in result.why


def test_path_why_mentions_the_ignored_query() -> None:
    result = match_condition(_condition(path("/api/items")), request(target="/api/items?id=3"))
    assert "id=3" in result.why and "not part of the path" in result.why


def test_and_across_conditions_or_within_values() -> None:
    config = parse_config(alb_config([rule("5", [host("*.example.com"), path("/a", "/b")])]))
    rules = config.listeners[0].rules
    assert evaluate_rules(rules, request("/b", host="x.example.com")).rule is not None
    assert evaluate_rules(rules, request("/c", host="x.example.com")).rule is None
    assert evaluate_rules(rules, request("/a", host="x.other.com")).rule is None


def _winner(rules, target: str) -> int | None:
    outcome = evaluate_rules(rules, request(target))
    return outcome.rule.priority if outcome.rule else None


def test_priority_order_is_numeric_and_first_match_wins() -> None:
    config = parse_config(
        alb_config(
            [
                rule("100", [path("/*")], [{"Type": "forward", "TargetGroupName": "web"}]),
                rule("20", [path("/api/*")]),
                rule(
                    "3",
                    [path("/api/special")],
                    [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "204"}}],
                ),
            ]
        )
    )
    rules = config.listeners[0].rules
    assert [r.priority for r in rules] == [
        3,
        20,
        100,
    ]  # "100" < "20" as strings; AWS orders numbers
    assert _winner(rules, "/api/items") == 20
    assert _winner(rules, "/api/special") == 3
    assert _winner(rules, "/index.html") == 100
    outcome = evaluate_rules(rules, request("/api/items"))
    assert [label for label, _, _ in outcome.tried] == ["3", "20"]


def test_default_rule_when_nothing_matches() -> None:
    config = parse_config(alb_config([rule("10", [path("/api/*")])]))
    outcome = evaluate_rules(config.listeners[0].rules, request("/"))
    assert outcome.rule is None and "default" in outcome.why
    assert outcome.seen == ("http.request.uri.path",)


@pytest.mark.parametrize(
    ("pattern", "value", "case_sensitive", "expected"),
    [
        ("a*b", "ab", True, True),
        ("a*b", "a/x/b", True, True),
        ("a.b", "axb", True, False),  # '.' is literal, not regex
        ("a+b", "a+b", True, True),
        ("(x)", "(x)", True, True),
        ("A*", "abc", False, True),
        ("A*", "abc", True, False),
    ],
)
def test_wildcards_are_not_regex(
    pattern: str, value: str, case_sensitive: bool, expected: bool
) -> None:
    assert wildcard_match(pattern, value, case_sensitive=case_sensitive) is expected

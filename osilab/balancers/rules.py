"""ALB listener rules: does this HTTP request match this condition, and why?

Theory of operation
-------------------
An Application Load Balancer evaluates a listener's rules in ascending priority; the
first rule whose conditions *all* match wins (AND across conditions), and inside one
condition it is enough that *one* value matches (OR within values). When nothing
matches, the default rule runs [ALB-UG load-balancer-listeners.md].

Each condition type has its own semantics (``lb-reference.md`` §1.2):

=====================  =================  ====================================================
condition              case               what is compared
=====================  =================  ====================================================
host-header            insensitive        the Host header, ``*`` and ``?`` wildcards
path-pattern           **sensitive**      the path **without the query string**; ``*`` also
                                          crosses ``/``
http-header            insensitive        the named header (no wildcard in the name),
                                          wildcards in the values
http-request-method    **sensitive**      the method, exactly
query-string           insensitive        ``key=value`` pairs, wildcards; no Key = any key
source-ip              -                  the **TCP peer's** address (never X-Forwarded-For)
=====================  =================  ====================================================

Every wildcard pattern is anchored: it must match the *whole* value, so ``/api/*`` does
not match ``/api`` and ``/api`` does not match ``/api/items``.

``RegexValues`` (host-header, http-header, path-pattern; 2025) are searched, not
anchored: a regex matches when it matches *somewhere* in the value, as a regex engine's
search does, and a regex that means the whole value says so with ``^...$`` (as every one
of AWS's examples does). Host and header regexes ignore case, path regexes do not,
like their wildcard forms. A Host that carries a port (``example.com:8443``) is matched
as sent, port included, so only a regex can match it (``lb-reference.md`` §1.2;
``docs/aws-model.md`` says why and where Python's dialect may differ from AWS's).

Every match returns, besides the verdict, the fields it looked at (Wireshark field
names, for a decision's ``seen``) and a sentence a learner can read (for its ``why``).

This module knows the request only through :class:`~osilab.protocols.messages.HttpRequest`;
it knows nothing of packets, targets or actions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_plus

from osilab.balancers.config import Condition, Rule
from osilab.balancers.config.conditions import compile_aws_regex
from osilab.protocols.messages import HttpRequest

__all__ = [
    "CompiledRules",
    "ConditionMatch",
    "RuleMatch",
    "wildcard_match",
    "regex_search",
    "match_condition",
    "match_rule",
    "evaluate_rules",
    "condition_fields",
    "header_field",
]

# Wireshark display-filter names of what each condition reads.
FIELD_HOST = "http.host"
FIELD_PATH = "http.request.uri.path"
FIELD_QUERY = "http.request.uri.query"
FIELD_METHOD = "http.request.method"
FIELD_SOURCE = "ip.src"


def header_field(name: str) -> str:
    """The Wireshark-style field name of a header: ``User-Agent`` -> ``http.user_agent``."""
    return "http." + name.lower().replace("-", "_")


def condition_fields(condition: Condition, *, ipv6: bool = False) -> tuple[str, ...]:
    """The request fields a condition reads, as Wireshark names them."""
    if condition.field == "host-header":
        return (FIELD_HOST,)
    if condition.field == "path-pattern":
        return (FIELD_PATH,)
    if condition.field == "http-request-method":
        return (FIELD_METHOD,)
    if condition.field == "query-string":
        return (FIELD_QUERY,)
    if condition.field == "source-ip":
        return ("ipv6.src" if ipv6 else FIELD_SOURCE,)
    return (header_field(condition.header_name or ""),)


@lru_cache(maxsize=4096)
def _compile(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile("".join(parts), flags)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """AWS wildcard matching: ``*`` is 0 or more characters (``/`` included), ``?`` exactly one.

    The pattern must match the whole value (anchored at both ends).

    >>> wildcard_match("/api/*", "/api/items/3", case_sensitive=True)
    True
    >>> wildcard_match("/api/*", "/api", case_sensitive=True)
    False
    >>> wildcard_match("*.example.com", "Shop.EXAMPLE.com", case_sensitive=False)
    True
    """
    return _compile(pattern, case_sensitive).fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    compiled = compile_aws_regex(pattern, case_sensitive=case_sensitive)
    if isinstance(compiled, str):  # parse_conditions refused it already; a hand-built Condition
        raise ValueError(f"RegexValues {pattern!r}: {compiled}")
    return compiled


def regex_search(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """Whether a ``RegexValues`` regex matches somewhere in ``value`` (not anchored).

    >>> regex_search("^/api/v[0-9]+/.*$", "/api/v2/items", case_sensitive=True)
    True
    >>> regex_search("v[0-9]+", "/api/v2/items", case_sensitive=True)  # a search, unanchored
    True
    >>> regex_search("^shop[.]example[.]com:8443$", "SHOP.example.com:8443", case_sensitive=False)
    True
    """
    return _regex(pattern, case_sensitive).search(value) is not None


def _matches(condition: Condition, pattern: str, value: str, *, case_sensitive: bool) -> bool:
    """One value of a condition against one request value: wildcard (anchored) or regex."""
    if condition.regex:
        return regex_search(pattern, value, case_sensitive=case_sensitive)
    return wildcard_match(pattern, value, case_sensitive=case_sensitive)


def _kind(condition: Condition) -> str:
    """How the why names the condition's values: ``regex`` or the field's own word."""
    return f"{condition.field} regex" if condition.regex else condition.field


@dataclass(frozen=True, slots=True)
class ConditionMatch:
    """One condition against one request: the verdict, the fields read, and why."""

    matched: bool
    seen: tuple[str, ...]
    why: str


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The outcome of evaluating a listener's rules for one request.

    ``rule`` is the winning rule, or ``None`` when the default rule runs. ``seen`` is
    every field read while evaluating (rules tried before the winner included), in the
    order first read; ``why`` says which rule won and on what; ``tried`` lists
    ``(priority label, matched, explanation)`` for every rule evaluated.
    """

    rule: Rule | None
    seen: tuple[str, ...]
    why: str
    tried: tuple[tuple[str, bool, str], ...] = ()


def _host_value(request: HttpRequest) -> str | None:
    # The Host header is compared as sent, port included: AWS documents that a host with
    # a non-standard port (example.com:8443) needs RegexValues, because ':' is not a
    # character the plain Values accept (lb-reference.md §1.2).
    return request.host


def _has_port(host: str) -> bool:
    """``shop.example.com:8443`` or ``[2001:db8::1]:8443``: a Host that names a port."""
    if host.startswith("["):
        return "]:" in host
    return ":" in host


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _quoted(values: tuple[str, ...]) -> str:
    return " or ".join(repr(v) for v in values)


def match_condition(condition: Condition, request: HttpRequest) -> ConditionMatch:
    """Evaluate one condition on one request with AWS semantics.

    ``source-ip`` compares the TCP peer (``request.flow.client.ip``): behind another
    proxy that is the proxy, and X-Forwarded-For is never consulted.
    """
    ipv6 = ":" in request.flow.client.ip
    seen = condition_fields(condition, ipv6=ipv6)
    kind = condition.field
    if kind == "path-pattern":
        path = request.path
        note = f" (query {request.query!r} not part of the path)" if request.query else ""
        for pattern in condition.values:
            if _matches(condition, pattern, path, case_sensitive=True):
                return ConditionMatch(
                    True, seen, f"path {path!r} matches {_kind(condition)} {pattern!r}{note}"
                )
        how = "case-sensitive, searched" if condition.regex else "case-sensitive, whole path"
        return ConditionMatch(
            False,
            seen,
            f"path {path!r} does not match {_kind(condition)} {_quoted(condition.values)} "
            f"({how}){note}",
        )
    if kind == "host-header":
        host = _host_value(request)
        if host is None:
            return ConditionMatch(False, seen, "the request has no Host header")
        if not condition.regex and _has_port(host):
            return ConditionMatch(
                False,
                seen,
                f"host {host!r} carries a port, and on AWS only RegexValues match a host with "
                f"a port, not host-header {_quoted(condition.values)}",
            )
        for pattern in condition.values:
            if _matches(condition, pattern, host, case_sensitive=False):
                return ConditionMatch(
                    True, seen, f"host {host!r} matches {_kind(condition)} {pattern!r}"
                )
        return ConditionMatch(
            False,
            seen,
            f"host {host!r} does not match {_kind(condition)} {_quoted(condition.values)}",
        )
    if kind == "http-request-method":
        if request.method in condition.values:
            return ConditionMatch(
                True, seen, f"method {request.method} is one of {', '.join(condition.values)}"
            )
        return ConditionMatch(
            False,
            seen,
            f"method {request.method} is not {' or '.join(condition.values)} (exact, case-sensitive)",
        )
    if kind == "http-header":
        name = condition.header_name or ""
        values = [value for key, value in request.headers if key.lower() == name.lower()]
        if not values:
            return ConditionMatch(False, seen, f"the request has no {name} header")
        for value in values:
            for pattern in condition.values:
                if _matches(condition, pattern, value, case_sensitive=False):
                    what = f"regex {pattern!r}" if condition.regex else repr(pattern)
                    return ConditionMatch(True, seen, f"header {name}: {value!r} matches {what}")
        return ConditionMatch(
            False, seen, f"header {name}: {values[0]!r} does not match {_quoted(condition.values)}"
        )
    if kind == "query-string":
        pairs = _query_pairs(request.query)
        for wanted in condition.query:
            for key, value in pairs:
                key_ok = wanted.key is None or wildcard_match(wanted.key, key, case_sensitive=False)
                if key_ok and wildcard_match(wanted.value, value, case_sensitive=False):
                    shown = (
                        f"{wanted.key}={wanted.value}"
                        if wanted.key
                        else f"(any key)={wanted.value}"
                    )
                    return ConditionMatch(True, seen, f"query pair {key}={value} matches {shown}")
        wanted_text = " or ".join(f"{p.key or '(any key)'}={p.value}" for p in condition.query)
        shown_query = repr(request.query) if request.query else "(no query string)"
        return ConditionMatch(
            False, seen, f"query {shown_query} has no pair matching {wanted_text}"
        )
    # source-ip: the TCP peer, never X-Forwarded-For
    peer = request.flow.client.ip
    address = ipaddress.ip_address(peer)
    xff = request.header("x-forwarded-for")
    xff_note = f" (X-Forwarded-For {xff!r} is ignored: source-ip uses the TCP peer)" if xff else ""
    for cidr in condition.values:
        network = ipaddress.ip_network(cidr, strict=False)
        if address.version == network.version and address in network:
            return ConditionMatch(True, seen, f"TCP peer {peer} is in source-ip {cidr}{xff_note}")
    return ConditionMatch(
        False, seen, f"TCP peer {peer} is not in source-ip {_quoted(condition.values)}{xff_note}"
    )


def match_rule(rule: Rule, request: HttpRequest) -> tuple[bool, tuple[str, ...], str]:
    """All conditions of a rule (AND). Stops at the first condition that fails.

    Returns ``(matched, fields read, explanation)``.
    """
    seen: list[str] = []
    reasons = []
    for condition in rule.conditions:
        result = match_condition(condition, request)
        for name in result.seen:
            if name not in seen:
                seen.append(name)
        reasons.append(result.why)
        if not result.matched:
            return False, tuple(seen), reasons[-1]
    return True, tuple(seen), " and ".join(reasons)


def evaluate_rules(rules: tuple[Rule, ...], request: HttpRequest) -> RuleMatch:
    """Evaluate rules in ascending priority; the first that matches wins.

    ``rules`` must already be sorted (a :class:`~osilab.balancers.config.Listener` keeps
    them so). When none matches, ``rule`` is ``None``: the default rule applies.
    """
    seen: list[str] = []
    tried = []
    for rule in rules:
        matched, fields, why = match_rule(rule, request)
        for name in fields:
            if name not in seen:
                seen.append(name)
        tried.append((rule.label, matched, why))
        if matched:
            return RuleMatch(rule, tuple(seen), f"rule {rule.label} matched: {why}", tuple(tried))
    if rules:
        why = f"no rule matched ({len(rules)} tried; e.g. rule {tried[0][0]}: {tried[0][2]}), so the default rule applied"
    else:
        why = "the listener has no rules, so the default rule applied"
    return RuleMatch(None, tuple(seen), why, tuple(tried))


def _path_test(condition: Condition) -> Callable[[HttpRequest], bool]:
    """A wildcard ``path-pattern``'s verdict alone (case-sensitive, whole path)."""
    matchers = tuple(_compile(pattern, True).fullmatch for pattern in condition.values)
    return lambda request: any(m(request.path) is not None for m in matchers)


def _method_test(condition: Condition) -> Callable[[HttpRequest], bool]:
    values = frozenset(condition.values)
    return lambda request: request.method in values


def _verdict(condition: Condition) -> Callable[[HttpRequest], bool]:
    """The verdict of :func:`match_condition`, fast where the explanation is the only cost.

    The common conditions get a compiled test (the very test :func:`match_condition`
    runs); any other is :func:`match_condition` itself, its ``matched`` kept."""
    if condition.field == "path-pattern" and not condition.regex:
        return _path_test(condition)
    if condition.field == "http-request-method":
        return _method_test(condition)
    return lambda request: match_condition(condition, request).matched


class CompiledRules:
    """A listener's rules compiled once (per config): which rule wins and the fields read.

    :func:`evaluate_rules` explains every condition it tries in a sentence; a balancer
    deciding millions of requests needs only the winner and ``seen``, and the sentence
    when someone reads the decision's why. :meth:`match` gives the same winner and the
    same ``seen`` as :func:`evaluate_rules` (the same conditions are tried, in the same
    order, stopping at the same place: ``tests/balancers/test_rules.py`` compares them);
    ``seen`` is computed once for each way through the rules and then reused.
    """

    __slots__ = ("rules", "_tests", "_seen", "_by_source", "_first")

    def __init__(self, rules: tuple[Rule, ...], *, read_first: tuple[str, ...] = ()) -> None:
        self.rules = rules
        #: Fields the balancer read before any rule (``seen`` starts with them).
        self._first = read_first
        self._tests = tuple(tuple(_verdict(c) for c in rule.conditions) for rule in rules)
        self._seen: dict[tuple[tuple[int, ...], bool], tuple[str, ...]] = {}
        #: Whether ``seen`` depends on the client's address family (a source-ip condition).
        self._by_source = any(c.field == "source-ip" for r in rules for c in r.conditions)

    def match(self, request: HttpRequest) -> tuple[Rule | None, tuple[str, ...]]:
        """``(winning rule or None for the default, fields read)`` for ``request``."""
        tried: list[int] = []
        winner = None
        for rule, tests in zip(self.rules, self._tests, strict=True):
            count = 0
            for test in tests:
                count += 1
                if not test(request):
                    break
            else:
                winner = rule
            tried.append(count)
            if winner is not None:
                break
        key = (tuple(tried), self._by_source and ":" in request.flow.client.ip)
        seen = self._seen.get(key)
        if seen is None:
            names = dict.fromkeys(self._first)
            for rule, count in zip(self.rules, tried, strict=False):
                for condition in rule.conditions[:count]:
                    names.update(dict.fromkeys(condition_fields(condition, ipv6=key[1])))
            seen = self._seen[key] = tuple(names)
        return winner, seen

r"""Rule conditions: the AWS ``RuleCondition`` shapes, checked the way AWS checks them.

Theory of operation
-------------------
A listener rule lists conditions; all must match (AND), and the values inside one
condition are alternatives (OR) [ALB-UG load-balancer-listeners.md]. Each condition names
its ``Field`` and carries its values in the ``*Config`` object of that field::

    {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}

(``host-header`` and ``path-pattern`` also accept the older ``"Values": [...]`` shorthand.)

Since 2025 ``host-header``, ``http-header`` and ``path-pattern`` also take
``RegexValues`` instead of ``Values`` (never both) [API PathPatternConditionConfig]. AWS's
dialect has no lookaround, backreferences, atomic groups, possessive quantifiers,
subroutines, recursion or Unicode properties (``\p{L}``), and a regex is at most 128
characters (``lb-reference.md`` §1.2): :func:`aws_regex_problem` refuses those the way
AWS does, then Python's :mod:`re` must compile what is left. ``docs/aws-model.md`` says
where the two dialects may still differ.

:func:`parse_conditions` reads a rule's list in three steps:

1. :func:`_condition_values` finds the values (``*Config.Values`` or the shorthand);
2. :data:`_FIELD_PARSERS`, one small function per field, checks the characters, lengths
   and forms AWS allows for that field (``lb-reference.md`` §1.2) and builds the
   :class:`~osilab.balancers.config.model.Condition`;
3. the rule-wide limits: one condition of some fields per rule, 3 match evaluations per
   condition, 5 values and 5 wildcards per rule (``lb-reference.md`` §1.1).

Every problem raises :class:`~osilab.errors.RuleError` naming the rule and the field, so
the message reads like the AWS API's ``ValidationError``. This module is a part of
:mod:`osilab.balancers.config.parse`; it knows nothing of listeners or actions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.balancers.config.model import Condition, QueryPair, Transform
from osilab.errors import RuleError

__all__ = [
    "CONDITION_FIELDS",
    "ONCE_PER_RULE",
    "MAX_VALUES_PER_CONDITION",
    "MAX_VALUES_PER_RULE",
    "MAX_WILDCARDS_PER_RULE",
    "MAX_PATTERN_LENGTH",
    "REGEX_FIELDS",
    "aws_regex_problem",
    "compile_aws_regex",
    "TRANSFORM_TYPES",
    "parse_conditions",
    "parse_transforms",
]

#: Each condition field and the name of the ``*Config`` object that carries its values.
CONDITION_FIELDS = {
    "host-header": "HostHeaderConfig",
    "path-pattern": "PathPatternConfig",
    "http-header": "HttpHeaderConfig",
    "http-request-method": "HttpRequestMethodConfig",
    "query-string": "QueryStringConfig",
    "source-ip": "SourceIpConfig",
}
#: At most one condition of each of these per rule [API RuleCondition].
ONCE_PER_RULE = ("host-header", "http-request-method", "path-pattern", "source-ip")

MAX_VALUES_PER_CONDITION = 3  # "match evaluations per condition" [ALB-UG load-balancer-limits.md]
MAX_VALUES_PER_RULE = 5  # "condition values per rule"
MAX_WILDCARDS_PER_RULE = 5
MAX_PATTERN_LENGTH = 128

# Characters AWS allows in the *Values of a condition (lb-reference.md §1.2); * and ? are
# the wildcards. "&" is allowed in path patterns (AWS documents it as "&amp;").
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]+$")
_PATH_ALLOWED = "A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & and the wildcards * ?"
_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-.*?]+$")
_HOST_ALLOWED = "A-Z a-z 0-9 - . and the wildcards * ?; a port needs RegexValues"
_METHOD_CHARS = re.compile(r"^[A-Z_\-]{1,40}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token

#: The fields that also take the legacy top-level ``"Values"`` shorthand.
_LEGACY_VALUES = ("host-header", "path-pattern")
#: The fields that take ``RegexValues`` (2025) [API HostHeaderConditionConfig].
REGEX_FIELDS = ("host-header", "http-header", "path-pattern")

#: ``(?`` group openings AWS's regex dialect refuses, and what each one is.
_REFUSED_GROUPS = (
    ("<=", "a lookbehind"),
    ("<!", "a lookbehind"),
    ("=", "a lookahead"),
    ("!", "a lookahead"),
    (">", "an atomic group"),
    ("P=", "a backreference"),
    ("P>", "a subroutine call"),
    ("&", "a subroutine call"),
    ("R", "recursion"),
)
#: Escapes AWS's regex dialect refuses (``\1``..``\9`` are checked apart).
_REFUSED_ESCAPES = {
    "k": "a backreference",
    "g": "a backreference or subroutine call",
    "p": "a Unicode property (\\p{..})",
    "P": "a Unicode property (\\P{..})",
}
_QUANTIFIER_BRACES = re.compile(r"\{\d+(,\d*)?\}|\{,\d+\}")


def _escape_problem(letter: str) -> str | None:
    if letter.isdigit() and letter != "0":
        return "a backreference"
    return _REFUSED_ESCAPES.get(letter)


def aws_regex_problem(pattern: str, max_length: int = MAX_PATTERN_LENGTH) -> str | None:
    r"""What AWS refuses in a ``RegexValues`` (or transform) regex, or ``None``.

    A scan of the pattern, escape by escape and group by group (inside ``[...]`` only the
    escapes matter): lookaround ``(?=``, ``(?!``, ``(?<=``, ``(?<!``; backreferences
    ``\1`` and ``\k<name>``; atomic groups ``(?>``; possessive quantifiers ``a*+``;
    subroutines and recursion ``(?R)``, ``(?1)``, ``(?&name)``; ``\p{..}``; over 128
    characters (``max_length``: a transform's Regex may have 1024).

    >>> aws_regex_problem("^/api/v[0-9]+/.*$") is None
    True
    >>> aws_regex_problem("^(?=admin).*$"), aws_regex_problem("(a)\\1"), aws_regex_problem("a++")
    ('a lookahead', 'a backreference', 'a possessive quantifier')
    """
    if len(pattern) > max_length:
        return f"more than {max_length} characters"
    position, after_quantifier, in_class = 0, False, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            problem = _escape_problem(pattern[position + 1 : position + 2])
            if problem:
                return problem
            position, after_quantifier = position + 2, False
            continue
        if in_class:
            in_class = char != "]"
            position += 1
            continue
        if char == "[":
            in_class = True
            position += 2 if pattern[position + 1 : position + 2] in ("]", "^") else 1
            after_quantifier = False
            continue
        if char == "(" and pattern.startswith("?", position + 1):
            rest = pattern[position + 2 :]
            for opening, what in _REFUSED_GROUPS:
                if rest.startswith(opening):
                    return what
            if rest[:1].isdigit() or (rest[:1] in "+-" and rest[1:2].isdigit()):
                return "a subroutine call"
            position, after_quantifier = position + 2, False
            continue
        braces = _QUANTIFIER_BRACES.match(pattern, position) if char == "{" else None
        if char in "*+?" or braces:
            if after_quantifier:
                if char == "+":
                    return "a possessive quantifier"
                after_quantifier = False  # "?" after a quantifier makes it lazy: allowed
            else:
                after_quantifier = True
            position = braces.end() if braces else position + 1
            continue
        after_quantifier = False
        position += 1
    return None


def compile_aws_regex(
    pattern: str, *, case_sensitive: bool = True, max_length: int = MAX_PATTERN_LENGTH
) -> re.Pattern[str] | str:
    """The compiled regex, or the reason AWS (or Python's :mod:`re`) refuses it."""
    problem = aws_regex_problem(pattern, max_length)
    if problem is not None:
        return f"{problem} is not supported"
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        return f"it is not a valid regular expression ({exc})"


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a problem is: the rule (its label) and the condition's field."""

    rule: str
    field: str

    def error(self, reason: str) -> RuleError:
        return RuleError(reason, rule=self.rule, field=self.field)


# --------------------------------------------------------------------------- the values


def _regex_values(config: Mapping[str, Any], config_key: str, place: _Place) -> list[Any] | None:
    """``*Config.RegexValues`` (checked as AWS checks them), or ``None`` when there are none."""
    if "RegexValues" not in config:
        return None
    if place.field not in REGEX_FIELDS:
        raise place.error(f"RegexValues are only allowed for {', '.join(REGEX_FIELDS)}")
    if config.get("Values"):
        raise place.error(f"'{config_key}' can have Values or RegexValues, not both")
    values = config["RegexValues"]
    if not isinstance(values, list) or not values:
        raise place.error("a condition needs at least one value")
    for pattern in _strings(values, place):
        compiled = compile_aws_regex(pattern)
        if isinstance(compiled, str):
            raise place.error(f"RegexValues {pattern!r}: {compiled}")
    return values


def _condition_values(cond: Mapping[str, Any], config_key: str, place: _Place) -> list[Any]:
    """The values from the ``*Config`` object or the legacy ``Values`` shorthand (or both, equal)."""
    config = cond.get(config_key)
    legacy = cond.get("Values")
    if config is not None:
        if not isinstance(config, Mapping):
            raise place.error(f"'{config_key}' must be an object")
        regex = _regex_values(config, config_key, place)
        if regex is not None:
            return regex
        values = config.get("Values")
        if values is None:
            raise place.error(f"'{config_key}' needs 'Values'")
        if legacy is not None and list(legacy) != list(values) and place.field in _LEGACY_VALUES:
            raise place.error(f"'Values' and '{config_key}.Values' disagree")
    elif legacy is not None:
        if place.field not in _LEGACY_VALUES:
            raise place.error(
                f"the legacy 'Values' shorthand only exists for host-header and path-pattern; "
                f"use '{config_key}'"
            )
        values = legacy
    else:
        raise place.error(f"a {place.field} condition needs '{config_key}'")
    if not isinstance(values, list) or not values:
        raise place.error("a condition needs at least one value")
    return values


def _strings(values: list[Any], place: _Place) -> tuple[str, ...]:
    """The values, each a non-empty string ("values can't be empty" [API RuleCondition])."""
    for value in values:
        if not isinstance(value, str) or value == "":
            raise place.error("condition values cannot be empty")
    return tuple(values)


def _check_pattern(
    pattern: str, chars: re.Pattern[str], allowed: str, place: _Place, *, shown: str, long: str
) -> None:
    """A host or path pattern: at most 128 characters, all of them ones AWS allows.

    ``shown`` names the pattern in the message, ``long`` names it when it is too long.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise place.error(f"{long} is longer than 128 characters")
    if not chars.match(pattern):
        raise place.error(f"{shown} has a character AWS does not allow (allowed: {allowed})")


# --------------------------------------------------------------------------- one parser per field


def _is_regex(cond: Mapping[str, Any], field: str) -> bool:
    config = cond.get(CONDITION_FIELDS[field])
    return isinstance(config, Mapping) and "RegexValues" in config


def _pattern_condition(values: list[Any], cond: Mapping[str, Any], place: _Place,
                       check: Callable[[str, _Place], None]) -> Condition:
    """A condition of wildcard patterns, each passed through ``check``; with
    ``RegexValues`` (``cond``'s config) they are regexes instead and are not checked."""
    patterns = _strings(values, place)
    if _is_regex(cond, place.field):
        return Condition(place.field, patterns, regex=True)
    for pattern in patterns:
        check(pattern, place)
    return Condition(place.field, patterns)


def _check_path(pattern: str, place: _Place) -> None:
    shown = f"path pattern {pattern!r}"
    long = f"path pattern {pattern[:20]!r}..."
    _check_pattern(pattern, _PATH_CHARS, _PATH_ALLOWED, place, shown=shown, long=long)


def _check_host(pattern: str, place: _Place) -> None:
    shown = f"host {pattern!r}"
    _check_pattern(pattern, _HOST_CHARS, _HOST_ALLOWED, place, shown=shown, long=shown)
    if "." not in pattern or not re.fullmatch(r"[A-Za-z*?]+", pattern.rsplit(".", 1)[1]):
        raise place.error(f"host {pattern!r} must contain a '.' with only letters after the last one")


def _path_pattern(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``path-pattern``: case-sensitive, path only, ``*`` and ``?`` wildcards (or regexes)."""
    return _pattern_condition(values, cond, place, _check_path)


def _host_header(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``host-header``: a name with a dot and only letters after the last one (or regexes)."""
    return _pattern_condition(values, cond, place, _check_host)


def _request_method(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``http-request-method``: exact, case-sensitive method names, no wildcards."""
    methods = _strings(values, place)
    for method in methods:
        if not _METHOD_CHARS.match(method):
            raise place.error(
                f"method {method!r} is not allowed: up to 40 characters A-Z, '-', '_' "
                "(matching is exact and case-sensitive, no wildcards)"
            )
    return Condition(place.field, methods)


def _source_ip(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``source-ip``: IPv4 or IPv6 CIDRs of the TCP peer (never X-Forwarded-For)."""
    cidrs = _strings(values, place)
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise place.error(f"{cidr!r} is not an IPv4 or IPv6 CIDR") from None
        if "/" not in cidr:
            raise place.error(f"{cidr!r} needs a prefix length (e.g. /32)")
        if network == ipaddress.ip_network("255.255.255.255/32"):
            raise place.error("255.255.255.255/32 is not allowed as a source IP")
    return Condition(place.field, cidrs)


def _http_header(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``http-header``: a header name (a token, no wildcards) and values that may have them."""
    name = cond[CONDITION_FIELDS[place.field]].get("HttpHeaderName")
    if not isinstance(name, str) or not name:
        raise place.error("an http-header condition needs 'HttpHeaderName'")
    if "*" in name or "?" in name:
        raise place.error(
            f"header name {name!r}: wildcards are allowed only in values, not in the header name"
        )
    if not _HEADER_NAME.match(name) or len(name) > 40:
        raise place.error(f"{name!r} is not a valid header name")
    regex = _is_regex(cond, place.field)
    return Condition(place.field, _strings(values, place), header_name=name, regex=regex)


def _query_string(values: list[Any], cond: Mapping[str, Any], place: _Place) -> Condition:
    """``query-string``: ``{"Key"?: ..., "Value": ...}`` pairs; no Key matches any key."""
    pairs = []
    for item in values:
        if not isinstance(item, Mapping) or not item.get("Value"):
            raise place.error("each query-string value is {'Key': optional, 'Value': non-empty}")
        key = item.get("Key")
        if key is not None and (not isinstance(key, str) or key == ""):
            raise place.error("a query-string Key cannot be empty (leave it out for any key)")
        pairs.append(QueryPair(key, str(item["Value"])))
    return Condition(place.field, query=tuple(pairs))


#: Condition field -> the function that checks its values and builds the Condition.
_FIELD_PARSERS: Mapping[str, Callable[[list[Any], Mapping[str, Any], _Place], Condition]] = (
    MappingProxyType(
        {
            "host-header": _host_header,
            "path-pattern": _path_pattern,
            "http-header": _http_header,
            "http-request-method": _request_method,
            "query-string": _query_string,
            "source-ip": _source_ip,
        }
    )
)


# --------------------------------------------------------------------------- a condition, a rule's list


def _parse_condition(cond: Any, label: str) -> Condition:
    if not isinstance(cond, Mapping) or "Field" not in cond:
        raise RuleError(f"a condition needs 'Field': {cond!r}", rule=label)
    field_name = cond["Field"]
    if field_name not in CONDITION_FIELDS:
        raise RuleError(
            f"unknown condition field {field_name!r} (valid: {', '.join(CONDITION_FIELDS)})",
            rule=label,
        )
    place = _Place(label, field_name)
    config_key = CONDITION_FIELDS[field_name]
    allowed = {"Field", "Values", *CONDITION_FIELDS.values()}
    for key in cond:
        if key not in allowed:
            raise place.error(f"unknown key {key!r} in a condition")
    for other in CONDITION_FIELDS.values():
        if other != config_key and other in cond:
            raise place.error(f"'{other}' does not belong to a {field_name} condition")
    values = _condition_values(cond, config_key, place)
    return _FIELD_PARSERS[field_name](values, cond, place)


def _wildcards(condition: Condition) -> int:
    if condition.field in ("source-ip", "http-request-method") or condition.regex:
        return 0
    if condition.field == "query-string":
        texts = [pair.value for pair in condition.query] + [p.key for p in condition.query if p.key]
    else:
        texts = list(condition.values)
    return sum(text.count("*") + text.count("?") for text in texts)


def parse_conditions(raw: Any, label: str) -> tuple[Condition, ...]:
    """A rule's ``Conditions``, each checked, then the limits of the rule as a whole.

    >>> [c.field for c in parse_conditions([{"Field": "path-pattern", "Values": ["/api/*"]}], "10")]
    ['path-pattern']
    >>> parse_conditions([{"Field": "host-header", "Values": ["shop"]}], "10")
    Traceback (most recent call last):
    ...
    osilab.errors.RuleError: rule 10, host-header: host 'shop' must contain a '.' with only letters after the last one
    """
    if not isinstance(raw, list) or not raw:
        raise RuleError(
            "a rule (other than the default rule) needs at least one condition", rule=label
        )
    conditions = tuple(_parse_condition(cond, label) for cond in raw)
    for name in ONCE_PER_RULE:
        if sum(1 for cond in conditions if cond.field == name) > 1:
            raise RuleError(f"a rule can only have one '{name}' condition", rule=label, field=name)
    for cond in conditions:
        if cond.evaluations > MAX_VALUES_PER_CONDITION:
            raise RuleError(
                f"a condition can have at most {MAX_VALUES_PER_CONDITION} match evaluations, "
                f"this one has {cond.evaluations}",
                rule=label,
                field=cond.field,
            )
    total = sum(cond.evaluations for cond in conditions)
    if total > MAX_VALUES_PER_RULE:
        raise RuleError(
            f"a rule can have at most {MAX_VALUES_PER_RULE} condition values, this one has {total}",
            rule=label,
        )
    wildcards = sum(_wildcards(cond) for cond in conditions)
    if wildcards > MAX_WILDCARDS_PER_RULE:
        raise RuleError(
            f"a rule can have at most {MAX_WILDCARDS_PER_RULE} wildcards, this one has {wildcards}",
            rule=label,
        )
    return conditions


# --------------------------------------------------------------------------- transforms

#: Transform ``Type`` -> the key of its config object [API RuleTransform].
TRANSFORM_TYPES = {
    "host-header-rewrite": "HostHeaderRewriteConfig",
    "url-rewrite": "UrlRewriteConfig",
}
_MAX_REWRITE_TEXT = 1024  # Regex and Replace (CloudFormation ListenerRule RewriteConfig)


def _parse_transform(raw: Any, label: str) -> Transform:
    place = _Place(label, "Transforms")
    if not isinstance(raw, Mapping) or raw.get("Type") not in TRANSFORM_TYPES:
        raise place.error(f"a transform's Type is one of {', '.join(TRANSFORM_TYPES)}: {raw!r}")
    kind = raw["Type"]
    config_key = TRANSFORM_TYPES[kind]
    for key in raw:
        if key not in ("Type", config_key):
            raise place.error(f"unknown key {key!r} in a {kind} transform")
    config = raw.get(config_key)
    rewrites = config.get("Rewrites") if isinstance(config, Mapping) else None
    if not isinstance(rewrites, list) or len(rewrites) != 1:
        raise place.error(f"a {kind} transform needs '{config_key}': {{'Rewrites': [one rewrite]}}")
    rewrite = rewrites[0]
    if not isinstance(rewrite, Mapping) or set(rewrite) - {"Regex", "Replace"}:
        raise place.error("a rewrite is {'Regex': ..., 'Replace': ...}")
    regex, replace = rewrite.get("Regex"), rewrite.get("Replace")
    if not isinstance(regex, str) or not regex or not isinstance(replace, str):
        raise place.error("a rewrite needs a non-empty 'Regex' and a 'Replace'")
    if len(replace) > _MAX_REWRITE_TEXT:
        raise place.error(f"Replace is at most {_MAX_REWRITE_TEXT} characters")
    compiled = compile_aws_regex(regex, max_length=_MAX_REWRITE_TEXT)
    if isinstance(compiled, str):
        raise place.error(f"Regex {regex[:40]!r}: {compiled}")
    groups = compiled.groups
    for number in re.findall(r"\$(\d+)", replace):
        if int(number) > groups:
            raise place.error(f"Replace {replace!r} uses ${number}, but Regex has {groups} groups")
    return Transform(kind, regex, replace)


def parse_transforms(raw: Any, label: str) -> tuple[Transform, ...]:
    """A rule's ``Transforms``: at most one ``host-header-rewrite`` and one ``url-rewrite``.

    They are never allowed on the default rule (the caller refuses that) and run only
    after the rule has won [ALB-UG rule-transforms].

    >>> [t.type for t in parse_transforms([{"Type": "url-rewrite", "UrlRewriteConfig":
    ...     {"Rewrites": [{"Regex": "^/dp/([A-Za-z0-9]+)/?$", "Replace": "/product.php?id=$1"}]}}], "9")]
    ['url-rewrite']
    """
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise RuleError("'Transforms' must be a list", rule=label, field="Transforms")
    transforms = tuple(_parse_transform(item, label) for item in raw)
    for kind in TRANSFORM_TYPES:
        if sum(1 for t in transforms if t.type == kind) > 1:
            raise RuleError(
                f"a rule can have at most one {kind} transform", rule=label, field="Transforms"
            )
    return transforms

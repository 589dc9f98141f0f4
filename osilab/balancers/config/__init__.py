"""Balancer configuration: the AWS-shaped JSON (or YAML) a learner can paste.

Theory of operation
-------------------
One document describes one balancer the way AWS describes it (see ``docs/design.md``,
"Load balancer configuration")::

    {"Type": "application",
     "TargetGroups": [{"Name": "web", "Protocol": "HTTP", "Port": 80,
                       "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}],
     "Listeners": [{"Protocol": "HTTP", "Port": 80,
                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                    "Rules": [ ...exactly as `aws elbv2 describe-rules` prints them... ]}]}

:func:`parse_config` turns such a dict into frozen dataclasses and checks every AWS rule
and limit it knows (``lb-reference.md`` §1.1-§1.3, §2), so a model never runs on a
configuration AWS itself would refuse. A rule problem raises
:class:`~osilab.errors.RuleError` naming the rule's priority, anything else
:class:`~osilab.errors.ConfigError`; the messages read like the AWS API's
``ValidationError`` so that the learner recognises them.

Attributes may be given the AWS way (``"Attributes": [{"Key": ..., "Value": ...}]``, as
``describe-target-group-attributes`` prints them) or as a plain ``{key: value}`` dict;
the most used ones also have a short key of their own (``"Algorithm"``).

This module knows nothing of packets or HTTP messages: it only reads and checks
configuration. :func:`load_config` is the one function that touches a file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osilab.errors import ConfigError, RuleError

__all__ = [
    "BalancerConfig",
    "TargetGroup",
    "HealthChange",
    "Listener",
    "Rule",
    "Condition",
    "QueryPair",
    "Action",
    "WeightedTargetGroup",
    "RedirectConfig",
    "FixedResponseConfig",
    "parse_config",
    "load_config",
    "default_config",
    "counterpart",
    "target_group_name",
]

APPLICATION = "application"
NETWORK = "network"

ALB_LISTENER_PROTOCOLS = ("HTTP", "HTTPS")
NLB_LISTENER_PROTOCOLS = ("TCP", "UDP", "TLS", "TCP_UDP")
ALB_ALGORITHMS = ("round_robin", "least_outstanding_requests", "weighted_random")
DESYNC_MODES = ("monitor", "defensive", "strictest")
XFF_MODES = ("append", "preserve", "remove")

#: Flow-hash field sets an NLB target group can use (see :mod:`osilab.balancers.hashing`).
NLB_HASHES = ("5-tuple", "5-tuple+seq", "source-ip", "source-ip-proto")
#: How a flow hash becomes a target.
NLB_TABLES = ("maglev", "modulo", "nft-jhash")

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

MAX_PRIORITY = 50000
MAX_VALUES_PER_CONDITION = 3  # "match evaluations per condition" [ALB-UG load-balancer-limits.md]
MAX_VALUES_PER_RULE = 5  # "condition values per rule"
MAX_WILDCARDS_PER_RULE = 5
MAX_TARGET_GROUPS_PER_FORWARD = 5
MAX_WEIGHT = 999
MAX_PATTERN_LENGTH = 128

FIXED_RESPONSE_CONTENT_TYPES = (
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
)

# Characters AWS allows in the *Values of a condition (lb-reference.md §1.2); * and ? are
# the wildcards. "&" is allowed in path patterns (AWS documents it as "&amp;").
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_\-.$/~\"'@:+&*?]+$")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-.*?]+$")
_METHOD_CHARS = re.compile(r"^[A-Z_\-]{1,40}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
_FIXED_STATUS = re.compile(r"^(2|4|5)\d\d$")

# Keys AWS prints that carry no routing meaning; accepted and ignored.
_IGNORED_RULE_KEYS = {"RuleArn", "IsDefault", "ListenerArn", "Tags"}
_IGNORED_LISTENER_KEYS = {
    "ListenerArn",
    "LoadBalancerArn",
    "Certificates",
    "SslPolicy",
    "AlpnPolicy",
    "MutualAuthentication",
    "Tags",
}
_IGNORED_TG_KEYS = {
    "TargetGroupArn",
    "TargetType",
    "VpcId",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
    "LoadBalancerArns",
    "IpAddressType",
    "Tags",
}
_IGNORED_LB_KEYS = {
    "LoadBalancerArn",
    "LoadBalancerName",
    "DNSName",
    "Scheme",
    "VpcId",
    "AvailabilityZones",
    "SecurityGroups",
    "IpAddressType",
    "State",
    "CreatedTime",
    "CanonicalHostedZoneId",
    "Tags",
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A target's health changes at a moment of the replay.

    ``time`` is an epoch time, or (when below 10^9) seconds after the first packet.
    ``state`` is ``"healthy"`` or ``"unhealthy"``.
    """

    time: float
    target: str
    state: str


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """A target group: where a forward action sends traffic, and how it picks a target.

    Attributes:
        name: the group's name (from ``Name``, or the ARN's ``targetgroup/<name>/`` part).
        protocol, port: the protocol and port towards the targets.
        targets: registered targets, ``"ip:port"``, in registration order (round robin
            starts at the first).
        algorithm: ALB ``load_balancing.algorithm.type``.
        stickiness: ``None``, ``"lb_cookie"`` (ALB, cookie ``AWSALB``) or ``"source_ip"`` (NLB).
        stickiness_seconds: ``stickiness.lb_cookie.duration_seconds`` (default 86400).
        preserve_client_ip: NLB ``preserve_client_ip.enabled`` (AWS's default depends on
            the protocol: off for IP targets over TCP/TLS, on for UDP/TCP_UDP).
        proxy_protocol_v2: NLB ``proxy_protocol_v2.enabled``.
        hash: NLB flow-hash fields (``"5-tuple"`` by default).
        table: NLB hash-to-target method, ``"maglev"`` (default), ``"modulo"``, or
            ``"nft-jhash"``: the osilab lab's nftables balancer (``jhash ip saddr . tcp
            sport . ip daddr . tcp dport mod N seed HashSeed``), to check the model
            against the real one.
        hash_seed: the seed of ``"nft-jhash"`` (the lab uses 0x05115EED).
        table_size: Maglev table size M (a prime; default 65537).
        health_changes: scheduled target health changes, in time order.
    """

    name: str
    protocol: str
    port: int
    targets: tuple[str, ...]
    algorithm: str = "round_robin"
    stickiness: str | None = None
    stickiness_seconds: int = 86400
    preserve_client_ip: bool = False
    proxy_protocol_v2: bool = False
    hash: str = "5-tuple"
    table: str = "maglev"
    table_size: int = 65537
    hash_seed: int = 0
    health_changes: tuple[HealthChange, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryPair:
    """One ``QueryStringConfig`` value: ``Key`` may be ``None`` (any key)."""

    key: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule condition (``RuleCondition``).

    ``values`` holds the patterns (for ``query-string`` see ``query``); ``header_name``
    is the ``HttpHeaderName`` of an ``http-header`` condition.
    """

    field: str
    values: tuple[str, ...] = ()
    header_name: str | None = None
    query: tuple[QueryPair, ...] = ()

    @property
    def evaluations(self) -> int:
        """How many match evaluations (values) this condition counts for AWS's limits."""
        return len(self.query) if self.field == "query-string" else len(self.values)


@dataclass(frozen=True, slots=True)
class WeightedTargetGroup:
    """A target group inside a forward action, with its weight (0-999)."""

    name: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class RedirectConfig:
    """``RedirectConfig``: unset parts keep the request's values (``#{...}``)."""

    status_code: str
    protocol: str = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"


@dataclass(frozen=True, slots=True)
class FixedResponseConfig:
    """``FixedResponseConfig``: the ALB answers by itself."""

    status_code: str
    content_type: str | None = None
    message_body: str = ""


@dataclass(frozen=True, slots=True)
class Action:
    """A rule action: ``forward``, ``redirect`` or ``fixed-response``.

    A forward action lists one or more target groups with weights;
    ``group_stickiness`` is ``TargetGroupStickinessConfig.Enabled`` (cookie ``AWSALBTG``).
    """

    type: str
    order: int = 1
    target_groups: tuple[WeightedTargetGroup, ...] = ()
    group_stickiness: bool = False
    group_stickiness_seconds: int = 0
    redirect: RedirectConfig | None = None
    fixed_response: FixedResponseConfig | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A listener rule: conditions (AND) and the action(s) that run when all match.

    ``priority`` is the number; ``label`` is how osilab names the rule in messages and
    decisions (the priority as AWS prints it, or ``"default"``).
    """

    priority: int
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]

    @property
    def label(self) -> str:
        return str(self.priority)

    @property
    def action(self) -> Action:
        """The terminal action (forward, redirect or fixed-response): always the last."""
        return self.actions[-1]


@dataclass(frozen=True, slots=True)
class Listener:
    """A listener: protocol and port, default actions, and (ALB only) rules.

    ``rules`` are kept sorted by ascending priority, the order AWS evaluates them.
    ``idle_timeout`` is the NLB's TCP idle timeout (``tcp.idle_timeout.seconds``,
    default 350) or the ALB's ``idle_timeout.timeout_seconds`` (default 60).
    """

    protocol: str
    port: int
    default_actions: tuple[Action, ...]
    rules: tuple[Rule, ...] = ()
    idle_timeout: float = 350.0

    @property
    def default_action(self) -> Action:
        return self.default_actions[-1]


@dataclass(frozen=True, slots=True)
class BalancerConfig:
    """A whole balancer: its type, target groups and listeners, plus LB attributes.

    Attributes:
        type: ``"application"`` (ALB) or ``"network"`` (NLB).
        desync_mitigation_mode: ``routing.http.desync_mitigation_mode`` (ALB).
        xff_mode: ``routing.http.xff_header_processing.mode`` (ALB).
        xff_client_port: ``routing.http.xff_client_port.enabled`` (ALB).
        udp_idle_timeout: the NLB's UDP idle timeout, fixed at 120 s by AWS.
        seed: osilab's seed for everything random or opaque (weighted random, cookies,
            trace ids), so a replay is reproducible.
        name: the balancer's name, for titles.
    """

    type: str
    target_groups: tuple[TargetGroup, ...]
    listeners: tuple[Listener, ...]
    desync_mitigation_mode: str = "defensive"
    xff_mode: str = "append"
    xff_client_port: bool = False
    udp_idle_timeout: float = 120.0
    seed: int = 0
    name: str = ""
    _groups: dict[str, TargetGroup] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._groups.update({group.name: group for group in self.target_groups})

    @property
    def is_network(self) -> bool:
        return self.type == NETWORK

    def group(self, name: str) -> TargetGroup:
        """The target group called ``name`` (ConfigError when there is none)."""
        try:
            return self._groups[name]
        except KeyError:
            raise ConfigError(f"no target group named {name!r}") from None

    def listener(self, port: int, proto: str | None = None) -> Listener | None:
        """The listener on ``port`` that accepts transport ``proto`` ("tcp"/"udp"), if any."""
        for listener in self.listeners:
            if listener.port != port:
                continue
            if proto is None or _listener_accepts(listener.protocol, proto):
                return listener
        return None


def _listener_accepts(protocol: str, proto: str) -> bool:
    if protocol in ("UDP",):
        return proto == "udp"
    if protocol == "TCP_UDP":
        return proto in ("tcp", "udp")
    return proto == "tcp"  # TCP, TLS, HTTP, HTTPS


# --------------------------------------------------------------------------- helpers


def target_group_name(reference: str) -> str:
    """A target group's name from a ``TargetGroupName`` or a ``TargetGroupArn``.

    The ARN form is ``arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID``;
    the name is the part after ``targetgroup/`` up to the next ``/``.

    >>> target_group_name("arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/blue-targets/73e2d6bc24d8a067")
    'blue-targets'
    """
    if reference.startswith("arn:"):
        marker = "targetgroup/"
        if marker not in reference:
            raise ConfigError(f"not a target group ARN (no 'targetgroup/'): {reference!r}")
        return reference.split(marker, 1)[1].split("/", 1)[0]
    return reference


def _attributes(obj: Mapping[str, Any], where: str) -> dict[str, str]:
    """``Attributes`` as a dict of strings, from the AWS list form or a plain dict."""
    raw = obj.get("Attributes", {})
    if isinstance(raw, Mapping):
        return {str(k): _text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        result = {}
        for item in raw:
            if not isinstance(item, Mapping) or "Key" not in item or "Value" not in item:
                raise ConfigError(f"{where}: each attribute needs 'Key' and 'Value': {item!r}")
            result[str(item["Key"])] = _text(item["Value"])
        return result
    raise ConfigError(f"{where}: 'Attributes' must be a list of Key/Value pairs or a dict")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(value: str, key: str, where: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{where}: attribute {key} must be 'true' or 'false', not {value!r}")
    return lowered == "true"


def _number(value: Any, key: str, where: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{where}: {key} must be between {low:g} and {high:g}, not {number:g}")
    return number


def _check_keys(obj: Any, allowed: Iterable[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(obj).__name__}")
    allowed = set(allowed)
    for key in obj:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown field {key!r} (expected one of {', '.join(sorted(allowed))})"
            )
    return obj


def _endpoint_text(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: a target is a string 'ip:port', not {text!r}")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        port_number = int(port)
    except ValueError:
        raise ConfigError(
            f"{where}: a target is 'ip:port' (e.g. '192.0.2.11:80'), not {text!r}"
        ) from None
    if not sep or not 1 <= port_number <= 65535:
        raise ConfigError(f"{where}: target port must be 1-65535 in {text!r}")
    return text


# --------------------------------------------------------------------------- target groups


def _parse_target_group(obj: Any, lb_type: str, index: int) -> TargetGroup:
    where = f"TargetGroups[{index}]"
    allowed = {
        "Name",
        "TargetGroupName",
        "Protocol",
        "Port",
        "Targets",
        "Algorithm",
        "Stickiness",
        "PreserveClientIp",
        "ProxyProtocolV2",
        "Hash",
        "HashTable",
        "TableSize",
        "HashSeed",
        "HealthChanges",
        "Attributes",
    } | _IGNORED_TG_KEYS
    obj = _check_keys(obj, allowed, where)
    name = obj.get("Name") or obj.get("TargetGroupName")
    if not name and obj.get("TargetGroupArn"):
        name = target_group_name(obj["TargetGroupArn"])
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: a target group needs a 'Name'")
    where = f"target group {name!r}"
    protocol = str(obj.get("Protocol", "HTTP" if lb_type == APPLICATION else "TCP")).upper()
    port = int(_number(obj.get("Port", 80), "Port", where, 1, 65535))
    raw_targets = obj.get("Targets", [])
    if not isinstance(raw_targets, list):
        raise ConfigError(f"{where}: 'Targets' must be a list of 'ip:port' strings")
    targets = []
    for item in raw_targets:
        if isinstance(item, Mapping):  # describe-target-health shape {"Id":..,"Port":..}
            item = f"{item.get('Id')}:{item.get('Port', port)}"
        targets.append(_endpoint_text(item, where))
    if len(set(targets)) != len(targets):
        raise ConfigError(f"{where}: a target is registered twice")

    attrs = _attributes(obj, where)
    algorithm = str(obj.get("Algorithm", attrs.get("load_balancing.algorithm.type", "round_robin")))
    if lb_type == APPLICATION and algorithm not in ALB_ALGORITHMS:
        raise ConfigError(
            f"{where}: load_balancing.algorithm.type must be one of {', '.join(ALB_ALGORITHMS)}, "
            f"not {algorithm!r}"
        )

    stickiness = obj.get("Stickiness")
    if stickiness is None and attrs.get("stickiness.enabled", "false").lower() == "true":
        stickiness = attrs.get(
            "stickiness.type", "lb_cookie" if lb_type == APPLICATION else "source_ip"
        )
    if stickiness in (False, "", "none", None):
        stickiness = None
    elif stickiness is True:
        stickiness = "lb_cookie" if lb_type == APPLICATION else "source_ip"
    allowed_sticky = ("lb_cookie", "app_cookie") if lb_type == APPLICATION else ("source_ip",)
    if stickiness is not None and stickiness not in allowed_sticky:
        raise ConfigError(
            f"{where}: stickiness.type must be {' or '.join(allowed_sticky)} for a "
            f"{lb_type} load balancer, not {stickiness!r}"
        )
    if stickiness == "app_cookie":
        raise ConfigError(
            f"{where}: app_cookie stickiness is not modelled by osilab (use lb_cookie)"
        )
    seconds = int(
        _number(
            attrs.get("stickiness.lb_cookie.duration_seconds", 86400),
            "stickiness.lb_cookie.duration_seconds",
            where,
            1,
            604800,
        )
    )

    # AWS default: off for IP targets over TCP/TLS, always on for UDP and TCP_UDP.
    default_preserve = protocol in ("UDP", "TCP_UDP")
    preserve = obj.get("PreserveClientIp")
    if preserve is None:
        preserve = _bool(
            attrs.get("preserve_client_ip.enabled", _text(default_preserve)),
            "preserve_client_ip.enabled",
            where,
        )
    if protocol in ("UDP", "TCP_UDP") and not preserve:
        raise ConfigError(
            f"{where}: client IP preservation is always on for {protocol} target groups"
        )
    proxy_v2 = obj.get("ProxyProtocolV2")
    if proxy_v2 is None:
        proxy_v2 = _bool(
            attrs.get("proxy_protocol_v2.enabled", "false"), "proxy_protocol_v2.enabled", where
        )

    flow_hash = str(obj.get("Hash", "source-ip" if stickiness == "source_ip" else "5-tuple"))
    if flow_hash not in NLB_HASHES:
        raise ConfigError(
            f"{where}: Hash must be one of {', '.join(NLB_HASHES)}, not {flow_hash!r}"
        )
    table = str(obj.get("HashTable", "maglev"))
    if table not in NLB_TABLES:
        raise ConfigError(
            f"{where}: HashTable must be one of {', '.join(NLB_TABLES)}, not {table!r}"
        )
    if table == "nft-jhash" and flow_hash != "5-tuple":
        raise ConfigError(
            f"{where}: HashTable 'nft-jhash' hashes the 4-tuple; Hash must be '5-tuple'"
        )
    table_size = int(_number(obj.get("TableSize", 65537), "TableSize", where, 2, 5000011))
    if not _is_prime(table_size):
        raise ConfigError(
            f"{where}: the Maglev TableSize must be prime (65537, 5000011...), not {table_size}"
        )

    raw_seed = obj.get("HashSeed", 0)
    try:
        hash_seed = int(raw_seed, 0) if isinstance(raw_seed, str) else int(raw_seed)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: HashSeed must be an integer (or '0x...'), not {raw_seed!r}"
        ) from None
    if not 0 <= hash_seed <= 0xFFFFFFFF:
        raise ConfigError(f"{where}: HashSeed must fit in 32 bits")

    changes = []
    for item in obj.get("HealthChanges", []) or []:
        item = _check_keys(item, {"Time", "Target", "State"}, f"{where} HealthChanges")
        state = str(item.get("State", "")).lower()
        if state not in ("healthy", "unhealthy"):
            raise ConfigError(
                f"{where}: a health change State is 'healthy' or 'unhealthy', not {state!r}"
            )
        target = _endpoint_text(item.get("Target"), where)
        if target not in targets:
            raise ConfigError(f"{where}: health change for {target}, which is not registered here")
        changes.append(HealthChange(float(item.get("Time", 0)), target, state))
    changes.sort(key=lambda change: change.time)

    return TargetGroup(
        name=name,
        protocol=protocol,
        port=port,
        targets=tuple(targets),
        algorithm=algorithm,
        stickiness=stickiness,
        stickiness_seconds=seconds,
        preserve_client_ip=bool(preserve),
        proxy_protocol_v2=bool(proxy_v2),
        hash=flow_hash,
        table=table,
        table_size=table_size,
        hash_seed=hash_seed,
        health_changes=tuple(changes),
    )


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    divisor = 2
    while divisor * divisor <= number:
        if number % divisor == 0:
            return False
        divisor += 1
    return True


# --------------------------------------------------------------------------- conditions


def _condition_values(
    cond: Mapping[str, Any], config_key: str, label: str, field_name: str
) -> list[Any]:
    """The values from the ``*Config`` object or the legacy ``Values`` shorthand (or both, equal)."""
    config = cond.get(config_key)
    legacy = cond.get("Values")
    if config is not None:
        if not isinstance(config, Mapping):
            raise RuleError(f"'{config_key}' must be an object", rule=label, field=field_name)
        if "RegexValues" in config:
            raise RuleError(
                "RegexValues are not modelled by osilab; use Values", rule=label, field=field_name
            )
        values = config.get("Values")
        if values is None:
            raise RuleError(f"'{config_key}' needs 'Values'", rule=label, field=field_name)
        if (
            legacy is not None
            and list(legacy) != list(values)
            and field_name in ("host-header", "path-pattern")
        ):
            raise RuleError(
                f"'Values' and '{config_key}.Values' disagree", rule=label, field=field_name
            )
    elif legacy is not None:
        if field_name not in ("host-header", "path-pattern"):
            raise RuleError(
                f"the legacy 'Values' shorthand only exists for host-header and path-pattern; "
                f"use '{config_key}'",
                rule=label,
                field=field_name,
            )
        values = legacy
    else:
        raise RuleError(
            f"a {field_name} condition needs '{config_key}'", rule=label, field=field_name
        )
    if not isinstance(values, list) or not values:
        raise RuleError("a condition needs at least one value", rule=label, field=field_name)
    return values


def _parse_condition(cond: Any, label: str) -> Condition:
    if not isinstance(cond, Mapping) or "Field" not in cond:
        raise RuleError(f"a condition needs 'Field': {cond!r}", rule=label)
    field_name = cond["Field"]
    if field_name not in CONDITION_FIELDS:
        raise RuleError(
            f"unknown condition field {field_name!r} (valid: {', '.join(CONDITION_FIELDS)})",
            rule=label,
        )
    config_key = CONDITION_FIELDS[field_name]
    allowed = {"Field", "Values", *CONDITION_FIELDS.values()}
    for key in cond:
        if key not in allowed:
            raise RuleError(f"unknown key {key!r} in a condition", rule=label, field=field_name)
    for other in CONDITION_FIELDS.values():
        if other != config_key and other in cond:
            raise RuleError(
                f"'{other}' does not belong to a {field_name} condition",
                rule=label,
                field=field_name,
            )
    values = _condition_values(cond, config_key, label, field_name)

    def need_strings(items: list[Any]) -> tuple[str, ...]:
        for item in items:
            if not isinstance(item, str) or item == "":
                raise RuleError("condition values cannot be empty", rule=label, field=field_name)
        return tuple(items)

    if field_name == "path-pattern":
        patterns = need_strings(values)
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_LENGTH:
                raise RuleError(
                    f"path pattern {pattern[:20]!r}... is longer than 128 characters",
                    rule=label,
                    field=field_name,
                )
            if not _PATH_CHARS.match(pattern):
                raise RuleError(
                    f"path pattern {pattern!r} has a character AWS does not allow "
                    "(allowed: A-Z a-z 0-9 _ - . $ / ~ \" ' @ : + & and the wildcards * ?)",
                    rule=label,
                    field=field_name,
                )
        return Condition(field_name, patterns)
    if field_name == "host-header":
        patterns = need_strings(values)
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_LENGTH:
                raise RuleError(
                    f"host {pattern!r} is longer than 128 characters", rule=label, field=field_name
                )
            if not _HOST_CHARS.match(pattern):
                raise RuleError(
                    f"host {pattern!r} has a character AWS does not allow "
                    "(allowed: A-Z a-z 0-9 - . and the wildcards * ?; a port needs RegexValues)",
                    rule=label,
                    field=field_name,
                )
            if "." not in pattern or not re.fullmatch(r"[A-Za-z*?]+", pattern.rsplit(".", 1)[1]):
                raise RuleError(
                    f"host {pattern!r} must contain a '.' with only letters after the last one",
                    rule=label,
                    field=field_name,
                )
        return Condition(field_name, patterns)
    if field_name == "http-request-method":
        methods = need_strings(values)
        for method in methods:
            if not _METHOD_CHARS.match(method):
                raise RuleError(
                    f"method {method!r} is not allowed: up to 40 characters A-Z, '-', '_' "
                    "(matching is exact and case-sensitive, no wildcards)",
                    rule=label,
                    field=field_name,
                )
        return Condition(field_name, methods)
    if field_name == "source-ip":
        cidrs = need_strings(values)
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise RuleError(
                    f"{cidr!r} is not an IPv4 or IPv6 CIDR", rule=label, field=field_name
                ) from None
            if "/" not in cidr:
                raise RuleError(
                    f"{cidr!r} needs a prefix length (e.g. /32)", rule=label, field=field_name
                )
            if network == ipaddress.ip_network("255.255.255.255/32"):
                raise RuleError(
                    "255.255.255.255/32 is not allowed as a source IP", rule=label, field=field_name
                )
        return Condition(field_name, cidrs)
    if field_name == "http-header":
        config = cond[config_key]
        name = config.get("HttpHeaderName")
        if not isinstance(name, str) or not name:
            raise RuleError(
                "an http-header condition needs 'HttpHeaderName'", rule=label, field=field_name
            )
        if "*" in name or "?" in name:
            raise RuleError(
                f"header name {name!r}: wildcards are allowed only in values, not in the header name",
                rule=label,
                field=field_name,
            )
        if not _HEADER_NAME.match(name) or len(name) > 40:
            raise RuleError(f"{name!r} is not a valid header name", rule=label, field=field_name)
        return Condition(field_name, need_strings(values), header_name=name)
    # query-string: Values are {"Key"?: ..., "Value": ...}
    pairs = []
    for item in values:
        if not isinstance(item, Mapping) or not item.get("Value"):
            raise RuleError(
                "each query-string value is {'Key': optional, 'Value': non-empty}",
                rule=label,
                field=field_name,
            )
        key = item.get("Key")
        if key is not None and (not isinstance(key, str) or key == ""):
            raise RuleError(
                "a query-string Key cannot be empty (leave it out for any key)",
                rule=label,
                field=field_name,
            )
        pairs.append(QueryPair(key, str(item["Value"])))
    return Condition(field_name, query=tuple(pairs))


def _wildcards(condition: Condition) -> int:
    if condition.field in ("source-ip", "http-request-method"):
        return 0
    if condition.field == "query-string":
        texts = [pair.value for pair in condition.query] + [p.key for p in condition.query if p.key]
    else:
        texts = list(condition.values)
    return sum(text.count("*") + text.count("?") for text in texts)


# --------------------------------------------------------------------------- actions

_REDIRECT_PLACEHOLDERS = {
    # where each placeholder may appear [ALB-UG load-balancer-listeners.md]
    "Protocol": ("#{protocol}",),
    "Host": ("#{host}",),
    "Port": ("#{port}",),
    "Path": ("#{host}", "#{port}", "#{path}"),
    "Query": ("#{protocol}", "#{host}", "#{port}", "#{path}", "#{query}"),
}


def _parse_action(
    obj: Any, label: str, listener_protocol: str, lb_type: str, groups: Mapping[str, TargetGroup]
) -> Action:
    allowed = {
        "Type",
        "Order",
        "TargetGroupArn",
        "TargetGroupName",
        "ForwardConfig",
        "RedirectConfig",
        "FixedResponseConfig",
    }
    if not isinstance(obj, Mapping):
        raise RuleError(f"an action must be an object, not {obj!r}", rule=label)
    for key in obj:
        if key not in allowed:
            raise RuleError(f"unknown key {key!r} in an action", rule=label)
    kind = obj.get("Type")
    order = int(obj.get("Order", 1))
    if kind in ("authenticate-oidc", "authenticate-cognito", "jwt-validation"):
        raise RuleError(f"{kind} actions are not modelled by osilab", rule=label, field="Actions")
    if lb_type == NETWORK and kind != "forward":
        raise RuleError(
            f"an NLB listener can only forward, not {kind!r}", rule=label, field="Actions"
        )
    if kind == "forward":
        entries: list[WeightedTargetGroup] = []
        single = obj.get("TargetGroupName") or obj.get("TargetGroupArn")
        if single:
            entries.append(WeightedTargetGroup(target_group_name(single), 1))
        forward = obj.get("ForwardConfig")
        sticky, sticky_seconds = False, 0
        if forward is not None:
            if not isinstance(forward, Mapping):
                raise RuleError("'ForwardConfig' must be an object", rule=label)
            for key in forward:
                if key not in ("TargetGroups", "TargetGroupStickinessConfig"):
                    raise RuleError(f"unknown key {key!r} in ForwardConfig", rule=label)
            listed = []
            for item in forward.get("TargetGroups", []):
                ref = (
                    item.get("TargetGroupName") or item.get("TargetGroupArn")
                    if isinstance(item, Mapping)
                    else None
                )
                if not ref:
                    raise RuleError(
                        "each ForwardConfig target group needs TargetGroupArn or TargetGroupName",
                        rule=label,
                    )
                weight = item.get("Weight", 1)
                if not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
                    raise RuleError(
                        f"target group weight must be an integer 0-999, not {weight!r}",
                        rule=label,
                        field="Weight",
                    )
                listed.append(WeightedTargetGroup(target_group_name(ref), weight))
            if single and listed and [g.name for g in listed] != [entries[0].name]:
                raise RuleError(
                    "TargetGroupArn and ForwardConfig name different target groups", rule=label
                )
            if listed:
                entries = listed
            stickiness = forward.get("TargetGroupStickinessConfig") or {}
            sticky = bool(stickiness.get("Enabled", False))
            sticky_seconds = int(stickiness.get("DurationSeconds", 0) or 0)
            if sticky and not 1 <= sticky_seconds <= 604800:
                raise RuleError(
                    "TargetGroupStickinessConfig.DurationSeconds must be 1-604800", rule=label
                )
        if not entries:
            raise RuleError("a forward action needs a target group", rule=label)
        if len(entries) > MAX_TARGET_GROUPS_PER_FORWARD:
            raise RuleError(
                f"a forward action can have at most 5 target groups, not {len(entries)}", rule=label
            )
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            raise RuleError("a target group appears twice in one forward action", rule=label)
        for name in names:
            if name not in groups:
                raise RuleError(f"target group {name!r} not found", rule=label)
        if sum(entry.weight for entry in entries) == 0:
            raise RuleError(
                "at least one target group in a forward action needs a weight above 0", rule=label
            )
        if len(entries) > 1 and not sticky and any(groups[n].stickiness for n in names):
            raise RuleError(
                "target group stickiness must be enabled when a weighted target group has stickiness on",
                rule=label,
            )
        return Action("forward", order, tuple(entries), sticky, sticky_seconds)
    if kind == "redirect":
        config = obj.get("RedirectConfig")
        if not isinstance(config, Mapping):
            raise RuleError("a redirect action needs 'RedirectConfig'", rule=label)
        for key in config:
            if key not in ("Protocol", "Host", "Port", "Path", "Query", "StatusCode"):
                raise RuleError(f"unknown key {key!r} in RedirectConfig", rule=label)
        status = config.get("StatusCode")
        if status not in ("HTTP_301", "HTTP_302"):
            raise RuleError(
                f"redirect StatusCode must be HTTP_301 or HTTP_302, not {status!r}", rule=label
            )
        parts = {
            key: str(config[key])
            for key in ("Protocol", "Host", "Port", "Path", "Query")
            if key in config
        }
        for key, value in parts.items():
            for placeholder in re.findall(r"#\{[a-z]+\}", value):
                if placeholder not in _REDIRECT_PLACEHOLDERS[key]:
                    raise RuleError(
                        f"{placeholder} is not allowed in the redirect {key}",
                        rule=label,
                        field="RedirectConfig",
                    )
            if key != "Port" and len(value) > 128:
                raise RuleError(f"the redirect {key} is longer than 128 characters", rule=label)
        protocol = parts.get("Protocol", "#{protocol}")
        if protocol not in ("HTTP", "HTTPS", "#{protocol}"):
            raise RuleError(
                f"redirect Protocol must be HTTP, HTTPS or #{{protocol}}, not {protocol!r}",
                rule=label,
            )
        if listener_protocol == "HTTPS" and protocol == "HTTP":
            raise RuleError("you cannot redirect HTTPS to HTTP", rule=label, field="RedirectConfig")
        path = parts.get("Path", "/#{path}")
        if not path.startswith("/"):
            raise RuleError(
                "the redirect Path must start with '/'", rule=label, field="RedirectConfig"
            )
        port = parts.get("Port", "#{port}")
        if port != "#{port}" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise RuleError(f"redirect Port must be 1-65535 or #{{port}}, not {port!r}", rule=label)
        redirect = RedirectConfig(
            status_code=status,
            protocol=protocol,
            host=parts.get("Host", "#{host}"),
            port=port,
            path=path,
            query=parts.get("Query", "#{query}"),
        )
        unchanged = (
            redirect.protocol in ("#{protocol}", listener_protocol)
            and redirect.host == "#{host}"
            and redirect.port in ("#{port}",)
            and redirect.path == "/#{path}"
        )
        if unchanged:
            raise RuleError(
                "a redirect must change the protocol, host, port or path, or it would loop",
                rule=label,
                field="RedirectConfig",
            )
        return Action("redirect", order, redirect=redirect)
    if kind == "fixed-response":
        config = obj.get("FixedResponseConfig")
        if not isinstance(config, Mapping):
            raise RuleError("a fixed-response action needs 'FixedResponseConfig'", rule=label)
        for key in config:
            if key not in ("StatusCode", "ContentType", "MessageBody"):
                raise RuleError(f"unknown key {key!r} in FixedResponseConfig", rule=label)
        status = str(config.get("StatusCode", ""))
        if not _FIXED_STATUS.match(status):
            raise RuleError(
                f"fixed-response StatusCode must match ^(2|4|5)\\d\\d$, not {status!r}", rule=label
            )
        content_type = config.get("ContentType")
        if content_type is not None and content_type not in FIXED_RESPONSE_CONTENT_TYPES:
            raise RuleError(
                f"fixed-response ContentType must be one of {', '.join(FIXED_RESPONSE_CONTENT_TYPES)}",
                rule=label,
            )
        body = str(config.get("MessageBody", ""))
        if len(body) > 1024:
            raise RuleError("fixed-response MessageBody is longer than 1024 characters", rule=label)
        return Action(
            "fixed-response", order, fixed_response=FixedResponseConfig(status, content_type, body)
        )
    raise RuleError(
        f"unknown action type {kind!r} (forward, redirect or fixed-response)",
        rule=label,
        field="Actions",
    )


def _parse_actions(
    raw: Any, label: str, listener_protocol: str, lb_type: str, groups: Mapping[str, TargetGroup]
) -> tuple[Action, ...]:
    if not isinstance(raw, list) or not raw:
        raise RuleError("at least one action is required", rule=label, field="Actions")
    actions = sorted(
        (_parse_action(item, label, listener_protocol, lb_type, groups) for item in raw),
        key=lambda action: action.order,
    )
    if len(actions) != 1:
        raise RuleError(
            "exactly one of forward, redirect or fixed-response is allowed, and it must be last",
            rule=label,
            field="Actions",
        )
    return tuple(actions)


# --------------------------------------------------------------------------- rules and listeners


def _parse_rule(obj: Any, listener_protocol: str, groups: Mapping[str, TargetGroup]) -> Rule:
    allowed = {"Priority", "Conditions", "Actions", "Transforms"} | _IGNORED_RULE_KEYS
    if not isinstance(obj, Mapping):
        raise RuleError(f"a rule must be an object, not {obj!r}")
    raw_priority = obj.get("Priority")
    label = str(raw_priority)
    for key in obj:
        if key not in allowed:
            raise RuleError(f"unknown key {key!r} in a rule", rule=label)
    if obj.get("Transforms"):
        raise RuleError(
            "rule transforms are not modelled by osilab", rule=label, field="Transforms"
        )
    if isinstance(raw_priority, bool) or raw_priority is None:
        raise RuleError(
            "a rule needs a 'Priority' (1-50000, a string as AWS prints it)", rule=label
        )
    try:
        priority = int(str(raw_priority))
    except ValueError:
        raise RuleError(
            f"Priority must be a number 1-50000, not {raw_priority!r}", rule=label
        ) from None
    if not 1 <= priority <= MAX_PRIORITY:
        raise RuleError("Priority must be between 1 and 50000", rule=label, field="Priority")

    raw_conditions = obj.get("Conditions")
    if not isinstance(raw_conditions, list) or not raw_conditions:
        raise RuleError(
            "a rule (other than the default rule) needs at least one condition", rule=label
        )
    conditions = tuple(_parse_condition(cond, label) for cond in raw_conditions)
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
    actions = _parse_actions(obj.get("Actions"), label, listener_protocol, APPLICATION, groups)
    return Rule(priority, conditions, actions)


def _parse_listener(
    obj: Any,
    lb_type: str,
    index: int,
    groups: Mapping[str, TargetGroup],
    lb_attrs: Mapping[str, str],
) -> Listener:
    where = f"Listeners[{index}]"
    allowed = {"Protocol", "Port", "DefaultActions", "Rules", "Attributes"} | _IGNORED_LISTENER_KEYS
    obj = _check_keys(obj, allowed, where)
    protocol = str(obj.get("Protocol", "HTTP" if lb_type == APPLICATION else "TCP")).upper()
    port = int(_number(obj.get("Port"), "Port", where, 1, 65535))
    where = f"listener {protocol}:{port}"
    valid = ALB_LISTENER_PROTOCOLS if lb_type == APPLICATION else NLB_LISTENER_PROTOCOLS
    if protocol not in valid:
        kind = "an application" if lb_type == APPLICATION else "a network"
        raise ConfigError(
            f"{where}: {kind} load balancer listener protocol is one of {', '.join(valid)}"
        )
    attrs = {**lb_attrs, **_attributes(obj, where)}
    raw_rules = obj.get("Rules")
    if lb_type == NETWORK and raw_rules is not None:
        raise ConfigError(
            f"{where}: an NLB listener has no Rules. A Network Load Balancer works at layer 4: "
            "its listener matches protocol and port only and forwards every flow to its default "
            "action; it never sees host, path or headers. Use an application load balancer "
            "(Type 'application') to route on HTTP."
        )
    rules: list[Rule] = []
    default_raw = obj.get("DefaultActions")
    for raw in raw_rules or []:
        # describe-rules prints the default rule too: {"Priority": "default", "IsDefault": true}
        if isinstance(raw, Mapping) and (raw.get("IsDefault") or raw.get("Priority") == "default"):
            if raw.get("Conditions"):
                raise RuleError("the default rule cannot have conditions", rule="default")
            if default_raw is None:
                default_raw = raw.get("Actions")
            continue
        rules.append(_parse_rule(raw, protocol, groups))
    seen: set[int] = set()
    for rule in rules:
        if rule.priority in seen:
            raise RuleError(
                f"Priority '{rule.priority}' is currently in use", rule=rule.label, field="Priority"
            )
        seen.add(rule.priority)
    rules.sort(key=lambda rule: rule.priority)
    if default_raw is None:
        raise ConfigError(f"{where}: every listener needs DefaultActions (the default rule)")
    defaults = _parse_actions(default_raw, "default", protocol, lb_type, groups)
    if lb_type == NETWORK:
        key = "tcp.idle_timeout.seconds"
        idle = 350.0
        if key in attrs:
            idle = _number(attrs[key], key, where, 60, 6000)
            if protocol == "TLS" and idle != 350:
                raise ConfigError(
                    f"{where}: the idle timeout of a TLS listener is fixed at 350 seconds"
                )
    else:
        idle = _number(
            attrs.get("idle_timeout.timeout_seconds", 60),
            "idle_timeout.timeout_seconds",
            where,
            1,
            4000,
        )
    for action in defaults:
        for entry in action.target_groups:
            group = groups[entry.name]
            if (
                lb_type == NETWORK
                and protocol != "TCP_UDP"
                and group.protocol not in (protocol, "TCP_UDP")
                and not (protocol == "TLS" and group.protocol in ("TCP", "TLS"))
            ):
                raise ConfigError(
                    f"{where}: target group {group.name!r} uses {group.protocol}, which a {protocol} listener cannot forward to"
                )
    return Listener(protocol, port, defaults, tuple(rules), idle)


def parse_config(data: Mapping[str, Any]) -> BalancerConfig:
    """Check an AWS-shaped configuration dict and return a :class:`BalancerConfig`.

    Raises :class:`~osilab.errors.RuleError` (naming the rule's priority) for a listener
    rule AWS would refuse, :class:`~osilab.errors.ConfigError` for everything else.

    >>> cfg = parse_config({"Type": "network",
    ...     "TargetGroups": [{"Name": "tcp", "Protocol": "TCP", "Port": 80, "Targets": ["192.0.2.11:80"]}],
    ...     "Listeners": [{"Protocol": "TCP", "Port": 80,
    ...                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "tcp"}]}]})
    >>> cfg.listener(80, "tcp").protocol
    'TCP'
    """
    allowed = {"Type", "Name", "TargetGroups", "Listeners", "Attributes", "Seed"} | _IGNORED_LB_KEYS
    data = _check_keys(data, allowed, "configuration")
    lb_type = data.get("Type")
    if lb_type not in (APPLICATION, NETWORK):
        raise ConfigError(f"'Type' must be 'application' (ALB) or 'network' (NLB), not {lb_type!r}")
    raw_groups = data.get("TargetGroups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ConfigError("a configuration needs 'TargetGroups' (a non-empty list)")
    groups_list = [_parse_target_group(obj, lb_type, i) for i, obj in enumerate(raw_groups)]
    groups: dict[str, TargetGroup] = {}
    for group in groups_list:
        if group.name in groups:
            raise ConfigError(f"two target groups are named {group.name!r}")
        groups[group.name] = group
    lb_attrs = _attributes(data, "configuration")
    raw_listeners = data.get("Listeners")
    if not isinstance(raw_listeners, list) or not raw_listeners:
        raise ConfigError("a configuration needs 'Listeners' (a non-empty list)")
    listeners = [
        _parse_listener(obj, lb_type, i, groups, lb_attrs) for i, obj in enumerate(raw_listeners)
    ]
    ports: set[tuple[int, str]] = set()
    for listener in listeners:
        for proto in ("tcp", "udp"):
            if _listener_accepts(listener.protocol, proto):
                if (listener.port, proto) in ports:
                    raise ConfigError(f"two listeners use {proto.upper()} port {listener.port}")
                ports.add((listener.port, proto))
    desync = lb_attrs.get("routing.http.desync_mitigation_mode", "defensive")
    if desync not in DESYNC_MODES:
        raise ConfigError(
            f"routing.http.desync_mitigation_mode must be one of {', '.join(DESYNC_MODES)}"
        )
    xff = lb_attrs.get("routing.http.xff_header_processing.mode", "append")
    if xff not in XFF_MODES:
        raise ConfigError(
            f"routing.http.xff_header_processing.mode must be one of {', '.join(XFF_MODES)}"
        )
    xff_port = _bool(
        lb_attrs.get("routing.http.xff_client_port.enabled", "false"),
        "routing.http.xff_client_port.enabled",
        "configuration",
    )
    seed = data.get("Seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(f"'Seed' must be an integer, not {seed!r}")
    return BalancerConfig(
        type=lb_type,
        target_groups=tuple(groups_list),
        listeners=tuple(listeners),
        desync_mitigation_mode=desync,
        xff_mode=xff,
        xff_client_port=xff_port,
        seed=seed,
        name=str(data.get("Name") or data.get("LoadBalancerName") or ""),
    )


def load_config(source: str | Path | Mapping[str, Any] | BalancerConfig) -> BalancerConfig:
    """Read a configuration from a JSON or YAML file (or pass a dict / config through).

    YAML is recognised by a ``.yaml`` / ``.yml`` suffix; anything else is read as JSON.
    """
    if isinstance(source, BalancerConfig):
        return source
    if isinstance(source, Mapping):
        return parse_config(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the balancer configuration {path}: {exc.strerror}"
        ) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(
            f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: {exc}"
        ) from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the configuration must be an object")
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise exc.at(file=str(path)) from None


# --------------------------------------------------------------------------- defaults

#: The targets osilab invents when a capture shows a single server: documentation
#: addresses (RFC 5737), like the lab's EC2 instances.
DEFAULT_TARGET_HOSTS = ("192.0.2.11", "192.0.2.12", "192.0.2.13")


def default_config(lb_type: str, servers: Iterable[tuple[str, int, str]]) -> BalancerConfig:
    """A sensible configuration derived from the servers a capture talks to.

    ``servers`` are ``(ip, port, proto)`` of the server side of every flow (proto
    "tcp"/"udp"). For every server port there is one listener and one target group
    ``<proto>-<port>``:

    - its targets are the distinct server IPs seen on that port when there are at least
      two (the capture was taken *behind* a balancer, so these are the real backends);
      otherwise three documentation targets 192.0.2.11-13 on that port;
    - the ALB forwards everything by round robin (no rules), the NLB hashes the 5-tuple
      into a Maglev table; an NLB listener on 443 is TCP (TLS passes through).
    """
    if lb_type not in (APPLICATION, NETWORK):
        raise ConfigError(f"lb type must be 'application' or 'network', not {lb_type!r}")
    by_port: dict[tuple[int, str], list[str]] = {}
    for ip, port, proto in servers:
        if lb_type == APPLICATION and proto != "tcp":
            continue
        hosts = by_port.setdefault((port, proto), [])
        if ip not in hosts:
            hosts.append(ip)
    if not by_port:
        by_port[(80, "tcp")] = []
    groups, listeners = [], []
    for (port, proto), hosts in sorted(by_port.items()):
        name = f"{proto}-{port}"
        chosen = hosts if len(hosts) >= 2 else list(DEFAULT_TARGET_HOSTS)
        targets = [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in chosen]
        if lb_type == APPLICATION:
            protocol = "HTTPS" if port == 443 else "HTTP"
        else:
            protocol = proto.upper()
        groups.append({"Name": name, "Protocol": protocol, "Port": port, "Targets": targets})
        listeners.append(
            {
                "Protocol": protocol,
                "Port": port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": name}],
            }
        )
    return parse_config(
        {
            "Type": lb_type,
            "Name": f"osilab default {lb_type}",
            "TargetGroups": groups,
            "Listeners": listeners,
        }
    )


def counterpart(config: BalancerConfig) -> BalancerConfig:
    """The same targets behind the other kind of balancer, for side-by-side comparisons.

    ALB -> NLB: each HTTP listener becomes TCP on the same port (HTTPS becomes TLS),
    every target group keeps its targets, and the rules disappear (an NLB has none): the
    listener forwards to the target group of the ALB's *default* action.
    NLB -> ALB: TCP/TLS listeners become HTTP/HTTPS with the same default action.
    """
    if config.is_network:
        lb_type, listen = APPLICATION, {"TCP": "HTTP", "TLS": "HTTPS", "TCP_UDP": "HTTP"}
        group_protocol = {"TCP": "HTTP", "TLS": "HTTPS", "TCP_UDP": "HTTP", "UDP": "HTTP"}
    else:
        lb_type, listen = NETWORK, {"HTTP": "TCP", "HTTPS": "TLS"}
        group_protocol = {"HTTP": "TCP", "HTTPS": "TLS"}
    groups = [
        {
            "Name": g.name,
            "Protocol": group_protocol.get(g.protocol, "TCP"),
            "Port": g.port,
            "Targets": list(g.targets),
            "HealthChanges": [
                {"Time": c.time, "Target": c.target, "State": c.state} for c in g.health_changes
            ],
            **({"Algorithm": g.algorithm} if lb_type == APPLICATION else {}),
        }
        for g in config.target_groups
    ]
    listeners = []
    for listener in config.listeners:
        if listener.protocol not in listen:
            continue
        action = listener.default_action
        forward: dict[str, Any] = {"Type": "forward"}
        if action.type == "forward":
            forward["ForwardConfig"] = {
                "TargetGroups": [
                    {"TargetGroupName": e.name, "Weight": e.weight} for e in action.target_groups
                ]
            }
        else:  # an NLB can only forward: use the first group
            forward["TargetGroupName"] = config.target_groups[0].name
        listeners.append(
            {
                "Protocol": listen[listener.protocol],
                "Port": listener.port,
                "DefaultActions": [forward],
            }
        )
    if not listeners:
        kinds = ", ".join(f"{li.protocol}:{li.port}" for li in config.listeners)
        raise ConfigError(
            f"no listener of this {config.type} load balancer ({kinds}) has a counterpart: "
            "an ALB takes only TCP (HTTP/HTTPS) traffic"
        )
    return parse_config(
        {
            "Type": lb_type,
            "Name": f"{config.name or config.type} ({lb_type} counterpart)",
            "Seed": config.seed,
            "TargetGroups": groups,
            "Listeners": listeners,
        }
    )

"""From an AWS-shaped document (JSON or YAML) to a checked :class:`BalancerConfig`.

Theory of operation
-------------------
:func:`parse_config` walks the document top-down, the way AWS's API would refuse it:

1. the balancer's own keys (``Type``, ``Name``, ``Attributes``, ``Seed``);
2. each target group (:func:`_parse_target_group`): targets, algorithm, stickiness,
   and the NLB's client IP preservation, PROXY v2 and flow hash;
3. each listener (:func:`_parse_listener`): protocol and port, its rules
   (:func:`_parse_rule`, whose conditions and actions are read by
   :mod:`~osilab.balancers.config.conditions` and :mod:`~osilab.balancers.config.actions`),
   its default actions and its idle timeout;
4. what only the whole can say: two groups of one name, two listeners on one port,
   the balancer's desync and X-Forwarded-For modes.

The rules it keeps:

- an unknown key is an error (a typo must not pass silently); keys AWS prints that
  the model does not use (health-check settings, certificates, tags) are accepted, so
  that ``aws elbv2 describe-*`` output can be pasted as it is, and each is named once in
  :attr:`BalancerConfig.warnings` as ``accepted, not modelled: FIELD (reason)``, as is
  every attribute the model does not use (:data:`~.model.ATTRIBUTES`). Only the keys
  that name a record (ARNs, names) pass without a word;
- files a configuration names (a JWKS, a trust-store PEM) are read relative to the
  configuration file, or from a ``file:`` URL; an ``https:`` URL is an error, because
  osilab reads no network;
- a rule problem raises :class:`~osilab.errors.RuleError` naming the rule's priority,
  anything else :class:`~osilab.errors.ConfigError` naming the group or listener;
- :func:`load_config` is the one function that touches a file, and it adds the file's
  name to the error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from osilab.balancers.config.actions import parse_actions
from osilab.balancers.config.conditions import parse_conditions, parse_transforms
from osilab.balancers.config.listener_extras import header_modification, mutual_authentication
from osilab.balancers.config.model import (
    ALB_ALGORITHMS,
    ALB_LISTENER_PROTOCOLS,
    APPLICATION,
    DESYNC_MODES,
    HEALTH_ALIASES,
    HEALTH_STATES,
    NETWORK,
    NLB_HASHES,
    NLB_LISTENER_PROTOCOLS,
    NLB_TABLES,
    PROTOCOL_VERSIONS,
    TARGET_TYPES,
    XFF_MODES,
    BalancerConfig,
    HealthChange,
    Listener,
    Rule,
    TargetGroup,
    listener_accepts,
    target_group_name,
)
from osilab.balancers.config.readers import (
    Context,
    as_bool,
    attributes,
    check_keys,
    number,
    read_document,
    text,
)
from osilab.balancers.quic_lb import parse_server_ids
from osilab.errors import ConfigError, RuleError

__all__ = ["MAX_PRIORITY", "parse_config", "load_config"]

MAX_PRIORITY = 50000

# Keys AWS prints that the model does not use: accepted, and named in a warning unless
# they only name a record (readers.NAMING_KEYS).
_IGNORED_RULE_KEYS = {"RuleArn", "IsDefault", "ListenerArn", "Tags"}
_IGNORED_LISTENER_KEYS = {
    "ListenerArn",
    "LoadBalancerArn",
    "Certificates",
    "SslPolicy",
    "AlpnPolicy",
    "Tags",
}
_IGNORED_TG_KEYS = {
    "TargetGroupArn",
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
_TG_KEYS = {
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
    "Health",
    "TargetType",
    "ProtocolVersion",
    "Attributes",
}


# --------------------------------------------------------------------------- small readers


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


def _is_prime(number: int) -> bool:
    if number < 2:
        return False
    divisor = 2
    while divisor * divisor <= number:
        if number % divisor == 0:
            return False
        divisor += 1
    return True


# --------------------------------------------------------------------------- target groups


def _targets(obj: Mapping[str, Any], port: int, where: str, target_type: str = "ip") -> list[str]:
    """``Targets``: ``"ip:port"`` strings, or the ``describe-target-health`` ``{Id, Port}`` shape.

    A ``lambda`` group's target is its function's ARN (``arn:aws:lambda:...:function:NAME``)
    and an ``alb`` group's the ALB's ARN: the name the balancer routes to.
    """
    raw_targets = obj.get("Targets", [])
    if not isinstance(raw_targets, list):
        raise ConfigError(f"{where}: 'Targets' must be a list of 'ip:port' strings")
    targets = []
    for item in raw_targets:
        if isinstance(item, Mapping):  # describe-target-health shape {"Id":..,"Port":..}
            item = item.get("Id") if target_type in _ARN_TARGETS else (
                f"{item.get('Id')}:{item.get('Port', port)}")  # fmt: skip
        if target_type in _ARN_TARGETS:
            targets.append(_arn_target(item, target_type, where))
            continue
        targets.append(_endpoint_text(item, where))
    if len(set(targets)) != len(targets):
        raise ConfigError(f"{where}: a target is registered twice")
    return targets


#: Target types named by an ARN, with the ARN's service part [ELBv2 API TargetDescription].
_ARN_TARGETS = {"lambda": ":lambda:", "alb": ":elasticloadbalancing:"}


def _arn_target(item: Any, target_type: str, where: str) -> str:
    """A ``lambda`` (function ARN) or ``alb`` (load balancer ARN) target."""
    if not isinstance(item, str) or not item.startswith("arn:") or _ARN_TARGETS[target_type] not in item:
        raise ConfigError(
            f"{where}: a {target_type} target is named by its ARN "
            f"(arn:aws{_ARN_TARGETS[target_type]}...), not {item!r}"
        )
    return item


def _target_type(obj: Mapping[str, Any], lb_type: str, where: str) -> str:
    """``TargetType``: instance, ip, lambda (ALB only) or alb (NLB only)."""
    kind = str(obj.get("TargetType", "ip"))
    if kind not in TARGET_TYPES:
        raise ConfigError(f"{where}: TargetType must be one of {', '.join(TARGET_TYPES)}, not {kind!r}")
    if (kind == "lambda" and lb_type == NETWORK) or (kind == "alb" and lb_type == APPLICATION):
        other = "an application" if kind == "lambda" else "a network"
        raise ConfigError(f"{where}: TargetType {kind} is for {other} load balancer only")
    return kind


def _lifecycle(
    obj: Mapping[str, Any], attrs: Mapping[str, str], lb_type: str, algorithm: str, where: str
) -> dict[str, Any]:
    """ProtocolVersion, slow start, deregistration delay and unhealthy connection termination.

    Ranges and defaults: ``lb-reference.md`` §1.5 and §6 [ALB-UG edit-target-group-attributes,
    NLB-UG target-group-health-checks]. Slow start is an ALB attribute and does not combine
    with least outstanding requests or weighted random, as AWS refuses.
    """
    version = str(obj.get("ProtocolVersion", "HTTP1")).upper()
    if version not in PROTOCOL_VERSIONS:
        raise ConfigError(
            f"{where}: ProtocolVersion must be one of {', '.join(PROTOCOL_VERSIONS)}, not {version!r}"
        )
    key = "slow_start.duration_seconds"
    slow = number(attrs.get(key, 0), key, where, 0, 900)
    if slow and slow < 30:
        raise ConfigError(f"{where}: {key} is 0 (off) or 30-900, not {slow:g}")
    if slow and lb_type == NETWORK:
        raise ConfigError(f"{where}: {key} is an application load balancer attribute")
    if slow and algorithm != "round_robin":
        raise ConfigError(
            f"{where}: slow start cannot be combined with {algorithm} (AWS allows it with round_robin only)"
        )
    key = "deregistration_delay.timeout_seconds"
    delay = number(attrs.get(key, 300), key, where, 0, 3600)
    key = "deregistration_delay.connection_termination.enabled"
    dereg_term = as_bool(attrs.get(key, "false"), key, where)
    key = "target_health_state.unhealthy.connection_termination.enabled"
    unhealthy_term = as_bool(attrs.get(key, "true"), key, where)
    key = "target_health_state.unhealthy.draining_interval_seconds"
    draining = number(attrs.get(key, 0), key, where, 0, 360000)
    return {"protocol_version": version, "slow_start": slow, "deregistration_delay": delay,
            "deregistration_termination": dereg_term, "unhealthy_termination": unhealthy_term,
            "unhealthy_draining": draining}  # fmt: skip


def _stickiness(
    obj: Mapping[str, Any], attrs: Mapping[str, str], lb_type: str, where: str
) -> tuple[str | None, int]:
    """(stickiness type or None, lb_cookie duration): ALB ``lb_cookie``, NLB ``source_ip``."""
    natural = "lb_cookie" if lb_type == APPLICATION else "source_ip"
    stickiness = obj.get("Stickiness")
    if stickiness is None and attrs.get("stickiness.enabled", "false").lower() == "true":
        stickiness = attrs.get("stickiness.type", natural)
    if stickiness in (False, "", "none", None):
        stickiness = None
    elif stickiness is True:
        stickiness = natural
    allowed_sticky = ("lb_cookie", "app_cookie") if lb_type == APPLICATION else ("source_ip",)
    if stickiness is not None and stickiness not in allowed_sticky:
        raise ConfigError(
            f"{where}: stickiness.type must be {' or '.join(allowed_sticky)} for a "
            f"{lb_type} load balancer, not {stickiness!r}"
        )
    kind = "app_cookie" if stickiness == "app_cookie" else "lb_cookie"
    key = f"stickiness.{kind}.duration_seconds"
    seconds = int(number(attrs.get(key, 86400), key, where, 1, 604800))
    return stickiness, seconds


def _app_cookie_name(stickiness: str | None, attrs: Mapping[str, str], where: str) -> str | None:
    """``stickiness.app_cookie.cookie_name``: the target's cookie (AWSALB* names are reserved)."""
    if stickiness != "app_cookie":
        return None
    name = attrs.get("stickiness.app_cookie.cookie_name", "")
    if not name:
        raise ConfigError(f"{where}: app_cookie stickiness needs stickiness.app_cookie.cookie_name")
    if name.upper().startswith("AWSALB"):
        raise ConfigError(
            f"{where}: the cookie names AWSALB, AWSALBAPP and AWSALBTG are reserved for the "
            f"load balancer, not {name!r}"
        )
    return name


def _client_address(
    obj: Mapping[str, Any],
    attrs: Mapping[str, str],
    protocol: str,
    where: str,
    target_type: str = "ip",
) -> tuple[bool, bool]:
    """(client IP preservation, PROXY protocol v2): what the NLB's target learns of the client."""
    # AWS default (lb-reference.md §2): off for IP targets over TCP/TLS, on otherwise
    # (instance and alb targets), always on for UDP and TCP_UDP.
    default_preserve = protocol in ("UDP", "TCP_UDP", "QUIC", "TCP_QUIC") or target_type != "ip"
    preserve = obj.get("PreserveClientIp")
    if preserve is None:
        key = "preserve_client_ip.enabled"
        preserve = as_bool(attrs.get(key, text(default_preserve)), key, where)
    if protocol in ("UDP", "TCP_UDP") and not preserve:
        raise ConfigError(
            f"{where}: client IP preservation is always on for {protocol} target groups"
        )
    proxy_v2 = obj.get("ProxyProtocolV2")
    if proxy_v2 is None:
        key = "proxy_protocol_v2.enabled"
        proxy_v2 = as_bool(attrs.get(key, "false"), key, where)
    return bool(preserve), bool(proxy_v2)


def _flow_hash(
    obj: Mapping[str, Any], stickiness: str | None, where: str
) -> tuple[str, str, int, int]:
    """(hash fields, table, Maglev table size, seed): how an NLB turns a flow into a target."""
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
    table_size = int(number(obj.get("TableSize", 65537), "TableSize", where, 2, 5000011))
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
    return flow_hash, table, table_size, hash_seed


def _health_item(item: Any, where: str) -> HealthChange:
    """One schedule entry ``{"Target", "At" (or "Time"), "State"}``; describe-target-health
    states are read as what they mean for routing (:data:`~.model.HEALTH_ALIASES`)."""
    item = check_keys(item, {"Time", "At", "Target", "State"}, f"{where} Health")
    state = str(item.get("State", "")).lower()
    state = HEALTH_ALIASES.get(state, state)
    if state not in HEALTH_STATES:
        raise ConfigError(
            f"{where}: a health State is one of {', '.join(HEALTH_STATES)} "
            f"(or {', '.join(HEALTH_ALIASES)}), not {state!r}"
        )
    target = item.get("Target")
    if not isinstance(target, str) or not target.startswith("arn:"):
        target = _endpoint_text(target, where)
    when = number(item.get("At", item.get("Time", 0)), "At", where, 0, float("inf"))
    return HealthChange(float(when), target, state)


def _health_changes(
    obj: Mapping[str, Any], targets: list[str], where: str, shared: Iterable[HealthChange] = ()
) -> list[HealthChange]:
    """``Health`` (or ``HealthChanges``): this group's schedule, plus the balancer-wide
    ``Health`` entries (``shared``) naming one of its targets, in time order."""
    changes = [c for c in shared if c.target in targets]
    for key in ("HealthChanges", "Health"):
        for item in obj.get(key, []) or []:
            change = _health_item(item, where)
            if change.target not in targets:
                raise ConfigError(
                    f"{where}: health change for {change.target}, which is not registered here"
                )
            changes.append(change)
    changes.sort(key=lambda change: change.time)
    return changes


def _parse_target_group(
    obj: Any, lb_type: str, index: int, context: Context, shared: Iterable[HealthChange] = ()
) -> TargetGroup:
    where = f"TargetGroups[{index}]"
    obj = check_keys(obj, _TG_KEYS | _IGNORED_TG_KEYS, where)
    context.unused_keys(obj, _IGNORED_TG_KEYS, "TargetGroup")
    name = obj.get("Name") or obj.get("TargetGroupName")
    if not name and obj.get("TargetGroupArn"):
        name = target_group_name(obj["TargetGroupArn"])
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: a target group needs a 'Name'")
    where = f"target group {name!r}"
    protocol = str(obj.get("Protocol", "HTTP" if lb_type == APPLICATION else "TCP")).upper()
    port = int(number(obj.get("Port", 80), "Port", where, 1, 65535))
    target_type = _target_type(obj, lb_type, where)
    targets = _targets(obj, port, where, target_type)

    attrs = attributes(obj, where)
    context.attributes(attrs)
    algorithm = str(obj.get("Algorithm", attrs.get("load_balancing.algorithm.type", "round_robin")))
    if lb_type == APPLICATION and algorithm not in ALB_ALGORITHMS:
        raise ConfigError(
            f"{where}: load_balancing.algorithm.type must be one of {', '.join(ALB_ALGORITHMS)}, "
            f"not {algorithm!r}"
        )
    stickiness, seconds = _stickiness(obj, attrs, lb_type, where)
    preserve, proxy_v2 = _client_address(obj, attrs, protocol, where, target_type)
    flow_hash, table, table_size, hash_seed = _flow_hash(obj, stickiness, where)
    return TargetGroup(
        name=name,
        protocol=protocol,
        port=port,
        targets=tuple(targets),
        algorithm=algorithm,
        stickiness=stickiness,
        stickiness_seconds=seconds,
        preserve_client_ip=preserve,
        proxy_protocol_v2=proxy_v2,
        hash=flow_hash,
        table=table,
        table_size=table_size,
        hash_seed=hash_seed,
        health_changes=tuple(_health_changes(obj, targets, where, shared)),
        app_cookie_name=_app_cookie_name(stickiness, attrs, where),
        target_type=target_type,
        quic_server_ids=parse_server_ids(obj.get("Targets"), port, where),
        **_lifecycle(obj, attrs, lb_type, algorithm, where),
    )


# --------------------------------------------------------------------------- rules and listeners


def _parse_rule(
    obj: Any, listener_protocol: str, groups: Mapping[str, TargetGroup], context: Context
) -> Rule:
    allowed = {"Priority", "Conditions", "Actions", "Transforms"} | _IGNORED_RULE_KEYS
    if not isinstance(obj, Mapping):
        raise RuleError(f"a rule must be an object, not {obj!r}")
    raw_priority = obj.get("Priority")
    label = str(raw_priority)
    for key in obj:
        if key not in allowed:
            raise RuleError(f"unknown key {key!r} in a rule", rule=label)
    context.unused_keys(obj, _IGNORED_RULE_KEYS, "Rule")
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
    conditions = parse_conditions(obj.get("Conditions"), label)
    actions = _actions(obj.get("Actions"), label, listener_protocol, APPLICATION, groups, context)
    return Rule(priority, conditions, actions, parse_transforms(obj.get("Transforms"), label))


def _actions(
    raw: Any,
    label: str,
    protocol: str,
    lb_type: str,
    groups: Mapping[str, TargetGroup],
    context: Context,
) -> tuple[Any, ...]:
    return parse_actions(
        raw, label, protocol, lb_type, groups, read=context.read, warn=context.warn
    )


def _listener_rules(
    raw_rules: Any, protocol: str, groups: Mapping[str, TargetGroup], context: Context
) -> tuple[list[Rule], Any]:
    """(the rules in priority order, the default rule's actions if ``Rules`` lists it)."""
    rules: list[Rule] = []
    default_raw = None
    for raw in raw_rules or []:
        # describe-rules prints the default rule too: {"Priority": "default", "IsDefault": true}
        if isinstance(raw, Mapping) and (raw.get("IsDefault") or raw.get("Priority") == "default"):
            if raw.get("Conditions"):
                raise RuleError("the default rule cannot have conditions", rule="default")
            if raw.get("Transforms"):
                raise RuleError(
                    "the default rule cannot have transforms", rule="default", field="Transforms"
                )
            if default_raw is None:
                default_raw = raw.get("Actions")
            continue
        rules.append(_parse_rule(raw, protocol, groups, context))
    seen: set[int] = set()
    for rule in rules:
        if rule.priority in seen:
            raise RuleError(
                f"Priority '{rule.priority}' is currently in use", rule=rule.label, field="Priority"
            )
        seen.add(rule.priority)
    rules.sort(key=lambda rule: rule.priority)
    return rules, default_raw


def _idle_timeout(lb_type: str, protocol: str, attrs: Mapping[str, str], where: str) -> float:
    """NLB ``tcp.idle_timeout.seconds`` (60-6000, default 350; TLS fixed at 350), ALB 1-4000 (60)."""
    if lb_type == NETWORK:
        key = "tcp.idle_timeout.seconds"
        idle = 350.0
        if key in attrs:
            idle = number(attrs[key], key, where, 60, 6000)
            if protocol == "TLS" and idle != 350:
                raise ConfigError(
                    f"{where}: the idle timeout of a TLS listener is fixed at 350 seconds"
                )
        return idle
    key = "idle_timeout.timeout_seconds"
    return number(attrs.get(key, 60), key, where, 1, 4000)


def _check_nlb_groups(
    defaults: Iterable[Any], protocol: str, groups: Mapping[str, TargetGroup], where: str
) -> None:
    """An NLB listener forwards only to target groups of a protocol it can carry."""
    for action in defaults:
        for entry in action.target_groups:
            group = groups[entry.name]
            if (
                protocol != "TCP_UDP"
                and group.protocol not in (protocol, "TCP_UDP")
                and not (protocol == "TLS" and group.protocol in ("TCP", "TLS"))
            ):
                raise ConfigError(
                    f"{where}: target group {group.name!r} uses {group.protocol}, which a {protocol} listener cannot forward to"
                )


def _parse_listener(
    obj: Any,
    lb_type: str,
    index: int,
    groups: Mapping[str, TargetGroup],
    lb_attrs: Mapping[str, str],
    context: Context,
) -> Listener:
    where = f"Listeners[{index}]"
    allowed = {"Protocol", "Port", "DefaultActions", "Rules", "Attributes",
               "MutualAuthentication"} | _IGNORED_LISTENER_KEYS  # fmt: skip
    obj = check_keys(obj, allowed, where)
    context.unused_keys(obj, _IGNORED_LISTENER_KEYS, "Listener")
    protocol = str(obj.get("Protocol", "HTTP" if lb_type == APPLICATION else "TCP")).upper()
    port = int(number(obj.get("Port"), "Port", where, 1, 65535))
    where = f"listener {protocol}:{port}"
    valid = ALB_LISTENER_PROTOCOLS if lb_type == APPLICATION else NLB_LISTENER_PROTOCOLS
    if protocol not in valid:
        kind = "an application" if lb_type == APPLICATION else "a network"
        raise ConfigError(
            f"{where}: {kind} load balancer listener protocol is one of {', '.join(valid)}"
        )
    own_attrs = attributes(obj, where)
    context.attributes(own_attrs)
    attrs = {**lb_attrs, **own_attrs}
    raw_rules = obj.get("Rules")
    if lb_type == NETWORK and raw_rules is not None:
        raise ConfigError(
            f"{where}: an NLB listener has no Rules. A Network Load Balancer works at layer 4: "
            "its listener matches protocol and port only and forwards every flow to its default "
            "action; it never sees host, path or headers. Use an application load balancer "
            "(Type 'application') to route on HTTP."
        )
    rules, listed_default = _listener_rules(raw_rules, protocol, groups, context)
    default_raw = obj.get("DefaultActions")
    if default_raw is None:
        default_raw = listed_default
    if default_raw is None:
        raise ConfigError(f"{where}: every listener needs DefaultActions (the default rule)")
    defaults = _actions(default_raw, "default", protocol, lb_type, groups, context)
    idle = _idle_timeout(lb_type, protocol, attrs, where)
    if lb_type == NETWORK:
        _check_nlb_groups(defaults, protocol, groups, where)
    mtls = mutual_authentication(obj, protocol, where, context)
    added, server, renamed = header_modification(attrs, where)
    return Listener(protocol, port, defaults, tuple(rules), idle, mtls, added, server, renamed)


# --------------------------------------------------------------------------- the whole


def _modes(lb_attrs: Mapping[str, str]) -> tuple[str, str, bool]:
    """The balancer's desync mitigation mode, X-Forwarded-For mode and XFF client port."""
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
    key = "routing.http.xff_client_port.enabled"
    xff_port = as_bool(lb_attrs.get(key, "false"), key, "configuration")
    return desync, xff, xff_port


def parse_config(data: Mapping[str, Any], *, base: str | Path | None = None) -> BalancerConfig:
    """Check an AWS-shaped configuration dict and return a :class:`BalancerConfig`.

    ``base`` is the folder that relative file names in the configuration (a JWKS, a
    trust store) are read from: :func:`load_config` passes the configuration file's.
    Raises :class:`~osilab.errors.RuleError` (naming the rule's priority) for a listener
    rule AWS would refuse, :class:`~osilab.errors.ConfigError` for everything else.

    >>> cfg = parse_config({"Type": "network",
    ...     "TargetGroups": [{"Name": "tcp", "Protocol": "TCP", "Port": 80, "Targets": ["192.0.2.11:80"]}],
    ...     "Listeners": [{"Protocol": "TCP", "Port": 80,
    ...                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "tcp"}]}]})
    >>> cfg.listener(80, "tcp").protocol
    'TCP'
    """
    allowed = {"Type", "Name", "TargetGroups", "Listeners", "Attributes", "Seed",
               "Health"} | _IGNORED_LB_KEYS  # fmt: skip
    data = check_keys(data, allowed, "configuration")
    context = Context(Path(base) if base is not None else None)
    context.unused_keys(data, _IGNORED_LB_KEYS, "LoadBalancer")
    lb_type = data.get("Type")
    if lb_type not in (APPLICATION, NETWORK):
        raise ConfigError(f"'Type' must be 'application' (ALB) or 'network' (NLB), not {lb_type!r}")
    raw_groups = data.get("TargetGroups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ConfigError("a configuration needs 'TargetGroups' (a non-empty list)")
    # A balancer-wide "Health" schedule: each entry goes to every group registering its target.
    shared = [_health_item(item, "configuration") for item in data.get("Health", []) or []]
    groups_list = [
        _parse_target_group(obj, lb_type, i, context, shared) for i, obj in enumerate(raw_groups)
    ]
    registered = {t for group in groups_list for t in group.targets}
    for change in shared:
        if change.target not in registered:
            raise ConfigError(f"Health: {change.target} is not a target of any target group")
    groups: dict[str, TargetGroup] = {}
    for group in groups_list:
        if group.name in groups:
            raise ConfigError(f"two target groups are named {group.name!r}")
        groups[group.name] = group
    lb_attrs = attributes(data, "configuration")
    context.attributes(lb_attrs)
    raw_listeners = data.get("Listeners")
    if not isinstance(raw_listeners, list) or not raw_listeners:
        raise ConfigError("a configuration needs 'Listeners' (a non-empty list)")
    listeners = [
        _parse_listener(obj, lb_type, i, groups, lb_attrs, context)
        for i, obj in enumerate(raw_listeners)
    ]
    ports: set[tuple[int, str]] = set()
    for listener in listeners:
        for proto in ("tcp", "udp"):
            if listener_accepts(listener.protocol, proto):
                if (listener.port, proto) in ports:
                    raise ConfigError(f"two listeners use {proto.upper()} port {listener.port}")
                ports.add((listener.port, proto))
    desync, xff, xff_port = _modes(lb_attrs)
    key = "client_keep_alive.seconds"
    keep_alive = number(lb_attrs.get(key, 3600), key, "configuration", 60, 604800)
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
        client_keep_alive=keep_alive,
        seed=seed,
        name=str(data.get("Name") or data.get("LoadBalancerName") or ""),
        warnings=tuple(context.warnings.lines),
    )


def load_config(source: str | Path | Mapping[str, Any] | BalancerConfig) -> BalancerConfig:
    """Read a configuration from a JSON or YAML file (or pass a dict / config through).

    The file is read by :func:`~osilab.balancers.config.readers.read_document`, the one
    reader of configuration files: JSON, else YAML. The foreign formats (the AWS CLI's
    output, Terraform, CloudFormation) are converted by
    :func:`~osilab.balancers.config.formats.load_configs`.
    """
    if isinstance(source, BalancerConfig):
        return source
    if isinstance(source, Mapping):
        return parse_config(source)
    path = Path(source)
    if path.suffix.lower() == ".tf":
        raise ConfigError("a Terraform file: formats.load_configs (what `osilab route --config` "
                          "reads) converts it; load_config reads osilab's own JSON or YAML",
                          file=str(path))  # fmt: skip
    data = read_document(path)
    if not isinstance(data, Mapping):
        raise ConfigError("the configuration must be an object", file=str(path))
    try:
        return parse_config(data, base=path.parent)
    except ConfigError as exc:
        raise exc.at(file=str(path)) from None

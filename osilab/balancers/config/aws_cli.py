"""The AWS API's own shape: ``aws elbv2 describe-*`` output, tied together by ARNs.

Theory of operation
-------------------
A team that runs a load balancer on AWS can always print it::

    aws elbv2 describe-load-balancers --names web     > lb.json
    aws elbv2 describe-listeners --load-balancer-arn $LB    > listeners.json
    aws elbv2 describe-rules --listener-arn $LISTENER       > rules.json
    aws elbv2 describe-target-groups --load-balancer-arn $LB > groups.json
    aws elbv2 describe-target-health --target-group-arn $TG  > health.json
    aws ec2 describe-instances                               > instances.json

Each file holds one kind of record, and the records point at each other by ARN: a
listener names its load balancer (``LoadBalancerArn``), a rule its listener (the
``RuleArn`` is the listener's ARN plus one more path part), an action its target
groups (``TargetGroupArn``). ``describe-target-health`` does not say which group it
describes, so osilab accepts it with a ``"TargetGroupArn"`` key added beside
``TargetHealthDescriptions``. Instance targets (``i-...``) get their private address
from ``describe-instances``.

This module gathers such records into an :class:`AwsDescription` and
:func:`assemble` turns it into osilab's JSON dict (``docs/architecture.md``,
"Load balancer configuration"), one per load balancer. The Terraform and
CloudFormation readers build the same :class:`AwsDescription`, with ARNs of their own
(``tf:aws_lb.web``, ``cfn:WebLb``), so one function ties every format together.

Every field of these outputs is accepted. A field the model does not use is named
once, as ``accepted, not modelled: FIELD (why)``. A reference that points nowhere is
an error naming the file, the record and the field.

No file is read here: :mod:`osilab.balancers.config.formats` reads them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from osilab.errors import ConfigError

__all__ = [
    "Record",
    "AwsDescription",
    "CLI_KEYS",
    "is_cli_output",
    "from_cli",
    "assemble",
    "Warnings",
]

#: The top-level keys of the outputs this module reads (and their paging markers).
CLI_KEYS = frozenset(
    {
        "LoadBalancers",
        "Listeners",
        "Rules",
        "TargetGroups",
        "TargetHealthDescriptions",
        "TargetGroupArn",
        "Reservations",
        "NextMarker",
        "NextToken",
    }
)

#: Fields the model reads, per kind of record (AWS API names). Anything else is named
#: once in a warning.
_MODELLED: dict[str, frozenset[str]] = {
    "lb": frozenset({"LoadBalancerArn", "LoadBalancerName", "Type", "Attributes"}),
    "listener": frozenset(
        {"ListenerArn", "LoadBalancerArn", "Port", "Protocol", "DefaultActions", "Attributes"}
    ),
    "rule": frozenset(
        {"RuleArn", "ListenerArn", "Priority", "Conditions", "Actions", "IsDefault", "Transforms"}
    ),
    "group": frozenset(
        {
            "TargetGroupArn",
            "TargetGroupName",
            "Protocol",
            "Port",
            "TargetType",
            "LoadBalancerArns",
            "Attributes",
        }
    ),
}

#: Why a field is not modelled, by the start of its name (lower case, no ``_``).
_REASONS: tuple[tuple[str, str], ...] = (
    ("healthcheck", "health comes from target health states or HealthChanges, not from probes"),
    (
        "healthythreshold",
        "health comes from target health states or HealthChanges, not from probes",
    ),
    (
        "unhealthythreshold",
        "health comes from target health states or HealthChanges, not from probes",
    ),
    ("matcher", "health comes from target health states or HealthChanges, not from probes"),
    ("certificate", "TLS is read from the capture with its key log; certificates are not checked"),
    ("sslpolicy", "the TLS version and cipher are read from the capture, not negotiated"),
    ("alpnpolicy", "the HTTP version is read from the capture"),
    ("mutualauthentication", "client certificates are not checked"),
    ("protocolversion", "the model speaks HTTP/1.1 to targets, as the lab's balancer does"),
    ("vpc", "the capture shows the network; VPCs and subnets are not modelled"),
    ("subnet", "the capture shows the network; VPCs and subnets are not modelled"),
    ("availabilityzone", "one zone: cross-zone balancing is not modelled"),
    ("securitygroup", "the capture shows what was let through"),
    ("scheme", "the capture shows who reached the balancer"),
    ("internal", "the capture shows who reached the balancer"),
    ("ipaddresstype", "addresses are read from the capture"),
    ("dnsname", "names are resolved before the capture"),
    ("canonicalhostedzone", "names are resolved before the capture"),
    ("state", "the balancer is taken as active"),
    ("createdtime", "an inventory fact"),
    ("tags", "labels only"),
    ("deregistrationdelay", "draining targets are taken out at once"),
    ("slowstart", "targets take their full share at once"),
    ("customerownedipv4pool", "addresses are read from the capture"),
    ("enable", "a switch the replay does not need"),
    ("accesslogs", "osilab's decisions are the log"),
)


def _reason(key: str) -> str:
    short = key.lower().replace("_", "").replace("-", "")
    for prefix, why in _REASONS:
        if short.startswith(prefix):
            return why
    return "not read by osilab's model"


class Warnings:
    """The warning lines of one conversion; each unmodelled field is named once."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._seen: set[str] = set()

    def unmodelled(self, field_name: str, why: str | None = None) -> None:
        """Add ``accepted, not modelled: FIELD (why)`` unless that field was named already."""
        if field_name in self._seen:
            return
        self._seen.add(field_name)
        self.lines.append(
            f"accepted, not modelled: {field_name} ({why or _reason(field_name.rsplit('.', 1)[-1])})"
        )

    def note(self, line: str) -> None:
        if line not in self.lines:
            self.lines.append(line)


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a description: its fields (AWS API names where osilab reads them).

    Attributes:
        kind: ``"lb"``, ``"listener"``, ``"rule"``, ``"group"`` or ``"health"``.
        label: how warnings name the record's type (``TargetGroup``, ``aws_lb_target_group``).
        where: how errors name it (``groups.json: TargetGroups[2]``, ``lb.tf: aws_lb.web``).
        fields: the record itself.
    """

    kind: str
    label: str
    where: str
    fields: Mapping[str, Any]


@dataclass(slots=True)
class AwsDescription:
    """Records of load balancers, listeners, rules, target groups and target health.

    ``instances`` maps an instance id (or a reader's own id for an instance) to its
    private address.
    """

    records: list[Record] = field(default_factory=list)
    instances: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Record]:
        return [record for record in self.records if record.kind == kind]

    def extend(self, other: AwsDescription) -> None:
        self.records.extend(other.records)
        self.instances.update(other.instances)


# --------------------------------------------------------------------------- the CLI's outputs


def is_cli_output(data: Mapping[str, Any]) -> bool:
    """True when ``data`` is the output of one of the ``describe-*`` commands."""
    return bool(data) and set(data) <= CLI_KEYS and not set(data) <= {"NextMarker", "NextToken"}


def _listed(data: Mapping[str, Any], key: str, file: str) -> list[Mapping[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ConfigError(f"'{key}' must be a list of objects", file=file)
    return items


def _listener_of_rule(rule_arn: str) -> str:
    """``...:listener-rule/app/NAME/LB/LISTENER/RULE`` -> ``...:listener/app/NAME/LB/LISTENER``."""
    return rule_arn.replace(":listener-rule/", ":listener/", 1).rsplit("/", 1)[0]


def from_cli(data: Mapping[str, Any], file: str) -> AwsDescription:
    """The records of one ``aws elbv2 describe-*`` (or ``aws ec2 describe-instances``) output."""
    found = AwsDescription()
    kinds = (
        ("LoadBalancers", "lb", "LoadBalancer"),
        ("Listeners", "listener", "Listener"),
        ("Rules", "rule", "Rule"),
        ("TargetGroups", "group", "TargetGroup"),
    )
    for key, kind, label in kinds:
        for index, item in enumerate(_listed(data, key, file)):
            fields = dict(item)
            if kind == "rule" and "ListenerArn" not in fields and fields.get("RuleArn"):
                fields["ListenerArn"] = _listener_of_rule(str(fields["RuleArn"]))
            found.records.append(Record(kind, label, f"{file}: {key}[{index}]", fields))
    if "TargetHealthDescriptions" in data:
        if not data.get("TargetGroupArn"):
            raise ConfigError(
                "describe-target-health output does not name its target group: add "
                '"TargetGroupArn": "<the --target-group-arn you gave>" beside TargetHealthDescriptions',
                file=file,
            )
        _listed(data, "TargetHealthDescriptions", file)
        found.records.append(Record("health", "TargetHealth", file, dict(data)))
    for reservation in _listed(data, "Reservations", file):
        for instance in reservation.get("Instances", []) or []:
            if instance.get("InstanceId") and instance.get("PrivateIpAddress"):
                found.instances[str(instance["InstanceId"])] = str(instance["PrivateIpAddress"])
    return found


# --------------------------------------------------------------------------- tying records together

_ARN_TYPE = re.compile(r":(?:loadbalancer|listener|listener-rule)/(app|net)/([^/]+)/")
_AUTHENTICATE = ("authenticate-oidc", "authenticate-cognito", "jwt-validation")


def _warn_fields(record: Record, warnings: Warnings) -> None:
    for key in record.fields:
        if key not in _MODELLED.get(record.kind, frozenset()):
            warnings.unmodelled(f"{record.label}.{key}")


class _Tie:
    """ARN -> record lookups for one description, with errors naming where a reference is."""

    def __init__(self, description: AwsDescription) -> None:
        self.description = description
        self.groups: dict[str, Record] = {}
        for record in description.of("group"):
            arn = record.fields.get("TargetGroupArn")
            if not arn:
                raise ConfigError(f"{record.where}: a target group needs 'TargetGroupArn'")
            self.groups[str(arn)] = record

    def group_name(self, arn: Any, where: str, key: str) -> str:
        record = self.groups.get(str(arn))
        if record is None:
            known = ", ".join(sorted(self.groups)) or "none"
            raise ConfigError(
                f"{where}: {key} {arn!r} names no target group in the files given "
                f"(target groups: {known}); add the describe-target-groups output"
            )
        name = record.fields.get("TargetGroupName")
        if not name:
            raise ConfigError(f"{record.where}: a target group needs 'TargetGroupName'")
        return str(name)


def _action(raw: Any, where: str, tie: _Tie, warnings: Warnings) -> dict[str, Any] | None:
    """One action in osilab's shape: target groups by name, AWS's default-valued parts dropped."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: an action must be an object, not {raw!r}")
    kind = raw.get("Type")
    if kind in _AUTHENTICATE:
        warnings.unmodelled(
            f"Actions.Type={kind}", "osilab has no identity provider: requests pass as if signed in"
        )
        return None
    action: dict[str, Any] = {
        key: value for key, value in raw.items() if key not in ("TargetGroupArn", "ForwardConfig")
    }
    if raw.get("TargetGroupArn"):
        action["TargetGroupName"] = tie.group_name(raw["TargetGroupArn"], where, "TargetGroupArn")
    forward = raw.get("ForwardConfig")
    if isinstance(forward, Mapping):
        entries = []
        for entry in forward.get("TargetGroups", []) or []:
            entry = dict(entry)
            if entry.get("TargetGroupArn"):
                arn = entry.pop("TargetGroupArn")
                entry["TargetGroupName"] = tie.group_name(
                    arn, where, "ForwardConfig.TargetGroupArn"
                )
            entries.append(entry)
        config: dict[str, Any] = {"TargetGroups": entries}
        sticky = forward.get("TargetGroupStickinessConfig") or {}
        if sticky.get("Enabled"):
            config["TargetGroupStickinessConfig"] = dict(sticky)
        single = [{"TargetGroupName": action.get("TargetGroupName"), "Weight": 1}]
        if entries != single or len(config) > 1:
            action["ForwardConfig"] = config
    elif forward is not None:
        action["ForwardConfig"] = forward
    if action.get("Order") == 1:
        del action["Order"]
    return action


def _actions(raw: Any, where: str, tie: _Tie, warnings: Warnings) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: actions must be a list, not {raw!r}")
    kept = [_action(item, where, tie, warnings) for item in raw]
    return [action for action in kept if action is not None]


def _condition(raw: Any, where: str) -> dict[str, Any]:
    """A rule condition: the ``*Config`` object, or the legacy ``Values`` when there is none."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a condition must be an object, not {raw!r}")
    configs = {key: value for key, value in raw.items() if key.endswith("Config")}
    if configs:
        return {"Field": raw.get("Field"), **configs}
    return dict(raw)


def _lb_type(record: Record) -> str:
    kind = str(record.fields.get("Type", "application")).lower()
    return {"alb": "application", "nlb": "network"}.get(kind, kind)


def _implied_lbs(description: AwsDescription) -> list[Record]:
    """Load balancers named only by their listeners' ARNs (no describe-load-balancers given)."""
    seen: dict[str, Record] = {}
    for listener in description.of("listener"):
        arn = str(listener.fields.get("LoadBalancerArn", ""))
        match = _ARN_TYPE.search(arn) or _ARN_TYPE.search(
            str(listener.fields.get("ListenerArn", ""))
        )
        if arn and arn not in seen and match:
            fields = {
                "LoadBalancerArn": arn,
                "LoadBalancerName": match.group(2),
                "Type": "application" if match.group(1) == "app" else "network",
            }
            seen[arn] = Record("lb", "LoadBalancer", listener.where, fields)
    return list(seen.values())


def _targets(
    group: Record, health: Iterable[Record], description: AwsDescription, warnings: Warnings
) -> tuple[list[str], list[dict[str, Any]]]:
    """The group's targets (``ip:port``) and their health changes at the replay's start."""
    port = group.fields.get("Port", 80)
    targets: list[str] = []
    changes: list[dict[str, Any]] = []
    for record in health:
        if record.fields.get("TargetGroupArn") != group.fields.get("TargetGroupArn"):
            continue
        for index, item in enumerate(record.fields.get("TargetHealthDescriptions", [])):
            where = f"{record.where}: TargetHealthDescriptions[{index}]"
            target = item.get("Target") or {}
            target_id = str(target.get("Id", ""))
            for key in item:
                if key not in ("Target", "TargetHealth"):
                    warnings.unmodelled(f"{record.label}.{key}")
            for key in target:
                if key not in ("Id", "Port"):
                    warnings.unmodelled(f"{record.label}.Target.{key}")
            address = description.instances.get(target_id, target_id)
            if address.startswith("i-"):
                raise ConfigError(
                    f"{where}: Target.Id: instance {target_id} has no private address in the "
                    "files given; add the 'aws ec2 describe-instances' output"
                )
            if address.startswith("arn:"):
                raise ConfigError(
                    f"{where}: Target.Id: {target_id} is a Lambda function or a load balancer; "
                    "osilab models instance and IP targets only"
                )
            if not address:
                raise ConfigError(f"{where}: Target.Id is missing")
            host = f"[{address}]" if ":" in address else address
            endpoint = f"{host}:{target.get('Port', port)}"
            if endpoint in targets:
                continue
            targets.append(endpoint)
            state = str((item.get("TargetHealth") or {}).get("State", "healthy")).lower()
            if state not in ("healthy", "initial"):
                # unhealthy, draining, unused, unavailable: no new traffic from the start.
                changes.append({"Time": 0, "Target": endpoint, "State": "unhealthy"})
            for key in item.get("TargetHealth") or {}:
                if key != "State":
                    warnings.unmodelled(
                        f"{record.label}.TargetHealth.{key}", "an explanation for people"
                    )
    return targets, changes


def _group(
    record: Record, health: list[Record], description: AwsDescription, warnings: Warnings
) -> dict[str, Any]:
    fields = record.fields
    _warn_fields(record, warnings)
    if str(fields.get("TargetType", "instance")) in ("lambda", "alb"):
        raise ConfigError(
            f"{record.where}: TargetType: {fields['TargetType']} targets are not modelled "
            "(instance and ip targets are)"
        )
    targets, changes = _targets(record, health, description, warnings)
    if not targets:
        warnings.note(
            f"target group {fields.get('TargetGroupName')} has no targets in the files given "
            "(add its describe-target-health output with a TargetGroupArn key)"
        )
    group: dict[str, Any] = {"Name": fields.get("TargetGroupName")}
    for key in ("Protocol", "Port", "Attributes"):
        if key in fields:
            group[key] = fields[key]
    group["Targets"] = targets
    if changes:
        group["HealthChanges"] = changes
    return group


def _listener(
    record: Record, rules: list[Record], lb_type: str, tie: _Tie, warnings: Warnings
) -> dict[str, Any]:
    fields = record.fields
    _warn_fields(record, warnings)
    label = f"{record.where} (listener {fields.get('Protocol', '?')}:{fields.get('Port', '?')})"
    listener: dict[str, Any] = {
        key: fields[key] for key in ("Protocol", "Port", "Attributes") if key in fields
    }
    defaults = fields.get("DefaultActions")
    converted: list[dict[str, Any]] = []
    for rule in rules:
        _warn_fields(rule, warnings)
        raw = rule.fields
        where = f"{rule.where} (rule {raw.get('Priority')})"
        actions = _actions(raw.get("Actions", []), f"{where}: Actions", tie, warnings)
        if raw.get("IsDefault") or raw.get("Priority") == "default":
            if defaults is None:
                listener["DefaultActions"] = actions
            continue
        conditions = raw.get("Conditions", [])
        if not isinstance(conditions, list):
            raise ConfigError(f"{where}: Conditions must be a list")
        entry: dict[str, Any] = {
            "Priority": str(raw.get("Priority")),
            "Conditions": [_condition(c, f"{where}: Conditions") for c in conditions],
            "Actions": actions,
        }
        if raw.get("Transforms"):
            entry["Transforms"] = raw["Transforms"]
        converted.append(entry)
    if defaults is not None:
        listener["DefaultActions"] = _actions(defaults, f"{label}: DefaultActions", tie, warnings)
    if lb_type == "application":
        listener["Rules"] = sorted(
            converted, key=lambda r: int(r["Priority"]) if r["Priority"].isdigit() else 0
        )
    elif converted:
        raise ConfigError(f"{label}: an NLB listener has no rules, but rules name it")
    return listener


def assemble(description: AwsDescription) -> tuple[list[dict[str, Any]], Warnings, dict[str, str]]:
    """One osilab config dict per load balancer in ``description``.

    Returns the dicts (each with ``Name``), the warnings, and where each rule came from
    (``"NAME:PORT:PRIORITY"`` -> record), so a rule error can name the file and the resource.
    """
    warnings = Warnings()
    tie = _Tie(description)
    lbs = description.of("lb") or _implied_lbs(description)
    lb_arns = {str(lb.fields.get("LoadBalancerArn")): lb for lb in lbs}
    listeners_by_lb: dict[str, list[Record]] = {arn: [] for arn in lb_arns}
    for listener in description.of("listener"):
        arn = str(listener.fields.get("LoadBalancerArn", ""))
        if arn not in listeners_by_lb:
            known = ", ".join(sorted(lb_arns)) or "none"
            raise ConfigError(
                f"{listener.where}: LoadBalancerArn {arn!r} names no load balancer in the files "
                f"given (load balancers: {known})"
            )
        listeners_by_lb[arn].append(listener)
    rules_by_listener: dict[str, list[Record]] = {}
    listener_arns = {str(li.fields.get("ListenerArn")) for li in description.of("listener")}
    for rule in description.of("rule"):
        arn = str(rule.fields.get("ListenerArn", ""))
        if arn not in listener_arns:
            raise ConfigError(
                f"{rule.where}: ListenerArn {arn!r} names no listener in the files given; "
                "add the describe-listeners output"
            )
        rules_by_listener.setdefault(arn, []).append(rule)
    health = description.of("health")
    for record in health:
        if str(record.fields.get("TargetGroupArn")) not in tie.groups:
            raise ConfigError(
                f"{record.where}: TargetGroupArn {record.fields.get('TargetGroupArn')!r} names no "
                "target group in the files given; add the describe-target-groups output"
            )
    configs: list[dict[str, Any]] = []
    rule_sources: dict[str, str] = {}
    for arn, lb in lb_arns.items():
        _warn_fields(lb, warnings)
        lb_type = _lb_type(lb)
        name = str(lb.fields.get("LoadBalancerName") or arn)
        listeners = []
        for listener in listeners_by_lb[arn]:
            rules = rules_by_listener.get(str(listener.fields.get("ListenerArn")), [])
            listeners.append(_listener(listener, rules, lb_type, tie, warnings))
            for rule in rules:
                port = listener.fields.get("Port")
                rule_sources[f"{name}:{port}:{rule.fields.get('Priority')}"] = rule.where
        used = {
            ref
            for listener in listeners
            for rule in [
                {"Actions": listener.get("DefaultActions", [])},
                *listener.get("Rules", []),
            ]
            for ref in _group_names(rule["Actions"])
        }
        groups = [
            _group(record, health, description, warnings)
            for record in tie.groups.values()
            if record.fields.get("TargetGroupName") in used
            or arn in (record.fields.get("LoadBalancerArns") or [])
        ]
        config: dict[str, Any] = {"Type": lb_type, "Name": name, "TargetGroups": groups}
        if lb.fields.get("Attributes"):
            config["Attributes"] = lb.fields["Attributes"]
        config["Listeners"] = listeners
        configs.append(config)
    return configs, warnings, rule_sources


def _group_names(actions: Iterable[Mapping[str, Any]]) -> set[str]:
    names = set()
    for action in actions:
        if action.get("TargetGroupName"):
            names.add(str(action["TargetGroupName"]))
        for entry in (action.get("ForwardConfig") or {}).get("TargetGroups", []) or []:
            if entry.get("TargetGroupName"):
                names.add(str(entry["TargetGroupName"]))
    return names

"""CloudFormation templates (JSON or YAML) describing an AWS load balancer.

Theory of operation
-------------------
A template lists ``Resources`` by logical id; the ``AWS::ElasticLoadBalancingV2::*``
ones carry the AWS API's own field names, and point at each other with intrinsic
functions::

    ApiRule:
      Type: AWS::ElasticLoadBalancingV2::ListenerRule
      Properties:
        ListenerArn: !Ref HttpListener
        Priority: 6
        Conditions: [{Field: path-pattern, PathPatternConfig: {Values: [/api/*]}}]
        Actions: [{Type: forward, TargetGroupArn: !Ref ApiGroup}]

:func:`read_yaml` reads YAML with a PyYAML ``SafeLoader`` that reads the short tags
(``!Ref``, ``!GetAtt``, ``!Sub``, ``!Join``) as the long form (``{"Ref": ...}``), so JSON
and YAML templates are the same dict. :func:`from_template` resolves ``Ref`` (a resource's
ARN of its own, ``cfn:ApiGroup``; a parameter's ``Default``), ``Fn::GetAtt``,
``Fn::Sub`` and ``Fn::Join``, and builds the records that
:func:`osilab.balancers.config.aws_cli.assemble` ties by ARN. Targets come from the
target group's ``Targets`` (``AWS::EC2::Instance`` ids map to their
``PrivateIpAddress``). Anything that needs a deployed stack (``Fn::ImportValue``,
``Fn::If``, pseudo parameters) is refused with an error naming the function and the
resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from osilab.balancers.config.aws_cli import AwsDescription, Record
from osilab.errors import ConfigError

if TYPE_CHECKING:
    import yaml

__all__ = ["read_yaml", "is_template", "from_template"]


def __getattr__(name: str) -> Any:
    """``TemplateLoader``, the ``SafeLoader`` subclass :func:`read_yaml` uses, built (and
    PyYAML imported) when first read (PEP 562)."""
    if name != "TemplateLoader":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _template_loader()

_PREFIX = "AWS::ElasticLoadBalancingV2::"

#: CloudFormation resource type -> (record kind, property -> AWS API field).
_TYPES: dict[str, tuple[str, dict[str, str]]] = {
    "LoadBalancer": (
        "lb",
        {"Name": "LoadBalancerName", "Type": "Type", "LoadBalancerAttributes": "Attributes"},
    ),
    "Listener": (
        "listener",
        {
            "LoadBalancerArn": "LoadBalancerArn",
            "Port": "Port",
            "Protocol": "Protocol",
            "DefaultActions": "DefaultActions",
            "ListenerAttributes": "Attributes",
        },
    ),
    "ListenerRule": (
        "rule",
        {
            "ListenerArn": "ListenerArn",
            "Priority": "Priority",
            "Conditions": "Conditions",
            "Actions": "Actions",
        },
    ),
    "TargetGroup": (
        "group",
        {
            "Name": "TargetGroupName",
            "Port": "Port",
            "Protocol": "Protocol",
            "TargetType": "TargetType",
            "TargetGroupAttributes": "Attributes",
        },
    ),
}

#: ``Fn::GetAtt`` attributes that are the resource's ARN.
_ARN_ATTRIBUTES = ("LoadBalancerArn", "ListenerArn", "TargetGroupArn", "RuleArn", "Arn")


def read_yaml(text: str) -> Any:
    """A YAML document (a template, or any config written in YAML), CloudFormation's short
    tags read as their long form. Raises ``yaml.YAMLError`` when it is not YAML. PyYAML is
    imported on the first call (:func:`_template_loader`), when a file turns out not to be
    JSON: a command that reads JSON configs (``osilab route``) starts without it."""
    loader = _template_loader()(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@cache
def _template_loader() -> type[yaml.SafeLoader]:
    """A ``SafeLoader`` (no object construction) that also reads CloudFormation's short-form
    tags, built once."""
    import yaml

    class TemplateLoader(yaml.SafeLoader):
        """A ``SafeLoader`` that also reads CloudFormation's short-form tags."""

    def _tag(name: str, split_dots: bool = False) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if split_dots:
                    value = str(value).split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
            return {name: value}

        return construct

    for _short, _long in (
        ("Ref", "Ref"),
        ("Sub", "Fn::Sub"),
        ("Join", "Fn::Join"),
        ("Select", "Fn::Select"),
        ("If", "Fn::If"),
        ("ImportValue", "Fn::ImportValue"),
        ("FindInMap", "Fn::FindInMap"),
        ("Split", "Fn::Split"),
        ("Equals", "Fn::Equals"),
    ):
        TemplateLoader.add_constructor(f"!{_short}", _tag(_long))
    TemplateLoader.add_constructor("!GetAtt", _tag("Fn::GetAtt", split_dots=True))
    return TemplateLoader


def is_template(data: Mapping[str, Any]) -> bool:
    """True for a CloudFormation template (it has ``Resources`` of ``AWS::`` types)."""
    resources = data.get("Resources")
    return "AWSTemplateFormatVersion" in data or (
        isinstance(resources, Mapping)
        and any(
            isinstance(r, Mapping) and str(r.get("Type", "")).startswith("AWS::")
            for r in resources.values()
        )
    )


class _Template:
    def __init__(self, data: Mapping[str, Any], file: str) -> None:
        self.file = file
        self.resources: Mapping[str, Any] = data.get("Resources") or {}
        self.parameters: Mapping[str, Any] = data.get("Parameters") or {}

    def error(self, where: str, reason: str) -> ConfigError:
        return ConfigError(f"{where}: {reason}", file=self.file)

    def ref(self, name: str, where: str) -> Any:
        if name in self.resources:
            return f"cfn:{name}"
        if name in self.parameters:
            parameter = self.parameters[name] or {}
            if "Default" not in parameter:
                raise self.error(where, f"Ref {name}: the parameter has no Default; give it one")
            return parameter["Default"]
        raise self.error(where, f"Ref {name} names no resource or parameter in the template")

    def get_att(self, name: str, attribute: str, where: str) -> Any:
        resource = self.resources.get(name)
        if not isinstance(resource, Mapping):
            raise self.error(
                where, f"Fn::GetAtt {name}.{attribute} names no resource in the template"
            )
        if attribute in _ARN_ATTRIBUTES:
            return f"cfn:{name}"
        properties = resource.get("Properties") or {}
        wanted = {
            "LoadBalancerName": "Name",
            "TargetGroupName": "Name",
            "PrivateIp": "PrivateIpAddress",
        }
        key = wanted.get(attribute, attribute)
        if key in properties:
            return self.value(properties[key], where)
        raise self.error(where, f"Fn::GetAtt {name}.{attribute} is known only to a deployed stack")

    def sub(self, raw: Any, where: str) -> str:
        text, variables = (raw[0], raw[1]) if isinstance(raw, list) else (raw, {})

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name], where))
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute, where))
            return str(self.ref(name, where))

        return re.sub(r"\$\{([^}!]+)\}", fill, str(text))

    def value(self, raw: Any, where: str) -> Any:
        """``raw`` with every intrinsic function resolved."""
        if isinstance(raw, list):
            return [self.value(item, where) for item in raw]
        if not isinstance(raw, Mapping):
            return raw
        if len(raw) == 1:
            ((key, argument),) = raw.items()
            if key == "Ref":
                if str(argument).startswith("AWS::"):
                    raise self.error(
                        where, f"Ref {argument}: a pseudo parameter needs a deployed stack"
                    )
                return self.ref(str(argument), where)
            if key == "Fn::GetAtt":
                parts = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(str(parts[0]), str(parts[1]), where)
            if key == "Fn::Sub":
                return self.sub(argument, where)
            if key == "Fn::Join":
                return str(argument[0]).join(
                    str(self.value(p, where)) for p in self.value(argument[1], where)
                )
            if key.startswith("Fn::"):
                raise self.error(
                    where,
                    f"{key} is not supported (osilab reads the template, it does not deploy it)",
                )
        return {key: self.value(item, where) for key, item in raw.items()}


def from_template(data: Mapping[str, Any], file: str) -> AwsDescription:
    """The AWS records of one CloudFormation template (already loaded as a dict)."""
    template = _Template(data, file)
    found = AwsDescription()
    for logical_id, resource in template.resources.items():
        if not isinstance(resource, Mapping):
            raise template.error(logical_id, "a resource must be an object")
        kind_name = str(resource.get("Type", ""))
        where = f"{logical_id} ({kind_name})"
        for key in ("Condition",):
            if key in resource:
                raise template.error(
                    where, f"'{key}' needs a deployed stack; remove it or write the resource out"
                )
        properties = template.value(resource.get("Properties") or {}, where)
        if kind_name == "AWS::EC2::Instance" and properties.get("PrivateIpAddress"):
            found.instances[f"cfn:{logical_id}"] = str(properties["PrivateIpAddress"])
            continue
        if not kind_name.startswith(_PREFIX) or kind_name[len(_PREFIX) :] not in _TYPES:
            continue
        kind, mapping = _TYPES[kind_name[len(_PREFIX) :]]
        fields = {mapping.get(key, key): value for key, value in properties.items()}
        arn = f"cfn:{logical_id}"
        label = kind_name
        if kind == "lb":
            fields.update(LoadBalancerArn=arn)
            fields.setdefault("LoadBalancerName", logical_id)
        elif kind == "listener":
            fields.update(ListenerArn=arn)
        elif kind == "group":
            fields.update(TargetGroupArn=arn)
            fields.setdefault("TargetGroupName", logical_id)
            targets = fields.pop("Targets", [])
            found.records.append(
                Record(
                    "health",
                    f"{label}.Targets",
                    f"{file}: {where}",
                    {
                        "TargetGroupArn": arn,
                        "TargetHealthDescriptions": [{"Target": t} for t in targets],
                    },
                )
            )
        found.records.append(Record(kind, label, f"{file}: {where}", fields))
    return found

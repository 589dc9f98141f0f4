"""Terraform files (``.tf``) describing an AWS load balancer, read with python-hcl2.

Theory of operation
-------------------
Terraform names the same objects as the AWS API, in snake case, and ties them by
references instead of ARNs::

    resource "aws_lb_listener_rule" "api" {
      listener_arn = aws_lb_listener.http.arn
      priority     = 6
      action { type = "forward"  target_group_arn = aws_lb_target_group.api.arn }
      condition { path_pattern { values = ["/api/*"] } }
    }

:func:`from_terraform` reads ``aws_lb``, ``aws_lb_listener``, ``aws_lb_listener_rule``
(with its ``condition {}`` blocks), ``aws_lb_target_group`` and
``aws_lb_target_group_attachment`` (and their ``aws_alb_*`` aliases), plus
``aws_instance.NAME.private_ip`` for instance targets. Each resource gets an ARN of
its own (``tf:aws_lb_target_group.api``), so a reference such as
``aws_lb_target_group.api.arn`` becomes that ARN and
:func:`osilab.balancers.config.aws_cli.assemble` ties everything as it does for the
CLI's output.

Only what the given files say is used: ``var.NAME`` is the variable's ``default``,
``local.NAME`` its ``locals`` entry, ``"${...}"`` inside strings is filled in. What
would need a Terraform run (``count``, ``for_each``, ``dynamic`` blocks, modules,
``data`` sources, function calls) is refused with an error naming the construct and
the resource: osilab does not guess what a plan would produce.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from osilab.balancers.config.aws_cli import AwsDescription, Record
from osilab.errors import ConfigError

__all__ = ["from_terraform"]

#: ``aws_alb_*`` are older names of the same resources.
_CANONICAL = {
    "aws_lb": "aws_lb",
    "aws_alb": "aws_lb",
    "aws_lb_listener": "aws_lb_listener",
    "aws_alb_listener": "aws_lb_listener",
    "aws_lb_listener_rule": "aws_lb_listener_rule",
    "aws_alb_listener_rule": "aws_lb_listener_rule",
    "aws_lb_target_group": "aws_lb_target_group",
    "aws_alb_target_group": "aws_lb_target_group",
    "aws_lb_target_group_attachment": "aws_lb_target_group_attachment",
    "aws_alb_target_group_attachment": "aws_lb_target_group_attachment",
    "aws_instance": "aws_instance",
}

#: Terraform argument -> AWS API field, per resource type (the rest is warned about).
_FIELDS: dict[str, dict[str, str]] = {
    "aws_lb": {"name": "LoadBalancerName", "load_balancer_type": "Type"},
    "aws_lb_listener": {
        "load_balancer_arn": "LoadBalancerArn",
        "port": "Port",
        "protocol": "Protocol",
        "default_action": "DefaultActions",
    },
    "aws_lb_listener_rule": {
        "listener_arn": "ListenerArn",
        "priority": "Priority",
        "action": "Actions",
        "condition": "Conditions",
    },
    "aws_lb_target_group": {
        "name": "TargetGroupName",
        "port": "Port",
        "protocol": "Protocol",
        "target_type": "TargetType",
    },
}

#: Load balancer and target group arguments that are AWS attributes.
_ATTRIBUTES = {
    "idle_timeout": "idle_timeout.timeout_seconds",
    "desync_mitigation_mode": "routing.http.desync_mitigation_mode",
    "xff_header_processing_mode": "routing.http.xff_header_processing.mode",
    "enable_xff_client_port": "routing.http.xff_client_port.enabled",
    "load_balancing_algorithm_type": "load_balancing.algorithm.type",
    "preserve_client_ip": "preserve_client_ip.enabled",
    "proxy_protocol_v2": "proxy_protocol_v2.enabled",
}

#: ``condition { host_header { values = [...] } }`` -> the AWS condition.
_CONDITIONS = {
    "host_header": ("host-header", "HostHeaderConfig"),
    "path_pattern": ("path-pattern", "PathPatternConfig"),
    "http_header": ("http-header", "HttpHeaderConfig"),
    "http_request_method": ("http-request-method", "HttpRequestMethodConfig"),
    "query_string": ("query-string", "QueryStringConfig"),
    "source_ip": ("source-ip", "SourceIpConfig"),
}

#: ``redirect { ... }`` and ``fixed_response { ... }`` -> the AWS action's config and its
#: keys (every value a string, as the ELBv2 API takes them; arguments not listed are dropped).
_ACTION_CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "redirect": (
        "RedirectConfig",
        {"status_code": "StatusCode", "protocol": "Protocol", "host": "Host", "port": "Port",
         "path": "Path", "query": "Query"},
    ),
    "fixed_response": (
        "FixedResponseConfig",
        {"status_code": "StatusCode", "content_type": "ContentType",
         "message_body": "MessageBody"},
    ),
}  # fmt: skip

_REFUSED = ("count", "for_each", "dynamic")
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([^}]*)\}")
_REFERENCE = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+$")


def _name(raw: str) -> str:
    """A block label as python-hcl2 prints it (``'"web"'``) without its quotes."""
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw


class _Files:
    """The resources, variables and locals of the given files, and references among them."""

    def __init__(self, documents: list[tuple[str, Mapping[str, Any]]]) -> None:
        self.resources: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {}
        self.variables: dict[str, Any] = {}
        self.locals: dict[str, Any] = {}
        for file, document in documents:
            if document.get("module"):
                names = ", ".join(
                    f'module "{_name(n)}"' for block in document["module"] for n in block
                )
                raise ConfigError(
                    f"{names}: modules are not read (osilab reads only the resources in the files "
                    "given); pass the module's own .tf files",
                    file=file,
                )
            if document.get("data"):
                raise ConfigError(
                    "data sources need a Terraform run; give the values literally", file=file
                )
            for block in document.get("variable", []):
                for raw, body in block.items():
                    if raw != "__is_block__":
                        self.variables[_name(raw)] = (file, body)
            for block in document.get("locals", []):
                for key, value in block.items():
                    if key != "__is_block__":
                        self.locals[key] = (file, value)
            for block in document.get("resource", []):
                for raw_type, named in block.items():
                    kind = _CANONICAL.get(_name(raw_type))
                    if kind is None:
                        continue
                    for raw_name, body in named.items():
                        if raw_name == "__is_block__":
                            continue
                        name = _name(raw_name)
                        where = f"{_name(raw_type)}.{name}"
                        for construct in _REFUSED:
                            if construct in body:
                                raise ConfigError(
                                    f"{where}: '{construct}' is not supported (osilab reads one "
                                    "resource per block; write the resources out)",
                                    file=file,
                                )
                        self.resources[(kind, name)] = (file, where, body)

    # ------------------------------------------------------------------ expressions

    def value(self, raw: Any, where: str, file: str) -> Any:
        """A python-hcl2 value with its references, variables and locals filled in."""
        if isinstance(raw, bool | int | float) or raw is None:
            return raw
        if isinstance(raw, list):
            return [self.value(item, where, file) for item in raw]
        if isinstance(raw, dict):
            return {
                _name(k): self.value(v, where, file)
                for k, v in raw.items()
                if k not in ("__is_block__", "__comments__", "__inline_comments__")
            }
        text = str(raw)
        if len(text) >= 2 and text[0] == text[-1] == '"':
            literal = json.loads(text)
            if not _INTERPOLATION.search(literal):
                return literal.replace("$${", "${")
            return _INTERPOLATION.sub(
                lambda m: str(self.expression(m.group(1).strip(), where, file)), literal
            ).replace("$${", "${")
        if text.startswith("${") and text.endswith("}"):
            return self.expression(text[2:-1].strip(), where, file)
        return text

    def expression(self, text: str, where: str, file: str) -> Any:
        if not _REFERENCE.match(text):
            raise ConfigError(
                f"{where}: the expression {text!r} needs a Terraform run; write its value literally",
                file=file,
            )
        parts = text.split(".")
        if parts[0] == "var":
            if parts[1] not in self.variables:
                raise ConfigError(
                    f"{where}: var.{parts[1]} is not declared in the files given", file=file
                )
            var_file, body = self.variables[parts[1]]
            if "default" not in body:
                raise ConfigError(
                    f'variable "{parts[1]}" has no default; give it one', file=var_file
                )
            return self._attribute(
                self.value(body["default"], f"var.{parts[1]}", var_file),
                parts[2:],
                text,
                where,
                file,
            )
        if parts[0] == "local":
            if parts[1] not in self.locals:
                raise ConfigError(
                    f"{where}: local.{parts[1]} is not in any locals block", file=file
                )
            local_file, raw = self.locals[parts[1]]
            return self._attribute(
                self.value(raw, f"local.{parts[1]}", local_file), parts[2:], text, where, file
            )
        if parts[0] in ("data", "module"):
            raise ConfigError(
                f"{where}: {text} needs a Terraform run ({parts[0]} is not read)", file=file
            )
        kind = _CANONICAL.get(parts[0])
        if kind is None or (kind, parts[1]) not in self.resources or len(parts) != 3:
            raise ConfigError(
                f"{where}: the reference {text} names no resource in the files given", file=file
            )
        arn = f"tf:{kind}.{parts[1]}"
        attribute = parts[2]
        if attribute in ("arn", "id"):
            return arn
        target_file, target_where, body = self.resources[(kind, parts[1])]
        if attribute in body:
            return self.value(body[attribute], target_where, target_file)
        raise ConfigError(
            f"{where}: {text}: the attribute {attribute!r} is not set in {target_where}", file=file
        )

    def _attribute(self, value: Any, rest: list[str], text: str, where: str, file: str) -> Any:
        for part in rest:
            if not isinstance(value, Mapping) or part not in value:
                raise ConfigError(f"{where}: {text} names nothing", file=file)
            value = value[part]
        return value

    def of(self, kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
        return [
            (name, file, where, body)
            for (k, name), (file, where, body) in self.resources.items()
            if k == kind
        ]


def _blocks(value: Any) -> list[dict[str, Any]]:
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def _first(value: Any) -> dict[str, Any]:
    blocks = _blocks(value)
    return blocks[0] if blocks else {}


def _action(block: Mapping[str, Any], where: str, file: str) -> dict[str, Any]:
    action: dict[str, Any] = {"Type": block.get("type")}
    if "order" in block:
        action["Order"] = block["order"]
    if block.get("target_group_arn"):
        action["TargetGroupArn"] = block["target_group_arn"]
    forward = _first(block.get("forward"))
    if forward:
        config: dict[str, Any] = {
            "TargetGroups": [
                {"TargetGroupArn": group.get("arn"), "Weight": group.get("weight", 1)}
                for group in _blocks(forward.get("target_group"))
            ]
        }
        sticky = _first(forward.get("stickiness"))
        if sticky:
            config["TargetGroupStickinessConfig"] = {
                "Enabled": bool(sticky.get("enabled", False)),
                "DurationSeconds": sticky.get("duration", 0),
            }
        action["ForwardConfig"] = config
    for argument, (config_key, keys) in _ACTION_CONFIGS.items():
        given = _first(block.get(argument))
        if given:
            action[config_key] = {keys[k]: str(v) for k, v in given.items() if k in keys}
    for key in block:
        if key not in (
            "type",
            "order",
            "target_group_arn",
            "forward",
            "redirect",
            "fixed_response",
        ):
            raise ConfigError(f"{where}: action.{key} is not modelled by osilab", file=file)
    return action


def _condition(block: Mapping[str, Any], where: str, file: str) -> dict[str, Any]:
    kinds = [key for key in block if key in _CONDITIONS]
    unknown = [key for key in block if key not in _CONDITIONS]
    if unknown or len(kinds) != 1:
        raise ConfigError(
            f"{where}: condition needs exactly one of {', '.join(_CONDITIONS)} "
            f"(found {', '.join(block) or 'none'})",
            file=file,
        )
    field_name, config_key = _CONDITIONS[kinds[0]]
    inner = _blocks(block[kinds[0]])
    if kinds[0] == "query_string":
        values = [
            {**({"Key": pair["key"]} if "key" in pair else {}), "Value": pair.get("value")}
            for pair in inner
        ]
        return {"Field": field_name, config_key: {"Values": values}}
    config: dict[str, Any] = {"Values": list(_first(inner).get("values", []))}
    if kinds[0] == "http_header":
        config = {"HttpHeaderName": _first(inner).get("http_header_name"), **config}
    return {"Field": field_name, config_key: config}


def _record(kind: str, name: str, file: str, where: str, body: dict[str, Any]) -> Record:
    """One resource as an AWS-shaped record (unmodelled arguments keep their Terraform name)."""
    fields: dict[str, Any] = {}
    attributes = []
    mapping = _FIELDS.get(kind, {})
    for key, value in body.items():
        if key in mapping:
            fields[mapping[key]] = value
        elif key in _ATTRIBUTES:
            attributes.append(
                {
                    "Key": _ATTRIBUTES[key],
                    "Value": str(value).lower() if isinstance(value, bool) else str(value),
                }
            )
        elif key == "stickiness" and kind == "aws_lb_target_group":
            sticky = _first(value)
            attributes.append(
                {"Key": "stickiness.enabled", "Value": str(sticky.get("enabled", True)).lower()}
            )
            if "type" in sticky:
                attributes.append({"Key": "stickiness.type", "Value": str(sticky["type"])})
            if "cookie_duration" in sticky:
                attributes.append(
                    {
                        "Key": "stickiness.lb_cookie.duration_seconds",
                        "Value": str(sticky["cookie_duration"]),
                    }
                )
        elif key != "__is_block__":
            fields[key] = value
    if attributes:
        fields["Attributes"] = attributes
    arn = f"tf:{kind}.{name}"
    if kind == "aws_lb":
        fields["LoadBalancerArn"] = arn
        fields.setdefault("LoadBalancerName", name)
        fields.setdefault("Type", "application")
        return Record("lb", kind, f"{file}: {where}", fields)
    if kind == "aws_lb_listener":
        fields["ListenerArn"] = arn
        fields["DefaultActions"] = [
            _action(b, where, file) for b in _blocks(fields.get("DefaultActions"))
        ]
        return Record("listener", kind, f"{file}: {where}", fields)
    if kind == "aws_lb_listener_rule":
        if "Priority" not in fields:
            raise ConfigError(
                f"{where}: priority is required (Terraform would take the next free one at apply time)",
                file=file,
            )
        fields["Actions"] = [_action(b, where, file) for b in _blocks(fields.get("Actions"))]
        fields["Conditions"] = [
            _condition(b, where, file) for b in _blocks(fields.get("Conditions"))
        ]
        return Record("rule", kind, f"{file}: {where}", fields)
    fields["TargetGroupArn"] = arn
    fields.setdefault("TargetGroupName", name)
    return Record("group", kind, f"{file}: {where}", fields)


def from_terraform(documents: list[tuple[str, Mapping[str, Any]]]) -> AwsDescription:
    """The AWS records of several ``.tf`` files, as parsed by ``hcl2.load``.

    ``documents`` are ``(file name, parsed document)``; variables, locals and references
    are resolved across all of them, as Terraform does for the files of one module.
    """
    files = _Files(documents)
    found = AwsDescription()
    for name, file, where, body in files.of("aws_instance"):
        if "private_ip" in body:
            found.instances[f"tf:aws_instance.{name}"] = str(
                files.value(body["private_ip"], where, file)
            )
    for kind in ("aws_lb", "aws_lb_listener", "aws_lb_listener_rule", "aws_lb_target_group"):
        for name, file, where, body in files.of(kind):
            resolved = files.value(body, where, file)
            found.records.append(_record(kind, name, file, where, resolved))
    for _, file, where, body in files.of("aws_lb_target_group_attachment"):
        resolved = files.value(body, where, file)
        target: dict[str, Any] = {"Id": str(resolved.get("target_id", ""))}
        if "port" in resolved:
            target["Port"] = resolved["port"]
        if not resolved.get("target_group_arn"):
            raise ConfigError(f"{where}: target_group_arn is required", file=file)
        found.records.append(
            Record(
                "health",
                "aws_lb_target_group_attachment",
                f"{file}: {where}",
                {
                    "TargetGroupArn": resolved["target_group_arn"],
                    "TargetHealthDescriptions": [{"Target": target}],
                },
            )
        )
    return found

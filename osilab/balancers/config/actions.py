"""Rule actions: ``forward``, ``redirect`` and ``fixed-response``, checked as AWS checks them.

Theory of operation
-------------------
Every rule (and every listener's default rule) ends in exactly one terminal action
(``lb-reference.md`` §1.3, [ALB-UG load-balancer-listeners.md]):

- ``forward`` sends the request to one target group, or to up to 5 by weight (0-999),
  optionally sticky to the group by the ``AWSALBTG`` cookie;
- ``redirect`` makes the ALB answer 301/302 itself, with a Location built from the
  placeholders ``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}``, ``#{query}``;
- ``fixed-response`` makes the ALB answer with a status, content type and body.

An NLB listener can only forward. :func:`parse_actions` checks the common keys, then
hands each action to the one function of its ``Type`` in :data:`_ACTION_PARSERS`.
Every problem raises :class:`~osilab.errors.RuleError` naming the rule. This module is a
part of :mod:`osilab.balancers.config.parse`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.balancers.config.model import (
    NETWORK,
    Action,
    FixedResponseConfig,
    RedirectConfig,
    TargetGroup,
    WeightedTargetGroup,
    target_group_name,
)
from osilab.errors import RuleError

__all__ = [
    "MAX_TARGET_GROUPS_PER_FORWARD",
    "MAX_WEIGHT",
    "FIXED_RESPONSE_CONTENT_TYPES",
    "parse_actions",
]

MAX_TARGET_GROUPS_PER_FORWARD = 5
MAX_WEIGHT = 999

FIXED_RESPONSE_CONTENT_TYPES = (
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
)

_FIXED_STATUS = re.compile(r"^(2|4|5)\d\d$")

_ACTION_KEYS = (
    "Type",
    "Order",
    "TargetGroupArn",
    "TargetGroupName",
    "ForwardConfig",
    "RedirectConfig",
    "FixedResponseConfig",
)

#: The parts of a redirect, and the placeholders each may use [ALB-UG load-balancer-listeners.md].
_REDIRECT_PLACEHOLDERS = {
    "Protocol": ("#{protocol}",),
    "Host": ("#{host}",),
    "Port": ("#{port}",),
    "Path": ("#{host}", "#{port}", "#{path}"),
    "Query": ("#{protocol}", "#{host}", "#{port}", "#{path}", "#{query}"),
}


@dataclass(frozen=True, slots=True)
class _Rule:
    """What an action's checks need to know of the rule it ends."""

    label: str
    listener_protocol: str
    groups: Mapping[str, TargetGroup]

    def error(self, reason: str, field: str | None = None) -> RuleError:
        return RuleError(reason, rule=self.label, field=field)


def _unknown_keys(
    obj: Mapping[str, Any], allowed: tuple[str, ...], where: str, rule: _Rule
) -> None:
    for key in obj:
        if key not in allowed:
            raise rule.error(f"unknown key {key!r} in {where}")


# --------------------------------------------------------------------------- forward


def _weighted_groups(forward: Mapping[str, Any], rule: _Rule) -> list[WeightedTargetGroup]:
    """The ``ForwardConfig.TargetGroups`` list, each with its weight (0-999, default 1)."""
    listed = []
    for item in forward.get("TargetGroups", []):
        ref = (
            item.get("TargetGroupName") or item.get("TargetGroupArn")
            if isinstance(item, Mapping)
            else None
        )
        if not ref:
            raise rule.error(
                "each ForwardConfig target group needs TargetGroupArn or TargetGroupName"
            )
        weight = item.get("Weight", 1)
        if not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise rule.error(
                f"target group weight must be an integer 0-999, not {weight!r}", "Weight"
            )
        listed.append(WeightedTargetGroup(target_group_name(ref), weight))
    return listed


def _group_stickiness(forward: Mapping[str, Any], rule: _Rule) -> tuple[bool, int]:
    """``TargetGroupStickinessConfig``: (enabled, duration in seconds)."""
    stickiness = forward.get("TargetGroupStickinessConfig") or {}
    sticky = bool(stickiness.get("Enabled", False))
    seconds = int(stickiness.get("DurationSeconds", 0) or 0)
    if sticky and not 1 <= seconds <= 604800:
        raise rule.error("TargetGroupStickinessConfig.DurationSeconds must be 1-604800")
    return sticky, seconds


def _check_forward(entries: list[WeightedTargetGroup], sticky: bool, rule: _Rule) -> None:
    """The limits of one forward action: 1-5 distinct, known groups, some weight above 0."""
    if not entries:
        raise rule.error("a forward action needs a target group")
    if len(entries) > MAX_TARGET_GROUPS_PER_FORWARD:
        raise rule.error(f"a forward action can have at most 5 target groups, not {len(entries)}")
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise rule.error("a target group appears twice in one forward action")
    for name in names:
        if name not in rule.groups:
            raise rule.error(f"target group {name!r} not found")
    if sum(entry.weight for entry in entries) == 0:
        raise rule.error("at least one target group in a forward action needs a weight above 0")
    if len(entries) > 1 and not sticky and any(rule.groups[n].stickiness for n in names):
        raise rule.error(
            "target group stickiness must be enabled when a weighted target group has stickiness on"
        )


def _forward(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``forward``: ``TargetGroupArn``/``TargetGroupName``, or a weighted ``ForwardConfig``."""
    entries: list[WeightedTargetGroup] = []
    single = obj.get("TargetGroupName") or obj.get("TargetGroupArn")
    if single:
        entries.append(WeightedTargetGroup(target_group_name(single), 1))
    forward = obj.get("ForwardConfig")
    sticky, sticky_seconds = False, 0
    if forward is not None:
        if not isinstance(forward, Mapping):
            raise rule.error("'ForwardConfig' must be an object")
        _unknown_keys(
            forward, ("TargetGroups", "TargetGroupStickinessConfig"), "ForwardConfig", rule
        )
        listed = _weighted_groups(forward, rule)
        if single and listed and [g.name for g in listed] != [entries[0].name]:
            raise rule.error("TargetGroupArn and ForwardConfig name different target groups")
        if listed:
            entries = listed
        sticky, sticky_seconds = _group_stickiness(forward, rule)
    _check_forward(entries, sticky, rule)
    return Action("forward", order, tuple(entries), sticky, sticky_seconds)


# --------------------------------------------------------------------------- redirect


def _redirect_parts(config: Mapping[str, Any], rule: _Rule) -> dict[str, str]:
    """The parts a redirect sets, each using only the placeholders AWS allows there."""
    parts = {
        key: str(config[key])
        for key in ("Protocol", "Host", "Port", "Path", "Query")
        if key in config
    }
    for key, value in parts.items():
        for placeholder in re.findall(r"#\{[a-z]+\}", value):
            if placeholder not in _REDIRECT_PLACEHOLDERS[key]:
                raise rule.error(
                    f"{placeholder} is not allowed in the redirect {key}", "RedirectConfig"
                )
        if key != "Port" and len(value) > 128:
            raise rule.error(f"the redirect {key} is longer than 128 characters")
    return parts


def _redirect(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``redirect``: HTTP_301/302 to a URL that must differ from the request's (or it loops)."""
    config = obj.get("RedirectConfig")
    if not isinstance(config, Mapping):
        raise rule.error("a redirect action needs 'RedirectConfig'")
    _unknown_keys(
        config, ("Protocol", "Host", "Port", "Path", "Query", "StatusCode"), "RedirectConfig", rule
    )
    status = config.get("StatusCode")
    if status not in ("HTTP_301", "HTTP_302"):
        raise rule.error(f"redirect StatusCode must be HTTP_301 or HTTP_302, not {status!r}")
    parts = _redirect_parts(config, rule)
    protocol = parts.get("Protocol", "#{protocol}")
    if protocol not in ("HTTP", "HTTPS", "#{protocol}"):
        raise rule.error(
            f"redirect Protocol must be HTTP, HTTPS or #{{protocol}}, not {protocol!r}"
        )
    if rule.listener_protocol == "HTTPS" and protocol == "HTTP":
        raise rule.error("you cannot redirect HTTPS to HTTP", "RedirectConfig")
    path = parts.get("Path", "/#{path}")
    if not path.startswith("/"):
        raise rule.error("the redirect Path must start with '/'", "RedirectConfig")
    port = parts.get("Port", "#{port}")
    if port != "#{port}" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise rule.error(f"redirect Port must be 1-65535 or #{{port}}, not {port!r}")
    redirect = RedirectConfig(
        status_code=status,
        protocol=protocol,
        host=parts.get("Host", "#{host}"),
        port=port,
        path=path,
        query=parts.get("Query", "#{query}"),
    )
    unchanged = (
        redirect.protocol in ("#{protocol}", rule.listener_protocol)
        and redirect.host == "#{host}"
        and redirect.port in ("#{port}",)
        and redirect.path == "/#{path}"
    )
    if unchanged:
        raise rule.error(
            "a redirect must change the protocol, host, port or path, or it would loop",
            "RedirectConfig",
        )
    return Action("redirect", order, redirect=redirect)


# --------------------------------------------------------------------------- fixed-response


def _fixed_response(obj: Mapping[str, Any], order: int, rule: _Rule) -> Action:
    """``fixed-response``: a 2xx/4xx/5xx status, one of five content types, <= 1024 bytes."""
    config = obj.get("FixedResponseConfig")
    if not isinstance(config, Mapping):
        raise rule.error("a fixed-response action needs 'FixedResponseConfig'")
    _unknown_keys(config, ("StatusCode", "ContentType", "MessageBody"), "FixedResponseConfig", rule)
    status = str(config.get("StatusCode", ""))
    if not _FIXED_STATUS.match(status):
        raise rule.error(f"fixed-response StatusCode must match ^(2|4|5)\\d\\d$, not {status!r}")
    content_type = config.get("ContentType")
    if content_type is not None and content_type not in FIXED_RESPONSE_CONTENT_TYPES:
        raise rule.error(
            f"fixed-response ContentType must be one of {', '.join(FIXED_RESPONSE_CONTENT_TYPES)}"
        )
    body = str(config.get("MessageBody", ""))
    if len(body) > 1024:
        raise rule.error("fixed-response MessageBody is longer than 1024 characters")
    return Action(
        "fixed-response", order, fixed_response=FixedResponseConfig(status, content_type, body)
    )


#: Action ``Type`` -> the function that checks it and builds the :class:`Action`.
_ACTION_PARSERS: Mapping[str, Callable[[Mapping[str, Any], int, _Rule], Action]] = MappingProxyType(
    {"forward": _forward, "redirect": _redirect, "fixed-response": _fixed_response}
)
#: Action types AWS has and osilab does not model.
_NOT_MODELLED = ("authenticate-oidc", "authenticate-cognito", "jwt-validation")


# --------------------------------------------------------------------------- one action, a list


def _parse_action(obj: Any, lb_type: str, rule: _Rule) -> Action:
    if not isinstance(obj, Mapping):
        raise rule.error(f"an action must be an object, not {obj!r}")
    _unknown_keys(obj, _ACTION_KEYS, "an action", rule)
    kind = obj.get("Type")
    order = int(obj.get("Order", 1))
    if kind in _NOT_MODELLED:
        raise rule.error(f"{kind} actions are not modelled by osilab", "Actions")
    if lb_type == NETWORK and kind != "forward":
        raise rule.error(f"an NLB listener can only forward, not {kind!r}", "Actions")
    parser = _ACTION_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise rule.error(
            f"unknown action type {kind!r} (forward, redirect or fixed-response)", "Actions"
        )
    return parser(obj, order, rule)


def parse_actions(
    raw: Any, label: str, listener_protocol: str, lb_type: str, groups: Mapping[str, TargetGroup]
) -> tuple[Action, ...]:
    """The ``Actions`` of the rule ``label``: exactly one terminal action, checked.

    ``groups`` are the configuration's target groups by name (a forward must name them).

    >>> parse_actions([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    ...               "7", "HTTP", "application", {})[0].fixed_response.status_code
    '404'
    """
    if not isinstance(raw, list) or not raw:
        raise RuleError("at least one action is required", rule=label, field="Actions")
    rule = _Rule(label, listener_protocol, groups)
    actions = sorted(
        (_parse_action(item, lb_type, rule) for item in raw), key=lambda action: action.order
    )
    if len(actions) != 1:
        raise RuleError(
            "exactly one of forward, redirect or fixed-response is allowed, and it must be last",
            rule=label,
            field="Actions",
        )
    return tuple(actions)

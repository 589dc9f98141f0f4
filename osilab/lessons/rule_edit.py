"""Notebook 5's lesson: the same request through both balancers, the rules, and "what if".

An ALB routes each request by the first listener rule whose conditions all match
(lowest priority first, then the default action) [ALB-UG load-balancer-listeners.md,
``lb-reference.md`` §1]. A team that edits one rule - widens a path pattern, adds a host -
wants to know *which requests move*. This module answers that on a real capture, with
no widget and no notebook, so it can be tested:

* :func:`same_request` - the NLB scenario's twin of an ALB scenario's request (the lab's
  client runs the same suites against both balancers), for the side-by-side journey;
* :func:`rules_table` - one row per rule of a listener, with every request field the rule
  reads and, for the first request it won, every field the balancer had read by then;
* :func:`with_rule_values` - a copy of an AWS-shaped config with one rule's condition
  values replaced (the edit);
* :func:`moved_requests` - replay the same HTTP requests through the config before and
  after the edit and list each request whose rule or target group changed (:class:`Move`);
* :func:`rule_editor` - the thin ipywidgets wrapper around the two functions above.

A request "moves" when the edit changes the rule that wins it or the target group that
serves it. Round robin inside a target group then hands out targets in a new order, so a
target can change for a request the edit did not move; a :class:`Move` reports targets
too, but only rule and target group decide whether a request moved.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osilab.balancers import ApplicationLoadBalancer, parse_config, replay
from osilab.balancers.config import BalancerConfig, Condition
from osilab.balancers.config.conditions import CONDITION_FIELDS
from osilab.balancers.decision import Decision
from osilab.balancers.rules import condition_fields
from osilab.errors import OsilabError, UsageError
from osilab.lessons import scenarios
from osilab.protocols.messages import HttpRequest, HttpResponse

__all__ = [
    "Route",
    "Move",
    "same_request",
    "rules_table",
    "with_rule_values",
    "moved_requests",
    "moves_table",
    "rule_editor",
]

#: The header that carries the lab client's request id (``client.json``'s ``rid``).
REQUEST_ID = "X-Request-Id"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one balancer config sent one request.

    Attributes:
        rule: the winning rule's priority, ``"default"``, or ``None`` (not routed).
        target_group: the target group that served it (``None`` when none did).
        target: the target ``"ip:port"`` (``None`` when none did).
        action: ``"forward"``, ``"redirect"``, ``"fixed-response"``, ...
    """

    rule: str | None
    target_group: str | None
    target: str | None
    action: str

    @classmethod
    def of(cls, decision: Decision) -> Route:
        return cls(decision.rule, decision.target_group, decision.target, decision.action)

    def text(self) -> str:
        """``"rule 6 -> tg-api (192.0.2.13:80)"``: one cell of a table."""
        where = self.target_group or self.action
        return f"rule {self.rule} -> {where}" + (f" ({self.target})" if self.target else "")


@dataclass(frozen=True, slots=True)
class Move:
    """One request that an edit moved: the same request, two routes."""

    request_id: str
    request: str
    before: Route
    after: Route


# --------------------------------------------------------------------------- the twin


def same_request(alb_rid: str, *, alb: str = "alb", nlb: str = "nlb") -> str:
    """The request id in scenario ``nlb`` sent as the same step of the same suite as ``alb_rid``.

    The lab's client runs each suite (keep-alive, short, pipelined ...) against every
    balancer; the n-th request of a suite has the same method and path in both.

    Raises:
        UsageError: ``alb_rid`` is not in ``alb``'s ``client.json``, or ``nlb`` has no
            request of that suite, method and path at that step.
    """
    first = scenarios.client_records(alb)
    record = next((r for r in first if r["rid"] == alb_rid), None)
    if record is None:
        raise UsageError(f"no request {alb_rid!r} in the {alb} scenario's client.json")
    step = [r["rid"] for r in first if r["suite"] == record["suite"]].index(alb_rid)
    twins = [r for r in scenarios.client_records(nlb) if r["suite"] == record["suite"]]
    twin = twins[step] if step < len(twins) else None
    if twin is None or (twin["method"], _path(twin["target"])) != (
        record["method"],
        _path(record["target"]),
    ):
        raise UsageError(
            f"the {nlb} scenario sent no {record['method']} {_path(record['target'])} as "
            f"request {step + 1} of its {record['suite']!r} suite"
        )
    return str(twin["rid"])


def _path(target: str) -> str:
    return target.split("?", 1)[0]


# --------------------------------------------------------------------------- the rules


def _condition_values(condition: Condition) -> str:
    if condition.field == "query-string":
        return " | ".join(f"{pair.key or '*'}={pair.value}" for pair in condition.query)
    if condition.header_name:
        return f"{condition.header_name}: " + " | ".join(condition.values)
    return " | ".join(condition.values)


def rules_table(
    config: BalancerConfig, decisions: Iterable[Decision], *, port: int = 80
) -> list[dict[str, Any]]:
    """The rules of the listener on ``port`` in evaluation order, then its default action.

    Each row: the priority, each condition (``Field`` and values), the request fields the
    rule reads (Wireshark names, :func:`osilab.balancers.rules.condition_fields`), the
    target group and its targets, how many of ``decisions`` it won, and ``fields read``:
    every field the balancer read for the first request the rule won, in the order it
    read them (the decision's ``seen``) - a later rule is reached only after every
    earlier rule's fields were read and did not match.
    """
    listener = next((lis for lis in config.listeners if lis.port == port), None)
    if listener is None:
        ports = ", ".join(str(lis.port) for lis in config.listeners)
        raise UsageError(f"the config has no listener on port {port} (it has: {ports})")
    won: dict[str, list[Decision]] = {}
    for decision in decisions:
        if decision.listener is None or decision.listener.endswith(f":{port}"):
            won.setdefault(decision.rule or "", []).append(decision)
    groups = {group.name: group for group in config.target_groups}
    rows = []
    entries = [(rule.label, rule.conditions, rule.action) for rule in listener.rules]
    entries.append(("default", (), listener.default_action))
    for label, conditions, action in entries:
        names = [entry.name for entry in action.target_groups]
        mine = won.get(label, [])
        rows.append(
            {
                "priority": label,
                "condition": " AND ".join(c.field for c in conditions) or "(no rule matched)",
                "values": " AND ".join(_condition_values(c) for c in conditions),
                "reads": ", ".join(f for c in conditions for f in condition_fields(c)),
                "action": f"forward {', '.join(names)}"
                if action.type == "forward"
                else action.type,
                "targets": ", ".join(t for name in names for t in groups[name].targets),
                "requests won": len(mine),
                "fields read (first request it won)": ", ".join(mine[0].seen) if mine else "",
            }
        )
    return rows


# --------------------------------------------------------------------------- the edit


def with_rule_values(
    config: Mapping[str, Any], priority: str, values: Sequence[str], *, port: int = 80
) -> dict[str, Any]:
    """A deep copy of an AWS-shaped ALB config with one rule's condition values replaced.

    The rule is the one of priority ``priority`` on the listener on ``port``; it must have
    exactly one condition whose values are strings (host-header, path-pattern,
    http-header, http-request-method, source-ip). ``config`` is left as it was.

    Raises:
        UsageError: no such listener or rule, or the rule is not a one-condition rule.
    """
    edited = copy.deepcopy(dict(config))
    listener = next((lis for lis in edited["Listeners"] if lis["Port"] == port), None)
    if listener is None:
        raise UsageError(f"the config has no listener on port {port}")
    rule = next((r for r in listener.get("Rules", []) if str(r["Priority"]) == priority), None)
    if rule is None:
        found = ", ".join(str(r["Priority"]) for r in listener.get("Rules", []))
        raise UsageError(f"listener {port} has no rule {priority!r} (it has: {found})")
    conditions = rule["Conditions"]
    if len(conditions) != 1 or conditions[0]["Field"] == "query-string":
        raise UsageError(
            f"rule {priority} has {len(conditions)} conditions or a query-string one; "
            "edit a rule with one condition of string values"
        )
    condition = conditions[0]
    holder = condition.setdefault(CONDITION_FIELDS[condition["Field"]], {})
    holder["Values"] = [str(v) for v in values]
    condition.pop("Values", None)  # the older shorthand, if the file used it
    return edited


def _routes(
    messages: Sequence[HttpRequest | HttpResponse], config: Mapping[str, Any] | BalancerConfig
) -> dict[str, tuple[str, Route]]:
    balancer = ApplicationLoadBalancer(
        config if isinstance(config, BalancerConfig) else parse_config(config)
    )
    routes = {}
    for decision in replay(messages, balancer, progress=False).decisions:
        rid = decision.request.header(REQUEST_ID) if decision.request is not None else None
        if rid:
            routes[rid] = (decision.request_label or "", Route.of(decision))
    return routes


def moved_requests(
    messages: Sequence[HttpRequest | HttpResponse],
    before: Mapping[str, Any] | BalancerConfig,
    after: Mapping[str, Any] | BalancerConfig,
) -> list[Move]:
    """The requests whose rule or target group differs between two configs, in capture order.

    ``messages`` are the HTTP messages of the balancer's front hop
    (:func:`osilab.balancers.replay.http_messages`), read once and replayed twice; each
    request is known by its ``X-Request-Id``.

    Raises:
        ConfigError: a config is not valid (the message names the rule and the field).
    """
    old, new = _routes(messages, before), _routes(messages, after)
    moves = []
    for rid, (label, was) in old.items():
        now = new.get(rid, ("", Route(None, None, None, "not-routed")))[1]
        if (was.rule, was.target_group) != (now.rule, now.target_group):
            moves.append(Move(rid, label, was, now))
    return moves


def moves_table(moves: Sequence[Move]) -> list[dict[str, str]]:
    """:func:`moved_requests` as rows (request id, request, before, after)."""
    return [
        {
            "id": m.request_id,
            "request": m.request,
            "before": m.before.text(),
            "after": m.after.text(),
        }
        for m in moves
    ]


def _moves_html(moves: Sequence[Move]) -> str:
    if not moves:
        return "<p>No request moves: every request is won by the same rule as before.</p>"
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
        for row in moves_table(moves)
    )
    head = "".join(f"<th>{name}</th>" for name in ("id", "request", "before", "after"))
    return f"<p>{len(moves)} requests move.</p><table><tr>{head}</tr>{rows}</table>"


def rule_editor(
    messages: Sequence[HttpRequest | HttpResponse],
    config: Mapping[str, Any],
    *,
    priority: str = "6",
    port: int = 80,
) -> Any:
    """An ipywidgets box: pick a rule, type its values (comma-separated), see who moves.

    A thin wrapper: every change calls :func:`with_rule_values` and
    :func:`moved_requests` and shows their result (or the config error) below.
    """
    import ipywidgets as widgets

    listener = next(lis for lis in config["Listeners"] if lis["Port"] == port)
    editable = {
        str(r["Priority"]): r
        for r in listener.get("Rules", [])
        if len(r["Conditions"]) == 1 and r["Conditions"][0]["Field"] != "query-string"
    }

    def current(rule: Mapping[str, Any]) -> str:
        condition = rule["Conditions"][0]
        found = condition.get(CONDITION_FIELDS[condition["Field"]], {}).get("Values")
        return ", ".join(found or condition.get("Values", []))

    choice = widgets.Dropdown(
        options=[(f"{p}: {r['Conditions'][0]['Field']}", p) for p, r in editable.items()],
        value=priority,
        description="rule",
    )
    values = widgets.Text(value=current(editable[priority]), description="values")
    result = widgets.HTML()

    def update(_: object = None) -> None:
        typed = [v.strip() for v in values.value.split(",") if v.strip()]
        try:
            edited = with_rule_values(config, choice.value, typed, port=port)
            result.value = _moves_html(moved_requests(messages, config, edited))
        except OsilabError as exc:  # the team sees what AWS would refuse, and why
            result.value = f"<p><b>refused:</b> {html.escape(str(exc))}</p>"

    def pick(_: object = None) -> None:
        values.value = current(editable[choice.value])  # triggers update

    choice.observe(pick, names="value")
    values.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox([choice, values]), result])

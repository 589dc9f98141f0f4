"""Notebook 5's "edit one rule, see which requests move" (``osilab.lessons.rule_edit``).

The logic is tested without a widget, on the bundled ALB capture: for each edit, the
requests that must move are derived from what the real balancer (HAProxy) logged in
``truth.json`` and what the client sent (``client.json``), not from the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from osilab.balancers import ApplicationLoadBalancer, parse_config, replay
from osilab.balancers.replay import http_messages
from osilab.errors import ConfigError, UsageError
from osilab.lessons import rule_edit, scenarios


@pytest.fixture(scope="module")
def front() -> dict[str, Any]:
    """The ALB's front hop: its HTTP messages, the lab's config, and the recorded truth."""
    messages = list(http_messages(scenarios.hop_packets("alb", "client-alb")))
    sent = {r["rid"]: r for r in scenarios.client_records("alb")}
    ids = {m.header("X-Request-Id") for m in messages if getattr(m, "method", None) is not None}
    truth = {rid: v for rid, v in scenarios.truth("alb")["requests"].items() if rid in ids}
    return {
        "messages": messages,
        "config": scenarios.lab_alb_config(),
        "sent": sent,
        "truth": truth,
    }


def _path(record: dict[str, Any]) -> str:
    return str(record["target"]).split("?", 1)[0]


# Each edit: (rule, new values, which requests must move, given client.json and truth.json).
Expect = Callable[[dict[str, Any], dict[str, Any]], bool]
EDITS: list[tuple[str, str, list[str], Expect]] = [
    (
        "static joins the API group",
        "6",
        ["/api/*", "/static/*"],
        lambda sent, real: real["target_group"] == "tg-web" and _path(sent).startswith("/static/"),
    ),
    (
        "the API moves to /api/v2: every API request falls to the default",
        "6",
        ["/api/v2/*"],
        lambda sent, real: real["target_group"] == "tg-api",
    ),
    (
        "the admin rule matches the shop's host instead: shop moves in, admin falls out",
        "1",
        ["shop.example.com"],
        lambda sent, real: (
            (sent["host"] == "shop.example.com") != (real["target_group"] == "tg-admin")
        ),
    ),
    ("the same values: nothing moves", "6", ["/api/*"], lambda sent, real: False),
]


@pytest.mark.parametrize(
    ("title", "priority", "values", "expect"), EDITS, ids=[e[0] for e in EDITS]
)
def test_an_edit_moves_exactly_the_requests_it_should(
    front: dict[str, Any], title: str, priority: str, values: list[str], expect: Expect
) -> None:
    edited = rule_edit.with_rule_values(front["config"], priority, values)
    moves = rule_edit.moved_requests(front["messages"], front["config"], edited)
    wanted = {rid for rid, real in front["truth"].items() if expect(front["sent"][rid], real)}
    assert {m.request_id for m in moves} == wanted, title
    for move in moves:
        assert (move.before.rule, move.before.target_group) != (
            move.after.rule,
            move.after.target_group,
        )
        assert move.before.target_group == front["truth"][move.request_id]["target_group"]


def test_the_edit_leaves_the_original_config_alone(front: dict[str, Any]) -> None:
    before = scenarios.lab_alb_config()
    rule_edit.with_rule_values(front["config"], "6", ["/elsewhere/*"])
    assert front["config"] == before


@pytest.mark.parametrize(
    ("priority", "values", "error", "match"),
    [
        ("6", ["/has space"], ConfigError, "rule 6, path-pattern: .*character"),
        ("42", ["/x"], UsageError, r"no rule '42' \(it has: 1, 2, 3, 4, 5, 6\)"),
    ],
)
def test_a_bad_edit_is_refused_with_the_rule_named(
    front: dict[str, Any], priority: str, values: list[str], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        edited = rule_edit.with_rule_values(front["config"], priority, values)
        rule_edit.moved_requests(front["messages"], front["config"], edited)


def test_the_twin_request_has_the_same_method_and_path() -> None:
    twin = rule_edit.same_request("a0003")
    alb = next(r for r in scenarios.client_records("alb") if r["rid"] == "a0003")
    nlb = next(r for r in scenarios.client_records("nlb") if r["rid"] == twin)
    assert (nlb["suite"], nlb["method"], _path(nlb)) == (alb["suite"], alb["method"], _path(alb))
    with pytest.raises(UsageError, match="no request 'zzz'"):
        rule_edit.same_request("zzz")


def test_the_rules_table_lists_every_rule_with_the_fields_it_read(front: dict[str, Any]) -> None:
    config = parse_config(front["config"])
    decisions = replay(front["messages"], ApplicationLoadBalancer(config), progress=False).decisions
    rows = rule_edit.rules_table(config, decisions)
    listener = next(lis for lis in config.listeners if lis.port == 80)
    assert [r["priority"] for r in rows] == [r.label for r in listener.rules] + ["default"]
    assert sum(r["requests won"] for r in rows) == len(decisions)
    path_rule = next(r for r in rows if r["condition"] == "path-pattern")
    assert path_rule["reads"] == "http.request.uri.path"
    assert path_rule["fields read (first request it won)"].endswith("http.request.uri.path")
    counted = {r["priority"]: r["requests won"] for r in rows}
    assert counted[path_rule["priority"]] == sum(
        1 for real in front["truth"].values() if real["rule"] == "path"
    )


def test_the_widget_is_a_thin_wrapper_that_runs_headless(front: dict[str, Any]) -> None:
    pytest.importorskip("ipywidgets")
    box = rule_edit.rule_editor(front["messages"], front["config"], priority="6")
    (choice, values), result = box.children[0].children, box.children[1]
    assert values.value == "/api/*" and "No request moves" in result.value
    values.value = "/api/*, /static/*"
    expected = rule_edit.moved_requests(
        front["messages"],
        front["config"],
        rule_edit.with_rule_values(front["config"], "6", ["/api/*", "/static/*"]),
    )
    assert f"{len(expected)} requests move" in result.value
    values.value = "/has space"
    assert "refused" in result.value and "path-pattern" in result.value
    choice.value = "1"
    assert values.value == "admin.example.com"

"""The ALB model: actions, target selection algorithms, stickiness, headers, desync mitigation."""

from __future__ import annotations

from collections import Counter

import pytest
from balancers.balancer_helpers import CLIENT, alb_config, flow, request, response, rule

from osilab.balancers.alb import ApplicationLoadBalancer, decode_cookie, encode_cookie
from osilab.protocols.messages import DesyncVerdict

TARGETS3 = ["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"]


def path(*values):
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def one_group(algorithm: str = "round_robin", targets=TARGETS3, **extra) -> dict:
    return alb_config(
        groups=[{"Name": "web", "Targets": list(targets), "Algorithm": algorithm, **extra}]
    )


def cookie_of(decision, name: str) -> str:
    for text in decision.cookies:
        key, _, rest = text.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in {decision.cookies}")


# ---------------------------------------------------------------- decisions


def test_one_decision_per_request_at_headers_complete() -> None:
    alb = ApplicationLoadBalancer(alb_config([rule("10", [path("/api/*")])]))
    decision = alb.request(request("/api/items?id=3", first=4, complete=6))
    assert decision.unit == "request"
    assert decision.decided_at == 6
    assert decision.target_group == "api" and decision.target == "192.0.2.13:80"
    assert "http.request.uri.path" in decision.seen
    assert "ends at the ALB" in decision.why and "its own connection" in decision.why
    assert "rule 10" in decision.why and decision.rule == "10"
    data = decision.to_json()
    for key in ("unit", "flow", "request", "decided_at", "target_group", "target", "seen", "why"):
        assert key in data
    assert data["flow"] == "198.51.100.7:51514-203.0.113.20:80"


def test_keep_alive_requests_on_one_connection_are_routed_separately() -> None:
    alb = ApplicationLoadBalancer(alb_config([rule("10", [path("/api/*")])]))
    on = flow()
    first = alb.request(request("/", index=0, on=on, complete=4))
    second = alb.request(request("/api/x", index=1, on=on, complete=9))
    assert (first.target_group, second.target_group) == ("web", "api")


def test_no_listener() -> None:
    alb = ApplicationLoadBalancer(alb_config())
    decision = alb.request(request(on=flow(server_port=8080)))
    assert decision.action == "not-routable" and decision.target is None


# ---------------------------------------------------------------- actions


@pytest.mark.parametrize(
    ("config", "target", "location", "status"),
    [
        # the AWS HTTP -> HTTPS example: path keeps its slash via "/#{path}"
        (
            {
                "Protocol": "HTTPS",
                "Port": "443",
                "Host": "#{host}",
                "Path": "/#{path}",
                "Query": "#{query}",
                "StatusCode": "HTTP_301",
            },
            "/a/b?x=1",
            "https://shop.example/a/b?x=1",
            301,
        ),
        # #{path} has no leading slash: "/new/#{path}" gives /new/a/b, not /new//a/b
        (
            {"Path": "/new/#{path}", "StatusCode": "HTTP_302"},
            "/a/b",
            "http://shop.example/new/a/b",
            302,
        ),
        # another host and port; no query -> no '?'
        (
            {"Host": "www.example.com", "Port": "8080", "StatusCode": "HTTP_301"},
            "/x",
            "http://www.example.com:8080/x",
            301,
        ),
        # placeholders inside the query
        (
            {
                "Host": "b.example.com",
                "Query": "from=#{host}#{path}&#{query}",
                "StatusCode": "HTTP_301",
            },
            "/p?q=1",
            "http://b.example.com/p?from=shop.examplep&q=1",
            301,
        ),
        # the Host header's port is not part of #{host}; an unset Port keeps the
        # listener's (80), so HTTPS without "Port": "443" lands on https://...:80
        ({"Protocol": "HTTPS", "StatusCode": "HTTP_301"}, "/", "https://shop.example:80/", 301),
    ],
)
def test_redirect_placeholders(config: dict, target: str, location: str, status: int) -> None:
    alb = ApplicationLoadBalancer(
        alb_config([rule("1", [path("/*")], [{"Type": "redirect", "RedirectConfig": config}])])
    )
    decision = alb.request(request(target, host="shop.example:80"))
    assert decision.action == "redirect" and decision.status == status
    assert decision.location == location
    assert decision.target is None and not decision.forwarded


def test_fixed_response() -> None:
    fixed = {
        "Type": "fixed-response",
        "FixedResponseConfig": {
            "StatusCode": "503",
            "ContentType": "text/plain",
            "MessageBody": "down",
        },
    }
    alb = ApplicationLoadBalancer(alb_config([rule("1", [path("/maintenance")], [fixed])]))
    decision = alb.request(request("/maintenance"))
    assert (decision.action, decision.status, decision.target) == ("fixed-response", 503, None)
    assert alb.request(request("/other")).action == "forward"


def test_weighted_forward_follows_weights_and_is_reproducible() -> None:
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupName": "web", "Weight": 10},
                {"TargetGroupName": "api", "Weight": 30},
            ]
        },
    }
    config = alb_config([rule("1", [path("/*")], [action])])
    alb = ApplicationLoadBalancer(config)
    picks = Counter(alb.request(request(index=i)).target_group for i in range(4000))
    share = picks["api"] / 4000
    print(f"\nmeasured: weighted forward 10:30 -> api share {share:.3f} (expected 0.75)")
    assert 0.72 < share < 0.78
    again = ApplicationLoadBalancer(config)
    assert Counter(again.request(request(index=i)).target_group for i in range(4000)) == picks


def test_weight_zero_group_never_chosen() -> None:
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupName": "web", "Weight": 0},
                {"TargetGroupName": "api", "Weight": 5},
            ]
        },
    }
    alb = ApplicationLoadBalancer(alb_config([rule("1", [path("/*")], [action])]))
    assert {alb.request(request(index=i)).target_group for i in range(200)} == {"api"}


def test_group_stickiness_cookie_keeps_the_group() -> None:
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupName": "web", "Weight": 1},
                {"TargetGroupName": "api", "Weight": 1},
            ],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 1000},
        },
    }
    alb = ApplicationLoadBalancer(alb_config([rule("1", [path("/*")], [action])]))
    first = alb.request(request(index=0))
    token = cookie_of(first, "AWSALBTG")
    assert decode_cookie(token, alb.seed) == (first.target_group, None)
    followers = {
        alb.request(request(index=i, headers=(("Cookie", f"a=b; AWSALBTG={token}"),))).target_group
        for i in range(1, 60)
    }
    assert followers == {first.target_group}
    assert "http.cookie" in first.seen
    # without the cookie both groups get traffic
    assert len({alb.request(request(index=i)).target_group for i in range(60, 120)}) == 2


# ---------------------------------------------------------------- algorithms


def test_round_robin_starts_at_the_first_target_and_advances_by_one() -> None:
    alb = ApplicationLoadBalancer(one_group())
    picks = [alb.request(request(index=i)).target for i in range(7)]
    assert picks == [TARGETS3[i % 3] for i in range(7)]


def test_round_robin_counts_per_target_group() -> None:
    groups = [
        {"Name": "web", "Targets": TARGETS3[:2]},
        {"Name": "api", "Targets": ["192.0.2.21:80", "192.0.2.22:80"]},
    ]
    alb = ApplicationLoadBalancer(alb_config([rule("1", [path("/api/*")])], groups=groups))
    picks = [
        alb.request(request(p, index=i)).target
        for i, p in enumerate(["/", "/api/a", "/", "/api/b", "/api/c"])
    ]
    assert picks == [
        "192.0.2.11:80",
        "192.0.2.21:80",
        "192.0.2.12:80",
        "192.0.2.22:80",
        "192.0.2.21:80",
    ]


def test_least_outstanding_requests_counts_responses() -> None:
    alb = ApplicationLoadBalancer(one_group("least_outstanding_requests"))
    flows = [flow(client_port=50000 + i) for i in range(5)]
    r = [request(on=flows[i]) for i in range(5)]
    assert alb.request(r[0]).target == TARGETS3[0]  # all idle: ties go to the first registered
    assert alb.request(r[1]).target == TARGETS3[1]
    assert alb.request(r[2]).target == TARGETS3[2]
    alb.response(response(r[1]))  # .12 finishes: it has the fewest outstanding now
    assert alb.outstanding == {TARGETS3[0]: 1, TARGETS3[1]: 0, TARGETS3[2]: 1}
    d3 = alb.request(r[3])
    assert d3.target == TARGETS3[1] and "least outstanding" in d3.why
    alb.response(response(r[0]))
    alb.response(response(r[2]))
    assert alb.request(r[4]).target == TARGETS3[0]  # 0, 1, 0 -> first with 0


def test_weighted_random_is_seeded_and_reproducible() -> None:
    picks_a = [
        ApplicationLoadBalancer(one_group("weighted_random")).request(request(index=i)).target
        for i in range(1)
    ]
    alb_a = ApplicationLoadBalancer(one_group("weighted_random"))
    alb_b = ApplicationLoadBalancer(one_group("weighted_random"))
    alb_c = ApplicationLoadBalancer(one_group("weighted_random"), seed=99)
    a = [alb_a.request(request(index=i)).target for i in range(300)]
    b = [alb_b.request(request(index=i)).target for i in range(300)]
    c = [alb_c.request(request(index=i)).target for i in range(300)]
    assert a == b and a != c
    assert picks_a[0] == a[0]
    counts = Counter(a)
    assert set(counts) == set(TARGETS3) and min(counts.values()) > 60


def test_lb_cookie_stickiness_and_undecodable_cookie() -> None:
    alb = ApplicationLoadBalancer(one_group(Stickiness="lb_cookie"))
    first = alb.request(request(index=0))
    token = cookie_of(first, "AWSALB")
    assert decode_cookie(token, alb.seed) == ("web", first.target)
    for i in range(1, 6):
        sticky = alb.request(request(index=i, headers=(("Cookie", f"AWSALB={token}"),)))
        assert sticky.target == first.target and "AWSALB" in sticky.why
    broken = alb.request(request(index=9, headers=(("Cookie", "AWSALB=garbage"),)))
    assert "undecodable" in broken.why
    assert decode_cookie(cookie_of(broken, "AWSALB"), alb.seed) == ("web", broken.target)


def test_cookie_for_an_unhealthy_target_gets_a_new_target() -> None:
    changes = [{"Time": 5, "Target": TARGETS3[0], "State": "unhealthy"}]
    alb = ApplicationLoadBalancer(one_group(Stickiness="lb_cookie", HealthChanges=changes))
    token = encode_cookie("web", TARGETS3[0], alb.seed)
    before = alb.request(request(time=1000.0, headers=(("Cookie", f"AWSALB={token}"),)))
    after = alb.request(request(index=1, time=1010.0, headers=(("Cookie", f"AWSALB={token}"),)))
    assert before.target == TARGETS3[0]
    assert after.target != TARGETS3[0]


def test_cookie_decoding_rejects_tampering() -> None:
    token = encode_cookie("web", "192.0.2.11:80", 0)
    assert decode_cookie(token, 0) == ("web", "192.0.2.11:80")
    assert decode_cookie(token, 1) is None
    assert decode_cookie(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], 0) is None
    assert decode_cookie("!!!", 0) is None


# ---------------------------------------------------------------- headers


def headers_of(decision) -> dict:
    return {k.lower(): v for k, v in decision.headers_to_target}


@pytest.mark.parametrize(
    ("mode", "incoming", "expected"),
    [
        ("append", (), CLIENT),
        ("append", (("X-Forwarded-For", "127.0.0.4"),), f"127.0.0.4, {CLIENT}"),
        ("preserve", (("X-Forwarded-For", "127.0.0.4"),), "127.0.0.4"),
        ("preserve", (), None),
        ("remove", (("X-Forwarded-For", "127.0.0.4"),), None),
    ],
)
def test_x_forwarded_for_modes(mode: str, incoming: tuple, expected: str | None) -> None:
    config = alb_config(Attributes={"routing.http.xff_header_processing.mode": mode})
    decision = ApplicationLoadBalancer(config).request(request(headers=incoming))
    assert headers_of(decision).get("x-forwarded-for") == expected


def test_forwarded_proto_port_and_trace_id() -> None:
    alb = ApplicationLoadBalancer(alb_config())
    decision = alb.request(request(time=1_700_000_000.5))
    headers = headers_of(decision)
    assert headers["x-forwarded-proto"] == "http" and headers["x-forwarded-port"] == "80"
    root = headers["x-amzn-trace-id"]
    assert root.startswith("Root=1-6553f100-") and len(root.split("-")[2]) == 24
    again = ApplicationLoadBalancer(alb_config()).request(request(time=1_700_000_000.5))
    assert headers_of(again)["x-amzn-trace-id"] == root  # deterministic from the seed
    existing = alb.request(request(index=1, headers=(("X-Amzn-Trace-Id", "Root=1-00000000-abc"),)))
    assert headers_of(existing)["x-amzn-trace-id"].startswith("Self=1-")
    assert headers_of(existing)["x-amzn-trace-id"].endswith(";Root=1-00000000-abc")


def test_xff_client_port() -> None:
    config = alb_config(Attributes={"routing.http.xff_client_port.enabled": "true"})
    assert (
        headers_of(ApplicationLoadBalancer(config).request(request()))["x-forwarded-for"]
        == f"{CLIENT}:51514"
    )


# ---------------------------------------------------------------- desync mitigation


@pytest.mark.parametrize(
    ("mode", "klass", "action"),
    [
        ("defensive", "Compliant", "forward"),
        ("defensive", "Acceptable", "forward"),
        ("defensive", "Ambiguous", "forward"),
        ("defensive", "Severe", "blocked"),
        ("monitor", "Severe", "forward"),
        ("strictest", "Acceptable", "blocked"),
        ("strictest", "Ambiguous", "blocked"),
    ],
)
def test_desync_mitigation(mode: str, klass: str, action: str) -> None:
    config = alb_config(Attributes={"routing.http.desync_mitigation_mode": mode})
    verdict = DesyncVerdict(klass, None if klass == "Compliant" else "BothTeClPresent")
    decision = ApplicationLoadBalancer(config).request(request(desync=verdict))
    assert decision.action == action
    if action == "blocked":
        assert decision.status == 400 and decision.target is None
        assert mode in decision.why and klass in decision.why and "BothTeClPresent" in decision.why
    if mode == "defensive" and klass == "Ambiguous":
        assert "closes both" in decision.why


def test_desync_block_then_close_follow_the_one_policy_table() -> None:
    """Severe is answered with 400 and Ambiguous forwarded-then-closed, as
    osilab.balancers.mitigation.POLICY says for defensive mode (there is no other table)."""
    config = alb_config(Attributes={"routing.http.desync_mitigation_mode": "defensive"})
    alb = ApplicationLoadBalancer(config)
    blocked = alb.request(request(desync=DesyncVerdict("Severe", "BadContentLength")))
    # a new connection: the 400 closed the first one
    closed = alb.request(
        request(on=flow(client_port=51515), desync=DesyncVerdict("Ambiguous", "EmptyHeader"))
    )
    assert (blocked.action, blocked.status) == (
        "blocked",
        400,
    ) and "BadContentLength" in blocked.why
    assert closed.action == "forward" and "closes both" in closed.why


def test_desync_mitigation_closes_the_connection_so_later_requests_never_reach_a_target() -> None:
    """A smuggled request hides after an ambiguous one: closing the connection drops it."""
    alb = ApplicationLoadBalancer(alb_config())  # defensive, the AWS default
    outer = alb.request(request("/a", desync=DesyncVerdict("Ambiguous", "BothTeClPresent")))
    hidden = alb.request(request("/hidden", index=1, first=5, complete=5))
    elsewhere = alb.request(request("/b", on=flow(client_port=40000)))
    assert outer.forwarded and "closes both" in outer.why
    assert (hidden.action, hidden.target) == ("connection-closed", None)
    assert "at packet 4 desync mitigation (defensive mode) closed it" in hidden.why
    assert elsewhere.forwarded  # other connections are untouched
    # a new SYN on the same 4-tuple is a new connection: it is served again
    alb.connection_opened(flow(), packet=20)
    assert alb.request(request("/again", index=0, first=22, complete=22)).forwarded

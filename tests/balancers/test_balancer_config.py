"""Balancer configuration: AWS shapes accepted, AWS limits enforced with errors naming the rule."""

from __future__ import annotations

import copy
import json

import pytest
from balancers.balancer_helpers import alb_config, nlb_config, rule

from osilab.balancers.config import (
    counterpart,
    default_config,
    load_config,
    parse_config,
    target_group_name,
)
from osilab.errors import ConfigError, RuleError

ARN = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/{}/73e2d6bc24d8a067"


def path(*values):
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


def test_design_md_example_loads() -> None:
    config = parse_config(
        {
            "Type": "application",
            "TargetGroups": [
                {
                    "Name": "web",
                    "Protocol": "HTTP",
                    "Port": 80,
                    "Targets": ["192.0.2.11:80", "192.0.2.12:80"],
                    "Algorithm": "round_robin",
                },
                {"Name": "api", "Protocol": "HTTP", "Port": 80, "Targets": ["192.0.2.13:80"]},
            ],
            "Listeners": [
                {
                    "Protocol": "HTTP",
                    "Port": 80,
                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                    "Rules": [
                        {
                            "Priority": "10",
                            "Conditions": [
                                {
                                    "Field": "path-pattern",
                                    "PathPatternConfig": {"Values": ["/api/*"]},
                                }
                            ],
                            "Actions": [{"Type": "forward", "TargetGroupName": "api"}],
                        }
                    ],
                }
            ],
        }
    )
    listener = config.listener(80, "tcp")
    assert listener is not None and listener.rules[0].priority == 10
    assert listener.rules[0].conditions[0].values == ("/api/*",)
    assert config.group("web").targets == ("192.0.2.11:80", "192.0.2.12:80")


def test_describe_rules_output_shape_is_accepted() -> None:
    """Exactly what `aws elbv2 describe-rules` prints: ARNs, IsDefault, both Values forms."""
    rules = [
        {
            "RuleArn": "arn:aws:elasticloadbalancing:us-west-2:123456789012:listener-rule/app/x/1/2/3",
            "Priority": "10",
            "Conditions": [
                {
                    "Field": "path-pattern",
                    "Values": ["/img/*"],
                    "PathPatternConfig": {"Values": ["/img/*"]},
                }
            ],
            "Actions": [
                {
                    "Type": "forward",
                    "TargetGroupArn": ARN.format("api"),
                    "Order": 1,
                    "ForwardConfig": {
                        "TargetGroups": [{"TargetGroupArn": ARN.format("api"), "Weight": 1}],
                        "TargetGroupStickinessConfig": {"Enabled": False},
                    },
                }
            ],
            "IsDefault": False,
        },
        {
            "Priority": "default",
            "Conditions": [],
            "IsDefault": True,
            "Actions": [{"Type": "forward", "TargetGroupArn": ARN.format("web")}],
        },
    ]
    data = alb_config(rules)
    del data["Listeners"][0]["DefaultActions"]
    config = parse_config(data)
    listener = config.listeners[0]
    assert [r.priority for r in listener.rules] == [10]
    assert listener.rules[0].action.target_groups[0].name == "api"
    assert listener.default_action.target_groups[0].name == "web"


def test_legacy_values_shorthand() -> None:
    config = parse_config(
        alb_config([rule("10", [{"Field": "path-pattern", "Values": ["/img/*"]}])])
    )
    assert config.listeners[0].rules[0].conditions[0].values == ("/img/*",)


def test_target_group_name_from_arn() -> None:
    assert target_group_name(ARN.format("blue-targets")) == "blue-targets"
    assert target_group_name("plain") == "plain"


def test_yaml_and_json_files(tmp_path) -> None:
    import yaml

    data = alb_config([rule("10", [path("/api/*")])])
    (tmp_path / "lb.json").write_text(json.dumps(data))
    (tmp_path / "lb.yaml").write_text(yaml.safe_dump(data))
    assert load_config(tmp_path / "lb.json") == load_config(tmp_path / "lb.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")


def test_load_config_reads_files_as_every_config_reader_does(tmp_path) -> None:
    """One reader of configuration files (readers.read_document): load_config reads what
    `osilab route --config` reads, YAML whatever the file is called, and an error names
    the file in ``ConfigError.file`` as every reader's does."""
    import yaml

    data = alb_config([rule("10", [path("/api/*")])])
    (tmp_path / "lb.conf").write_text(yaml.safe_dump(data))
    assert load_config(tmp_path / "lb.conf") == load_config(data)
    missing = tmp_path / "gone.json"
    with pytest.raises(ConfigError, match="cannot read the balancer configuration") as info:
        load_config(missing)
    assert info.value.file == str(missing)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="the configuration must be an object") as info:
        load_config(tmp_path / "list.json")
    assert info.value.file == str(tmp_path / "list.json")
    (tmp_path / "latin1.json").write_bytes(b'{"Name": "caf\xe9"}')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte offset 13\)"):
        load_config(tmp_path / "latin1.json")
    (tmp_path / "typo").write_text('{"Type": "application",, }')  # JSON by its look, no suffix
    with pytest.raises(ConfigError, match="not valid JSON: Expecting"):
        load_config(tmp_path / "typo")
    (tmp_path / "main.tf").write_text('resource "aws_lb" "web" {}')
    with pytest.raises(ConfigError, match="a Terraform file: formats.load_configs"):
        load_config(tmp_path / "main.tf")


def test_nlb_listener_with_rules_is_an_error_that_explains() -> None:
    data = nlb_config()
    data["Listeners"][0]["Rules"] = [rule("10", [path("/api/*")])]
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert "no Rules" in message and "protocol and port only" in message
    assert not isinstance(info.value, RuleError)


# (id, mutation of the rule list, error fragment, rule named)
RULE_ERRORS = [
    ("priority 0", [rule("0", [path("/a")])], "between 1 and 50000", "0"),
    ("priority 50001", [rule("50001", [path("/a")])], "between 1 and 50000", "50001"),
    ("priority not a number", [rule("ten", [path("/a")])], "Priority must be a number", "ten"),
    (
        "duplicate priority",
        [rule("7", [path("/a")]), rule("7", [path("/b")])],
        "currently in use",
        "7",
    ),
    (
        "two path-patterns",
        [rule("8", [path("/a"), path("/b")])],
        "only have one 'path-pattern'",
        "8",
    ),
    (
        "two host-headers",
        [
            rule(
                "9",
                [{"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com"]}}] * 2,
            )
        ],
        "only have one 'host-header'",
        "9",
    ),
    (
        "two methods",
        [
            rule(
                "9",
                [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}}]
                * 2,
            )
        ],
        "only have one 'http-request-method'",
        "9",
    ),
    (
        "two source-ips",
        [rule("9", [{"Field": "source-ip", "SourceIpConfig": {"Values": ["192.0.2.0/24"]}}] * 2)],
        "only have one 'source-ip'",
        "9",
    ),
    (
        "4 values in a condition",
        [rule("11", [path("/a", "/b", "/c", "/d")])],
        "at most 3 match evaluations",
        "11",
    ),
    (
        "6 values in a rule",
        [
            rule(
                "12",
                [
                    path("/a", "/b", "/c"),
                    {
                        "Field": "http-header",
                        "HttpHeaderConfig": {"HttpHeaderName": "X-A", "Values": ["1", "2"]},
                    },
                    {
                        "Field": "http-header",
                        "HttpHeaderConfig": {"HttpHeaderName": "X-B", "Values": ["3"]},
                    },
                ],
            )
        ],
        "at most 5 condition values",
        "12",
    ),
    ("6 wildcards", [rule("13", [path("/*/*/*", "/?/?/?")])], "at most 5 wildcards", "13"),
    ("empty value", [rule("14", [path("")])], "cannot be empty", "14"),
    (
        "no values",
        [rule("15", [{"Field": "path-pattern", "PathPatternConfig": {"Values": []}}])],
        "at least one value",
        "15",
    ),
    ("path too long", [rule("16", [path("/" + "a" * 128)])], "longer than 128", "16"),
    ("path bad char", [rule("17", [path("/a b")])], "character AWS does not allow", "17"),
    (
        "broadcast source-ip",
        [
            rule(
                "18", [{"Field": "source-ip", "SourceIpConfig": {"Values": ["255.255.255.255/32"]}}]
            )
        ],
        "255.255.255.255/32 is not allowed",
        "18",
    ),
    (
        "bad cidr",
        [rule("19", [{"Field": "source-ip", "SourceIpConfig": {"Values": ["300.1.1.1/8"]}}])],
        "not an IPv4 or IPv6 CIDR",
        "19",
    ),
    (
        "wildcard in header name",
        [
            rule(
                "20",
                [
                    {
                        "Field": "http-header",
                        "HttpHeaderConfig": {"HttpHeaderName": "X-*", "Values": ["a"]},
                    }
                ],
            )
        ],
        "not in the header name",
        "20",
    ),
    (
        "lowercase method",
        [
            rule(
                "21",
                [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get"]}}],
            )
        ],
        "method 'get' is not allowed",
        "21",
    ),
    (
        "host without dot",
        [rule("22", [{"Field": "host-header", "HostHeaderConfig": {"Values": ["localhost"]}}])],
        "must contain a '.'",
        "22",
    ),
    (
        "unknown field",
        [rule("23", [{"Field": "cookie", "Values": ["x"]}])],
        "unknown condition field",
        "23",
    ),
    (
        "six target groups",
        [
            rule(
                "24",
                [path("/a")],
                [
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [{"TargetGroupName": "web", "Weight": 1}] * 6
                        },
                    }
                ],
            )
        ],
        "at most 5 target groups",
        "24",
    ),
    (
        "weight 1000",
        [
            rule(
                "25",
                [path("/a")],
                [
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [{"TargetGroupName": "web", "Weight": 1000}]
                        },
                    }
                ],
            )
        ],
        "weight must be an integer 0-999",
        "25",
    ),
    (
        "unknown target group",
        [rule("26", [path("/a")], [{"Type": "forward", "TargetGroupName": "nope"}])],
        "'nope' not found",
        "26",
    ),
    (
        "fixed-response 301",
        [
            rule(
                "27",
                [path("/a")],
                [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "301"}}],
            )
        ],
        "^(2|4|5)",
        "27",
    ),
    (
        "fixed-response content type",
        [
            rule(
                "28",
                [path("/a")],
                [
                    {
                        "Type": "fixed-response",
                        "FixedResponseConfig": {"StatusCode": "200", "ContentType": "image/png"},
                    }
                ],
            )
        ],
        "ContentType must be one of",
        "28",
    ),
    (
        "fixed-response body too long",
        [
            rule(
                "29",
                [path("/a")],
                [
                    {
                        "Type": "fixed-response",
                        "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "x" * 1025},
                    }
                ],
            )
        ],
        "longer than 1024",
        "29",
    ),
    (
        "redirect that changes nothing",
        [
            rule(
                "30",
                [path("/a")],
                [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}],
            )
        ],
        "would loop",
        "30",
    ),
    (
        "redirect bad status",
        [
            rule(
                "31",
                [path("/a")],
                [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {"Protocol": "HTTPS", "StatusCode": "HTTP_307"},
                    }
                ],
            )
        ],
        "HTTP_301 or HTTP_302",
        "31",
    ),
    (
        "redirect #{query} in path",
        [
            rule(
                "32",
                [path("/a")],
                [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {"Path": "/x/#{query}", "StatusCode": "HTTP_301"},
                    }
                ],
            )
        ],
        "#{query} is not allowed in the redirect Path",
        "32",
    ),
    (
        "redirect path without slash",
        [
            rule(
                "33",
                [path("/a")],
                [{"Type": "redirect", "RedirectConfig": {"Path": "x", "StatusCode": "HTTP_301"}}],
            )
        ],
        "must start with '/'",
        "33",
    ),
    (
        "two terminal actions",
        [
            rule(
                "34",
                [path("/a")],
                [
                    {"Type": "forward", "TargetGroupName": "web", "Order": 1},
                    {
                        "Type": "fixed-response",
                        "Order": 2,
                        "FixedResponseConfig": {"StatusCode": "200"},
                    },
                ],
            )
        ],
        "exactly one of forward",
        "34",
    ),
    (
        "no conditions",
        [
            {
                "Priority": "35",
                "Conditions": [],
                "Actions": [{"Type": "forward", "TargetGroupName": "web"}],
            }
        ],
        "at least one condition",
        "35",
    ),
    ("unknown rule key", [{**rule("36", [path("/a")]), "Bogus": 1}], "unknown key 'Bogus'", "36"),
]


@pytest.mark.parametrize(
    ("rules", "fragment", "label"), [c[1:] for c in RULE_ERRORS], ids=[c[0] for c in RULE_ERRORS]
)
def test_rule_limits_raise_aws_like_errors_naming_the_rule(
    rules: list, fragment: str, label: str
) -> None:
    with pytest.raises(RuleError) as info:
        parse_config(alb_config(copy.deepcopy(rules)))
    assert info.value.rule == label
    assert fragment in str(info.value)
    assert str(info.value).startswith(f"rule {label}")


def test_exactly_at_the_limits_is_fine() -> None:
    conditions = [
        path("/a*", "/b*", "/c*"),
        {
            "Field": "host-header",
            "HostHeaderConfig": {"Values": ["*.example.com", "?.example.org"]},
        },
    ]  # 5 values, 5 wildcards, 3 per condition
    parse_config(alb_config([rule("50000", conditions), rule("1", [path("/x")])]))


def test_https_to_http_redirect_is_forbidden() -> None:
    data = alb_config(
        [
            rule(
                "5",
                [path("/a")],
                [
                    {
                        "Type": "redirect",
                        "RedirectConfig": {
                            "Protocol": "HTTP",
                            "Host": "other.example.com",
                            "StatusCode": "HTTP_302",
                        },
                    }
                ],
            )
        ]
    )
    data["Listeners"][0]["Protocol"] = "HTTPS"
    data["Listeners"][0]["Port"] = 443
    with pytest.raises(RuleError, match="cannot redirect HTTPS to HTTP"):
        parse_config(data)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(Type="classic"), "'Type' must be"),
        (lambda d: d["TargetGroups"][0].update(Targets=["192.0.2.11"]), "ip:port"),
        (
            lambda d: d["TargetGroups"][0].update(Algorithm="fastest"),
            "load_balancing.algorithm.type",
        ),
        (lambda d: d["TargetGroups"][0].update(Bogus=1), "unknown field 'Bogus'"),
        (
            lambda d: d["Listeners"][0].update(Protocol="TCP"),
            "listener protocol is one of HTTP, HTTPS",
        ),
        (lambda d: d["Listeners"][0].pop("DefaultActions"), "needs DefaultActions"),
        (
            lambda d: d["Listeners"].append(copy.deepcopy(d["Listeners"][0])),
            "two listeners use TCP port 80",
        ),
        (
            lambda d: d.update(Attributes={"routing.http.desync_mitigation_mode": "paranoid"}),
            "desync_mitigation_mode",
        ),
    ],
)
def test_config_errors(mutate, fragment: str) -> None:
    data = alb_config()
    mutate(data)
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(data)
    assert fragment in str(info.value)


def test_nlb_attributes_and_defaults() -> None:
    config = parse_config(
        nlb_config(
            Attributes=[{"Key": "proxy_protocol_v2.enabled", "Value": "true"}],
            listener={"Attributes": {"tcp.idle_timeout.seconds": "60"}},
        )
    )
    group = config.group("tcp-80")
    assert group.proxy_protocol_v2 is True
    assert group.preserve_client_ip is False  # AWS default for IP targets over TCP
    assert config.listeners[0].idle_timeout == 60
    with pytest.raises(ConfigError, match="between 60 and 6000"):
        parse_config(nlb_config(listener={"Attributes": {"tcp.idle_timeout.seconds": "30"}}))
    udp = nlb_config()
    udp["TargetGroups"][0]["Protocol"] = "UDP"
    udp["Listeners"][0]["Protocol"] = "UDP"
    assert parse_config(udp).group("tcp-80").preserve_client_ip is True  # always on for UDP


def test_default_config_from_servers() -> None:
    # Only what the capture shows: the one server the clients reached, nothing invented ...
    one = default_config("network", [("203.0.113.20", 80, "tcp")])
    assert one.group("tcp-80").targets == ("203.0.113.20:80",)
    # ... or, when the capture holds the balancer's back side, the targets it connected to
    # (an ALB listening on 443 talks to its targets on 80).
    behind = default_config(
        "application",
        [("203.0.113.10", 80, "tcp"), ("203.0.113.10", 443, "tcp")],
        [("192.0.2.11", 80, "tcp"), ("192.0.2.12", 80, "tcp")],
    )
    assert {g.name: g.targets for g in behind.target_groups} == {
        "tcp-80": ("192.0.2.11:80", "192.0.2.12:80"),
        "tcp-443": ("192.0.2.11:80", "192.0.2.12:80"),
    }
    with pytest.raises(ConfigError, match="no server"):
        default_config("application", [("192.0.2.53", 53, "udp")])
    many = default_config(
        "application",
        [("192.0.2.21", 80, "tcp"), ("192.0.2.22", 80, "tcp"), ("192.0.2.53", 53, "udp")],
    )
    assert many.group("tcp-80").targets == ("192.0.2.21:80", "192.0.2.22:80")
    assert [listener.port for listener in many.listeners] == [80]  # an ALB has no UDP


def test_counterpart_keeps_targets_and_drops_rules() -> None:
    alb = parse_config(alb_config([rule("10", [path("/api/*")])]))
    nlb = counterpart(alb)
    assert nlb.is_network and nlb.listeners[0].protocol == "TCP" and nlb.listeners[0].rules == ()
    assert nlb.listeners[0].default_action.target_groups[0].name == "web"
    assert {g.name: g.targets for g in nlb.target_groups} == {
        g.name: g.targets for g in alb.target_groups
    }
    assert counterpart(nlb).listeners[0].protocol == "HTTP"


def test_nft_jhash_table_options() -> None:
    group = parse_config(nlb_config(HashTable="nft-jhash", HashSeed="0x05115eed")).group("tcp-80")
    assert (group.table, group.hash_seed) == ("nft-jhash", 0x05115EED)
    with pytest.raises(ConfigError, match="hashes the 4-tuple"):
        parse_config(nlb_config(HashTable="nft-jhash", Hash="source-ip"))
    with pytest.raises(ConfigError, match="HashSeed must be an integer"):
        parse_config(nlb_config(HashTable="nft-jhash", HashSeed="seed"))

"""Configs as teams keep them (osilab.balancers.config.formats and its readers).

The fixtures under ``configs/`` are written by hand from the lab's ALB table
(``osilab/lab/configs.py``: ALB_RULES, ALB_TARGET_GROUPS): the same six rules and seven
target groups as AWS CLI output, as Terraform and as CloudFormation. Each must become
the very BalancerConfig that the lab's own osilab JSON gives, so each routes the
bundled alb capture exactly as the osilab JSON does.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from osilab.balancers.config import parse_config
from osilab.balancers.config.formats import convert_configs, detect_kind, load_configs
from osilab.cli import main
from osilab.commands.config import EXAMPLES
from osilab.errors import ConfigError
from osilab.lab.configs import ALB_TARGET_GROUPS, aws_alb_config
from osilab.lab.record import alb_targets

CONFIGS = Path(__file__).parent / "configs"
AWS_CLI = sorted((CONFIGS / "aws-cli").glob("*.json"))
TERRAFORM = sorted((CONFIGS / "terraform").glob("*.tf"))
CLOUDFORMATION = sorted((CONFIGS / "cloudformation").glob("*"))

#: The lab's ALB targets behind captures/alb: the instances' primary addresses and their
#: secondary ones (topology.json: web1, web2), by target name.
LAB_TARGETS = {name: f"{ip}:80" for name, ip in alb_targets().items()}


def lab_config():
    """The osilab JSON the lab renders for captures/alb (HTTP :80 and HTTPS :443)."""
    return parse_config(aws_alb_config(LAB_TARGETS, 80, 443))


@pytest.mark.parametrize(
    "files", [AWS_CLI, TERRAFORM, CLOUDFORMATION], ids=["aws-cli", "terraform", "cloudformation"]
)
def test_each_format_is_the_labs_alb(files):
    config, warnings = load_configs(files)
    expected = lab_config()
    assert config.name == "lab-alb"
    assert config.type == expected.type
    assert config.target_groups == expected.target_groups
    assert config.listeners == expected.listeners
    assert [r.conditions for r in config.listeners[0].rules] == [
        r.conditions for r in expected.listeners[0].rules
    ]
    assert dataclasses.replace(config, name="") == expected
    assert all(line.startswith("accepted, not modelled: ") for line in warnings)
    assert len(warnings) == len(set(warnings))


def test_every_unmodelled_field_is_named_once_with_a_reason():
    _, warnings = load_configs(AWS_CLI)
    assert (
        "accepted, not modelled: TargetGroup.ProtocolVersion "
        "(the model speaks HTTP/1.1 to targets, as the lab's balancer does)"
    ) in warnings
    assert any(
        line.startswith("accepted, not modelled: Listener.Certificates (") for line in warnings
    )
    assert sum("HealthCheckPath" in line for line in warnings) == 1  # seven groups, one line


def test_converted_json_round_trips(tmp_path):
    data, _ = convert_configs(TERRAFORM)
    path = tmp_path / "lab-alb.json"
    path.write_text(json.dumps(data))
    config, warnings = load_configs([path])
    assert dataclasses.replace(config, name="") == lab_config()
    assert warnings == []


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("rules.json", {"Rules": []}, "aws-cli"),
        ("health.json", {"TargetGroupArn": "arn", "TargetHealthDescriptions": []}, "aws-cli"),
        ("lb.json", {"Type": "network", "TargetGroups": [], "Listeners": []}, "osilab"),
        ("stack.yaml", {"Resources": {"A": {"Type": "AWS::EC2::VPC"}}}, "cloudformation"),
        ("main.tf", {}, "terraform"),
    ],
)
def test_detect_kind(name, data, kind):
    assert detect_kind(name, data) == kind


def _health(tmp_path, state):
    group = json.loads((CONFIGS / "aws-cli" / "describe-target-health-tg-web.json").read_text())
    group["TargetHealthDescriptions"][0]["TargetHealth"] = {
        "State": state,
        "Reason": "Target.Timeout",
    }
    path = tmp_path / "describe-target-health-tg-web.json"
    path.write_text(json.dumps(group))
    return [p for p in AWS_CLI if p.name != path.name] + [path]


def test_unhealthy_target_is_out_from_the_start(tmp_path):
    config, warnings = load_configs(_health(tmp_path, "unhealthy"))
    web = config.group("tg-web")
    assert [(c.time, c.target, c.state) for c in web.health_changes] == [
        (0.0, "192.0.2.11:80", "unhealthy")
    ]
    assert any("TargetHealth.Reason" in line for line in warnings)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


TF_LB = 'resource "aws_lb" "a" {\n  name = "a"\n}\n'
TF_GROUP = 'resource "aws_lb_target_group" "web" {\n  name = "web"\n  port = 80\n}\n'
TF_LISTENER = (
    'resource "aws_lb_listener" "l" {\n  load_balancer_arn = aws_lb.a.arn\n  port = 80\n'
    '  default_action {\n    type = "forward"\n    target_group_arn = aws_lb_target_group.%s.arn\n  }\n}\n'
)

ERRORS = [
    # (files: name -> text, --name, words the message must hold)
    ({"m.tf": 'module "net" {\n  source = "./net"\n}\n'}, None, ['module "net"', "m.tf"]),
    (
        {"c.tf": TF_GROUP.replace("port = 80", "port = 80\n  count = 2")},
        None,
        ["aws_lb_target_group.web", "'count'", "c.tf"],
    ),
    (
        {"f.tf": TF_GROUP.replace("port = 80", 'port = 80\n  for_each = toset(["a"])')},
        None,
        ["for_each", "aws_lb_target_group.web"],
    ),
    (
        {
            "d.tf": TF_LB
            + TF_GROUP
            + TF_LISTENER.replace(
                "  default_action",
                '  dynamic "x" {\n    for_each = []\n    content {}\n  }\n  default_action',
            )
            % "web"
        },
        None,
        ["'dynamic'", "aws_lb_listener.l"],
    ),
    (
        {"r.tf": TF_LB + TF_GROUP + TF_LISTENER % "api"},
        None,
        ["aws_lb_target_group.api", "no resource", "r.tf"],
    ),
    (
        {"v.tf": TF_GROUP.replace("port = 80", "port = var.port")},
        None,
        ["var.port", "not declared"],
    ),
    (
        {
            "stack.yaml": "Resources:\n  L:\n    Type: AWS::ElasticLoadBalancingV2::Listener\n"
            "    Properties:\n      LoadBalancerArn: !Ref Missing\n"
        },
        None,
        ["Ref Missing", "L (AWS::ElasticLoadBalancingV2::Listener)", "stack.yaml"],
    ),
    (
        {
            "stack.yaml": "Resources:\n  G:\n    Type: AWS::ElasticLoadBalancingV2::TargetGroup\n"
            "    Properties:\n      Name: !ImportValue shared-name\n"
        },
        None,
        ["Fn::ImportValue", "G (AWS::ElasticLoadBalancingV2::TargetGroup)"],
    ),
    (
        {
            "rules.json": json.dumps(
                {
                    "Rules": [
                        {
                            "RuleArn": "arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/x/1/2/3",
                            "Priority": "1",
                            "Conditions": [],
                            "Actions": [],
                        }
                    ]
                }
            )
        },
        None,
        ["rules.json: Rules[0]", "ListenerArn", "names no listener"],
    ),
    (
        {
            "health.json": json.dumps(
                {"TargetHealthDescriptions": [{"Target": {"Id": "192.0.2.11"}}]}
            )
        },
        None,
        ["health.json", "TargetGroupArn"],
    ),
    ({"x.json": json.dumps({"Foo": 1})}, None, ["x.json", "Foo", "not a balancer configuration"]),
]


@pytest.mark.parametrize(
    ("files", "name", "words"), ERRORS, ids=[str(i) for i in range(len(ERRORS))]
)
def test_errors_name_the_file_the_resource_and_the_field(tmp_path, files, name, words):
    paths = [_write(tmp_path, file, text) for file, text in files.items()]
    with pytest.raises(ConfigError) as caught:
        load_configs(paths, name=name)
    for word in words:
        assert word in str(caught.value)


def test_dangling_target_group_arn_in_cli_output(tmp_path):
    files = [p for p in AWS_CLI if not p.name.startswith("describe-target-")]
    with pytest.raises(
        ConfigError,
        match=r"describe-rules-80.json: Rules\[0\] \(rule 1\): Actions: TargetGroupArn .*tg-admin.* names no target group",
    ):
        load_configs(files)


def test_instance_without_address_asks_for_describe_instances():
    files = [p for p in AWS_CLI if p.name != "describe-instances.json"]
    with pytest.raises(
        ConfigError, match=r"i-0f76fade0c0ffee0\d has no private address.*describe-instances"
    ):
        load_configs(files)


def test_several_balancers_need_a_name_and_the_error_lists_them(tmp_path):
    second = _write(
        tmp_path,
        "other.tf",
        TF_LB.replace('"a"', '"other"', 2)
        + TF_GROUP.replace("web", "w2")
        + TF_LISTENER.replace("aws_lb.a", "aws_lb.other").replace('"l"', '"l2"') % "w2",
    )
    with pytest.raises(
        ConfigError, match=r"2 load balancers \(lab-alb, other\); choose one with --name"
    ):
        load_configs([*TERRAFORM, second])
    with pytest.raises(
        ConfigError, match=r"no load balancer named 'nope'.*\(load balancers: lab-alb, other\)"
    ):
        load_configs([*TERRAFORM, second], name="nope")
    config, _ = load_configs([*TERRAFORM, second], name="other")
    assert [g.name for g in config.target_groups] == ["w2"]


def test_a_rule_error_names_the_rule_and_its_resource(tmp_path):
    text = (
        (CONFIGS / "terraform" / "rules.tf")
        .read_text()
        .replace('values = ["/api/*"]', 'values = ["/api/<x>"]', 1)
    )
    rules = _write(tmp_path, "rules.tf", text)
    files = [p for p in TERRAFORM if p.name != "rules.tf"] + [rules]
    with pytest.raises(ConfigError) as caught:
        load_configs(files)
    message = str(caught.value)
    assert "rules.tf: aws_lb_listener_rule.http_api" in message and "rule 6" in message


def test_cloudformation_json_long_form(tmp_path):
    template = {
        "Resources": {
            "Lb": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Name": "j", "Type": "network"},
            },
            "Group": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {
                    "Name": {"Fn::Sub": "tg-${Lb.LoadBalancerName}"},
                    "Protocol": "TCP",
                    "Port": 80,
                    "Targets": [{"Id": "192.0.2.11"}, {"Id": "192.0.2.12", "Port": 8080}],
                },
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": {"Fn::GetAtt": ["Lb", "LoadBalancerArn"]},
                    "Port": 80,
                    "Protocol": "TCP",
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "Group"}}],
                },
            },
        }
    }
    config, _ = load_configs([_write(tmp_path, "stack.json", json.dumps(template))], lb="nlb")
    assert config.is_network
    assert config.group("tg-j").targets == ("192.0.2.11:80", "192.0.2.12:8080")


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_config_example_is_valid(tmp_path, capsys, kind):
    assert main(["config", "example", kind]) == 0
    text = capsys.readouterr().out
    assert "#" in text  # commented
    config, warnings = load_configs([_write(tmp_path, f"{kind}.yaml", text)])
    assert config.type == ("network" if kind == "nlb" else "application")
    assert warnings == []


def test_config_check_prints_rules_in_priority_order(capsys):
    assert main(["config", "check", *map(str, AWS_CLI)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    http_rules = [line.split()[1] for line in lines if line.startswith("HTTP:80 ")]
    assert http_rules == ["1", "2", "3", "4", "5", "6", "default"]
    api = ", ".join(LAB_TARGETS[name] for name in ALB_TARGET_GROUPS["tg-api"])
    assert any(line.startswith("tg-api ") and api in line for line in lines)
    assert "accepted, not modelled: TargetGroup.ProtocolVersion" in captured.err


def test_config_convert_prints_osilab_json(capsys):
    assert main(["config", "convert", *map(str, CLOUDFORMATION), "--to", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert dataclasses.replace(parse_config(data), name="") == lab_config()


def test_config_check_error_is_one_line(tmp_path, capsys):
    path = _write(tmp_path, "m.tf", 'module "net" {\n  source = "./net"\n}\n')
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("osilab: error: ") and 'module "net"' in err and len(err.splitlines()) == 1
    )

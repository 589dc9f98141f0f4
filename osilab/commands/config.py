"""``osilab config``: write, check and convert balancer configurations.

* ``osilab config example alb|nlb`` prints a commented, valid configuration (osilab
  YAML, the AWS API's field names) to start from;
* ``osilab config check FILE...`` reads the files (osilab JSON/YAML, ``aws elbv2
  describe-*`` output, Terraform, CloudFormation), checks them as AWS would, and prints
  the listeners, the rules in the order the balancer evaluates them, and the target
  groups;
* ``osilab config convert FILE... --to json`` prints the merged osilab JSON, the file
  ``osilab route --config`` reads fastest and a learner can edit.

Warnings (``accepted, not modelled: FIELD (why)``) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from osilab.balancers.config import BalancerConfig, Condition
from osilab.balancers.config.formats import convert_configs, load_configs
from osilab.commands._output import print_table

__all__ = ["HELP", "EXAMPLE", "ACTION_EXAMPLES", "EXAMPLES", "add_arguments", "run"]

HELP = (
    "write, check and convert balancer configs (osilab, AWS CLI output, Terraform, CloudFormation)"
)
EXAMPLE = (
    "osilab config check tests/balancers/configs/aws-cli/*.json"
)
#: Each action's own example, shown by ``osilab config ACTION --help`` (and run by the tests).
ACTION_EXAMPLES: dict[str, str] = {
    "example": "osilab config example alb > alb.yaml",
    "check": EXAMPLE,
    "convert": "osilab config convert tests/balancers/configs/terraform/*.tf --to json",
}

_ALB_EXAMPLE = """\
# An Application Load Balancer (layer 7) in osilab's shape: the AWS API's field names.
# Check it with:  osilab config check alb.yaml
# Use it with:    osilab route CAPTURE --lb alb --config alb.yaml
Type: application
Name: example-alb
TargetGroups:
  # Where a forward action sends requests; round robin starts at the first target.
  - Name: tg-web
    Protocol: HTTP
    Port: 80
    Targets: ["192.0.2.11:80", "192.0.2.12:80"]
    Algorithm: round_robin
  - Name: tg-api
    Protocol: HTTP
    Port: 80
    Targets: ["192.0.2.13:80"]
Listeners:
  - Protocol: HTTP
    Port: 80
    # The default rule: runs when no rule matches.
    DefaultActions:
      - {Type: forward, TargetGroupName: tg-web}
    # Rules exactly as 'aws elbv2 describe-rules' prints them; the lowest Priority is
    # tried first and the first rule whose conditions all match wins.
    Rules:
      - Priority: "10"
        Conditions:
          - Field: path-pattern          # the path only, never the query string
            PathPatternConfig: {Values: ["/api/*"]}
        Actions:
          - {Type: forward, TargetGroupName: tg-api}
      - Priority: "20"
        Conditions:
          - Field: host-header           # case-insensitive, * and ? wildcards
            HostHeaderConfig: {Values: ["admin.example.com"]}
        Actions:
          - Type: fixed-response
            FixedResponseConfig: {StatusCode: "403", ContentType: text/plain, MessageBody: "no"}
"""

_NLB_EXAMPLE = """\
# A Network Load Balancer (layer 4) in osilab's shape: no rules, it never reads HTTP.
# Check it with:  osilab config check nlb.yaml
# Use it with:    osilab route CAPTURE --lb nlb --config nlb.yaml
Type: network
Name: example-nlb
TargetGroups:
  # Each new flow is hashed (5-tuple) into a Maglev table of these targets.
  - Name: tg-tcp
    Protocol: TCP
    Port: 80
    Targets: ["192.0.2.11:80", "192.0.2.12:80"]
Listeners:
  # A listener matches protocol and port only, and forwards every flow.
  - Protocol: TCP
    Port: 80
    DefaultActions:
      - {Type: forward, TargetGroupName: tg-tcp}
"""

#: ``osilab config example KIND`` -> its text.
EXAMPLES: dict[str, str] = {"alb": _ALB_EXAMPLE, "nlb": _NLB_EXAMPLE}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    example = actions.add_parser("example", help="print a commented, valid config",
                                 **_with_example("example"))  # fmt: skip
    example.add_argument("kind", choices=tuple(EXAMPLES), help="which balancer")
    for name, help_text in (
        ("check", "check the files and print listeners, rules and target groups"),
        ("convert", "print the merged config as osilab JSON"),
    ):
        action = actions.add_parser(name, help=help_text, **_with_example(name))
        action.add_argument(
            "files",
            nargs="+",
            metavar="FILE",
            help="osilab JSON/YAML, aws elbv2 describe-* output, .tf, or a template",
        )
        action.add_argument(
            "--name", help="the load balancer to use when the files describe several"
        )
        if name == "convert":
            action.add_argument("--to", choices=("json",), default="json", help="output format")


def _with_example(action: str) -> dict[str, Any]:
    """The sub-parser options that print ``action``'s example under its ``--help``."""
    return {"epilog": f"example:\n  {ACTION_EXAMPLES[action]}",
            "formatter_class": argparse.RawDescriptionHelpFormatter}  # fmt: skip


def _condition_text(condition: Condition) -> str:
    if condition.field == "query-string":
        values = [f"{pair.key or '*'}={pair.value}" for pair in condition.query]
    elif condition.header_name:
        values = [f"{condition.header_name}: {value}" for value in condition.values]
    else:
        values = list(condition.values)
    return f"{condition.field} {' | '.join(values)}"


def _action_text(action_type: str, groups: tuple[str, ...]) -> str:
    return f"forward {', '.join(groups)}" if action_type == "forward" else action_type


def _show(config: BalancerConfig) -> None:
    print(f"{config.name or 'balancer'}: {config.type} load balancer")
    rows = []
    for listener in config.listeners:
        where = f"{listener.protocol}:{listener.port}"
        for rule in listener.rules:
            groups = tuple(entry.name for entry in rule.action.target_groups)
            rows.append(
                [
                    where,
                    rule.label,
                    " AND ".join(map(_condition_text, rule.conditions)),
                    _action_text(rule.action.type, groups),
                ]
            )
        default = listener.default_action
        groups = tuple(entry.name for entry in default.target_groups)
        rows.append([where, "default", "(no rule matched)", _action_text(default.type, groups)])
    print()
    print_table(["listener", "priority", "conditions", "action"], rows)
    print()
    print_table(
        ["target group", "protocol", "port", "targets"],
        [
            [g.name, g.protocol, g.port, ", ".join(g.targets) or "(none)"]
            for g in config.target_groups
        ],
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "example":
        sys.stdout.write(EXAMPLES[args.kind])
        return 0
    if args.action == "convert":
        data, warnings = convert_configs(args.files, name=args.name)
        for line in warnings:
            print(f"osilab: {line}", file=sys.stderr)
        print(json.dumps(data, indent=2))
        return 0
    config, warnings = load_configs(args.files, name=args.name)
    for line in warnings:
        print(f"osilab: {line}", file=sys.stderr)
    _show(config)
    return 0

"""``osilab route``: replay a capture through an NLB or ALB model and show every decision.

Without ``--config`` the balancer is the default of
:func:`osilab.balancers.config.default_config`: one listener per server port seen in the
capture (the destination of each client SYN), forwarding to a target group of the
server IPs seen on that port when there are two or more, else of three documentation
targets 192.0.2.11-13; ALB round robin, NLB 5-tuple hash into a Maglev table.
A configuration of the other type is converted (:func:`osilab.balancers.config.counterpart`).

Each decision names its ``hop``: the capture interface its flow was seen on (the models'
flow keys carry it; the name is added here, where decisions are written). The table shows
a hop column when the capture has several interfaces.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, replay
from osilab.balancers.compare import servers_seen
from osilab.balancers.config import BalancerConfig, counterpart, default_config, load_config
from osilab.balancers.decision import Decision
from osilab.capture import Capture
from osilab.commands._capture import capture_arguments, many_hops, open_capture, report_errors
from osilab.commands._output import jsonl_writer, print_hop_table

HELP = "replay a capture through an AWS NLB (L4) or ALB (L7) model: one line per decision"
EXAMPLE = "osilab route captures/alb/alb.pcapng --lb alb --config lb.json --json"


NO_REQUESTS_NOTE = (
    "osilab: note: no HTTP request was found, so the ALB had nothing to decide on "
    "(an ALB sees requests only after TLS is decrypted: give HTTPS captures their --keylog)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser)
    parser.add_argument("--lb", choices=("nlb", "alb"), required=True, help="which balancer model")
    parser.add_argument(
        "--config",
        metavar="LB.json",
        help="AWS-shaped balancer configuration (JSON or YAML); default: one listener per "
        "server port seen, forwarding to the server IPs seen there (2 or more) or to "
        "192.0.2.11-13",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per decision")
    parser.add_argument("--keylog", metavar="FILE", help="NSS key log to decrypt TLS (ALB)")
    parser.add_argument("--why", action="store_true", help="print each decision's full explanation")


def balancer_config(path: str | None, kind: str, capture_path: str) -> BalancerConfig:
    """The configuration for ``kind`` ("nlb"/"alb"): from the file, converted if needed, or the default."""
    lb_type = "network" if kind == "nlb" else "application"
    if path is None:
        capture = open_capture(capture_path)
        return default_config(lb_type, servers_seen(capture))
    config = load_config(path)
    if config.type != lb_type:
        print(
            f"osilab: note: {path} describes a {config.type} load balancer; using its "
            f"{lb_type} counterpart (same targets, no rules)",
            file=sys.stderr,
        )
        config = counterpart(config)
    return config


def decision_json(decision: Decision, capture: Capture) -> dict[str, Any]:
    """One ``osilab route --json`` object: the decision's keys, plus the ``hop`` it was on."""
    return {**decision.to_json(), "hop": capture.hop_name(decision.flow.interface)}


def run(args: argparse.Namespace) -> int:
    config = balancer_config(args.config, args.lb, args.file)
    if args.json:
        # Streaming: each decision is written as it is made and none is kept, so the
        # output of a capture of any size takes constant memory.
        balancer: NetworkLoadBalancer | ApplicationLoadBalancer = (
            NetworkLoadBalancer(config, keep_decisions=0)
            if args.lb == "nlb"
            else ApplicationLoadBalancer(config, keep_decisions=0)
        )
        capture = open_capture(args.file, progress=not args.quiet)
        write = jsonl_writer()
        result = replay(capture, balancer, keylog=args.keylog,
                        on_decision=lambda d: write(decision_json(d, capture)))  # fmt: skip
    else:
        balancer = NetworkLoadBalancer(config) if args.lb == "nlb" else ApplicationLoadBalancer(config)
        capture = open_capture(args.file, progress=not args.quiet)
        result = replay(capture, balancer, keylog=args.keylog)
        rows = []
        for d in result.decisions:
            where = d.target or (f"{d.action} {d.status}" if d.status else d.action)
            hop = capture.hop_name(d.flow.interface)
            rows.append(
                (hop, d.decided_at, str(d.flow), d.request_label or "(flow)", where, ", ".join(d.seen))
            )
        print_hop_table(
            ("decided at", "flow", "request", "target", "seen"), rows, lambda: many_hops(capture)
        )
        if args.why:
            for d in result.decisions:
                print(f"\npacket {d.decided_at}: {d.why}")
        print()
        print(result.summary())
        if result.dropped:
            print(f"(the table shows the first {len(result.decisions)} decisions; --json writes "
                  "every one of them)")  # fmt: skip
        counts = result.decisions.counts()
        print(
            "per target: "
            + ", ".join(f"{t} {n}" for t, n in counts.items())
            + f"; imbalance (max/mean) {result.decisions.imbalance():.2f}"
        )
    if args.lb == "alb" and result.total == 0:
        print(NO_REQUESTS_NOTE, file=sys.stderr)
    return report_errors(capture)

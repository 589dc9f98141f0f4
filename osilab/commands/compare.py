"""``osilab compare``: the NLB and the ALB models side by side on one capture.

One row per HTTP request: where the NLB sent it and at which packet it decided (the
connection's SYN), where the ALB sent it and at which packet (the one completing the
request's headers), and how many packets and milliseconds the ALB had to wait after
the SYN. Then per-target counts, the imbalance (max / mean) of each model and the
requests per connection (keep-alive).

``--config`` may describe either balancer; the other one gets the same targets
(:func:`osilab.balancers.config.counterpart`). ``--alb-config`` and ``--nlb-config`` give
each side its own files (each repeatable, any format ``osilab route --help`` lists).
Without any, each side uses the config the lab wrote beside the capture (the other
side's counterpart when the lab wrote only one), else the default built from the capture.
Only the hop where clients reach a balancer is compared (``--hop``/``--interface``
choose another; see ``osilab route --help``).

Each request names its ``hop`` (the capture interface its flow was seen on); the table
shows a hop column when the capture has several interfaces.
"""

from __future__ import annotations

import argparse
import sys

from osilab.balancers.compare import ComparisonRow, compare
from osilab.balancers.config import BalancerConfig, counterpart
from osilab.balancers.config.formats import load_configs
from osilab.balancers.hop import HopChoice
from osilab.capture import Capture
from osilab.commands._capture import (
    capture_arguments,
    json_argument,
    many_hops,
    open_capture,
    report_errors,
)
from osilab.commands._edge import edge_cell, with_edge
from osilab.commands._output import print_hop_table, write_jsonl
from osilab.commands.route import (
    CONFIG_KINDS,
    NO_REQUESTS_NOTE,
    balancer_arguments,
    capture_default,
    configured,
    hop_choice,
    lab_config,
    print_warnings,
)
from osilab.errors import UsageError

HELP = "the NLB (L4) and ALB (L7) models side by side: per request, per target, time to decision"
EXAMPLE = (
    "osilab compare captures/alb/alb.pcapng --keylog captures/alb/keylog.txt "
    "--alb-config captures/alb/alb.config.json"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser)
    parser.add_argument(
        "--config",
        metavar="FILE",
        nargs="+",
        action="extend",
        help=f"configuration of either balancer (the other gets the same targets): {CONFIG_KINDS}. "
        "Default: the lab's configs beside the capture, else one built from the capture",
    )
    parser.add_argument("--alb-config", metavar="FILE", nargs="+", action="extend",
                        help="the ALB's configuration (repeatable, any format of --config)")
    parser.add_argument("--nlb-config", metavar="FILE", nargs="+", action="extend",
                        help="the NLB's configuration (repeatable, any format of --config)")
    parser.add_argument(
        "--with",
        dest="with_",
        choices=("cdn",),
        help="also put a CloudFront edge beside them (cdn: its cache status and origin)",
    )
    parser.add_argument(
        "--cdn-config",
        metavar="DIST.json",
        nargs=1,
        help="the edge's distribution config (default: cdn.config.json beside the capture)",
    )
    balancer_arguments(parser)
    json_argument(parser, "request")


def both_configs(
    args: argparse.Namespace, capture: Capture, choice: HopChoice
) -> tuple[BalancerConfig, BalancerConfig, list[str]] | None:
    """``(nlb, alb, warnings)``: the files given, else the lab's, else the capture's default
    (``None``: the capture gives nothing to build one from)."""
    sides: dict[str, BalancerConfig] = {}
    warnings: list[str] = []
    for lb, paths in (("nlb", args.nlb_config), ("alb", args.alb_config)):
        if paths:
            sides[lb], found = configured(paths, lb, name=args.name)
            warnings += found
    if args.config:
        config, found = load_configs(args.config, name=args.name)  # either type
        lb = "nlb" if config.is_network else "alb"
        if lb in sides:
            raise UsageError(f"--config and --{lb}-config both describe the {lb.upper()}")
        sides[lb] = config
        warnings += found
    if not sides:
        for lb in ("nlb", "alb"):
            beside = lab_config(capture, lb)
            if beside is not None:
                sides[lb] = beside[0]
                warnings += beside[1]
    if not sides:
        default = capture_default(capture, "alb", choice)
        if default is None:
            return None
        sides["alb"] = default
    nlb = sides.get("nlb") or counterpart(sides["alb"])
    alb = sides.get("alb") or counterpart(sides["nlb"])
    return nlb, alb, warnings


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    # compare lists HTTP requests: the hop where clients reach the ALB, when there is one
    choice = hop_choice(capture, "alb", args)
    configs = both_configs(args, capture, choice)
    if configs is None:
        return report_errors(capture)
    nlb_config, alb_config, warnings = configs
    print_warnings(warnings)
    result = compare(capture, nlb_config, alb_config=alb_config, keylog=args.keylog,
                     interface=choice.interface, warnings=warnings)  # fmt: skip
    edge = with_edge(args, capture, choice)

    def edge_of(row: ComparisonRow) -> dict[str, dict[str, object] | None]:
        key = (str(row.request.flow), row.request.index)
        return {} if edge is None else {"cdn": edge.get(key)}

    if args.json:
        write_jsonl(
            {**row.to_json(), "hop": capture.hop_name(row.request.flow.interface, row.request.flow.tunnel), **edge_of(row)}
            for row in result.rows
        )
        return report_errors(capture)
    rows = []
    for row in result.rows:
        after = (
            ""
            if row.alb_packets_after_syn is None
            else (f"+{row.alb_packets_after_syn} pkts / {row.alb_ms_after_syn:.1f} ms")
        )
        rows.append(
            (
                capture.hop_name(row.request.flow.interface, row.request.flow.tunnel),
                f"{row.request.method} {row.request.target}",
                str(row.request.flow),
                row.nlb_target or "-",
                row.nlb_decided_at or "-",
                row.alb_target or row.alb_action,
                row.alb_decided_at,
                after,
            )
            + ((edge_cell(edge_of(row)["cdn"]),) if edge is not None else ())
        )
    print_hop_table(
        ("request", "flow", "NLB target", "NLB at", "ALB target", "ALB at", "ALB after SYN")
        + (("edge (cdn)",) if edge is not None else ()),
        rows,
        lambda: many_hops(capture),
    )
    print()
    for line in result.summary_lines():
        print(line)
    if not result.rows:
        print(NO_REQUESTS_NOTE, file=sys.stderr)
    return report_errors(capture)

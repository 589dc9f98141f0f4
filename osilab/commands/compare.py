"""``osilab compare``: the NLB and the ALB models side by side on one capture.

One row per HTTP request: where the NLB sent it and at which packet it decided (the
connection's SYN), where the ALB sent it and at which packet (the one completing the
request's headers), and how many packets and milliseconds the ALB had to wait after
the SYN. Then per-target counts, the imbalance (max / mean) of each model and the
requests per connection (keep-alive).

``--config`` may describe either balancer; the other one gets the same targets
(:func:`osilab.balancers.config.counterpart`). Without it, both use the default of
:func:`osilab.balancers.config.default_config` (see ``osilab route --help``).

Each request names its ``hop`` (the capture interface its flow was seen on); the table
shows a hop column when the capture has several interfaces.
"""

from __future__ import annotations

import argparse
import sys

from osilab.balancers.compare import compare, configs_for, servers_seen
from osilab.commands._capture import capture_arguments, many_hops, open_capture, report_errors
from osilab.commands._output import print_hop_table, write_jsonl
from osilab.commands.route import NO_REQUESTS_NOTE

HELP = "the NLB (L4) and ALB (L7) models side by side: per request, per target, time to decision"
EXAMPLE = "osilab compare captures/alb/alb.pcapng --config lb.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser)
    parser.add_argument(
        "--config",
        metavar="LB.json",
        help="AWS-shaped configuration of either balancer (the other gets the same "
        "targets); default: see osilab route --help",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per request")
    parser.add_argument("--keylog", metavar="FILE", help="NSS key log to decrypt TLS")


def run(args: argparse.Namespace) -> int:
    if args.config is None:
        nlb_config, alb_config = configs_for(None, servers_seen(open_capture(args.file)))
    else:
        nlb_config, alb_config = configs_for(args.config)
    capture = open_capture(args.file, progress=not args.quiet)
    result = compare(capture, nlb_config, alb_config=alb_config, keylog=args.keylog)
    if args.json:
        write_jsonl(
            {**row.to_json(), "hop": capture.hop_name(row.request.flow.interface)}
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
                capture.hop_name(row.request.flow.interface),
                f"{row.request.method} {row.request.target}",
                str(row.request.flow),
                row.nlb_target or "-",
                row.nlb_decided_at or "-",
                row.alb_target or row.alb_action,
                row.alb_decided_at,
                after,
            )
        )
    print_hop_table(
        ("request", "flow", "NLB target", "NLB at", "ALB target", "ALB at", "ALB after SYN"),
        rows,
        lambda: many_hops(capture),
    )
    print()
    for line in result.summary_lines():
        print(line)
    if not result.rows:
        print(NO_REQUESTS_NOTE, file=sys.stderr)
    return report_errors(capture)

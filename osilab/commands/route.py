"""``osilab route``: replay a capture through an NLB or ALB model and show every decision.

What is replayed, and through which configuration (the same for ``osilab compare``):

- **One hop.** On a capture of several interfaces the balancer sees one of them:
  :func:`osilab.balancers.hop.choose_hop` reads the lab's ``topology.json`` beside the
  capture (the hop where clients reach the balancer); ``--hop NAME`` or
  ``--interface N`` choose another; a foreign multi-interface capture must say which.
- **The configuration.** ``--config`` (repeatable; osilab JSON/YAML, ``aws elbv2
  describe-*`` output, Terraform, CloudFormation: :func:`osilab.balancers.config.formats.load_configs`);
  else the config the lab wrote beside the capture (``alb.config.json``,
  ``nlb.config.json``), said on stderr; else a default built only from what the capture
  shows (:func:`osilab.balancers.config.default_config`), said in one warning line.
  A configuration of the other type is converted (:func:`osilab.balancers.config.counterpart`).
  Fields the model does not use are named once each on stderr and kept in
  ``Replay.warnings``.
- **The key log** is used only when ``--keylog`` names it, even when the lab left one
  beside the capture: what decrypts a capture should be a choice the learner sees.

Each decision names its ``hop``: the capture interface its flow was seen on (the models'
flow keys carry it; the name is added here, where decisions are written). The table shows
a hop column when the capture has several interfaces.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from osilab.balancers import NetworkLoadBalancer, replay
from osilab.balancers.config import BalancerConfig, counterpart, default_config
from osilab.balancers.config.beside import config_beside, topology_beside
from osilab.balancers.config.formats import load_configs
from osilab.balancers.decision import Decision
from osilab.balancers.hop import HopChoice, choose_hop
from osilab.balancers.tables import Marks, decision_row, marked_packets
from osilab.capture import Capture
from osilab.capture import write as write_capture
from osilab.commands._capture import (
    capture_arguments,
    chosen_by_filter,
    many_hops,
    open_capture,
    report_errors,
)
from osilab.commands._output import jsonl_writer, print_hop_table
from osilab.errors import UsageError
from osilab.streams.keys import FlowKey

if TYPE_CHECKING:  # imported by new_balancer, for --lb alb only
    from osilab.balancers.alb import ApplicationLoadBalancer

HELP = "replay a capture through an AWS NLB (L4) or ALB (L7) model: one line per decision"
EXAMPLE = (
    "osilab route captures/alb/alb.pcapng --lb alb --keylog captures/alb/keylog.txt "
    "--config tests/balancers/configs/aws-cli/*.json"
)


NO_REQUESTS_NOTE = (
    "osilab: note: no HTTP request was found, so the ALB had nothing to decide on "
    "(an ALB sees requests only after TLS is decrypted: give HTTPS captures their --keylog)"
)

NO_SERVER_NOTE = (
    "osilab: note: the capture shows no client connecting to a server, so there is no "
    "listener to build and nothing to route (give --config to replay it through a balancer)"
)

#: What ``--config`` accepts, for the help of route and compare.
CONFIG_KINDS = (
    "osilab JSON/YAML, raw 'aws elbv2 describe-*' (and 'aws ec2 describe-instances') "
    "output, a Terraform .tf or a CloudFormation template; repeatable (the files are merged)"
)


#: The balancer models ``--lb`` names (``osilab export --table decisions`` takes the same).
MODELS = ("nlb", "alb", "cdn")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="decision",
                      selects="decisions whose request (NLB: whose decided-at frame) matches; "
                      "the balancer still sees every packet")
    parser.add_argument(
        "--lb",
        choices=MODELS,
        required=True,
        help="which model: an NLB, an ALB, or a CloudFront edge (cdn)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        nargs="+",
        action="extend",
        help=f"the balancer's configuration: {CONFIG_KINDS}. Default: the config the lab "
        "wrote beside the capture (alb.config.json / nlb.config.json / cdn.config.json), "
        "else one built from the capture (listeners = server ports the clients used, "
        "targets = servers it shows; not for cdn)",
    )
    balancer_arguments(parser)
    parser.add_argument("--why", action="store_true", help="print each decision's full explanation")
    parser.add_argument("--write", metavar="OUT.pcapng",
                        help="also write the packets of the flows decided, each decision's why "
                        "as its packet's comment (pcapng; .pcap keeps no comments)")


def balancer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--name``, ``--hop``, ``--interface`` and ``--keylog``: shared by route and compare."""
    parser.add_argument(
        "--name", metavar="NAME", help="the load balancer to use when the files describe several"
    )
    parser.add_argument(
        "--hop",
        metavar="NAME",
        help="replay only this hop (interface name); default: from topology.json beside the "
        "capture, the hop where clients reach the balancer",
    )
    parser.add_argument(
        "--interface",
        metavar="N",
        type=int,
        help="replay only pcapng interface N (from 0); see --hop",
    )
    parser.add_argument(
        "--keylog",
        metavar="FILE",
        help="NSS key log to decrypt TLS (ALB); used only when given, also for lab captures "
        "that have a keylog.txt beside them",
    )


def capture_hops(capture: Capture) -> list[str]:
    """The capture's hop names in interface order (pcapng describes them before the frames)."""
    capture.hop_name(0)  # reads the interfaces described before the first frame
    return [capture.hop_name(i) for i in range(max(1, len(capture.interfaces)))]


def new_balancer(
    lb: str, config: BalancerConfig, **options: Any
) -> NetworkLoadBalancer | ApplicationLoadBalancer:
    """The model ``--lb`` names. The ALB's module (and the HTTP stack under it: streams,
    parsers, TLS) is imported only for ``--lb alb``: an NLB replay starts without it."""
    if lb == "nlb":
        return NetworkLoadBalancer(config, **options)
    from osilab.balancers.alb import ApplicationLoadBalancer

    return ApplicationLoadBalancer(config, **options)


def hop_choice(capture: Capture, lb: str | None, args: argparse.Namespace) -> HopChoice:
    """The hop to replay (:func:`osilab.balancers.hop.choose_hop`), said on stderr when chosen
    from topology.json."""
    hops = capture_hops(capture)
    topology = topology_beside(capture.path)
    try:
        choice = choose_hop(hops, topology, lb, hop=args.hop, interface=args.interface)
    except UsageError as exc:
        raise exc.at(file=capture.path) from None
    if choice.interface is not None and len(hops) > 1 and args.hop is None and args.interface is None:
        print(
            f"osilab: replaying hop {choice.name} (interface {choice.interface}): {choice.reason}; "
            "--hop or --interface chooses another",
            file=sys.stderr,
        )
    return choice


def print_warnings(warnings: list[str]) -> None:
    """Each ``accepted, not modelled`` line once, on stderr."""
    for line in dict.fromkeys(warnings):
        print(f"osilab: {line}", file=sys.stderr)


def configured(
    paths: list[str], lb: str, *, name: str | None = None
) -> tuple[BalancerConfig, list[str]]:
    """The ``lb`` ("nlb"/"alb") config the files describe, converted when of the other type."""
    config, warnings = load_configs(paths, name=name, lb=lb)
    lb_type = "network" if lb == "nlb" else "application"
    if config.type != lb_type:
        print(
            f"osilab: note: {', '.join(paths)} describe a {config.type} load balancer; using "
            f"its {lb_type} counterpart (same targets, no rules)",
            file=sys.stderr,
        )
        config = counterpart(config)
    return config, warnings


def lab_config(capture: Capture, lb: str) -> tuple[BalancerConfig, list[str]] | None:
    """The config the lab wrote beside the capture for ``lb``, said on stderr; ``None``: none."""
    path = config_beside(capture.path, lb)
    if path is None:
        return None
    print(f"osilab: using the lab's config beside the capture: {path}", file=sys.stderr)
    return configured([str(path)], lb)


def capture_default(capture: Capture, lb: str, choice: HopChoice) -> BalancerConfig | None:
    """A config built only from what the capture shows on the chosen hop (one warning line);
    ``None`` (and a note) when it shows no client connecting to a server."""
    from osilab.balancers.compare import servers_by_hop  # reads the streams: only here

    by_hop = servers_by_hop(capture)
    if choice.interface is None:
        servers = [s for hop in by_hop.values() for s in hop]
    else:
        servers = by_hop.get(choice.interface, [])
    if lb == "alb":
        servers = [s for s in servers if s[2] == "tcp"]  # an ALB listens on TCP only
    if not servers:
        print(NO_SERVER_NOTE, file=sys.stderr)
        return None
    targets = [s for hop in choice.back for s in by_hop.get(hop, [])]
    lb_type = "network" if lb == "nlb" else "application"
    config = default_config(lb_type, servers, targets)
    listeners = ", ".join(f"{li.protocol}:{li.port}" for li in config.listeners)
    members = ", ".join(dict.fromkeys(t for g in config.target_groups for t in g.targets))
    side = "the balancer's back side" if targets else "the servers the clients reached"
    print(
        f"osilab: warning: no --config and no lab config beside the capture: a default built "
        f"from the capture (listeners {listeners}; targets, from {side}: {members})",
        file=sys.stderr,
    )
    return config


def balancer_config(
    args: argparse.Namespace, lb: str, capture: Capture, choice: HopChoice
) -> tuple[BalancerConfig | None, list[str]]:
    """The ``lb`` configuration and its warnings: ``--config``, else the lab's, else the
    default (``None``: the capture gives nothing to build one from)."""
    if args.config:
        return configured(args.config, lb, name=args.name)
    return lab_config(capture, lb) or (capture_default(capture, lb, choice), [])


#: One ``osilab route --json`` object: the decision's keys, plus the ``hop`` it was on
#: (the decision table's row, :func:`osilab.balancers.tables.decision_row`).
decision_json = decision_row


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet, keylog=args.keylog)
    choice = hop_choice(capture, args.lb, args)
    if args.lb == "cdn":  # a CloudFront distribution, not an elbv2 config
        from osilab.commands._edge import run_cdn  # the edge model: only for --lb cdn

        return run_cdn(args, capture, choice)
    config, warnings = balancer_config(args, args.lb, capture, choice)
    if config is None:
        return report_errors(capture)
    print_warnings(warnings)
    marks = Marks(args.lb) if getattr(args, "write", None) else None
    chosen = chosen_by_filter(args, capture)
    unread: set[FlowKey] | None = set() if args.lb == "alb" else None  # TLS it could not open
    if args.json:
        # Streaming: each decision is written as it is made and none is kept, so the
        # output of a capture of any size takes constant memory.
        balancer = new_balancer(args.lb, config, keep_decisions=0)
        write = jsonl_writer()

        def on_decision(decision: Decision) -> None:
            if chosen is None or chosen.decision(decision):
                _decided(decision, write, marks, capture)

        result = replay(capture, balancer, keylog=args.keylog, interface=choice.interface,
                        warnings=warnings, on_decision=on_decision, unread_tls=unread)  # fmt: skip
    else:
        balancer = new_balancer(args.lb, config)
        result = replay(capture, balancer, keylog=args.keylog, interface=choice.interface,
                        warnings=warnings, on_decision=marks.add if marks else None,
                        unread_tls=unread)  # fmt: skip
        shown = [d for d in result.decisions if chosen is None or chosen.decision(d)]
        rows = []
        for d in shown:
            where = d.destination
            hop = capture.hop_name(d.flow.interface, d.flow.tunnel)
            rows.append(
                (hop, d.decided_at, str(d.flow), d.request_label or "(flow)", where, ", ".join(d.seen))
            )
        print_hop_table(
            ("decided at", "flow", "request", "target", "seen"), rows, lambda: many_hops(capture)
        )
        if args.why:
            for d in shown:
                print(f"\npacket {d.decided_at}: {d.why}")
        print()
        if chosen is not None:
            print(f"--filter kept {len(shown)} of {len(result.decisions)} decisions; "
                  "the summary below counts them all")
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
    if marks is not None:
        count = write_capture(marked_packets(capture, marks), args.write,
                              interfaces=lambda: capture.interfaces)  # fmt: skip
        print(f"osilab: wrote {count} packets of the decided flows to {args.write} "
              "(each decision's why is the comment of the packet it was made at)", file=sys.stderr)
    return report_errors(capture, unread_tls=unread, keylog=args.keylog)


def _decided(decision: Decision, write: Any, marks: Marks | None, capture: Capture) -> None:
    """``--json``: write the decision's line as it is made (and mark it for ``--write``)."""
    write(decision_json(decision, capture))
    if marks is not None:
        marks.add(decision)

"""``osilab route FILE --lb cdn``: replay the viewers' side of a capture through a CloudFront edge.

The distribution config is ``--config DIST.json`` (``aws cloudfront
get-distribution-config`` output: :mod:`osilab.balancers.config.cloudfront`), else the
one the lab wrote beside the capture (``cdn.config.json``), said on stderr. The hop is
the one where viewers reach the edge (``topology.json``: the host of role ``cdn``), or
``--hop`` / ``--interface``. Each decision keeps ``osilab route``'s keys and adds
``action`` (``cache-hit``, ``forward``, ``redirect``, ``deny``), ``cache``, ``behavior``
and ``origin``; a hit's ``target`` is ``null``: no origin saw the request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from osilab.balancers.cdn import CdnDecision, CloudFrontDistribution
from osilab.balancers.config.beside import config_beside
from osilab.balancers.config.cloudfront import DistributionConfig, load_distribution
from osilab.balancers.decision import KEEP_DECISIONS, Decision
from osilab.balancers.hop import HopChoice
from osilab.balancers.replay import Replay, replay
from osilab.balancers.tables import decision_row
from osilab.capture import Capture
from osilab.commands._capture import chosen_by_filter, many_hops, report_errors
from osilab.commands._output import jsonl_writer, print_hop_table
from osilab.errors import UsageError
from osilab.streams.keys import FlowKey

__all__ = ["distribution", "edge_replay", "run_cdn", "with_edge", "edge_cell"]


def distribution(args: argparse.Namespace, capture: Capture) -> DistributionConfig:
    """``--config``'s distribution, else the lab's ``cdn.config.json`` beside the capture."""
    paths = list(getattr(args, "config", None) or [])
    if len(paths) > 1:
        raise UsageError("--lb cdn reads one distribution config (--config DIST.json)")
    if paths:
        return load_distribution(paths[0])
    beside = config_beside(capture.path, "cdn")
    if beside is None:
        raise UsageError(
            "--lb cdn needs a distribution config: --config DIST.json (the output of "
            "'aws cloudfront get-distribution-config'); the lab writes cdn.config.json beside "
            "its captures",
            file=capture.path,
        )
    print(f"osilab: using the lab's config beside the capture: {beside}", file=sys.stderr)
    return load_distribution(beside)


def edge_replay(
    capture: Capture,
    config: DistributionConfig,
    choice: HopChoice,
    keylog: str | None,
    *,
    keep_decisions: int | None = KEEP_DECISIONS,
    on_decision: Callable[[Decision], object] | None = None,
    unread_tls: set[FlowKey] | None = None,
) -> tuple[CloudFrontDistribution, Replay]:
    """The edge model, fed the chosen hop of ``capture`` (``unread_tls`` collects the TLS
    flows the key log could not open)."""
    edge = CloudFrontDistribution(config, keep_decisions=keep_decisions)
    result = replay(capture, edge, keylog=keylog, interface=choice.interface,
                    on_decision=on_decision, unread_tls=unread_tls)  # fmt: skip
    return edge, result


def run_cdn(args: argparse.Namespace, capture: Capture, choice: HopChoice) -> int:
    """The ``--lb cdn`` branch of ``osilab route``: a table or JSON Lines, and the totals."""
    config = distribution(args, capture)
    chosen = chosen_by_filter(args, capture)
    unread: set[FlowKey] = set()  # the viewer side is HTTPS: without keys it is invisible
    if args.json:
        write = jsonl_writer()

        def on_decision(decision: Decision) -> None:
            if chosen is None or chosen.decision(decision):
                write(decision_row(decision, capture))

        _edge, result = edge_replay(capture, config, choice, args.keylog, keep_decisions=0,
                                    on_decision=on_decision, unread_tls=unread)  # fmt: skip
        return report_errors(capture, unread_tls=unread, keylog=args.keylog)
    _edge, result = edge_replay(capture, config, choice, args.keylog, unread_tls=unread)
    shown = [d for d in result.decisions if chosen is None or chosen.decision(d)]
    rows = []
    for d in shown:
        cache = d.cache if isinstance(d, CdnDecision) else ""
        behavior = d.behavior if isinstance(d, CdnDecision) else ""
        where = d.target or (f"{d.action} {d.status}" if d.status else "(the edge)")
        rows.append((capture.hop_name(d.flow.interface, d.flow.tunnel), d.decided_at, str(d.flow),
                     d.request_label or "", behavior, cache, where))  # fmt: skip
    print_hop_table(("decided at", "flow", "request", "behavior", "cache", "origin"), rows,
                    lambda: many_hops(capture))  # fmt: skip
    if args.why:
        for d in shown:
            print(f"\npacket {d.decided_at}: {d.why}")
    print()
    print(result.summary())
    caches = [d.cache for d in result.decisions if isinstance(d, CdnDecision)]
    print("X-Cache: " + ", ".join(f"{c} {caches.count(c)}" for c in dict.fromkeys(caches)))
    if result.total == 0:
        print("osilab: note: no HTTP request was found; the edge ends TLS, so give HTTPS "
              "captures their --keylog", file=sys.stderr)  # fmt: skip
    return report_errors(capture, unread_tls=unread, keylog=args.keylog)


def with_edge(
    args: argparse.Namespace, capture: Capture, choice: HopChoice
) -> dict[tuple[str, int], dict[str, object]] | None:
    """``compare --with cdn``: the edge's decision for each request, by ``(flow, index)``;
    ``None`` without ``--with cdn``. The distribution is ``--cdn-config``, else the lab's."""
    if getattr(args, "with_", None) != "cdn":
        return None
    paths = getattr(args, "cdn_config", None)
    config = (
        load_distribution(paths[0])
        if paths
        else distribution(argparse.Namespace(config=None), capture)
    )
    _edge, result = edge_replay(capture, config, choice, args.keylog, keep_decisions=None)
    found: dict[tuple[str, int], dict[str, object]] = {}
    for d in result.decisions:
        if isinstance(d, CdnDecision) and d.request is not None:
            found[(str(d.flow), d.request.index)] = {
                "cache": d.cache, "behavior": d.behavior, "origin": d.origin,
                "target": d.target, "action": d.action, "decided_at": d.decided_at,
            }  # fmt: skip
    return found


def edge_cell(edge: dict[str, object] | None) -> str:
    """The compare table's ``edge`` cell: ``Hit`` or ``Miss -> 192.0.2.50:80``."""
    if edge is None:
        return "-"
    target = edge.get("target")
    return f"{edge['cache']} -> {target}" if target else str(edge["cache"])

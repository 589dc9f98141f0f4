"""``osilab flows``: every TCP and UDP flow of a capture, oriented client -> server.

A flow is printed when it ends (closed, reset, idle, or the end of the capture), so the
command runs in constant memory on captures of any size. The table is sorted by flow
index; ``--json`` streams one object per flow as it ends (keys as in design.md, plus
``hop``: the capture interface the flow was seen on). A capture taken on several
interfaces holds one set of flows per interface, and the table then shows a hop column.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from osilab.commands._capture import (
    capture_arguments,
    chosen_by_filter,
    open_capture,
    print_listing,
    report_errors,
)
from osilab.pipeline import matching_flows, track
from osilab.streams import FlowRecord, flows

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run"]

HELP = "list TCP/UDP flows: client, server, packets, bytes, first/last packet, TCP state"
EXAMPLE = "osilab flows ../shared/captures/thirdparty/zeek/http-get.pcap --app   (or --json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="flow", selects="flows with at least one matching frame")
    parser.add_argument(
        "--app",
        action="store_true",
        help="also recognise each flow's application protocol (reassembles and parses: slower)",
    )


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    chosen = chosen_by_filter(args, capture)
    if chosen is not None:
        records: Iterable[FlowRecord] = matching_flows(capture, chosen)
    elif args.app:
        records = (record for step in track(capture) for record in step.ended)
    else:
        records = flows(capture)
    print_listing(
        args,
        capture,
        records,
        as_json=lambda record: {**record.to_json(), "hop": capture.hop_name(record.interface, record.key.tunnel)},
        headers=("#", "proto", "client", "server", "packets", "bytes", "first", "last", "state", "app"),
        cells=lambda r: (
            capture.hop_name(r.interface, r.key.tunnel),
            r.index,
            r.key.proto,
            r.key.client,
            r.key.server,
            f"{r.packets_to_server}/{r.packets_to_client}",
            r.bytes,
            r.first,
            r.last,
            r.state + (" (mid-stream)" if r.midstream else ""),
            r.application or "",
        ),
        unit="flows (packets shown as client->server/server->client)",
        table_order=lambda r: r.index,
    )
    return report_errors(capture)

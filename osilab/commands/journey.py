"""``osilab journey``: follow one request across every hop of a multi-hop lab capture.

With ``--connection CID`` it follows a QUIC connection instead (its datagrams through the
balancer, on each client address it used: connection migration); ``--connections`` lists them.

Prints the events in order (device, direction, how far up it read, what it did); with
``--layers`` every layer in and out with its reason; with ``--json`` one JSON object per
event. ``--html OUT.html`` writes the interactive, self-contained view; with
``--compare OTHER`` it shows the journey beside another one (the same request through
the other balancer).
"""

from __future__ import annotations

import argparse

from osilab.commands._capture import json_argument, keylog_argument
from osilab.commands._output import print_table, write_jsonl
from osilab.errors import UsageError

HELP = "one request's journey through a multi-hop capture, device by device, layer by layer"
EXAMPLE = "osilab journey captures/alb/alb.pcapng --request a0005 --html journey.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", help="a multi-hop lab capture (pcapng with one named interface per hop)"
    )
    parser.add_argument(
        "--request",
        metavar="ID",
        help="the request id (X-Request-Id or ?rid=); "
        "default: the request that crosses the most hops",
    )
    parser.add_argument(
        "--topology", metavar="JSON", help="topology.json (default: the one next to FILE)"
    )
    parser.add_argument(
        "--html", metavar="OUT.html", help="write the interactive view as a standalone HTML file"
    )
    parser.add_argument(
        "--compare",
        metavar="OTHER",
        help="a second capture (e.g. the NLB path): with --html, both journeys side by side",
    )
    parser.add_argument(
        "--compare-request", metavar="ID", help="the request id in OTHER (default: as chosen there)"
    )
    parser.add_argument("--list", action="store_true", help="list the request ids in FILE and stop")
    parser.add_argument(
        "--connection",
        metavar="CID",
        help="follow a QUIC connection instead of a request: one of its connection IDs (hex) "
        "or a client ip:port; its datagrams through the balancer, before and after it migrated",
    )
    parser.add_argument(
        "--connections",
        action="store_true",
        help="list the QUIC connections in FILE (their IDs, client addresses, hops) and stop",
    )
    keylog_argument(parser, "NSS key log, so TLS legs are read too (the viewer's leg to the edge)")
    parser.add_argument(
        "--layers", action="store_true", help="print every layer in and out with its reason"
    )
    json_argument(parser, "event")
    parser.add_argument(
        "--no-models",
        action="store_true",
        help="explain balancers from the capture only, without the balancer models",
    )


def run(args: argparse.Namespace) -> int:
    from osilab.journey import compare, connections, journey, request_ids, save_html

    if args.connections:
        for found in connections(args.file, keylog=args.keylog):
            print(found.summary())
        return 0
    if args.list:
        for rid in request_ids(args.file):
            print(rid)
        return 0
    if args.compare and not args.html:
        raise UsageError("--compare needs --html OUT.html (the comparison is a view)")
    trip = journey(args.file, args.request, topology=args.topology, use_models=not args.no_models,
                   keylog=args.keylog, connection=args.connection)  # fmt: skip
    if args.json:
        write_jsonl(
            {
                key: value
                for key, value in event.to_json().items()
                if key not in ("packet_in", "packet_out")
            }
            | {
                "request_id": trip.request_id,
                "packet_in": event.packet_in.no if event.packet_in else None,
                "packet_out": event.packet_out.no if event.packet_out else None,
            }
            for event in trip.events
        )
    elif args.layers:
        print(trip.text())
    else:
        print(trip.summary())
        print_table(
            ("#", "device", "direction", "reads up to", "from", "to", "packets", "what happens"),
            (
                (
                    event.index + 1,
                    event.device.name,
                    event.direction,
                    f"L{event.stopped_at}" if event.stopped_at else "-",
                    event.came_from or "-",
                    event.goes_to or "-",
                    f"{event.packet_in.no if event.packet_in else '-'}>"
                    f"{event.packet_out.no if event.packet_out else '-'}",
                    event.summary,
                )
                for event in trip.events
            ),
        )
        for note in trip.notes:
            print(f"note: {note}")
    if args.html:
        if args.compare:
            other = journey(args.compare, args.compare_request, use_models=not args.no_models)
            path = save_html(compare(trip, other), args.html)
        else:
            path = save_html(trip, args.html)
        if not args.json:
            print(f"wrote {path}")
    return 0

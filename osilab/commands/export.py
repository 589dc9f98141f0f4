"""``osilab export``: a capture's packets, flows, HTTP requests or balancer decisions as a
table file (Parquet, or Arrow IPC), for pandas, polars, DuckDB and Spark.

Each table's rows are exactly the JSON Lines of one command, typed: ``packets`` are
``osilab layers --json``, ``flows`` are ``osilab flows --json``, ``requests`` are ``osilab
http --json`` and ``decisions`` are ``osilab route --json`` (the same flags: ``--lb``,
``--config``, ``--keylog``). Parquet is the answer when one machine is not enough: export
each capture once, then query them all together::

    duckdb -c "SELECT host, count(*) FROM 'exports/*.parquet' GROUP BY host ORDER BY 2 DESC"

Needs pyarrow: ``pip install 'osilab[tables]'``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from contextlib import redirect_stdout

from osilab.balancers.tables import DECISION_COLUMNS
from osilab.capture.filter import compile_filter
from osilab.capture.tables import FORMATS, Rows, arrow, packet_rows
from osilab.commands import route
from osilab.commands._capture import (
    capture_arguments,
    checked_keylog,
    chosen_by_filter,
    open_capture,
    packets,
    report_errors,
)
from osilab.errors import UsageError
from osilab.pipeline import matching_flows
from osilab.pipeline.tables import request_rows
from osilab.streams.tables import flow_rows

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "TABLES"]

HELP = "write packets, flows, HTTP requests or decisions as a Parquet table (rows = the --json lines)"
EXAMPLE = "osilab export captures/alb/alb.pcapng --table requests --keylog captures/alb/keylog.txt --out alb.parquet"

#: route's flags that choose what is replayed, passed through as given.
_ROUTE_CHOICES = (
    ("--name", "NAME", "the load balancer to use when the files describe several"),
    ("--hop", "NAME", "replay only this hop"),
    ("--interface", "N", "replay only pcapng interface N (from 0)"),
)

#: Table name -> the command whose JSON Lines are its rows.
TABLES = {"packets": "layers", "flows": "flows", "requests": "http", "decisions": "route"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, keylog="NSS key log to decrypt TLS",
                      selects="rows whose frame matches: packets, flows with a matching frame, "
                      "requests and decisions completed in a matching frame")
    parser.add_argument("--table", choices=tuple(TABLES), required=True,
                        help="what one row is: " + ", ".join(f"{t} (= {c} --json)"
                                                            for t, c in TABLES.items()))  # fmt: skip
    parser.add_argument("--out", required=True, metavar="OUT.parquet",
                        help=f"the file to write; format by extension: {', '.join(FORMATS)}")
    parser.add_argument("--lb", choices=route.MODELS,
                        help="decisions: which balancer model (an NLB, an ALB or a CloudFront edge)")
    parser.add_argument("--config", action="append", metavar="LB.json",
                        help="decisions: the balancer's configuration (as for osilab route)")
    for flag, metavar, what in _ROUTE_CHOICES:
        parser.add_argument(flag, metavar=metavar, help=f"decisions: {what} (as for osilab route)")


def _route_rows(args: argparse.Namespace) -> Rows:
    """The decisions ``osilab route --json`` writes for these flags, read back as rows.

    The route command's own code decides (its default configuration, its hop, its
    notes on stderr), so the table cannot drift from its JSON Lines.
    """
    if args.lb is None:
        raise UsageError("--table decisions needs --lb " + ", --lb ".join(route.MODELS)
                         + " (as osilab route does)")
    argv = [args.file, "--lb", args.lb, "--json", "--quiet"]
    for flag, _, _ in _ROUTE_CHOICES:
        value = getattr(args, flag.removeprefix("--"))
        if value is not None:
            argv += [flag, value]
    for config in args.config or ():
        argv += ["--config", config]
    if args.keylog:
        argv += ["--keylog", args.keylog]
    if args.filter is not None:
        argv += ["--filter", args.filter]
    parser = argparse.ArgumentParser(prog="osilab route")
    route.add_arguments(parser)
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = route.run(parser.parse_args(argv))
    if code:
        raise UsageError(f"osilab route could not replay {args.file}")
    lines = buffer.getvalue().splitlines()
    return Rows("decisions", lambda: (json.loads(line) for line in lines), DECISION_COLUMNS)


def run(args: argparse.Namespace) -> int:
    arrow()  # say how to install pyarrow before reading anything
    checked_keylog(args.keylog)
    if os.path.splitext(args.out)[1].lower() not in FORMATS:
        raise UsageError(f"--out {args.out}: the extension says the format: {', '.join(FORMATS)}")
    if args.table == "decisions":
        rows = _route_rows(args)
        count = rows.write(args.out)
        print(f"osilab: wrote {count} decisions to {args.out}", file=sys.stderr)
        return 0
    capture = open_capture(args.file, progress=not args.quiet)
    if args.table == "packets":  # one pass, as `osilab layers --filter` selects
        keep = None if args.filter is None else compile_filter(args.filter)
        rows = packet_rows(lambda: packets(capture, keylog=args.keylog) if keep is None
                           else keep.select(packets(capture, keylog=args.keylog)))  # fmt: skip
    else:
        chosen = chosen_by_filter(args, capture)  # the same selection as flows/http --filter
        if args.table == "flows":
            rows = flow_rows(capture, None if chosen is None else
                             lambda: matching_flows(capture, chosen, keylog=args.keylog))  # fmt: skip
        else:
            rows = request_rows(capture, keylog=args.keylog,
                                keep=None if chosen is None else chosen.request)  # fmt: skip
    count = rows.write(args.out)
    print(f"osilab: wrote {count} {args.table} to {args.out}", file=sys.stderr)
    return report_errors(capture)

"""``osilab http``: every HTTP request of a capture (HTTP/1.x and HTTP/2), with its response.

Each request is reported once its response has been seen (or the capture ended), so the
``status`` key can be filled; requests are printed in the order their heads completed.
Requests too malformed for h11 are still reported, with the ALB's desync verdict.
Each request names its ``hop``, the capture interface it was seen on (a table column when
the capture has several).
"""

from __future__ import annotations

import argparse

from osilab.commands._capture import (
    capture_arguments,
    checked_keylog,
    chosen_by_filter,
    filter_argument,
    many_hops,
    open_capture,
    report_errors,
    report_unread_tls,
)
from osilab.commands._output import print_hop_table, write_jsonl
from osilab.pipeline import iter_http
from osilab.pipeline.http import paired
from osilab.pipeline.tables import request_json
from osilab.protocols.messages import HttpRequest
from osilab.streams.keys import FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "request_json"]

HELP = "list HTTP requests (HTTP/1.x and HTTP/2): method, host, target, packets, status, desync verdict"
EXAMPLE = (
    "osilab http ../shared/captures/thirdparty/suricata-verify/http-keepalive-chunked.pcap --json"
)

def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="request")
    parser.add_argument("--keylog", metavar="FILE", help="NSS key log file to decrypt HTTPS")
    filter_argument(parser, "requests whose completing frame matches")


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    unread: set[FlowKey] = set()
    pairs = paired(iter_http(capture, keylog=checked_keylog(args.keylog), unread_tls=unread))
    chosen = chosen_by_filter(args, capture)
    if chosen is not None:
        pairs = (pair for pair in pairs if chosen.request(pair[0]))
    if args.json:
        write_jsonl(
            {**request_json(request, response), "hop": capture.hop_name(request.flow.interface)}
            for request, response in pairs
        )
    else:
        count = print_hop_table(
            ("flow", "method", "host", "target", "version", "first", "headers", "status", "desync"),
            (
                (
                    capture.hop_name(request.flow.interface),
                    request.flow,
                    request.method,
                    request.host or "",
                    request.target,
                    request.version + (f" s{request.stream_id}" if request.stream_id else ""),
                    request.first_packet,
                    request.headers_complete_packet,
                    response.status if response else "-",
                    _verdict(request),
                )
                for request, response in pairs
            ),
            lambda: many_hops(capture),
        )
        print(f"{count} requests")
    report_unread_tls(unread, args.keylog)
    return report_errors(capture)


def _verdict(request: HttpRequest) -> str:
    if request.desync is None:
        return ""
    return request.desync.klass + (f" ({request.desync.reason})" if request.desync.reason else "")

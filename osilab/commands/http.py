"""``osilab http``: every HTTP request of a capture (HTTP/1.x and HTTP/2), with its response.

Each request is reported once its response has been seen (or the capture ended), so the
``status`` key can be filled; requests are printed in the order their heads completed.
Requests too malformed for h11 are still reported, with the ALB's desync verdict.
Each request names its ``hop``, the capture interface it was seen on (a table column when
the capture has several).
"""

from __future__ import annotations

import argparse

from osilab.capture import Capture
from osilab.commands._capture import capture_arguments, open_capture, print_listing, report_errors
from osilab.pipeline import iter_http
from osilab.pipeline.http import paired
from osilab.pipeline.tables import request_json
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "request_json"]

HELP = "list HTTP requests (HTTP/1.x and HTTP/2): method, host, target, packets, status, desync verdict"
EXAMPLE = (
    "osilab http ../shared/captures/thirdparty/suricata-verify/http-keepalive-chunked.pcap --json"
)

def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="request", keylog="NSS key log file to decrypt HTTPS",
                      selects="requests whose completing frame matches")


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet, keylog=args.keylog)
    unread: set[FlowKey] = set()
    pairs = paired(iter_http(capture, keylog=args.keylog, unread_tls=unread))
    print_listing(
        args,
        capture,
        pairs,
        keep=lambda chosen, pair: chosen.request(pair[0]),
        as_json=lambda pair: {**request_json(*pair), "hop": capture.hop_name(pair[0].flow.interface, pair[0].flow.tunnel)},
        headers=("flow", "method", "host", "target", "version", "first", "headers", "status", "desync"),
        cells=lambda pair: _cells(capture, *pair),
        unit="requests",
    )
    return report_errors(capture, unread_tls=unread, keylog=args.keylog)


def _cells(capture: Capture, request: HttpRequest, response: HttpResponse | None) -> tuple[object, ...]:
    return (
        capture.hop_name(request.flow.interface, request.flow.tunnel),
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


def _verdict(request: HttpRequest) -> str:
    if request.desync is None:
        return ""
    return request.desync.klass + (f" ({request.desync.reason})" if request.desync.reason else "")

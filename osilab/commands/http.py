"""``osilab http``: every HTTP request of a capture (HTTP/1.x and HTTP/2), with its response.

Each request is reported once its response has been seen (or the capture ended), so the
``status`` key can be filled; requests are printed in the order their heads completed.
Requests too malformed for h11 are still reported, with the ALB's desync verdict.
Each request names its ``hop``, the capture interface it was seen on (a table column when
the capture has several).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from osilab.commands._capture import capture_arguments, many_hops, open_capture, report_errors
from osilab.commands._output import print_hop_table, write_jsonl
from osilab.pipeline import iter_http
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "request_json"]

HELP = "list HTTP requests (HTTP/1.x and HTTP/2): method, host, target, packets, status, desync verdict"
EXAMPLE = (
    "osilab http ../shared/captures/thirdparty/suricata-verify/http-keepalive-chunked.pcap --json"
)

#: Requests held while waiting for their responses before being printed without one.
MAX_WAITING = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="request")
    parser.add_argument("--keylog", metavar="FILE", help="NSS key log file to decrypt HTTPS")


def request_json(request: HttpRequest, response: HttpResponse | None) -> dict[str, Any]:
    """One request as design.md's ``osilab http --json`` contract has it (plus extras)."""
    obj: dict[str, Any] = {
        "flow": str(request.flow),
        "method": request.method,
        "host": request.host,
        "target": request.target,
        "version": request.version,
        "first_packet": request.first_packet,
        "headers_complete_packet": request.headers_complete_packet,
        "status": response.status if response is not None else None,
        "desync": (
            {"class": request.desync.klass, "reason": request.desync.reason}
            if request.desync is not None
            else None
        ),
        "index": request.index,
        "stream_id": request.stream_id,
        "time": request.time,
    }
    if response is not None:
        obj["response_first_packet"] = response.first_packet
        obj["response_time"] = response.time
    return obj


def paired(
    messages: Iterator[HttpRequest | HttpResponse],
) -> Iterator[tuple[HttpRequest, HttpResponse | None]]:
    """Requests with their responses, in request order (bounded wait).

    A response belongs to the request of the same flow (on the same hop) and index.
    """
    waiting: dict[tuple[FlowKey, int], HttpRequest] = {}
    order: list[tuple[FlowKey, int]] = []
    answered: dict[tuple[FlowKey, int], HttpResponse] = {}
    for message in messages:
        key = (message.flow, message.index)
        if isinstance(message, HttpRequest):
            waiting[key] = message
            order.append(key)
        else:
            answered[key] = message
        while order and (order[0] in answered or len(order) > MAX_WAITING):
            first = order.pop(0)
            request = waiting.pop(first, None)
            if request is not None:
                yield request, answered.pop(first, None)
    for key in order:
        request = waiting.pop(key, None)
        if request is not None:
            yield request, answered.pop(key, None)


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    pairs = paired(iter_http(capture, keylog=args.keylog))
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
                    _short(request.target),
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
    return report_errors(capture)


def _short(target: str, width: int = 60) -> str:
    return target if len(target) <= width else target[: width - 3] + "..."


def _verdict(request: HttpRequest) -> str:
    if request.desync is None:
        return ""
    return request.desync.klass + (f" ({request.desync.reason})" if request.desync.reason else "")

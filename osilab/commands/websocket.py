"""``osilab websocket``: every WebSocket message of a capture (RFC 6455), after its HTTP 101.

One line (or JSON object) per message, in the order the messages completed: the flow, the
``hop`` (capture interface; a table column when the capture has several), the direction
(``->`` client to server), the kind (text, binary, close, ping, pong), its length on the
wire, how many frames carried it, its first bytes (text as text, else hex) and its first
and last packets. A fragmented message is one row (RFC 6455 §5.4); a permessage-deflate
message (RFC 7692) shows its inflated data. The stderr notes say which handshakes had a
wrong ``Sec-WebSocket-Accept`` and which HTTP/2 requests asked for WebSocket over HTTP/2
(RFC 8441), which osilab does not read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from osilab.commands._capture import capture_arguments, open_capture, print_listing, report_errors
from osilab.pipeline.websocket import rows

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run"]

HELP = "list WebSocket messages (RFC 6455): flow, direction, kind, length, first bytes, packets"
EXAMPLE = "osilab websocket ../shared/captures/thirdparty/zeek/websocket-jupyter-behind-proxy.pcap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="message", selects="messages whose completing frame matches",
                      keylog="NSS key log to decrypt wss:// (WebSocket over TLS)")  # fmt: skip


def _shown(row: dict[str, Any]) -> str:
    if row["kind"] == "close":
        code = row["close_code"]
        return "no status code" if code is None else f"{code} {row['close_reason'] or ''}".strip()
    return repr(row["text"]) if row["text"] is not None else row["first_bytes"]


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet, keylog=args.keylog)
    notes: list[str] = []
    wrong: set[str] = set()

    def found() -> Iterator[dict[str, Any]]:
        for row in rows(capture, notes=notes, keylog=args.keylog):
            if row["accept_ok"] is False:
                wrong.add(row["flow"])
            yield row

    print_listing(
        args, capture, found(), as_json=lambda row: row,
        keep=lambda chosen, row: chosen.frame(row["last_packet"]),
        headers=("flow", "dir", "kind", "length", "frames", "first bytes", "first", "last"),
        cells=lambda row: (row["hop"], row["flow"], "->" if row["direction"] == "to_server" else "<-",
                           row["kind"] + (" (deflate)" if row["compressed"] else ""), row["length"],
                           row["frames"], _shown(row), row["first_packet"], row["last_packet"]),
        unit="messages",
    )  # fmt: skip
    for flow in sorted(wrong):
        print(f"osilab: note: {flow}: Sec-WebSocket-Accept is not the key's (RFC 6455 §4.2.2)",
              file=sys.stderr)  # fmt: skip
    for note in notes:
        print(f"osilab: note: {note}", file=sys.stderr)
    return report_errors(capture)

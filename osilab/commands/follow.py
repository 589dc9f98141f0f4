"""``osilab follow``: one flow's conversation, as Wireshark's "Follow TCP Stream" shows it.

The client's bytes and the server's bytes are printed in the order they became readable,
each block headed by its direction and the packets that carried it; bytes that were never
captured are shown as a marked gap, never glued over.

With ``--json``, one object per piece, in the same order (as tshark's ``-z follow,tcp,raw``
gives the bytes, one line per segment): a piece of data is
``{"kind": "data", "direction": "to_server", "packet": 4, "delivered_at": 4, "time": ...,
"offset": 0, "length": 120, "hex": "474554...", "text": "GET / HTTP/1.1..."}`` (``offset``
counts from the first byte after the SYN, and is 0 for every UDP datagram, each one whole;
``text`` is what the table prints); a gap is
``{"kind": "gap", "direction": ..., "packet": ..., "offset": ..., "length": ...,
"reason": ...}``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from osilab.commands._capture import capture_arguments, json_argument, open_capture, report_errors
from osilab.commands._output import write_jsonl
from osilab.errors import UsageError
from osilab.pipeline import follow
from osilab.pipeline.follow import FollowItem
from osilab.streams import Chunk, Direction, FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "printable", "piece_json"]

HELP = "print one flow's conversation (both directions, gaps marked), like Wireshark's Follow TCP Stream"
EXAMPLE = "osilab follow ../shared/captures/thirdparty/zeek/http-get.pcap 0   (or CLIENT:PORT-SERVER:PORT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser)
    parser.add_argument("flow", help="a flow index (see 'osilab flows') or CLIENT:PORT-SERVER:PORT")
    parser.add_argument("--hex", action="store_true", help="show bytes as a hex dump")
    parser.add_argument(
        "--udp", action="store_true", help="the flow is UDP (for the client-server form)"
    )
    json_argument(parser, "piece of the conversation (its bytes in hex and as text, or a gap)")


def printable(data: bytes) -> str:
    """Bytes as text: printable ASCII and line ends kept, everything else as '.'."""
    return "".join(chr(b) if 32 <= b < 127 or b in (9, 10, 13) else "." for b in data).replace(
        "\r\n", "\n"
    )


def _hexdump(data: bytes, offset: int) -> str:
    lines = []
    for at in range(0, len(data), 16):
        row = data[at : at + 16]
        lines.append(
            f"{offset + at:08x}  {row.hex(' '):<47}  {printable(row).replace(chr(10), '.')}"
        )
    return "\n".join(lines)


def _no_flow(args: argparse.Namespace) -> UsageError:
    return UsageError(f"no flow {args.flow!r} with data in {args.file} (see 'osilab flows')")


def piece_json(piece: FollowItem) -> dict[str, Any]:
    """One piece of a followed flow as ``follow --json`` writes it (see the module)."""
    item = piece.item
    if isinstance(item, Chunk):
        return {"kind": "data", "direction": piece.direction.value, "packet": item.packet_no,
                "delivered_at": item.delivered_at, "time": item.time, "offset": item.offset,
                "length": len(item.data), "hex": item.data.hex(), "text": printable(item.data)}  # fmt: skip
    return {"kind": "gap", "direction": piece.direction.value, "packet": item.packet_no,
            "offset": item.offset, "length": item.size, "reason": item.reason}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    wanted: object = args.flow
    if not args.flow.isdigit():
        try:
            wanted = FlowKey.parse(args.flow, "udp" if args.udp else "tcp")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        if args.hex:
            print("osilab: warning: --hex changes the table only; the JSON carries each "
                  "piece's bytes in hex anyway", file=sys.stderr)  # fmt: skip
        if not write_jsonl(piece_json(piece) for piece in follow(capture, wanted)):  # type: ignore[arg-type]
            raise _no_flow(args)
        return report_errors(capture)
    out = sys.stdout
    current: tuple[Direction, bool] | None = None
    packets: list[int] = []
    buffered: list[str] = []
    totals = {Direction.TO_SERVER: 0, Direction.TO_CLIENT: 0}
    seen = False

    def flush() -> None:
        if current is not None and buffered:
            direction, _ = current
            who = "client -> server" if direction is Direction.TO_SERVER else "server -> client"
            low, high = min(packets), max(packets)
            span = f"packet {low}" if low == high else f"packets {low}-{high}"
            out.write(f"\n=== {who} ({span}) ===\n")
            out.write("".join(buffered))
            if not buffered[-1].endswith("\n"):
                out.write("\n")

    for piece in follow(capture, wanted):  # type: ignore[arg-type]
        seen = True
        item = piece.item
        if isinstance(item, Chunk):
            key = (piece.direction, True)
            if key != current:
                flush()
                current, packets, buffered = key, [], []
            packets.append(item.packet_no)
            totals[piece.direction] += len(item.data)
            buffered.append(
                _hexdump(item.data, item.offset) + "\n" if args.hex else printable(item.data)
            )
        else:
            flush()
            current, packets, buffered = None, [], []
            arrow = (
                "client -> server" if piece.direction is Direction.TO_SERVER else "server -> client"
            )
            out.write(
                f"\n[... gap: {item.size} bytes {arrow} never captured ({item.reason}) ...]\n"
            )
    flush()
    if not seen:
        raise _no_flow(args)
    out.write(
        f"\n{totals[Direction.TO_SERVER]} bytes client -> server, "
        f"{totals[Direction.TO_CLIENT]} bytes server -> client\n"
    )
    return report_errors(capture)

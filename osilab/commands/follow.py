"""``osilab follow``: one flow's conversation, as Wireshark's "Follow TCP Stream" shows it.

The client's bytes and the server's bytes are printed in the order they became readable,
each block headed by its direction and the packets that carried it; bytes that were never
captured are shown as a marked gap, never glued over.
"""

from __future__ import annotations

import argparse
import sys

from osilab.commands._capture import capture_arguments, open_capture, report_errors
from osilab.errors import UsageError
from osilab.pipeline import follow
from osilab.streams import Chunk, Direction, FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "printable"]

HELP = "print one flow's conversation (both directions, gaps marked), like Wireshark's Follow TCP Stream"
EXAMPLE = "osilab follow ../shared/captures/thirdparty/zeek/http-get.pcap 0   (or CLIENT:PORT-SERVER:PORT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser)
    parser.add_argument("flow", help="a flow index (see 'osilab flows') or CLIENT:PORT-SERVER:PORT")
    parser.add_argument("--hex", action="store_true", help="show bytes as a hex dump")
    parser.add_argument(
        "--udp", action="store_true", help="the flow is UDP (for the client-server form)"
    )


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


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    wanted: object = args.flow
    if not args.flow.isdigit():
        try:
            wanted = FlowKey.parse(args.flow, "udp" if args.udp else "tcp")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
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
        raise UsageError(f"no flow {args.flow!r} with data in {args.file} (see 'osilab flows')")
    out.write(
        f"\n{totals[Direction.TO_SERVER]} bytes client -> server, "
        f"{totals[Direction.TO_CLIENT]} bytes server -> client\n"
    )
    return report_errors(capture)

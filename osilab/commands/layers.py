"""``osilab layers``: every packet as its stack of layers (OSI and TCP/IP side by side)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice

from osilab.capture import Capture, CaptureWriter, Packet
from osilab.capture.filter import compile_filter
from osilab.capture.tables import packet_row
from osilab.commands._capture import (
    capture_arguments,
    many_hops,
    open_capture,
    packets,
    report_errors,
)

HELP = "show every packet as its layers: name, OSI layer, TCP/IP layer, header offset and length"
EXAMPLE = "osilab layers captures/alb/alb.pcapng --limit 5    (or --json for one JSON object per packet)"


def _count(text: str) -> int:
    """``--limit N``: a whole number of packets, 0 or more (argparse names the flag on error)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="packet", keylog="NSS key log to decrypt TLS",
                      selects="packets that match (the frame that completes a message shows it)")
    parser.add_argument("--limit", type=_count, default=None, metavar="N", help="stop after N packets")
    parser.add_argument("--no-streams", action="store_true",
                        help="dissect each packet alone (no TCP reassembly)")
    parser.add_argument("--write", metavar="OUT.pcapng",
                        help="also write the packets listed to a capture file (pcapng, or "
                        "pcap for a .pcap name) that Wireshark opens")


#: One packet as the CLI contract has it (design.md): the packet table's row.
packet_json = packet_row


_LAYER_JSON: dict[tuple, str] = {}
_INTERFACE_JSON: dict[str, str] = {}


def packet_json_line(pkt) -> str:  # type: ignore[no-untyped-def]
    """The same object as :func:`packet_json`, written straight to a JSON string.

    ``osilab layers --json`` writes one of these per packet; building the text from cached
    per-layer fragments is several times faster than ``json.dumps`` of a fresh dict, and
    the output is identical.
    """
    parts = []
    for lay in pkt.layers:
        key = (lay.name, lay.osi, lay.offset, lay.length)  # "data" sits at 3 in an echo, else 7
        text = _LAYER_JSON.get(key)
        if text is None:
            text = json.dumps({"name": lay.name, "osi": lay.osi, "tcpip": lay.tcpip,
                               "offset": lay.offset, "length": lay.length}, separators=(",", ":"))
            if len(_LAYER_JSON) < 100_000:
                _LAYER_JSON[key] = text
        parts.append(text)
    line = f'{{"no":{pkt.no},"time":{round(pkt.time, 9)!r},"length":{len(pkt.data)},"layers":[{",".join(parts)}]'
    name = pkt.interface_name
    if name is not None:
        text = _INTERFACE_JSON.get(name)
        if text is None:  # a capture has a few interfaces: each name is written once
            text = _INTERFACE_JSON[name] = f',"interface":{json.dumps(name, ensure_ascii=False)}'
            if len(_INTERFACE_JSON) > 10_000:
                _INTERFACE_JSON.clear()
        line += text
    damaged = pkt.damaged
    if damaged:
        line += f',"damaged":{json.dumps(damaged, ensure_ascii=False)}'
    return line + "}\n"


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    stream = packets(capture, streams=not args.no_streams, keylog=args.keylog)
    if args.filter is not None:
        stream = compile_filter(args.filter).select(stream)
    if getattr(args, "write", None):
        stream = _written(islice(stream, args.limit), args.write, capture)
    damaged = 0
    out = sys.stdout
    count = 0
    if args.json:
        write = out.write
        for pkt in stream:
            if args.limit is not None and count >= args.limit:
                break
            count += 1
            write(packet_json_line(pkt))
            if pkt.damaged:
                damaged += 1
    else:
        first = None
        hops = False
        for pkt in stream:
            if args.limit is not None and count >= args.limit:
                break
            count += 1
            if first is None:  # the interfaces described before the first frame are known now
                first, hops = pkt.time, many_hops(capture)
                out.write(("hop".ljust(12) + "  " if hops else "")
                          + f"{'no':>6}  {'time':>12}  {'len':>5}  {'source':<22} {'destination':<22} "
                          f"{'layers (OSI layer)':<32} summary of the top layer\n")
            if pkt.damaged:
                damaged += 1
            out.write(text_row(pkt, first, capture.hop_name(pkt.interface) if hops else None))
    return report_errors(capture, damaged=damaged)


def addresses(pkt: Packet) -> tuple[str, str]:
    """Source and destination as tshark's columns show them: the innermost IP header's,
    else the link layer's (a hardware address), else empty."""
    for layer in reversed(pkt.layers):
        if layer.name in ("ip", "ipv6") and "src" in layer.fields:
            return layer.fields["src"], layer.fields["dst"]
    for layer in reversed(pkt.layers):
        if layer.name == "eth":
            return layer.fields.get("src", ""), layer.fields.get("dst", "")
        if layer.name == "sll":
            return layer.fields.get("src.eth", ""), ""
    return "", ""


def text_row(pkt: Packet, first: float, hop: str | None = None) -> str:
    """One line of the text table: hop (on a multi-hop capture), number, time since the
    first packet listed, length, source, destination, the layer stack and the top summary."""
    src, dst = addresses(pkt)
    stack = pkt.stack_text()
    top = pkt.top_summary() if pkt.layers else ""
    flag = f"  [damaged: {pkt.damaged}]" if pkt.damaged else ""
    where = f"{hop:<12}  " if hop is not None else ""
    return (f"{where}{pkt.no:>6}  {pkt.time - first:>12.6f}  {len(pkt.data):>5}  {src:<22} {dst:<22} "
            f"{stack:<32} {top}{flag}\n")


def _written(stream: Iterable[Packet], path: str, capture: Capture) -> Iterator[Packet]:
    """``--write``: each packet listed is also written to ``path`` (its interfaces named as
    in the capture); the file is complete when the listing ends."""
    with CaptureWriter.to_path(path, interfaces=lambda: capture.interfaces) as writer:
        for pkt in stream:
            writer.write(pkt)
            yield pkt
    print(f"osilab: wrote {writer.count} packets to {path}", file=sys.stderr)

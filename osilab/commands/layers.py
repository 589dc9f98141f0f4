"""``osilab layers``: every packet as its stack of layers (OSI and TCP/IP side by side)."""

from __future__ import annotations

import argparse
import json
import sys

from osilab.commands._capture import open_capture, packets, report_errors

HELP = "show every packet as its layers: name, OSI layer, TCP/IP layer, header offset and length"
EXAMPLE = "osilab layers captures/alb/alb.pcapng --limit 5    (or --json for one JSON object per packet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a pcap or pcapng capture (gzip allowed)")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per packet")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N packets")
    parser.add_argument("--no-streams", action="store_true",
                        help="dissect each packet alone (no TCP reassembly)")
    parser.add_argument("--keylog", metavar="FILE", help="NSS key log to decrypt TLS")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (shown on stderr for captures over 20 MB)")


def packet_json(pkt) -> dict:  # type: ignore[no-untyped-def]
    """One packet as the CLI contract has it (design.md)."""
    obj = {
        "no": pkt.no,
        "time": round(pkt.time, 9),
        "length": len(pkt.data),
        "layers": [
            {"name": lay.name, "osi": lay.osi, "tcpip": lay.tcpip, "offset": lay.offset,
             "length": lay.length}
            for lay in pkt.layers
        ],
    }
    if pkt.interface_name is not None:
        obj["interface"] = pkt.interface_name
    damaged = pkt.damaged
    if damaged:
        obj["damaged"] = damaged
    return obj


_LAYER_JSON: dict[tuple, str] = {}


def packet_json_line(pkt) -> str:  # type: ignore[no-untyped-def]
    """The same object as :func:`packet_json`, written straight to a JSON string.

    ``osilab layers --json`` writes one of these per packet; building the text from cached
    per-layer fragments is several times faster than ``json.dumps`` of a fresh dict, and
    the output is identical.
    """
    parts = []
    for lay in pkt.layers:
        key = (lay.name, lay.offset, lay.length)
        text = _LAYER_JSON.get(key)
        if text is None:
            text = json.dumps({"name": lay.name, "osi": lay.osi, "tcpip": lay.tcpip,
                               "offset": lay.offset, "length": lay.length}, separators=(",", ":"))
            if len(_LAYER_JSON) < 100_000:
                _LAYER_JSON[key] = text
        parts.append(text)
    line = f'{{"no":{pkt.no},"time":{round(pkt.time, 9)!r},"length":{len(pkt.data)},"layers":[{",".join(parts)}]'
    if pkt.interface_name is not None:
        line += f',"interface":{json.dumps(pkt.interface_name, ensure_ascii=False)}'
    damaged = pkt.damaged
    if damaged:
        line += f',"damaged":{json.dumps(damaged, ensure_ascii=False)}'
    return line + "}\n"


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    stream = packets(capture, streams=not args.no_streams, keylog=args.keylog)
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
        out.write(f"{'no':>6}  {'time':>12}  {'len':>5}  layers (OSI layer)   summary of the top layer\n")
        first = None
        for pkt in stream:
            if args.limit is not None and count >= args.limit:
                break
            count += 1
            first = pkt.time if first is None else first
            stack = " ".join(f"{lay.name}({lay.osi})" for lay in pkt.layers)
            top = pkt.layers[-1].summary if pkt.layers else ""
            flag = f"  [damaged: {pkt.damaged}]" if pkt.damaged else ""
            if flag:
                damaged += 1
            out.write(f"{pkt.no:>6}  {pkt.time - first:>12.6f}  {len(pkt.data):>5}  {stack:<32} {top}{flag}\n")
    return report_errors(capture, damaged=damaged)

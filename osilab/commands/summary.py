"""``osilab summary``: the protocol hierarchy of a capture, grouped by OSI layer."""

from __future__ import annotations

import argparse
from collections import Counter

from osilab.commands._capture import capture_arguments, open_capture, packets, report_errors
from osilab.commands._output import write_jsonl
from osilab.layers import PROTOCOLS, osi_name, place

HELP = "protocol hierarchy grouped by OSI layer: packets and bytes per protocol"
EXAMPLE = "osilab summary ../shared/captures/thirdparty/zeek/http-get.pcap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="protocol")
    parser.add_argument("--no-streams", action="store_true", help="dissect each packet alone")


def hierarchy(stream) -> tuple[int, int, Counter, Counter, int]:  # type: ignore[no-untyped-def]
    """Count packets and frame bytes per protocol (a packet counts once per protocol)."""
    pkts: Counter = Counter()
    size: Counter = Counter()
    total = total_bytes = damaged = 0
    for pkt in stream:
        total += 1
        total_bytes += len(pkt.data)
        if pkt.damaged:
            damaged += 1
        for name in {lay.name for lay in pkt.layers}:
            pkts[name] += 1
            size[name] += len(pkt.data)
    return total, total_bytes, pkts, size, damaged


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    total, total_bytes, pkts, size, damaged = hierarchy(packets(capture, streams=not args.no_streams))
    order = sorted(pkts, key=lambda n: (-place(n).osi, -pkts[n], n))
    if args.json:
        write_jsonl({"protocol": n, "osi": place(n).osi, "tcpip": place(n).tcpip, "packets": pkts[n],
                     "bytes": size[n], "known": n in PROTOCOLS} for n in order)
    else:
        print(f"{capture.name}: {total} packets, {total_bytes} bytes"
              + (f", {damaged} damaged" if damaged else ""))
        current = None
        for name in order:
            osi = place(name).osi
            if osi != current:
                current = osi
                print(f"\nOSI {osi} {osi_name(osi)}")
            share = 100.0 * pkts[name] / total if total else 0.0
            print(f"  {name:<8} {pkts[name]:>8} packets {share:6.1f}%  {size[name]:>10} bytes"
                  f"   ({place(name).title})")
    return report_errors(capture, damaged=damaged)

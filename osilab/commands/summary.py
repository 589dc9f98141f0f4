"""``osilab summary``: the protocol hierarchy of a capture, grouped by OSI layer."""

from __future__ import annotations

import argparse
from collections import Counter

from osilab.capture.tunnels import TUNNELS
from osilab.commands._capture import capture_arguments, open_capture, packets, report_errors
from osilab.commands._output import write_jsonl
from osilab.layers import PROTOCOLS, osi_name, place

HELP = "protocol hierarchy grouped by OSI layer: packets and bytes per protocol"
EXAMPLE = "osilab summary ../shared/captures/thirdparty/zeek/http-get.pcap"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="protocol")
    parser.add_argument("--no-streams", action="store_true", help="dissect each packet alone")


def hierarchy(stream) -> tuple[int, int, Counter, Counter, int]:  # type: ignore[no-untyped-def]
    """Count packets and frame bytes per protocol (a packet counts once per protocol).

    A protocol inside a tunnel counts under it: the key is ``(name, tunnel)``, ``tunnel``
    being the tunnels around it outside in (``"vxlan"``, ``"gre/erspan"``, ``"vxlan>vxlan"``
    for VXLAN in VXLAN), None for the outer packet's own layers.
    """
    pkts: Counter = Counter()
    size: Counter = Counter()
    total = total_bytes = damaged = 0
    for pkt in stream:
        total += 1
        total_bytes += len(pkt.data)
        if pkt.damaged:
            damaged += 1
        for key in _keys(pkt.layers):
            pkts[key] += 1
            size[key] += len(pkt.data)
    return total, total_bytes, pkts, size, damaged


def _keys(layers) -> set[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    """``(name, tunnel)`` of each layer; the tunnel is named by the headers just before depth grew."""
    keys: set[tuple[str, str | None]] = set()
    path: list[str] = []  # one entry per tunnel around the current layer
    headers: list[str] = []  # the current depth's tunnel headers (gre, erspan...)
    depth, network = 0, "ip"  # IP in IP has no tunnel header: the outer IP header is the tunnel
    for lay in layers:
        if lay.depth > depth:
            path.append("/".join(headers) or network)
            depth, headers = lay.depth, []
        if lay.name in TUNNELS:
            headers.append(lay.name)
        elif lay.name in ("ip", "ipv6"):
            network = lay.name
        keys.add((lay.name, ">".join(path) if path else None))
    return keys


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet)
    total, total_bytes, pkts, size, damaged = hierarchy(packets(capture, streams=not args.no_streams))
    order = sorted(pkts, key=lambda k: (-place(k[0]).osi, k[1] or "", -pkts[k], k[0]))
    if args.json:
        write_jsonl({"protocol": k[0], "osi": place(k[0]).osi, "tcpip": place(k[0]).tcpip, "packets": pkts[k],
                     "bytes": size[k], "known": k[0] in PROTOCOLS, **({"tunnel": k[1]} if k[1] else {})}
                    for k in order)
    else:
        print(f"{capture.name}: {total} packets, {total_bytes} bytes"
              + (f", {damaged} damaged" if damaged else ""))
        current = None
        for key in order:
            name, tunnel = key
            osi = place(name).osi
            if osi != current:
                current = osi
                print(f"\nOSI {osi} {osi_name(osi)}")
            share = 100.0 * pkts[key] / total if total else 0.0
            label = f"  {name:<8}" if tunnel is None else f"    {name} in {tunnel}:"
            print(f"{label:<28} {pkts[key]:>8} packets {share:6.1f}%  {size[key]:>10} bytes"
                  f"   ({place(name).title})")
    return report_errors(capture, damaged=damaged)

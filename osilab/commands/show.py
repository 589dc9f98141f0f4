"""``osilab show FILE N [N...]``: one packet in full, like ``tshark -V``, then its bytes.

For each packet chosen (by frame number, by ``--filter``, or both): the frame, then every
layer bottom first with its place in the OSI and TCP/IP models, then every field osilab
decodes -- Wireshark's name (the name a display filter uses), the value, and where it sits in
the frame when the header is a fixed one -- then the hexdump, each byte on its layer's colour
(the one palette, :mod:`osilab.layers.palette`) in a terminal, plain text otherwise.

The fields are exactly the ones filters know (:mod:`osilab.capture.fields`): what ``show``
prints is what ``--filter`` can test. Packets are the stream-aware ones (a message split
over segments shows on the frame that completes it), unless ``--no-streams``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from osilab.capture import Packet
from osilab.capture.display import byte_owners
from osilab.capture.fields import FIELDS, frame_fields, layer_fields
from osilab.capture.filter import compile_filter
from osilab.commands._capture import (
    filter_argument,
    json_argument,
    keylog_argument,
    open_capture,
    packets,
    report_errors,
)
from osilab.commands._output import jsonl_writer
from osilab.errors import UsageError
from osilab.layers import PROTOCOLS, osi_name
from osilab.layers.palette import colour_for

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "packet_detail", "detail_text", "hexdump"]

HELP = "one packet in full (like tshark -V): every layer, every field by its Wireshark name, the bytes"
EXAMPLE = "osilab show ../shared/captures/thirdparty/zeek/http-get.pcap 4   (or --filter http, --json)"

_TCPIP_TITLE = {"link": "Link", "internet": "Internet", "transport": "Transport",
                "application": "Application"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a pcap or pcapng capture")
    parser.add_argument("frames", nargs="*", type=int, metavar="N",
                        help="frame numbers, from 1 as Wireshark numbers them")
    filter_argument(parser, "packets that match (with frame numbers: those of them that match)")
    json_argument(parser, "packet")
    parser.add_argument("--no-streams", action="store_true",
                        help="dissect each packet alone (no TCP reassembly)")
    keylog_argument(parser, "NSS key log to decrypt TLS")
    parser.add_argument("--colour", choices=("auto", "always", "never"), default="auto",
                        help="colour the hexdump by layer (auto: when stdout is a terminal)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def packet_detail(pkt: Packet) -> dict[str, Any]:
    """One packet as ``osilab show --json`` writes it: the frame's fields, then each layer with
    its fields (``name`` is Wireshark's; ``offset``/``length`` are in the frame, or null)."""
    frame = frame_fields(pkt)
    frame_out = []
    for name in ("frame.number", "frame.len", "frame.cap_len", "frame.interface_id",
                 "frame.interface_name", "frame.comment"):
        value = frame[FIELDS[name].keys[0]]
        if value is not None:
            frame_out.append({"name": name, "value": value, "offset": None, "length": None})
    layers = []
    net = None
    for layer in pkt.layers:
        fields = []
        for spec, value in layer_fields(layer, net):
            inside = spec.offset is not None and layer.tcpip != "application"
            fields.append({"name": spec.name, "title": spec.title, "value": value,
                           "offset": layer.offset + spec.offset if inside else None,  # type: ignore[operator]
                           "length": spec.length if inside else None})
        entry: dict[str, Any] = {
            "name": layer.name, "title": _title(layer.name), "osi": layer.osi,
            "tcpip": layer.tcpip, "offset": layer.offset, "length": layer.length,
            "summary": layer.summary, "fields": fields,
        }
        if layer.damaged:
            entry["damaged"] = layer.damaged
        layers.append(entry)
        if layer.name in ("ip", "ipv6"):
            net = layer
    out: dict[str, Any] = {"no": pkt.no, "time": round(pkt.time, 9), "frame": frame_out,
                           "layers": layers, "hex": pkt.data.hex()}
    if pkt.damaged:
        out["damaged"] = pkt.damaged
    return out


def _title(name: str) -> str:
    place = PROTOCOLS.get(name)
    return place.title if place is not None else name


def _shown(value: Any, kind: str | None = None) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int) and kind == "hex":
        return f"0x{value:x} ({value})"
    return str(value)


def detail_text(detail: dict[str, Any]) -> str:
    """The text of one packet (:func:`packet_detail`), as ``tshark -V`` lays it out."""
    frame = {f["name"]: f["value"] for f in detail["frame"]}
    lines = [f"Frame {detail['no']}: {frame['frame.len']} bytes on wire, "
             f"{frame['frame.cap_len']} bytes captured"
             + (f", interface {frame['frame.interface_name']}" if "frame.interface_name" in frame
                else "")]
    for name, value in frame.items():
        lines.append(f"    {name:<40} {_shown(value)}")
    if "damaged" in detail:
        lines.append(f"    !! damaged: {detail['damaged']}")
    for layer in detail["layers"]:
        end = layer["offset"] + layer["length"] - 1 if layer["length"] else layer["offset"]
        lines.append(f"{layer['title']} [{layer['name']}]  OSI {layer['osi']} {osi_name(layer['osi'])}"
                     f" | TCP/IP {_TCPIP_TITLE[layer['tcpip']]} | bytes {layer['offset']}-{end}")
        lines.append(f"    {layer['summary']}")
        for field in layer["fields"]:
            where = (f"  [{field['offset']}:{field['offset'] + field['length']}]"
                     if field["offset"] is not None else "")
            lines.append(f"    {field['name']:<40} {_shown(field['value'])}{where}")
        if "damaged" in layer:
            lines.append(f"    !! damaged: {layer['damaged']}")
    return "\n".join(lines)


def _ansi(hex_colour: str) -> str:
    """A 24-bit ANSI background (with black text) for one of the palette's colours."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"\x1b[30;48;2;{r};{g};{b}m"


_RESET = "\x1b[0m"


def hexdump(pkt: Packet, *, colour: bool) -> str:
    """The frame's bytes, 16 per line, each on the colour of the layer that owns it (the
    same colours as the notebook view); a legend of the layers first when coloured."""
    owners = byte_owners(pkt)
    layers = pkt.layers
    data = pkt.data
    lines = []
    if colour:
        lines.append(" ".join(f"{_ansi(colour_for(lay.osi))} {lay.name} {_RESET}" for lay in layers))
    for start in range(0, len(data), 16):
        cells, chars = [], []
        for i in range(start, min(start + 16, len(data))):
            text, char = f"{data[i]:02x}", chr(data[i]) if 32 <= data[i] < 127 else "."
            if colour and owners[i] >= 0:
                paint = _ansi(colour_for(layers[owners[i]].osi))
                text, char = f"{paint}{text}{_RESET}", f"{paint}{char}{_RESET}"
            cells.append(text)
            chars.append(char)
        pad = "   " * (16 - len(cells))
        lines.append(f"{start:04x}  {' '.join(cells)}{pad}  {''.join(chars)}")
    return "\n".join(lines)


def _coloured(choice: str, out: TextIO) -> bool:
    if choice == "auto":
        return out.isatty()
    return choice == "always"


def run(args: argparse.Namespace) -> int:
    if not args.frames and args.filter is None:
        raise UsageError("osilab show needs frame numbers (osilab show FILE 4 9) or --filter EXPR")
    if any(n < 1 for n in args.frames):
        raise UsageError("frame numbers start at 1, as Wireshark's do")
    test = compile_filter(args.filter) if args.filter is not None else None
    wanted = set(args.frames)
    last = max(wanted) if wanted and test is None else None
    capture = open_capture(args.file, progress=not args.quiet)
    out = sys.stdout
    write = jsonl_writer(out) if args.json else None
    colour = _coloured(args.colour, out)
    found: set[int] = set()
    for pkt in packets(capture, streams=not args.no_streams, keylog=args.keylog):
        if last is not None and pkt.no > last:
            break
        if (wanted and pkt.no not in wanted) or (test is not None and not test(pkt)):
            continue
        found.add(pkt.no)
        detail = packet_detail(pkt)
        if write is not None:
            write(detail)
        else:
            out.write(detail_text(detail) + "\n\n" + hexdump(pkt, colour=colour) + "\n\n")
    missing = sorted(wanted - found) if test is None else []
    code = report_errors(capture)
    if missing:  # a frame the user asked for by number and the capture does not hold
        print(f"osilab: error: {capture.name} has no frame {', '.join(map(str, missing))} "
              f"(it holds frames 1-{capture.packets_read})", file=sys.stderr)  # fmt: skip
        return 1
    return code

"""How packets and captures show themselves: text for terminals, HTML for notebooks.

The HTML view puts the layer table beside a hexdump in which every byte carries the
colour of the layer it belongs to (one palette, :mod:`osilab.layers.palette`), so a
learner sees the Ethernet header, then IP, then TCP, then the HTTP request, as coloured
bands of the same frame.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from osilab.layers import osi_name
from osilab.layers.palette import colour_for, inner_style

if TYPE_CHECKING:
    from osilab.capture.packet import Packet
    from osilab.capture.reader import Capture

__all__ = ["packet_text", "packet_html", "capture_html", "byte_owners"]

_TCPIP_TITLE = {"link": "Link", "internet": "Internet", "transport": "Transport",
                "application": "Application"}


def byte_owners(pkt: Packet) -> list[int]:
    """For each byte of the frame, the index of the layer that owns it (-1: none, e.g. padding)."""
    owners = [-1] * len(pkt.data)
    for index, layer in enumerate(pkt.layers):
        for i in range(layer.offset, min(len(owners), layer.offset + layer.length)):
            owners[i] = index
    return owners


def packet_text(pkt: Packet) -> str:
    """A ``show()``-style text view: one block per layer with its place and fields."""
    lines = [f"Packet #{pkt.no}  time {pkt.time:.6f}  {len(pkt.data)} bytes captured"
             f" ({pkt.wire_length} on the wire)"
             + (f"  interface {pkt.interface_name}" if pkt.interface_name else "")]
    if pkt.damaged:
        lines.append(f"  !! damaged: {pkt.damaged}")
    for layer in pkt.layers:
        pad = "    " * layer.depth  # a tunnel's inner packet is indented under it
        inner = f" (inner, in tunnel {layer.depth})" if layer.depth else ""
        lines.append(f"{pad}###[ {layer.name} ]###{inner}  OSI {layer.osi} {osi_name(layer.osi)} | "
                     f"TCP/IP {_TCPIP_TITLE[layer.tcpip]} | bytes {layer.offset}-"
                     f"{layer.offset + layer.length - 1 if layer.length else layer.offset}")
        lines.append(f"{pad}  {layer.summary}")
        for key, value in layer.fields.items():
            if key == "headers":
                for name, val in value:
                    lines.append(f"{pad}    {name}: {val}")
                continue
            lines.append(f"{pad}  {layer.name + '.' + key:<32} = {value}")
    return "\n".join(lines)


def _legend(pkt: Packet) -> str:
    cells = []
    for layer in pkt.layers:
        cells.append(
            f'<span style="background:{colour_for(layer.osi)};padding:2px 6px;margin-right:4px;'
            f'border-radius:3px;color:#000;{inner_style(layer.depth)}">{html.escape(layer.name)} (L{layer.osi})</span>')
    return "".join(cells)


def _hexdump_html(pkt: Packet, limit: int = 512) -> str:
    owners = byte_owners(pkt)
    layers = pkt.layers
    rows = []
    data = pkt.data[:limit]
    for start in range(0, len(data), 16):
        cells = []
        chars = []
        for i in range(start, min(start + 16, len(data))):
            owner = owners[i]
            style = (f'background:{colour_for(layers[owner].osi)}' if owner >= 0 else "background:#fff")
            title = html.escape(layers[owner].name) if owner >= 0 else "not part of any layer"
            cells.append(f'<span style="{style}" title="{title}">{data[i]:02x}</span>')
            ch = chr(data[i]) if 32 <= data[i] < 127 else "."
            chars.append(f'<span style="{style}">{html.escape(ch)}</span>')
        rows.append(f"<span style='color:#555'>{start:04x}</span>  " + " ".join(cells) + "  " + "".join(chars))
    more = f"<br>... {len(pkt.data) - limit} more bytes" if len(pkt.data) > limit else ""
    return ("<pre style='font-size:15px;line-height:1.4;margin:0'>" + "\n".join(rows) + more + "</pre>")


def packet_html(pkt: Packet) -> str:
    """A notebook view: the layer table (OSI and TCP/IP side by side) and a coloured hexdump."""
    rows = []
    for layer in pkt.layers:
        swatch = f"background:{colour_for(layer.osi)}"
        indent = f"padding-left:{6 + 16 * layer.depth}px;{inner_style(layer.depth)}"
        rows.append(
            f"<tr><td style='{swatch};{indent}'><b>{html.escape(layer.name)}</b>"
            + (f" <small>(inner {layer.depth})</small>" if layer.depth else "") + "</td>"
            f"<td>{layer.osi} {osi_name(layer.osi)}</td><td>{_TCPIP_TITLE[layer.tcpip]}</td>"
            f"<td>{layer.offset}</td><td>{layer.length}</td>"
            f"<td style='text-align:left'>{html.escape(layer.summary)}"
            + (f" <b style='color:#b00'>damaged: {html.escape(layer.damaged)}</b>" if layer.damaged else "")
            + "</td></tr>")
    table = ("<table style='font-size:15px'><tr><th>layer</th><th>OSI</th><th>TCP/IP</th>"
             "<th>offset</th><th>length</th><th>summary</th></tr>" + "".join(rows) + "</table>")
    title = f"<div style='font-size:16px'><b>Packet #{pkt.no}</b>, {len(pkt.data)} bytes</div>"
    return f"<div>{title}{table}<div style='margin:6px 0'>{_legend(pkt)}</div>{_hexdump_html(pkt)}</div>"


def capture_html(capture: Capture, limit: int = 20) -> str:
    """A notebook view of a capture: the first ``limit`` packets and a count of the rest."""
    rows = []
    count = 0
    first_time = None
    for pkt in capture:
        count += 1
        if count > limit:
            continue
        if first_time is None:
            first_time = pkt.time
        top = pkt.layers[-1] if pkt.layers else None
        stack = " ".join(
            f"<span style='background:{colour_for(lay.osi)};padding:0 4px;{inner_style(lay.depth)}'>"
            f"{html.escape(lay.name)}</span>"
            for lay in pkt.layers)
        rows.append(f"<tr><td>{pkt.no}</td><td>{pkt.time - first_time:.6f}</td><td>{len(pkt.data)}</td>"
                    f"<td style='text-align:left'>{stack}</td>"
                    f"<td style='text-align:left'>{html.escape(top.summary if top else '')}</td></tr>")
    rest = f"<div>... and {count - limit} more packets</div>" if count > limit else ""
    return (f"<div><b>{html.escape(capture.name)}</b>: {count} packets"
            "<table style='font-size:14px'><tr><th>no</th><th>time</th><th>bytes</th><th>layers</th>"
            "<th>summary</th></tr>" + "".join(rows) + "</table>" + rest + "</div>")

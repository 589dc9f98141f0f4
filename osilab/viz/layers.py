"""Figures about layers: where each layer's bytes are, what they cost, how TCP talks.

Each function draws one figure a lesson needs and returns the matplotlib ``Figure``:

* :func:`frame_figure` - one frame as a band of bytes coloured by layer, with the OSI and
  the TCP/IP model side by side: which model layer each header belongs to;
* :func:`overhead_chart` - header bytes per layer for a few packets (what each layer costs);
* :func:`segments` and :func:`segmentation_figure` - how an MSS cuts a response into
  segments, and the frames that carry them;
* :func:`goodput` and :func:`goodput_plot` - the share of the wire that is application
  data, by payload size and MTU;
* :func:`ladder_diagram` - a TCP conversation as the classic two-column ladder;
* :func:`reassembly_figure` - which packet each byte of the client's stream came from.

The numbers behind the figures are plain functions (:func:`segments`, :func:`goodput`,
:func:`frame_layout`) that a test or a learner can call without drawing anything. All
colours that stand for layers come from :mod:`osilab.layers.palette`; every figure has
a title, axis labels and a legend, at projector sizes (:mod:`osilab.viz.style`).

This module reads no file and prints nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from osilab.capture.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, Packet
from osilab.layers import OSI, TCPIP, osi_name
from osilab.layers.palette import OSI_COLOURS, TCPIP_COLOURS, colour_for
from osilab.viz.conversation import Conversation
from osilab.viz.style import FONT, GREY, finish, new_figure

__all__ = [
    "Band",
    "frame_layout",
    "frame_figure",
    "overhead_chart",
    "WIRE_EXTRA",
    "segments",
    "segmentation_figure",
    "goodput",
    "goodput_plot",
    "ladder_diagram",
    "reassembly_figure",
    "flag_label",
]

#: Bytes Ethernet spends per frame that a capture never shows: preamble and start
#: delimiter (8), frame check sequence (4) and the inter-frame gap (12 byte times).
#: IEEE 802.3 clause 3 and 4.
WIRE_EXTRA = 8 + 4 + 12


@dataclass(frozen=True, slots=True)
class Band:
    """One run of bytes in a frame owned by one layer (``name`` ``None``: owned by none, e.g. padding)."""

    name: str | None
    osi: int
    tcpip: str
    start: int
    length: int


def frame_layout(pkt: Packet) -> list[Band]:
    """The frame cut into runs of bytes, each owned by one layer, in byte order.

    >>> # [Band('eth', 2, 'link', 0, 14), Band('ip', 3, 'internet', 14, 20), ...]
    """
    bands: list[Band] = []
    position = 0
    for layer in pkt.layers:
        if layer.offset > position:
            bands.append(Band(None, 0, "", position, layer.offset - position))
        start = max(layer.offset, position)
        end = min(len(pkt.data), layer.offset + layer.length)
        if end > start:
            bands.append(Band(layer.name, layer.osi, layer.tcpip, start, end - start))
            position = end
    if position < len(pkt.data):
        bands.append(Band(None, 0, "", position, len(pkt.data) - position))
    return bands


def _band_colour(band: Band) -> str:
    return colour_for(band.osi) if band.name else GREY


def frame_figure(pkt: Packet, *, title: str | None = None) -> Any:
    """One frame, three ways: its bytes coloured by layer, and its place in OSI and in TCP/IP.

    The top panel is the frame as a band of bytes (byte 0 on the left). The two lower
    panels are the models as stacks: OSI's seven layers and RFC 1122's four, with the
    frame's protocols written into the layer that holds them. A protocol's colour is the
    colour of its OSI layer everywhere.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig = plt.figure(figsize=(14, 8.5))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 2.6), hspace=0.45, wspace=0.25)
    top = fig.add_subplot(grid[0, :])
    for band in frame_layout(pkt):
        top.barh(
            0, band.length, left=band.start, color=_band_colour(band), edgecolor="black", height=0.8
        )
        if band.name and band.length >= max(6, len(pkt.data) // 40):
            top.text(
                band.start + band.length / 2,
                0,
                f"{band.name}\n{band.length} B",
                ha="center",
                va="center",
                fontsize=FONT - 1,
            )
    top.set_xlim(0, max(len(pkt.data), 1))
    top.set_yticks([])
    names = [lay.name for lay in pkt.layers]
    finish(
        top,
        title or f"Packet #{pkt.no}: {len(pkt.data)} bytes, {' / '.join(names)}",
        "byte offset in the frame",
        "",
        legend=False,
        tight=False,
    )

    def stack(
        ax: Any, model: Sequence[Any], colours: list[str], members: list[list[str]], heading: str
    ) -> None:
        for index, (layer, colour, held) in enumerate(zip(model, colours, members, strict=True)):
            filled = bool(held)
            ax.barh(
                index,
                1,
                color=colour if filled else "white",
                edgecolor="black",
                height=0.92,
                hatch=None if filled else "//",
                alpha=1.0 if filled else 0.6,
            )
            label = f"{layer.number} {layer.name}  ({layer.pdu})"
            ax.text(0.03, index, label, va="center", ha="left", fontsize=FONT - 1)
            if held:
                ax.text(
                    0.97,
                    index,
                    ", ".join(held),
                    va="center",
                    ha="right",
                    fontsize=FONT,
                    weight="bold",
                )
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.6, len(model) - 0.4)
        ax.set_xticks([])
        ax.set_yticks([])
        finish(ax, heading, "", "", legend=False, tight=False)

    osi_members: list[list[str]] = [[] for _ in OSI]
    tcpip_keys = ["link", "internet", "transport", "application"]
    tcpip_members: list[list[str]] = [[] for _ in TCPIP]
    for lay in pkt.layers:
        osi_members[lay.osi - 1].append(lay.name)
        tcpip_members[tcpip_keys.index(lay.tcpip)].append(lay.name)
    stack(
        fig.add_subplot(grid[1, 0]),
        OSI,
        [OSI_COLOURS[n] for n in range(1, 8)],
        osi_members,
        "OSI (ISO/IEC 7498-1)",
    )
    stack(
        fig.add_subplot(grid[1, 1]),
        TCPIP,
        [TCPIP_COLOURS[k] for k in tcpip_keys],
        tcpip_members,
        "TCP/IP (RFC 1122)",
    )
    handles = [
        Patch(color=OSI_COLOURS[n], label=f"L{n} {osi_name(n)}")
        for n in sorted({lay.osi for lay in pkt.layers})
    ]
    handles.append(
        Patch(facecolor="white", edgecolor="black", hatch="//", label="not in this frame")
    )
    fig.legend(
        handles=handles, loc="lower center", ncol=len(handles), fontsize=FONT - 2, frameon=False
    )
    fig.subplots_adjust(bottom=0.1, top=0.9)
    return fig


def overhead_chart(
    packets: Sequence[Packet],
    *,
    labels: Sequence[str] | None = None,
    title: str = "Header bytes per layer",
) -> Any:
    """Stacked bars, one per packet: the bytes of each layer, with the application data on top.

    Headers are what each layer costs; the application layer is what the user wanted.
    A bare ACK is all overhead; a full-size data segment is mostly payload.
    """
    fig, ax = new_figure()
    names_seen: dict[str, int] = {}
    for index, pkt in enumerate(packets):
        bottom = 0
        for band in frame_layout(pkt):
            key = band.name or "padding"
            label = None
            if key not in names_seen:
                names_seen[key] = band.osi
                label = f"{key} (L{band.osi})" if band.name else "padding (no layer)"
            ax.bar(
                index,
                band.length,
                bottom=bottom,
                color=_band_colour(band),
                edgecolor="black",
                label=label,
            )
            bottom += band.length
        ax.text(index, bottom, f"{bottom} B", ha="center", va="bottom", fontsize=FONT - 1)
    ax.set_xticks(range(len(packets)))
    ax.set_xticklabels(labels or [f"#{p.no}" for p in packets], fontsize=FONT - 1)
    return finish(ax, title, "packet", "bytes in the frame", legend_loc="upper left").figure


def segments(body: int, mss: int) -> list[int]:
    """How TCP cuts ``body`` bytes into segments of at most ``mss`` bytes of payload.

    >>> segments(4000, 1460)
    [1460, 1460, 1080]
    """
    if mss <= 0:
        raise ValueError("the MSS must be positive")
    full, rest = divmod(body, mss)
    return [mss] * full + ([rest] if rest else [])


def goodput(
    payload: int, *, ip: int = 20, tcp: int = 20, link: int = 14, wire: int = WIRE_EXTRA
) -> float:
    """The share of the wire's bytes that is application data, for one segment of ``payload`` bytes.

    Per frame the wire carries ``wire`` (preamble, FCS, gap) + ``link`` + ``ip`` + ``tcp``
    header bytes besides the payload. A 1460-byte payload behind 20 + 20 + 14 (+24 wire)
    bytes reaches about 95 %.

    >>> round(goodput(1460), 3)
    0.949
    """
    return payload / (payload + ip + tcp + link + wire) if payload > 0 else 0.0


def segmentation_figure(
    body: int, mtu: int = 1500, *, ip: int = 20, tcp: int = 32, link: int = 14
) -> Any:
    """One response of ``body`` bytes cut into frames for a given MTU: headers and payload per frame."""
    mss = mtu - ip - tcp
    parts = segments(body, mss)
    fig, ax = new_figure()
    layers = (("eth", 2, link), ("ip", 3, ip), ("tcp", 4, tcp))
    for index, payload in enumerate(parts):
        left = 0
        for name, osi, size in layers:
            ax.barh(
                index,
                size,
                left=left,
                color=colour_for(osi),
                edgecolor="black",
                label=f"{name} header ({size} B)" if index == 0 else None,
            )
            left += size
        ax.barh(
            index,
            payload,
            left=left,
            color=colour_for(7),
            edgecolor="black",
            label="application data" if index == 0 else None,
        )
        ax.text(left + payload + 10, index, f"{payload} B", va="center", fontsize=FONT - 1)
    ax.invert_yaxis()
    ax.set_yticks(range(len(parts)))
    ax.set_yticklabels([f"segment {i + 1}" for i in range(len(parts))])
    ax.set_xlim(0, mtu + link + 260)
    ax.axvline(mtu + link, color="black", linestyle="--", label=f"MTU {mtu} + Ethernet header")
    title = f"A {body}-byte response over MTU {mtu}: MSS {mss}, {len(parts)} segments"
    return finish(ax, title, "bytes in the frame", "frame", legend_loc="lower right").figure


def goodput_plot(
    mtus: Sequence[int] = (576, 1500, 9001),
    *,
    ip: int = 20,
    tcp: int = 32,
    link: int = 14,
    largest: int = 64_000,
) -> Any:
    """Goodput (useful share of the wire) of a response of growing size, one line per MTU.

    Each line rises in steps: every new segment pays all the headers again. A bigger MTU
    (AWS uses 9001 inside a VPC, 1500 to the internet) means fewer segments and fewer
    headers for the same data.
    """
    import numpy as np

    fig, ax = new_figure()
    sizes = np.unique(np.geomspace(1, largest, 600).astype(int))
    styles = ("-", "--", "-.", ":")
    for index, mtu in enumerate(mtus):
        mss = mtu - ip - tcp
        values = []
        for size in sizes:
            count = math.ceil(size / mss)
            values.append(size / (size + count * (ip + tcp + link + WIRE_EXTRA)))
        ax.plot(
            sizes,
            values,
            styles[index % len(styles)],
            linewidth=2.5,
            label=f"MTU {mtu} (MSS {mss})",
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    return finish(
        ax,
        "Goodput: application bytes / bytes on the wire",
        "response size (bytes, log scale)",
        "goodput (share of the wire)",
        legend_loc="lower right",
    ).figure


#: The TCP flags the figures name, in the order their labels list them.
_FLAG_NAMES = ((TCP_SYN, "SYN"), (TCP_FIN, "FIN"), (TCP_RST, "RST"), (TCP_PSH, "PSH"),
               (TCP_ACK, "ACK"))  # fmt: skip


def flag_label(flags: int | None) -> str:
    """``0x12`` -> ``"SYN,ACK"``: the figures' label for a segment's TCP flags (RFC 9293
    section 3.1); ``""`` when none of SYN, FIN, RST, PSH or ACK is set."""
    return ",".join(name for bit, name in _FLAG_NAMES if (flags or 0) & bit)


def _what(pkt: Packet) -> str:
    top = pkt.layers[-1] if pkt.layers else None
    size = len(pkt.payload)
    if top is not None and top.name not in ("tcp", "data") and top.osi >= 5:
        text = top.summary.splitlines()[0] if top.summary else top.name
        return (text[:44] + "...") if len(text) > 47 else text
    flags = f"[{flag_label(pkt.tcp_flags)}]"
    return f"{flags} {size} B" if size else flags


def ladder_diagram(
    conv: Conversation,
    *,
    limit: int = 40,
    title: str | None = None,
    mark: dict[int, str] | None = None,
) -> Any:
    """A TCP conversation as a ladder: client on the left, server on the right, time going down.

    Each arrow is one packet, labelled with its number and what it carries (flags and
    payload size, or the application message it completes). Arrows slope because a
    packet arrives later than it leaves; in a capture taken at one point we only know
    when it passed that point, so the slope here is drawn, not measured. ``mark``
    highlights chosen packets (packet number -> label, e.g. where a balancer decided).
    """
    packets = conv.packets[:limit]
    mark = mark or {}
    height = max(6.5, 0.42 * len(packets) + 2)
    fig, ax = new_figure((13, height))
    ax.axvline(0, color="black", linewidth=3)
    ax.axvline(1, color="black", linewidth=3)
    start = packets[0].time if packets else 0.0
    seen_labels: set[str] = set()
    for row, pkt in enumerate(packets):
        client = conv.from_client(pkt)
        x0, x1 = (0.02, 0.98) if client else (0.98, 0.02)
        carries_data = bool(pkt.payload)
        layer = 7 if carries_data else 4
        colour = colour_for(layer)
        label = "carries application data" if carries_data else "TCP control only (no payload)"
        ax.annotate(
            "",
            xy=(x1, row + 0.6),
            xytext=(x0, row),
            arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.5 if carries_data else 1.8},
        )
        if label not in seen_labels:
            ax.plot([], [], color=colour, linewidth=3, label=label)
            seen_labels.add(label)
        text = f"#{pkt.no}  {_what(pkt)}   +{(pkt.time - start) * 1000:.1f} ms"
        ax.text(
            0.5,
            row + 0.2,
            text,
            ha="center",
            va="bottom",
            fontsize=FONT - 2,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
        if pkt.no in mark:
            ax.text(
                1.03,
                row + 0.3,
                mark[pkt.no],
                ha="left",
                va="center",
                fontsize=FONT - 1,
                weight="bold",
                color="#B00000",
            )
    ax.set_xlim(-0.15, 1.45 if mark else 1.15)
    ax.set_ylim(len(packets) + 0.5, -1.2)
    ax.set_xticks([0, 1])
    ax.set_xticklabels(
        [f"client\n{conv.flow.client}", f"server\n{conv.flow.server}"], fontsize=FONT - 1
    )
    ax.set_yticks([])
    more = f" (first {limit} of {len(conv.packets)})" if len(conv.packets) > limit else ""
    ax.legend(
        fontsize=FONT - 1, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False
    )
    return finish(
        ax, title or f"TCP conversation{more}", "", "time (downwards)", legend=False
    ).figure


def reassembly_figure(conv: Conversation, *, title: str | None = None) -> Any:
    """The client's byte stream as TCP numbers it, coloured by the packet that carried each run.

    The x axis is the relative sequence number (byte 0 = the first byte after the SYN).
    Each bar is one packet's payload; a request split over several segments shows as
    several bars that together make one request, and a retransmission as a bar drawn
    over bytes already seen. The dashed lines mark where a request head ends (the
    empty line ``\\r\\n\\r\\n``): the byte an L7 balancer waits for.
    """
    import matplotlib.pyplot as plt

    fig, ax = new_figure()
    client = [p for p in conv.packets if conv.from_client(p)]
    isn = None
    for pkt in client:
        if (pkt.tcp_flags or 0) & TCP_SYN:
            isn = (pkt.tcp_seq or 0) + 1
            break
    data_packets = [p for p in client if p.payload]
    if isn is None and data_packets:
        isn = data_packets[0].tcp_seq or 0
    cmap = plt.get_cmap("tab10")
    stream = bytearray()
    for row, pkt in enumerate(data_packets):
        start = ((pkt.tcp_seq or 0) - (isn or 0)) & 0xFFFFFFFF
        size = len(pkt.payload)
        ax.barh(
            row,
            size,
            left=start,
            color=cmap(row % 10),
            edgecolor="black",
            label=f"packet #{pkt.no}",
        )
        ax.text(
            start + size / 2,
            row,
            f"#{pkt.no}: bytes {start}-{start + size - 1}",
            ha="center",
            va="center",
            fontsize=FONT - 2,
        )
        if start == len(stream):
            stream += pkt.payload
    position = 0
    first_line = True
    while True:
        end = bytes(stream).find(b"\r\n\r\n", position)
        if end < 0:
            break
        ax.axvline(
            end + 4,
            color="#B00000",
            linestyle="--",
            linewidth=2,
            label="end of a request head (\\r\\n\\r\\n)" if first_line else None,
        )
        first_line = False
        position = end + 4
    ax.invert_yaxis()
    ax.set_yticks(range(len(data_packets)))
    ax.set_yticklabels([f"#{p.no}" for p in data_packets])
    ax.set_xlim(left=0)
    heading = title or f"Client -> server bytes of {conv.flow}, by packet"
    finish(
        ax,
        heading,
        "relative sequence number (byte of the stream)",
        "packet",
        legend=False,
        tight=False,
    )
    ax.legend(fontsize=FONT - 2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig

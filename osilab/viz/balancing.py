"""Figures for the balancer lessons that are about packets, not about the models' internals.

* :func:`visible_bytes` and :func:`visibility_figure` - the same packets as an L4 and
  an L7 balancer read them: which bytes each one looks at, and at which packet it can
  decide;
* :func:`grouped_counts_chart` - requests (or connections, or streams) per target, one
  group of bars per model; the distribution plots of the NLB/ALB lessons;
* :func:`timeline_chart` - a Gantt chart of intervals (a request's journey hop by hop,
  or the time each balancer waited before deciding).

The balancer engineer's figures of the models themselves live in
:mod:`osilab.viz.balancers`; this module only needs packets and numbers.
It reads no file and prints nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osilab.capture.packet import Packet
from osilab.layers.palette import colour_for
from osilab.viz.conversation import Conversation
from osilab.viz.layers import frame_layout
from osilab.viz.style import FONT, GREY, bar_groups, finish, new_figure

__all__ = [
    "L4_READS",
    "L7_READS",
    "visible_bytes",
    "visibility_figure",
    "grouped_counts_chart",
    "Interval",
    "timeline_chart",
]

#: The layers an L4 balancer (AWS NLB) reads to choose a target: addresses and ports.
L4_READS = frozenset({"ip", "ipv6", "tcp", "udp"})
#: The layers an L7 balancer (AWS ALB) reads to choose a target: the HTTP request head
#: (it terminates TCP itself, so the client's TCP header is for its own TCP stack, not
#: for routing; the source IP it may match comes from its own socket).
L7_READS = frozenset({"http", "http2", "tls"})


def _reads_band(name: str | None, osi: int, reads: frozenset[str], from_client: bool) -> bool:
    """Whether a balancer that reads ``reads`` looks at this run of bytes to route.

    An L4 balancer reads the IP and TCP/UDP headers of every packet (that is how it finds
    the packet's flow). An L7 balancer routes on what the client sends above TCP: every
    application byte from the client counts (a request head split over four segments is
    read in all four, even where a segment alone decodes as plain ``data``), and nothing
    the server sends back.
    """
    if name is None:
        return False
    if reads is L7_READS or reads & L7_READS:
        return from_client and (name in reads or osi >= 5)
    return name in reads


def visible_bytes(pkt: Packet, reads: frozenset[str], *, from_client: bool = True) -> int:
    """How many bytes of ``pkt`` a balancer reading the layers ``reads`` looks at to route."""
    return sum(
        b.length for b in frame_layout(pkt) if _reads_band(b.name, b.osi, reads, from_client)
    )


def visibility_figure(
    conv: Conversation, *, l4_decided_at: int | None, l7_decided_at: int | None, limit: int = 12
) -> Any:
    """The first packets of one connection, twice: as an NLB reads them and as an ALB reads them.

    Each row is a packet, drawn as its bytes (as in :func:`osilab.viz.layers.frame_figure`).
    A byte is in its layer's colour when that balancer reads it to route, grey when it does
    not. The row where each balancer has what it needs is outlined in red: the NLB at the
    SYN, the ALB only when the request head is complete, one round trip and more later.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    packets = conv.packets[:limit]
    fig, axes = plt.subplots(1, 2, figsize=(15, max(6.5, 0.55 * len(packets) + 2.5)), sharey=True)
    panels = (
        ("L4 balancer (NLB) reads", L4_READS, l4_decided_at),
        ("L7 balancer (ALB) reads", L7_READS, l7_decided_at),
    )
    widest = max((len(p.data) for p in packets), default=1)
    read_layers: set[int] = set()
    for ax, (heading, reads, decided) in zip(axes, panels, strict=True):
        for row, pkt in enumerate(packets):
            for band in frame_layout(pkt):
                seen = _reads_band(band.name, band.osi, reads, conv.from_client(pkt))
                if seen:
                    read_layers.add(band.osi)
                ax.barh(
                    row,
                    band.length,
                    left=band.start,
                    color=colour_for(band.osi) if seen else GREY,
                    edgecolor="white" if not seen else "black",
                    linewidth=0.5,
                    height=0.8,
                )
            if decided == pkt.no:
                ax.barh(
                    row,
                    len(pkt.data),
                    left=0,
                    fill=False,
                    edgecolor="#B00000",
                    linewidth=3,
                    height=0.95,
                )
                ax.text(
                    len(pkt.data) + widest * 0.02,
                    row,
                    "decides here",
                    color="#B00000",
                    va="center",
                    fontsize=FONT - 1,
                    weight="bold",
                )
        ax.set_xlim(0, widest * 1.35)
        ax.set_yticks(range(len(packets)))
        ax.set_yticklabels([f"#{p.no} {'->' if conv.from_client(p) else '<-'}" for p in packets])
        when = f"packet #{decided}" if decided is not None else "never (in these packets)"
        finish(
            ax,
            f"{heading}\n(decides at {when})",
            "byte offset in the frame",
            "packet (-> client to server)",
            legend=False,
            tight=False,
        )
    axes[0].invert_yaxis()
    handles = [
        Patch(color=colour_for(n), label=f"read by the balancer, OSI layer {n}")
        for n in sorted(read_layers)
    ]
    handles.append(Patch(color=GREY, label="passes through, not read to route"))
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(3, len(handles)),
        fontsize=FONT - 2,
        frameon=False,
    )
    fig.subplots_adjust(bottom=0.22)
    return fig


def grouped_counts_chart(
    counts: Mapping[str, Mapping[str, int]],
    *,
    title: str,
    xlabel: str = "target",
    ylabel: str = "requests",
    colours: Mapping[str, str] | None = None,
) -> Any:
    """Grouped bars: for each target, one bar per model (``{"NLB": {target: n}, "ALB": {...}}``).

    An even spread has bars of equal height; the number over each bar is the count.
    ``colours`` gives a series its colour when it stands for a layer (take it from
    :func:`osilab.layers.palette.colour_for`); otherwise the series take the transport,
    application, network and presentation colours in turn.
    """
    fig, ax = new_figure()
    models, targets, width = bar_groups(counts)
    hatches = ("", "//", "..", "xx")
    cycle = (colour_for(4), colour_for(7), colour_for(3), colour_for(6))
    for m_index, model in enumerate(models):
        for t_index, target in enumerate(targets):
            value = counts[model].get(target, 0)
            x = t_index + (m_index - (len(models) - 1) / 2) * width
            ax.bar(
                x,
                value,
                width=width,
                color=(colours or {}).get(model, cycle[m_index % 4]),
                hatch=hatches[m_index % 4],
                edgecolor="black",
                label=model if t_index == 0 else None,
            )
            ax.text(x, value, str(value), ha="center", va="bottom", fontsize=FONT - 1)
    ax.set_xticks(range(len(targets)))
    ax.set_xticklabels(targets, fontsize=FONT - 2, rotation=10)
    return finish(ax, title, xlabel, ylabel).figure


@dataclass(frozen=True, slots=True)
class Interval:
    """One bar of a timeline: a labelled interval, in seconds, with the OSI layer it is about."""

    label: str
    start: float
    end: float
    osi: int = 7
    note: str = ""


def timeline_chart(
    intervals: Sequence[Interval],
    *,
    title: str,
    xlabel: str = "milliseconds from the first packet",
    ylabel: str = "",
) -> Any:
    """A Gantt chart: one bar per interval, from its start to its end, coloured by layer.

    Used for a request's journey through the hops, and for "how long did each balancer
    wait before it could decide".
    """
    fig, ax = new_figure((13, max(5.0, 0.7 * len(intervals) + 2.5)))
    origin = min((i.start for i in intervals), default=0.0)
    seen: set[int] = set()
    for row, item in enumerate(intervals):
        left = (item.start - origin) * 1000
        width = max((item.end - item.start) * 1000, 0.0)
        label = f"OSI layer {item.osi}" if item.osi not in seen else None
        seen.add(item.osi)
        ax.barh(
            row,
            width if width > 0 else 0.001,
            left=left,
            color=colour_for(item.osi),
            edgecolor="black",
            label=label,
        )
        ax.text(left + width, row, f"  {width:.3f} ms {item.note}", va="center", fontsize=FONT - 2)
    ax.set_yticks(range(len(intervals)))
    ax.set_yticklabels([i.label for i in intervals], fontsize=FONT - 2)
    ax.invert_yaxis()
    right = max(((i.end - origin) * 1000 for i in intervals), default=1.0)
    ax.set_xlim(0, right * 1.45 if right > 0 else 1)
    return finish(ax, title, xlabel, ylabel, legend_loc="lower right").figure

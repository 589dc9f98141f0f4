"""Figures of the balancer models: where traffic went, when each model decided, and why.

* :func:`target_distribution` - requests (or flows) per target for each model, with the
  imbalance (max / mean) in the legend;
* :func:`decision_timeline` - every decision as a point: packet number across, target
  down, one marker style per model. The NLB's points sit on SYNs; the ALB's on the
  packets that completed request heads;
* :func:`ladder` - a ladder (sequence) diagram client - balancer - target for one
  connection, marking the packet where each model decided; the NLB passes every packet
  through to the target, the ALB answers the handshake itself and opens its own
  connection to the target after deciding.

Colours: the NLB is drawn in the transport layer's colour (OSI 4), the ALB in the
application layer's (OSI 7), from the one palette :mod:`osilab.layers.palette`; the
sizes and fonts come from :mod:`osilab.viz.style`. Functions return the matplotlib
``Figure``; they read no file and print nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from osilab.layers.palette import colour_for
from osilab.viz.layers import flag_label
from osilab.viz.style import FONT, GREY, bar_groups, finish, new_figure

__all__ = ["MODEL_COLOURS", "target_distribution", "decision_timeline", "ladder"]

#: Each model in the colour of the layer it works at.
MODEL_COLOURS: Mapping[str, str] = {"NLB": colour_for(4), "ALB": colour_for(7)}
_MARKERS = {"NLB": "s", "ALB": "o"}


def _imbalance(values: Iterable[int]) -> float:
    items = list(values)
    return max(items) / (sum(items) / len(items)) if items and sum(items) else 0.0


def _per_model_counts(source: Any) -> dict[str, dict[str, int]]:
    """``{"NLB": {target: n}, "ALB": {...}}`` from a Comparison, Replays or a mapping."""
    if hasattr(source, "nlb_request_counts") and hasattr(source, "alb_request_counts"):
        return {"NLB": source.nlb_request_counts(), "ALB": source.alb_request_counts()}
    if isinstance(source, Mapping):
        return {str(k): dict(v) for k, v in source.items()}
    result = {}
    for replay in source if isinstance(source, (list, tuple)) else [source]:
        result[replay.balancer.upper()] = replay.decisions.counts()
    return result


def target_distribution(source: Any, *, title: str | None = None, unit: str = "requests") -> Any:
    """Bars of traffic per target, one group per target and one bar per model.

    ``source`` is a :class:`~osilab.balancers.compare.Comparison` (requests per target,
    NLB and ALB), a :class:`~osilab.balancers.replay.Replay` or a list of them (decisions
    per target), or a mapping ``{"NLB": {target: count}, ...}``.
    """
    counts = _per_model_counts(source)
    fig, ax = new_figure()
    models, targets, width = bar_groups(counts)
    for m, model in enumerate(models):
        colour = MODEL_COLOURS.get(model, colour_for(3))
        ratio = _imbalance(counts[model].values())
        xs = [t + (m - (len(models) - 1) / 2) * width for t in range(len(targets))]
        values = [counts[model].get(target, 0) for target in targets]
        bars = ax.bar(
            xs,
            values,
            width=width,
            color=colour,
            edgecolor="black",
            hatch="" if m == 0 else "//",
            label=f"{model} (imbalance max/mean {ratio:.2f})",
        )
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                value,
                str(value),
                ha="center",
                va="bottom",
                fontsize=FONT - 1,
            )
    ax.set_xticks(range(len(targets)))
    ax.set_xticklabels(targets, fontsize=FONT - 2)
    ax.margins(y=0.15)
    return finish(ax, title or f"{unit.capitalize()} per target", "target", unit).figure


def decision_timeline(source: Any, *, title: str | None = None) -> Any:
    """Each decision as a point: packet number across, target down.

    ``source`` is a Comparison, a Replay, a list of Replays, or ``{"NLB": decisions, ...}``.
    Decisions that forwarded nothing (redirect, fixed-response, blocked) are drawn on a
    row of their own named after the action.
    """
    if hasattr(source, "nlb") and hasattr(source, "alb"):
        series = {"NLB": list(source.nlb.decisions), "ALB": list(source.alb.decisions)}
    elif isinstance(source, Mapping):
        series = {str(k): list(v) for k, v in source.items()}
    else:
        replays = source if isinstance(source, (list, tuple)) else [source]
        series = {r.balancer.upper(): list(r.decisions) for r in replays}
    rows: list[str] = []
    for decisions in series.values():
        for d in decisions:
            label = d.target or d.action
            if label not in rows:
                rows.append(label)
    rows.sort()
    fig, ax = new_figure()
    for model, decisions in series.items():
        xs = [d.decided_at for d in decisions]
        ys = [rows.index(d.target or d.action) for d in decisions]
        ax.scatter(
            xs,
            ys,
            s=140,
            marker=_MARKERS.get(model, "^"),
            color=MODEL_COLOURS.get(model, colour_for(3)),
            edgecolor="black",
            label=f"{model}: {len(decisions)} decisions",
            zorder=3,
            alpha=0.85,
        )
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=FONT - 1)
    ax.grid(axis="x", color=GREY, zorder=0)
    return finish(
        ax, title or "When and where each balancer decided", "packet number", "target"
    ).figure


def _mark_decision(ax: Any, y: float, model: str, packet_no: int) -> None:
    """The marker on the balancer's line where ``model`` decided, in the model's colour."""
    ax.scatter(
        [1.0],
        [y],
        s=320,
        marker=_MARKERS[model],
        color=MODEL_COLOURS[model],
        edgecolor="black",
        zorder=4,
        label=f"{model} decides (packet {packet_no})",
    )


def ladder(
    packets: Sequence[Any],
    *,
    client: tuple[str, int] | None = None,
    nlb_decided_at: int | None = None,
    alb_decided_at: Sequence[int] | int | None = None,
    target: str = "target",
    limit: int = 16,
    title: str | None = None,
) -> Any:
    """A ladder diagram client - balancer - target for one TCP connection.

    ``packets`` are the connection's packets (objects with ``no``, ``ip_src``,
    ``src_port``, ``tcp_flags`` and ``payload``); ``client`` is the client's
    ``(ip, port)`` (default: the source of the first packet). Each packet is an arrow
    between client and balancer, labelled with its number, flags and payload size.
    The packet where the NLB decided gets a square marker, those where the ALB decided a
    round one. Beside them, what reaches the target: the NLB forwards every packet as it
    is (dashed arrows); the ALB forwards each request only after deciding, over its own
    connection (dotted arrows).
    """
    shown = list(packets)[:limit]
    if not shown:
        raise ValueError("ladder() needs at least one packet")
    if client is None:
        client = (shown[0].ip_src, shown[0].src_port)
    alb_marks = set([alb_decided_at] if isinstance(alb_decided_at, int) else (alb_decided_at or []))
    fig, ax = new_figure((13.0, max(6.5, 0.55 * len(shown) + 2)))
    columns = {"client": 0.0, "balancer": 1.0, "target": 2.0}
    for name, x in columns.items():
        ax.plot([x, x], [-0.5, len(shown) + 0.5], color="black", linewidth=2)
        label = target if name == "target" else name
        ax.text(x, -1.0, label, ha="center", va="bottom", fontsize=FONT + 1, fontweight="bold")
    nlb_colour, alb_colour = MODEL_COLOURS["NLB"], MODEL_COLOURS["ALB"]
    for row, packet in enumerate(shown):
        y = row + 0.5
        from_client = (packet.ip_src, packet.src_port) == client
        x0, x1 = (0.0, 1.0) if from_client else (1.0, 0.0)
        flags = packet.tcp_flags or 0
        size = len(getattr(packet, "payload", b"") or b"")
        colour = colour_for(7) if size else colour_for(4)
        ax.annotate(
            "",
            xy=(x1, y + 0.3),
            xytext=(x0, y),
            arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 2},
        )
        text = f"#{packet.no} {flag_label(flags) or '-'}" + (f" {size} B" if size else "")
        ax.text(0.5, y - 0.05, text, ha="center", va="bottom", fontsize=FONT - 3)
        # the NLB passes every packet through, in the same direction
        ax.annotate(
            "",
            xy=(2.0 if from_client else 1.0, y + 0.3),
            xytext=(1.0 if from_client else 2.0, y),
            arrowprops={"arrowstyle": "->", "color": nlb_colour, "linestyle": "--", "alpha": 0.35},
        )
        if packet.no == nlb_decided_at:
            _mark_decision(ax, y, "NLB", packet.no)
        if packet.no in alb_marks:
            _mark_decision(ax, y + 0.15, "ALB", packet.no)
            ax.annotate(
                "",
                xy=(2.0, y + 0.45),
                xytext=(1.0, y + 0.15),
                arrowprops={
                    "arrowstyle": "->",
                    "color": alb_colour,
                    "linestyle": ":",
                    "linewidth": 2.5,
                },
            )
    ax.plot([], [], color=nlb_colour, linestyle="--", label="NLB: every packet passes through")
    ax.plot(
        [],
        [],
        color=alb_colour,
        linestyle=":",
        linewidth=2.5,
        label="ALB: request sent on its own connection",
    )
    ax.set_xlim(-0.4, 2.4)
    ax.set_ylim(len(shown) + 0.8, -1.3)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    finish(
        ax,
        title or "Where each balancer decides, packet by packet",
        "",
        "time (packets, top to bottom)",
        legend=False,
        tight=False,
    )
    ax.legend(
        fontsize=FONT - 2, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False
    )
    fig.tight_layout()
    return fig

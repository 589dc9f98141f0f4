"""How every osilab figure looks: readable from the back of a room on a projector.

The figures are shown to a team on a projector, so the rules are simple and applied by
each figure itself, never through matplotlib's global ``rcParams`` (no global mutable
configuration):

* large figures (:data:`FIGSIZE`, about 13 x 6.5 inches);
* text at :data:`FONT` points or more (:data:`TITLE` for titles);
* every figure has a title, axis labels and, where colours mean something, a legend;
* colours that stand for layers come from the one palette, :mod:`osilab.layers.palette`.

This module knows nothing of packets: it only styles matplotlib axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FIGSIZE", "FONT", "TITLE", "new_figure", "finish", "GREY", "bar_groups"]

#: Default figure size in inches (width, height).
FIGSIZE = (13.0, 6.5)
#: Smallest font size used for labels, ticks and legends (points).
FONT = 15
#: Font size of figure titles (points).
TITLE = 19
#: The colour of things that are *not* a layer (hidden bytes, idle time).
GREY = "#D9D9D9"


def new_figure(size: tuple[float, float] = FIGSIZE, **kwargs: Any) -> tuple[Any, Any]:
    """A new ``(figure, axes)`` pair of a projector-friendly size (``plt.subplots`` arguments allowed)."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, **kwargs)


def finish(
    ax: Any,
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    legend: bool = True,
    legend_loc: str = "best",
    tight: bool = True,
) -> Any:
    """Put the title, axis labels, tick sizes and (optionally) the legend on ``ax``; returns ``ax``.

    ``tight`` re-packs the figure (off for figures with several panels laid out by hand).
    """
    ax.set_title(title, fontsize=TITLE, pad=12)
    ax.set_xlabel(xlabel, fontsize=FONT)
    ax.set_ylabel(ylabel, fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=FONT - 1, loc=legend_loc)
    if tight:
        ax.figure.tight_layout()
    return ax


def bar_groups(counts: Mapping[str, Mapping[str, int]]) -> tuple[list[str], list[str], float]:
    """``(series, groups, bar width)`` of a grouped bar chart drawn from ``counts``.

    ``counts`` is ``{series: {group: n}}`` (``{"NLB": {target: n}, "ALB": {...}}``). The
    groups are every key any series has, in the order first seen; the bars of one group
    share 0.8 of an x unit, so that the groups stay apart. Bar ``m`` of group ``t`` is
    centred on ``t + (m - (len(series) - 1) / 2) * width``.
    """
    series = list(counts)
    groups: list[str] = []
    for per_group in counts.values():
        groups.extend(g for g in per_group if g not in groups)
    return series, groups, 0.8 / max(len(series), 1)

"""The edge cache's figure: which requests the edge answered itself, over time, and the bytes saved.

:func:`cache_timeline` draws one point per request of a CloudFront edge replay
(:class:`~osilab.balancers.cdn.CdnDecision`): time across, the cache status down
(``Hit``, ``RefreshHit``, ``Miss``, ``Redirect``, ``Error``), and on a second axis the
running total of body bytes the origins did *not* send because the edge had them. The
statuses answered at the edge are drawn in the application layer's colour (the edge read
up to layer 7 and answered), those that went on to an origin in the transport layer's
(a new connection to the origin), from the one palette :mod:`osilab.layers.palette`.

It reads decisions, never a file, and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osilab.layers.palette import colour_for
from osilab.viz.style import FONT, finish, new_figure

__all__ = ["CACHE_ROWS", "cache_timeline"]

_MARKERS = {"Hit": "o", "RefreshHit": "D", "Miss": "s", "Redirect": ">", "Error": "X"}

#: The rows of the figure, top to bottom, and whether the edge answered by itself.
CACHE_ROWS = (("Hit", True), ("RefreshHit", False), ("Miss", False), ("Redirect", True),
              ("Error", True))  # fmt: skip


def cache_timeline(decisions: Iterable[Any], *, title: str | None = None) -> Any:
    """Each request as a point (its place in time order, its cache status), and the running
    total of bytes served from the cache.

    ``decisions`` are an edge's decisions (``cache``, ``time``, ``cached_bytes``). Requests
    are spread evenly in time order (a lab's pauses would crowd them into a few columns);
    a gap of more than a second between two requests is marked with its length.
    """
    items = sorted((d for d in decisions if getattr(d, "cache", None)), key=lambda d: d.time)
    fig, ax = new_figure()
    rows = {name: len(CACHE_ROWS) - 1 - i for i, (name, _own) in enumerate(CACHE_ROWS)}
    for name, own in CACHE_ROWS:
        points = [n for n, d in enumerate(items, 1) if d.cache == name]
        if points:
            where = "answered at the edge" if own else "asked an origin"
            ax.scatter(points, [rows[name]] * len(points), s=160, marker=_MARKERS[name],
                       color=colour_for(7 if own else 4), edgecolor="black", zorder=3,
                       label=f"{name} ({len(points)}, {where})")  # fmt: skip
    ax.set_yticks(list(rows.values()), list(rows))
    ax.set_ylim(-0.7, len(CACHE_ROWS) - 0.3)
    saved_axis = ax.twinx()
    total, times, saved = 0, [0.0], [0]
    for n, d in enumerate(items, 1):
        total += getattr(d, "cached_bytes", 0)
        times.append(n)
        saved.append(total)
        if n > 1 and d.time - items[n - 2].time > 1.0:
            ax.axvline(n - 0.5, color="grey", linestyle="--")
            ax.annotate(f"{d.time - items[n - 2].time:.1f} s later", (n - 0.4, -0.5),
                        fontsize=FONT - 3)  # fmt: skip
    saved_axis.step(times, [s / 1024 for s in saved], where="post", color="black",
                    linewidth=2, label="bytes served from the cache (KiB, running total)")  # fmt: skip
    saved_axis.set_ylabel("KiB the origins did not send", fontsize=FONT)
    saved_axis.tick_params(labelsize=FONT - 1)
    saved_axis.set_ylim(bottom=0)
    finish(ax, title or "Which requests the edge answered itself", "request, in time order", "X-Cache",
           legend=False)  # fmt: skip
    handles = ax.get_legend_handles_labels()[0] + saved_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=FONT - 3, loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=2)  # fmt: skip
    fig.tight_layout()
    return fig

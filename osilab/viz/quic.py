"""The QUIC migration figure: one connection, two client addresses, where each one's datagrams went.

:func:`migration_figure` draws, for each balancer (one panel each, side by side), every
datagram of one QUIC connection over time: one row per client address (the first, then
the one it moved to), the client's datagrams as filled circles and the server's answers as
crosses, each coloured by the target the balancer sent that address to. A row whose
circles get no crosses is a client talking to a target that does not know it.

It reads plain rows (no journey, no file) and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osilab.viz.style import FONT, TITLE, new_figure

__all__ = ["MigrationRow", "migration_figure"]

#: Two targets, two colours that stay apart for colour-blind readers (Okabe-Ito).
_TARGET_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")


@dataclass(frozen=True, slots=True)
class MigrationRow:
    """One client address of the connection: its datagrams each way, and its target.

    Attributes:
        label: the row's name (``"198.51.100.7:35824"``).
        target: where the balancer sent this address (``"web1"``).
        sent: times (s, from the connection's start) of the client's datagrams.
        answered: times of the target's datagrams back to this address.
    """

    label: str
    target: str
    sent: tuple[float, ...]
    answered: tuple[float, ...]


def migration_figure(
    panels: Mapping[str, Sequence[MigrationRow]], *, title: str | None = None
) -> Any:
    """One panel per balancer (``title -> rows``, rows in the order the client used them)."""
    fig, axes = new_figure((15.0, 5.8), ncols=len(panels), sharey=False, squeeze=False)
    targets = list(dict.fromkeys(row.target for rows in panels.values() for row in rows))
    colour = {t: _TARGET_COLOURS[i % len(_TARGET_COLOURS)] for i, t in enumerate(targets)}
    for ax, (name, rows) in zip(axes[0], panels.items(), strict=True):
        for y, row in enumerate(reversed(rows)):
            c = colour[row.target]
            ax.scatter(row.sent, [y + 0.12] * len(row.sent), s=140, color=c, edgecolor="black",
                       zorder=3)  # fmt: skip
            ax.scatter(row.answered, [y - 0.12] * len(row.answered), s=140, marker="x",
                       color=c, linewidths=3, zorder=3)  # fmt: skip
            note = f"-> {row.target}: {len(row.sent)} sent, {len(row.answered)} back"
            ax.annotate(note, (0.0, y + 0.32), fontsize=FONT - 1, color=c, fontweight="bold")
        ax.set_yticks(range(len(rows)), [row.label for row in reversed(rows)], fontsize=FONT - 1)
        ax.set_ylim(-0.6, len(rows) - 0.2)
        ax.set_title(name, fontsize=TITLE - 2, pad=10)
        ax.set_xlabel("seconds since the connection's first datagram", fontsize=FONT)
        ax.tick_params(axis="x", labelsize=FONT - 2)
        ax.grid(axis="x", color="#E0E0E0")
    handles = [axes[0][0].scatter([], [], s=140, color="grey", edgecolor="black", label="client's datagram"),
               axes[0][0].scatter([], [], s=140, marker="x", color="grey", linewidths=3,
                                  label="target's datagram back")]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncols=2, fontsize=FONT, frameon=False)
    fig.suptitle(title or "One QUIC connection, two client addresses: where each one went",
                 fontsize=TITLE)  # fmt: skip
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig

"""Shared output helpers for commands: JSON Lines and plain text tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

__all__ = ["write_jsonl", "jsonl_writer", "print_table", "print_hop_table", "cut", "MAX_CELL"]


def write_jsonl(objects: Iterable[dict[str, Any]], out: TextIO | None = None) -> int:
    """Write one compact JSON object per line; returns how many were written."""
    out = out or sys.stdout
    count = 0
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
    for obj in objects:
        out.write(dumps(obj))
        out.write("\n")
        count += 1
    return count


def jsonl_writer(out: TextIO | None = None) -> Callable[[dict[str, Any]], None]:
    """A function that writes one object as one line, as :func:`write_jsonl` does
    (for output that streams: each object written as soon as it exists)."""
    out = out or sys.stdout
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
    write = out.write

    def write_one(obj: dict[str, Any]) -> None:
        write(dumps(obj) + "\n")

    return write_one


#: The widest a table cell gets: longer text (a request target, a why) is cut with "...";
#: ``--json`` always has it whole.
MAX_CELL = 60


def cut(text: str, width: int = MAX_CELL) -> str:
    """``text``, or its first ``width - 3`` characters and ``...`` when it is longer.

    >>> cut("/a" * 40, 10)
    '/a/a/a/...'
    """
    return text if len(text) <= width else text[: width - 3] + "..."


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], out: TextIO | None = None
) -> int:
    """Print rows under headers, columns padded to the widest cell (cells cut at
    :data:`MAX_CELL` characters); returns the row count."""
    out = out or sys.stdout
    materialised = [["" if cell is None else cut(str(cell)) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in materialised:
        for i, cell in enumerate(row):
            if i < len(widths):
                widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False))
    out.write(line.rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in materialised:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")
    return len(materialised)


def print_hop_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    show_hop: Callable[[], bool],
    out: TextIO | None = None,
) -> int:
    """:func:`print_table` for rows whose first cell is the hop (capture interface) name.

    The ``hop`` column is shown only when ``show_hop()`` says so (a capture of several
    interfaces); it is asked after the rows are read, when every interface is known.
    """
    materialised = [tuple(row) for row in rows]
    if show_hop():
        return print_table(("hop", *headers), materialised, out)
    return print_table(headers, [row[1:] for row in materialised], out)

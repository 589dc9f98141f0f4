"""A progress bar for commands that read big captures, shown only when it helps.

A command that reads a 2 GB capture is silent for a minute; a bar on stderr says it is
working. But a bar is noise everywhere else, so :func:`progress` shows one only when all
of these hold:

* the command allows it (``enabled``: commands pass ``not (args.json or args.quiet)``,
  so JSON output and ``--quiet`` never get a bar);
* the capture is big: at least :data:`THRESHOLD_BYTES` (20 MB) on disk;
* stderr is a terminal (not a pipe, a file or CI's log);
* tqdm is installed (it is optional: without it, no bar).

In a Jupyter notebook, :func:`notebook_progress` uses ``tqdm.auto``, which draws a
widget when ipywidgets is there and a text bar otherwise.

How a bar follows the reading without the readers knowing of bars: a
:class:`~osilab.capture.reader.Capture` has a ``progress`` slot, a plain callable that the
readers (the full one and the fast record walk) call with the number of bytes they have
just read from the file, about once per MiB. :class:`ByteBar` is such a callable; the
commands attach one with :func:`attach` (``osilab.commands._capture.open_capture``), and
library calls (``replay``, ``iter_http``) with :func:`library_bar` when they run in a
notebook. The work itself never sees the bar, and a bar costs one call per MiB.

The bar counts **bytes of the file**, not packets: the number of packets is unknown
until the end, while the file size is known at once. Callers report progress with the
size of each record they have read (``len(frame) + record header``), which is close
enough for a bar.

What this module must not know: packets, layers or any command's output. It wraps an
iterable and writes only to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

__all__ = [
    "progress",
    "notebook_progress",
    "should_show",
    "file_size",
    "in_notebook",
    "ByteBar",
    "attach",
    "library_bar",
    "THRESHOLD_BYTES",
]

T = TypeVar("T")

#: Captures smaller than this (20 MB) are read too quickly to need a bar.
THRESHOLD_BYTES = 20 * 1024 * 1024


def should_show(
    total_bytes: int | None, *, enabled: bool = True, stream: IO[str] | None = None
) -> bool:
    """True when a bar helps: enabled, a big capture, and a terminal to draw it on."""
    stream = sys.stderr if stream is None else stream
    if not enabled or total_bytes is None or total_bytes < THRESHOLD_BYTES:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or odd stream: no bar
        return False


def progress(
    iterable: Iterable[T],
    *,
    total_bytes: int | None = None,
    enabled: bool = True,
    desc: str = "",
    size_of: Callable[[T], int] | None = None,
    stream: IO[str] | None = None,
) -> Iterator[T]:
    """Yield from ``iterable``, drawing a bar on stderr when :func:`should_show` says so.

    Args:
        iterable: what the command loops over (records, packets, messages...).
        total_bytes: the capture file's size (``os.path.getsize(path)``); no bar without it.
        enabled: ``False`` for ``--json`` and ``--quiet``.
        desc: a few words before the bar (the file name).
        size_of: how many bytes of the file one item stands for; the default counts
            each item as its ``len(item.data) + 16`` (a packet and its pcap record header)
            when it has ``data``, else as 0 (the bar then shows only the rate).
        stream: where to draw (stderr by default); for tests.

    The bar is closed when the loop ends, also on ``break`` or an exception.
    """
    if not should_show(total_bytes, enabled=enabled, stream=stream):
        yield from iterable
        return
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional
        yield from iterable
        return
    measure = size_of or _frame_size
    bar = tqdm(total=total_bytes, desc=desc or None, unit="B", unit_scale=True, unit_divisor=1024,
               file=stream or sys.stderr, leave=False, mininterval=0.5)  # fmt: skip
    try:
        pending = 0
        for item in iterable:
            pending += measure(item)
            if pending >= 1 << 20:  # update per MiB: a bar must not slow the loop
                bar.update(pending)
                pending = 0
            yield item
        bar.update(pending)
    finally:
        bar.close()


def notebook_progress(
    iterable: Iterable[T], *, total_bytes: int | None = None, desc: str = ""
) -> Iterator[T]:
    """The same bar for Jupyter (``tqdm.auto``: a widget when ipywidgets is installed).

    A notebook has no terminal, so the size threshold alone decides.
    """
    if total_bytes is None or total_bytes < THRESHOLD_BYTES:
        yield from iterable
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        yield from iterable
        return
    with tqdm(
        total=total_bytes, desc=desc or None, unit="B", unit_scale=True, unit_divisor=1024
    ) as bar:
        for item in iterable:
            bar.update(_frame_size(item))
            yield item


def file_size(path: str | os.PathLike[str]) -> int | None:
    """A file's size in bytes, or ``None`` when it cannot be known (then no bar)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _frame_size(item: Any) -> int:
    data = getattr(item, "data", None)
    return len(data) + 16 if data is not None else 0


def in_notebook() -> bool:
    """Whether this Python runs inside a Jupyter kernel (where stderr is no terminal).

    Importing ``ipykernel`` is not enough (a test runner or a script may import it
    without being a kernel): the running IPython shell must have a kernel.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython is simply "not a notebook"
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class ByteBar:
    """A progress bar fed bytes read, made lazily: ``bar(n)`` advances it by ``n`` bytes.

    The tqdm bar is created on the first call (so a command that fails before reading
    draws nothing) and :meth:`close` removes it. ``notebook`` picks ``tqdm.auto``.
    """

    __slots__ = ("total", "desc", "stream", "notebook", "_bar")

    def __init__(self, total: int, *, desc: str = "", stream: IO[str] | None = None,
                 notebook: bool = False) -> None:  # fmt: skip
        self.total, self.desc, self.stream, self.notebook = total, desc, stream, notebook
        self._bar: Any = None

    def __call__(self, read: int) -> None:
        if self._bar is None:
            try:
                if self.notebook:
                    from tqdm.auto import tqdm
                else:
                    from tqdm import tqdm
            except ImportError:  # tqdm is optional: no bar
                self._bar = False
                return
            self._bar = tqdm(total=self.total, desc=self.desc or None, unit="B", unit_scale=True,
                             unit_divisor=1024, leave=False, mininterval=0.5,
                             file=None if self.notebook else (self.stream or sys.stderr))  # fmt: skip
        if self._bar:
            self._bar.update(read)

    def close(self) -> None:
        if self._bar:
            self._bar.close()
        self._bar = None


def attach(capture: Any, *, enabled: bool = True, stream: IO[str] | None = None) -> ByteBar | None:
    """Give a command's capture a bar on stderr when :func:`should_show` says so.

    The bar is closed by ``osilab.commands._capture.report_errors`` (every command's last
    step) or by :meth:`ByteBar.close`.
    """
    total = file_size(capture.path)
    if not should_show(total, enabled=enabled, stream=stream):
        return None
    assert total is not None
    bar = ByteBar(total, desc=os.path.basename(capture.path), stream=stream)
    capture.progress = bar
    return bar


@contextmanager
def library_bar(source: Any, *, show: bool | None = None) -> Iterator[None]:
    """A bar for a library call (``replay``, ``iter_http``) on a big capture.

    ``show``: ``None`` (the default) shows one in a notebook only; ``True`` also in a
    terminal; ``False`` never. Only a :class:`~osilab.capture.reader.Capture` (which
    knows its file) without a bar of its own gets one.
    """
    path = getattr(source, "path", None)
    wanted = in_notebook() if show is None else show
    total = file_size(path) if wanted and path is not None and hasattr(source, "progress") else None
    if path is None or total is None or total < THRESHOLD_BYTES or source.progress is not None:
        yield
        return
    bar = ByteBar(total, desc=os.path.basename(path), notebook=in_notebook())
    source.progress = bar
    try:
        yield
    finally:
        source.progress = None
        bar.close()

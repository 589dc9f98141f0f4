"""What every command that reads a capture shares: opening it, reporting read errors.

The promise kept here: damaged records are reported on stderr, one line each naming the
file, the packet number and the byte offset, and reading goes on. A command fails (exit
1) only when nothing at all could be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from osilab._progress import ByteBar, attach
from osilab.capture import Capture, Packet, read
from osilab.capture.filter import compile_filter
from osilab.commands._output import print_hop_table, write_jsonl
from osilab.streams.keys import FlowKey

if TYPE_CHECKING:  # the streams stage is imported where it is read (not by route --lb nlb)
    from osilab.pipeline import Selection

__all__ = ["capture_arguments", "json_argument", "keylog_argument", "open_capture", "report_errors", "packets", "many_hops", "MAX_ERRORS_SHOWN",
           "filter_argument", "chosen_by_filter", "kept_by_filter", "print_listing", "checked_keylog", "report_unread_tls"]

MAX_ERRORS_SHOWN = 20

T = TypeVar("T")


def capture_arguments(parser: argparse.ArgumentParser, *, json_unit: str | None = None,
                      keylog: str | None = None, selects: str | None = None) -> None:
    """The arguments every capture-reading command shares, in this order: ``--quiet``,
    ``FILE``, ``--json`` (one object per ``json_unit``) when the command lists something,
    ``--keylog FILE`` (``keylog`` is its help) when it can decrypt TLS, and ``--filter``
    (:func:`filter_argument`; ``selects`` says what it keeps) when it can be filtered."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (shown on stderr for captures over 20 MB)")
    parser.add_argument("file", help="a pcap or pcapng capture")
    if json_unit:
        json_argument(parser, json_unit)
    if keylog:
        keylog_argument(parser, keylog)
    if selects:
        filter_argument(parser, selects)


def json_argument(parser: argparse.ArgumentParser, unit: str) -> None:
    """``--json``: JSON Lines on stdout, one object per ``unit`` (design.md's contract)."""
    parser.add_argument("--json", action="store_true", help=f"JSON Lines, one object per {unit}")


def keylog_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--keylog FILE``, an NSS key log (``SSLKEYLOGFILE``); ``what`` (its help) says what
    it decrypts. Commands check it with :func:`checked_keylog` before reading."""
    parser.add_argument("--keylog", metavar="FILE", help=what)


def open_capture(path: str, *, progress: bool = False, keylog: str | None = None) -> Capture:
    """Open ``path`` (raises CaptureError with the file named when it is not a capture),
    then check ``keylog`` (``--keylog``) with :func:`checked_keylog`.

    ``progress``: draw a bar on stderr while the capture is read, when it is big and
    stderr is a terminal (:mod:`osilab._progress`); commands pass ``not args.quiet``.
    The bar goes to stderr only, so JSON on stdout is the same with or without it;
    :func:`report_errors` removes it.
    """
    capture = read(path)
    checked_keylog(keylog)
    if progress:
        attach(capture)
    return capture


def checked_keylog(path: str | None) -> str | None:
    """``--keylog FILE``, refused early (a UsageError) when the file does not exist, cannot
    be read or holds no key: a key log that is silently ignored looks like a capture
    that cannot be decrypted."""
    if path is not None:
        from osilab.protocols._tls_crypto import load_keylog

        load_keylog(path)
    return path


def report_unread_tls(flows: set[FlowKey], keylog: str | None) -> None:
    """The stderr note of ``http`` and ``tls``: how many TLS connections stayed sealed."""
    if not flows:
        return
    count = len(flows)
    what = f"{count} TLS connection{'s' if count != 1 else ''}"
    if keylog is None:
        why = "without their keys: give --keylog FILE (an NSS key log, as SSLKEYLOGFILE writes)"
    else:
        why = f"the key log {keylog} has no keys for {'them' if count != 1 else 'it'}"
    print(f"osilab: note: {what} could not be read: {why}", file=sys.stderr)


def packets(capture: Capture, *, streams: bool = True, keylog: str | None = None) -> Iterator[Packet]:
    """The capture's packets; with ``streams``, application layers from reassembly are added.

    Stream-aware dissection (as Wireshark does) puts a message that spans several TCP
    segments on the packet that completes it. Without it, each packet is dissected alone.
    """
    checked_keylog(keylog)
    if streams:
        from osilab.pipeline import annotate

        return annotate(capture, keylog=keylog)
    return iter(capture)


def filter_argument(parser: argparse.ArgumentParser, selects: str) -> None:
    """``--filter EXPR``: a Wireshark display filter (docs/filters.md); ``selects`` says what
    it keeps (``"packets"``, ``"flows with a matching frame"``...)."""
    parser.add_argument("--filter", "-Y", metavar="EXPR", default=None,
                        help=f"Wireshark display filter (docs/filters.md): keeps the {selects}")


def chosen_by_filter(args: argparse.Namespace, capture: Capture) -> Selection | None:
    """``None`` without ``--filter``; else the frames (and requests) it selects, read once
    stream-aware before the command's own read (:func:`osilab.pipeline.selection`)."""
    if getattr(args, "filter", None) is None:
        return None
    compile_filter(args.filter)  # a bad filter fails before the capture is read
    from osilab.pipeline import selection

    return selection(read(capture.path), args.filter, keylog=getattr(args, "keylog", None))


def kept_by_filter(args: argparse.Namespace, capture: Capture, rows: Iterable[T],
                   keep: Callable[[Selection, T], bool]) -> Iterable[T]:
    """``rows`` as they come without ``--filter``; else only those ``keep(selection, row)``
    accepts (e.g. ``lambda chosen, row: chosen.frame(row["packet"])``): the one way the
    listing commands apply :func:`chosen_by_filter`, still streaming."""
    chosen = chosen_by_filter(args, capture)
    if chosen is None:
        return rows
    return (row for row in rows if keep(chosen, row))


def many_hops(capture: Capture) -> bool:
    """Whether the capture was taken on more than one interface (tables then show a hop
    column). Ask once the capture has been read: pcapng may describe interfaces late."""
    return len(capture.interfaces) > 1


def print_listing(args: argparse.Namespace, capture: Capture, rows: Iterable[T], *,
                  as_json: Callable[[T], dict[str, Any]], headers: Sequence[str],
                  cells: Callable[[T], Sequence[object]], unit: str,
                  keep: Callable[[Selection, T], bool] | None = None,
                  table_order: Callable[[T], Any] | None = None) -> None:
    """What a listing command prints on stdout: with ``--json`` one JSON line per row
    (``as_json``), else the table of ``headers`` (``cells`` gives a row's, the hop name
    first: the hop column shows only on a capture of several interfaces) and the line
    ``N {unit}``. ``keep``: how ``--filter`` selects a row (:func:`kept_by_filter`);
    ``table_order``: a sort key for the table only. The JSON streams, row by row."""
    if keep is not None:
        rows = kept_by_filter(args, capture, rows, keep)
    if args.json:
        write_jsonl(as_json(row) for row in rows)
        return
    if table_order is not None:
        rows = sorted(rows, key=table_order)
    count = print_hop_table(headers, (cells(row) for row in rows), lambda: many_hops(capture))
    print(f"{count} {unit}")


def report_errors(capture: Capture, *, damaged: int = 0, unread_tls: set[FlowKey] | None = None,
                  keylog: str | None = None) -> int:
    """Print the capture's read errors to stderr (after :func:`report_unread_tls`'s note on
    ``unread_tls``, the TLS flows ``keylog`` could not open); returns the exit code (1 if
    nothing was read)."""
    bar = getattr(capture, "progress", None)
    if isinstance(bar, ByteBar):
        bar.close()
        capture.progress = None
    if unread_tls:
        report_unread_tls(unread_tls, keylog)
    for err in capture.errors[:MAX_ERRORS_SHOWN]:
        print(f"osilab: warning: {err}", file=sys.stderr)
    if len(capture.errors) > MAX_ERRORS_SHOWN:
        print(f"osilab: warning: ... and {len(capture.errors) - MAX_ERRORS_SHOWN} more read errors",
              file=sys.stderr)
    if damaged:
        print(f"osilab: note: {damaged} packet(s) marked damaged (see their 'damaged' reason)",
              file=sys.stderr)
    if capture.packets_read == 0 and capture.errors:
        return 1
    return 0

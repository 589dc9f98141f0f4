"""What every command that reads a capture shares: opening it, reporting read errors.

The promise kept here: damaged records are reported on stderr, one line each naming the
file, the packet number and the byte offset, and reading goes on. A command fails (exit
1) only when nothing at all could be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from osilab._progress import ByteBar, attach
from osilab.capture import Capture, Packet, read
from osilab.capture.filter import compile_filter
from osilab.pipeline import Selection, annotate, selection
from osilab.protocols._tls_crypto import load_keylog
from osilab.streams.keys import FlowKey

__all__ = ["capture_arguments", "open_capture", "report_errors", "packets", "many_hops", "MAX_ERRORS_SHOWN",
           "filter_argument", "chosen_by_filter", "checked_keylog", "report_unread_tls"]

MAX_ERRORS_SHOWN = 20


def capture_arguments(parser: argparse.ArgumentParser, *, json_unit: str | None = None) -> None:
    """The arguments every capture-reading command shares: ``--quiet``, ``FILE``, and
    ``--json`` (one object per ``json_unit``) when the command lists something."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (shown on stderr for captures over 20 MB)")
    parser.add_argument("file", help="a pcap or pcapng capture")
    if json_unit:
        parser.add_argument("--json", action="store_true",
                            help=f"JSON Lines, one object per {json_unit}")


def open_capture(path: str, *, progress: bool = False) -> Capture:
    """Open ``path`` (raises CaptureError with the file named when it is not a capture).

    ``progress``: draw a bar on stderr while the capture is read, when it is big and
    stderr is a terminal (:mod:`osilab._progress`); commands pass ``not args.quiet``.
    The bar goes to stderr only, so JSON on stdout is the same with or without it;
    :func:`report_errors` removes it.
    """
    capture = read(path)
    if progress:
        attach(capture)
    return capture


def checked_keylog(path: str | None) -> str | None:
    """``--keylog FILE``, refused early (a UsageError) when the file does not exist, cannot
    be read or holds no key: a key log that is silently ignored looks like a capture
    that cannot be decrypted."""
    if path is not None:
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
    return selection(read(capture.path), args.filter, keylog=getattr(args, "keylog", None))


def many_hops(capture: Capture) -> bool:
    """Whether the capture was taken on more than one interface (tables then show a hop
    column). Ask once the capture has been read: pcapng may describe interfaces late."""
    return len(capture.interfaces) > 1


def report_errors(capture: Capture, *, damaged: int = 0) -> int:
    """Print the capture's read errors to stderr; returns the exit code (1 if nothing was read)."""
    bar = getattr(capture, "progress", None)
    if isinstance(bar, ByteBar):
        bar.close()
        capture.progress = None
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

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
from osilab.pipeline import annotate

__all__ = ["capture_arguments", "open_capture", "report_errors", "packets", "many_hops", "MAX_ERRORS_SHOWN"]

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


def packets(capture: Capture, *, streams: bool = True, keylog: str | None = None) -> Iterator[Packet]:
    """The capture's packets; with ``streams``, application layers from reassembly are added.

    Stream-aware dissection (as Wireshark does) puts a message that spans several TCP
    segments on the packet that completes it. Without it, each packet is dissected alone.
    """
    if streams:
        return annotate(capture, keylog=keylog)
    return iter(capture)


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

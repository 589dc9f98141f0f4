"""The ``osilab`` command line: one sub-command per module in :mod:`osilab.commands`.

Each command module exposes ``HELP`` (one line), ``EXAMPLE`` (a shell example shown in
``--help``), ``add_arguments(parser)`` and ``run(args) -> int``. This file only wires
them together and keeps one promise for all of them: a user never sees a Python
traceback. An :class:`~osilab.errors.OsilabError` becomes one clear line on stderr;
anything else is reported as a bug with the command that triggered it.

Exit codes: 0 when something could be read (even if some packets were damaged),
1 when nothing could be read or the input was refused, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from osilab.errors import OsilabError

__all__ = ["main", "COMMANDS"]

#: The sub-commands, in the order ``osilab --help`` lists them: name -> module.
COMMANDS: dict[str, str] = {
    "tour": "osilab.commands.tour",
    "layers": "osilab.commands.layers",
    "show": "osilab.commands.show",
    "summary": "osilab.commands.summary",
    "flows": "osilab.commands.flows",
    "follow": "osilab.commands.follow",
    "http": "osilab.commands.http",
    "tls": "osilab.commands.tls",
    "websocket": "osilab.commands.websocket",
    "route": "osilab.commands.route",
    "compare": "osilab.commands.compare",
    "journey": "osilab.commands.journey",
    "lab": "osilab.commands.lab",
    "config": "osilab.commands.config",
    "export": "osilab.commands.export",
}


def _version() -> str:
    """The installed distribution's version (what ``pip install`` recorded)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("osilab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed: pip install -e . records the version)"


class _VersionAction(argparse.Action):
    """``--version``, as argparse's own action prints it, but the version is looked up only
    when asked: :mod:`importlib.metadata` would cost every command 10 ms or more at start."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                         nargs=0, help="show program's version number and exit")  # fmt: skip

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        print(f"osilab {_version()}")
        parser.exit()


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (the command the user named: only its
    module is imported, so ``osilab route --lb nlb`` does not start by importing the
    modules of the other commands: matplotlib, h2, cryptography ...)."""
    parser = argparse.ArgumentParser(
        prog="osilab",
        description="See how networks really work, on real packet captures.",
        epilog="Run 'osilab COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # not written yet: leave it out of the menu
                continue
            raise
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=f"example:\n  {module.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


#: glibc's ``M_MMAP_THRESHOLD`` (``<malloc.h>``), and the threshold the command line sets.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 2 * 1024 * 1024


def steady_allocator() -> bool:
    """Have the C allocator give big blocks back to the system when they are freed (glibc).

    glibc serves a block of 128 KiB or more with a ``mmap`` of its own, unmapped when freed,
    but each time it frees one it raises that threshold to the block's size (up to 32 MiB,
    ``man mallopt``). A capture of a million flows grows dictionaries and arrays of many
    megabytes, and each growth frees the old copy: once the threshold has risen, the
    copies come from the heap, and the holes they leave between live blocks are never
    returned. A fixed threshold turns that off. 2 MiB keeps the record walk's 1 MiB reads
    on the heap (mapping each would cost system time) and moves every bigger table out:
    a million-SYN flood's ``route --lb alb --json`` peaks 20-30 MiB lower
    (``bench/synflood.py --measure``). The command line owns its process, so it sets this
    once (:func:`main`; a program that calls ``main`` itself, as the tests do, gets it too);
    importing osilab as a library (a notebook) leaves the allocator to its program. Not
    glibc (musl, macOS), or a threshold the user set (``MALLOC_MMAP_THRESHOLD_``, or
    ``glibc.malloc.mmap_threshold`` in ``GLIBC_TUNABLES``): nothing is changed. Returns
    whether the threshold was set.
    """
    chosen = "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", "")
    if not sys.platform.startswith("linux") or chosen:
        return False
    import ctypes  # (only here: a command that is not on Linux never loads it)

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return bool(mallopt is not None and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``osilab`` command; returns the process exit code."""
    steady_allocator()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra:  # a flag the sub-command does not know: show *its* usage, not the menu's
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = commands.choices.get(args.command) if args.command else None
        (command or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except OsilabError as exc:
        print(f"osilab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("osilab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file the user named: a folder that is not there, no permission
        where = f" {exc.filename}" if exc.filename else ""
        print(f"osilab: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the promise: never a traceback
        print(
            f"osilab: internal error in '{args.command}': {type(exc).__name__}: {exc}\n"
            "This is a bug in osilab; please report it with the command you ran.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Where the captures a lesson uses are: the lab's own recordings and the third-party set.

Two kinds of real capture feed the notebooks, the tour and the exercises:

* **bundled** captures recorded by the lab, in the repository's ``captures/`` folder
  (``captures/<scenario>/...``, described in ``captures/README.md``);
* **third-party** captures (Zeek, Suricata, nDPI, Wireshark samples...), kept outside
  the repository in ``shared/captures/thirdparty``. CI lays ``shared/`` beside the
  clone, so they are found at ``<repo>/../shared/captures/thirdparty``; the environment
  variable ``OSILAB_SHARED`` points somewhere else.

:func:`path` turns a short name into a file and raises a clear
:class:`~osilab.errors.CaptureError` naming every place it looked when the file is
missing. :func:`first` picks the first of several names that exists, so a lesson can
prefer a lab recording and fall back to a public capture that shows the same thing.

>>> path("zeek/http-get.pcap").name                      # doctest: +SKIP
'http-get.pcap'

This module only finds files. It never opens them and knows nothing of packets.
"""

from __future__ import annotations

import os
from pathlib import Path

from osilab.errors import CaptureError

__all__ = [
    "REPO",
    "bundled_root",
    "thirdparty_root",
    "roots",
    "path",
    "exists",
    "first",
    "lab_scenario",
]

#: The repository folder (the parent of the ``osilab`` package) when run from a clone.
REPO = Path(__file__).resolve().parent.parent.parent


def bundled_root() -> Path:
    """The repository's ``captures/`` folder (recordings made by ``osilab lab record``)."""
    return REPO / "captures"


def thirdparty_root() -> Path:
    """The shared third-party captures: ``$OSILAB_SHARED/captures/thirdparty`` or ``<repo>/../shared/...``."""
    shared = os.environ.get("OSILAB_SHARED")
    base = Path(shared) if shared else REPO.parent / "shared"
    return base / "captures" / "thirdparty"


def roots() -> tuple[Path, ...]:
    """Every folder a short name is looked up in, in order: bundled first, then third-party."""
    return (bundled_root(), thirdparty_root())


def _candidates(name: str | os.PathLike[str]) -> list[Path]:
    given = Path(name)
    if given.is_absolute():
        return [given]
    found = [root / given for root in roots()]
    parts = given.parts
    if parts and parts[0] == "thirdparty":  # "thirdparty/zeek/http-get.pcap"
        found.append(thirdparty_root().joinpath(*parts[1:]))
    if parts and parts[0] == "captures":  # "captures/alb/alb.pcapng", as the README writes it
        found.append(REPO.joinpath(*parts))
    return found


def exists(name: str | os.PathLike[str]) -> bool:
    """True when :func:`path` would find ``name``."""
    return any(candidate.is_file() for candidate in _candidates(name))


def path(name: str | os.PathLike[str]) -> Path:
    """The file a short capture name stands for.

    ``name`` is relative to one of :func:`roots` (``"zeek/http-get.pcap"``,
    ``"alb/alb.pcapng"``), or starts with ``captures/`` or ``thirdparty/``, or is an
    absolute path.

    Raises:
        CaptureError: the file is in none of the places, which the message lists
            together with how to get the captures (``osilab lab record``, or
            ``OSILAB_SHARED`` for the third-party set).
    """
    candidates = _candidates(name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = "; ".join(str(c) for c in candidates)
    raise CaptureError(
        f"capture {str(name)!r} was not found (looked in: {looked}). Lab captures are made by "
        "'sudo osilab lab record'; the third-party set is looked for in ../shared beside the "
        "repository, or where the OSILAB_SHARED environment variable points"
    )


def first(*names: str) -> Path:
    """The first of ``names`` that exists (a lab recording first, then a public fallback).

    Raises:
        CaptureError: none exists; the message names them all.
    """
    for name in names:
        if exists(name):
            return path(name)
    raise CaptureError(
        f"none of these captures was found: {', '.join(names)} (looked in {', '.join(map(str, roots()))})"
    )


def lab_scenario(scenario: str) -> Path | None:
    """The folder of one lab scenario (``captures/<scenario>``) when it has been recorded, else None."""
    folder = bundled_root() / scenario
    if folder.is_dir() and any(folder.glob("*.pcap*")):
        return folder
    return None

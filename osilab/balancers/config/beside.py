"""The balancer configs the lab writes beside each capture it records.

``osilab lab record`` writes, next to ``captures/alb/alb.pcapng``, the configs of the
balancers in front of it in AWS's shape (osilab JSON): ``alb.config.json`` for the ALB
role, ``nlb.config.json`` for the NLB role, ``cdn.config.json`` for the CloudFront edge
(a distribution config: :mod:`osilab.balancers.config.cloudfront`). The journey, the lessons and ``osilab route``
read them from there, so no analysis stage needs to import the lab's code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from osilab.errors import UsageError

__all__ = ["CONFIG_SUFFIX", "config_beside", "TOPOLOGY_FILE", "load_topology", "topology_beside"]

#: The file the lab writes beside every capture: its hosts, links and captured hops.
TOPOLOGY_FILE = "topology.json"

#: ``<lb>`` + this suffix is the file name the lab writes (``alb.config.json``).
CONFIG_SUFFIX = ".config.json"


def config_beside(capture: str | os.PathLike[str], lb: str) -> Path | None:
    """The config file the lab wrote for balancer ``lb`` (``"alb"``/``"nlb"``/``"cdn"``) beside ``capture``.

    Returns ``None`` when there is none (a capture the lab did not record).
    """
    path = Path(capture).parent / f"{lb}{CONFIG_SUFFIX}"
    return path if path.is_file() else None


def load_topology(
    source: str | os.PathLike[str] | Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """A parsed ``topology.json``: from a path, an already-parsed mapping, or ``None``."""
    if source is None or isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the topology {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None


def topology_beside(capture: str | os.PathLike[str]) -> Mapping[str, Any] | None:
    """The ``topology.json`` the lab wrote beside ``capture``, parsed; ``None`` when there is
    none (a capture the lab did not record)."""
    path = Path(capture).parent / TOPOLOGY_FILE
    return load_topology(path) if path.is_file() else None

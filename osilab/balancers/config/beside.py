"""The balancer configs the lab writes beside each capture it records.

``osilab lab record`` writes, next to ``captures/alb/alb.pcapng``, the configs of the
balancers in front of it in AWS's shape (osilab JSON): ``alb.config.json`` for the ALB
role, ``nlb.config.json`` for the NLB role, ``cdn.config.json`` for the CloudFront edge
(a distribution config: :mod:`osilab.balancers.config.cloudfront`). The journey, the lessons and ``osilab route``
read them from there, so no analysis stage needs to import the lab's code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONFIG_SUFFIX", "config_beside"]

#: ``<lb>`` + this suffix is the file name the lab writes (``alb.config.json``).
CONFIG_SUFFIX = ".config.json"


def config_beside(capture: str | os.PathLike[str], lb: str) -> Path | None:
    """The config file the lab wrote for balancer ``lb`` (``"alb"``/``"nlb"``/``"cdn"``) beside ``capture``.

    Returns ``None`` when there is none (a capture the lab did not record).
    """
    path = Path(capture).parent / f"{lb}{CONFIG_SUFFIX}"
    return path if path.is_file() else None

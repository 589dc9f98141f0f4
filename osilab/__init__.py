"""osilab: see how networks really work, on real traffic.

Read a capture, see every packet as its layers (OSI and TCP/IP side by side), follow
its streams, and replay it through models of an AWS Network Load Balancer (L4) and an
Application Load Balancer (L7) to see what each can and cannot route on.

>>> import osilab
>>> cap = osilab.read("captures/alb/alb.pcapng")      # doctest: +SKIP
>>> pkt = next(iter(cap))                               # doctest: +SKIP
>>> pkt.names()                                         # doctest: +SKIP
['eth', 'ip', 'tcp']

``osilab.journey`` is the journey package; its entry point ``osilab.journey.journey`` is
also ``osilab.request_journey``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Any

from osilab import errors as _errors
from osilab.capture import Capture, Layer, Packet, read, write
from osilab.errors import *  # noqa: F403  (the one exception hierarchy, re-exported)

if TYPE_CHECKING:  # the names below are imported when first used (PEP 562)
    from osilab.balancers import (
        ApplicationLoadBalancer,
        Decision,
        NetworkLoadBalancer,
        compare,
        load_config,
        replay,
    )
    from osilab.balancers.cdn import CloudFrontDistribution
    from osilab.capture.scapy_bridge import from_scapy
    from osilab.journey import journey as request_journey

#: Module -> the public names it defines, imported on first use, so that a command (which
#: imports only what it runs) does not pay for the balancers, the journey or scapy's
#: bridge when it starts. The capture stage, which every command reads with, is imported.
#: ``"alias=attribute"`` where osilab's name is not the module's.
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "osilab.capture.scapy_bridge": ("from_scapy",),
    "osilab.balancers": ("replay", "compare", "load_config", "NetworkLoadBalancer",
                         "ApplicationLoadBalancer", "Decision"),
    "osilab.balancers.cdn": ("CloudFrontDistribution",),
    "osilab.journey": ("request_journey=journey",),
}
#: Public name -> (module, attribute), read from :data:`_LAZY_MODULES`.
_LAZY: dict[str, tuple[str, str]] = {
    name.partition("=")[0]: (module, name.rpartition("=")[2])
    for module, names in _LAZY_MODULES.items()
    for name in names
}


def __getattr__(name: str) -> Any:
    """Import a public name when it is first read (PEP 562), then keep it here."""
    target = _LAZY.get(name)
    if target is not None:
        value = getattr(importlib.import_module(target[0]), target[1])
    elif not name.startswith("_") and importlib.util.find_spec(f"osilab.{name}") is not None:
        value = importlib.import_module(f"osilab.{name}")  # a stage: osilab.journey, ...
    else:
        raise AttributeError(f"module 'osilab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (what ``__all__`` lists) and the stages already imported.

    Without this, ``dir(osilab)`` would also list this module's own helpers
    (``importlib``, ``Any``, ``TYPE_CHECKING``), which are not osilab's API.
    """
    stages = {
        name
        for name, value in globals().items()
        if isinstance(value, ModuleType) and value.__name__.startswith("osilab.") and name[0] != "_"
    }
    return sorted({*__all__, "__version__", *stages})


__all__ = [
    "read",
    "write",
    "from_scapy",
    "Capture",
    "Packet",
    "Layer",
    "replay",
    "compare",
    "request_journey",
    "load_config",
    "NetworkLoadBalancer",
    "ApplicationLoadBalancer",
    "CloudFrontDistribution",
    "Decision",
]
__all__ += _errors.__all__  # OsilabError and its subclasses: one hierarchy, listed once
__version__ = "0.1.0"

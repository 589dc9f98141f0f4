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

from osilab.balancers import (
    ApplicationLoadBalancer,
    Decision,
    NetworkLoadBalancer,
    compare,
    load_config,
    replay,
)
from osilab.capture import Capture, Layer, Packet, read, write
from osilab.capture.scapy_bridge import from_scapy
from osilab.errors import (
    CaptureError,
    ConfigError,
    DecodeError,
    LabError,
    OsilabError,
    RuleError,
    UsageError,
)
from osilab.journey import journey as request_journey

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
    "Decision",
    "OsilabError",
    "CaptureError",
    "DecodeError",
    "ConfigError",
    "RuleError",
    "LabError",
    "UsageError",
]
__version__ = "0.1.0"

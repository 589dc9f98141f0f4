"""Balancer models: an AWS NLB (layer 4) and an AWS ALB (layer 7), sans-IO.

Both models are fed what the balancer would see (packets for the NLB, HTTP requests
for the ALB) and return :class:`~osilab.balancers.decision.Decision` records saying
where the traffic went, at which packet, from which fields, and why. They are
configured by the AWS-shaped JSON of ``../shared/docs/design.md`` (:mod:`osilab.balancers.config`).

Modules: ``config`` (the configuration: model, parse, defaults), ``rules`` (ALB
conditions), ``hashing`` (flow hashes, Maglev), ``health`` (target health over time),
``mitigation`` (the desync policy), ``decision``, ``nlb``, ``alb``, ``explain`` (every
"why" sentence), ``replay`` (capture -> decisions) and ``compare`` (both models on one
capture).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from osilab.balancers.compare import Comparison, compare
from osilab.balancers.config import BalancerConfig, default_config, load_config, parse_config
from osilab.balancers.decision import Decision, DecisionList
from osilab.balancers.hashing import MaglevTable
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.balancers.replay import Replay, replay

if TYPE_CHECKING:  # imported when first read (PEP 562), below
    from osilab.balancers.alb import ApplicationLoadBalancer


def __getattr__(name: str) -> Any:
    """``ApplicationLoadBalancer``, imported when it is first read (PEP 562), then kept here.

    Its module imports the whole HTTP stack (the streams stage, the parsers, TLS
    decryption), which ``osilab route --lb nlb`` never needs: an NLB replay starts
    without it. (Only this name: the function ``compare`` shares its name with its module,
    which Python binds here when the module is imported, so it is imported eagerly.)
    """
    if name != "ApplicationLoadBalancer":
        raise AttributeError(f"module 'osilab.balancers' has no attribute {name!r}")
    alb = importlib.import_module("osilab.balancers.alb")
    value = globals()[name] = alb.ApplicationLoadBalancer
    return value


def __dir__() -> list[str]:
    """What ``dir()`` and ``help()`` list: the public names, the one not yet imported too."""
    return sorted({*globals(), *__all__})


__all__ = [
    "ApplicationLoadBalancer",
    "NetworkLoadBalancer",
    "BalancerConfig",
    "Decision",
    "DecisionList",
    "MaglevTable",
    "Replay",
    "Comparison",
    "compare",
    "replay",
    "load_config",
    "parse_config",
    "default_config",
]

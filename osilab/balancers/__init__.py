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

from osilab.balancers.alb import ApplicationLoadBalancer
from osilab.balancers.compare import Comparison, compare
from osilab.balancers.config import BalancerConfig, default_config, load_config, parse_config
from osilab.balancers.decision import Decision, DecisionList
from osilab.balancers.hashing import MaglevTable
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.balancers.replay import Replay, replay

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

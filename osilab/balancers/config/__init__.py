"""Balancer configuration: the AWS-shaped JSON (or YAML) a learner can paste.

Theory of operation
-------------------
One document describes one balancer the way AWS describes it (see
``docs/architecture.md`` and ``../shared/docs/design.md``, "Load balancer configuration")::

    {"Type": "application",
     "TargetGroups": [{"Name": "web", "Protocol": "HTTP", "Port": 80,
                       "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}],
     "Listeners": [{"Protocol": "HTTP", "Port": 80,
                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                    "Rules": [ ...exactly as `aws elbv2 describe-rules` prints them... ]}]}

:func:`parse_config` turns such a dict into frozen dataclasses and checks every AWS rule
and limit it knows (``lb-reference.md`` §1.1-§1.3, §2), so a model never runs on a
configuration AWS itself would refuse. A rule problem raises
:class:`~osilab.errors.RuleError` naming the rule's priority, anything else
:class:`~osilab.errors.ConfigError`; the messages read like the AWS API's
``ValidationError`` so that the learner recognises them.

Attributes may be given the AWS way (``"Attributes": [{"Key": ..., "Value": ...}]``, as
``describe-target-group-attributes`` prints them) or as a plain ``{key: value}`` dict;
the most used ones also have a short key of their own (``"Algorithm"``).

The package, in the order a document goes through it:

- :mod:`~osilab.balancers.config.model`: the frozen records (BalancerConfig, TargetGroup,
  Listener, Rule, Condition, Action...) and the vocabulary AWS accepts;
- :mod:`~osilab.balancers.config.parse`: document -> records, with the AWS-shaped errors;
  its parts :mod:`~osilab.balancers.config.conditions` and
  :mod:`~osilab.balancers.config.actions` read a rule's conditions and actions, one small
  function per field or action type, in explicit dispatch tables;
- :mod:`~osilab.balancers.config.defaults`: a default configuration from a capture's
  servers, and the other balancer's counterpart;
- :mod:`~osilab.balancers.config.beside`: the configs the lab writes beside a capture.

This package knows nothing of packets or HTTP messages: it only reads and checks
configuration. :func:`load_config` is the one function that touches a file.

>>> config = parse_config({"Type": "application",
...     "TargetGroups": [{"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80"]}],
...     "Listeners": [{"Protocol": "HTTP", "Port": 80,
...                    "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]})
>>> config.group("web").targets, config.listener(80).default_action.type
(('192.0.2.11:80', '192.0.2.12:80'), 'forward')
>>> counterpart(config).listener(80).protocol
'TCP'
"""

from __future__ import annotations

from osilab.balancers.config.defaults import counterpart, default_config
from osilab.balancers.config.model import (
    Action,
    BalancerConfig,
    Condition,
    FixedResponseConfig,
    HealthChange,
    Listener,
    QueryPair,
    RedirectConfig,
    Rule,
    TargetGroup,
    WeightedTargetGroup,
    target_group_name,
)
from osilab.balancers.config.parse import load_config, parse_config

__all__ = [
    # reading a configuration
    "parse_config",
    "load_config",
    "default_config",
    "counterpart",
    "target_group_name",
    # the records it is made of
    "Action",
    "BalancerConfig",
    "Condition",
    "FixedResponseConfig",
    "HealthChange",
    "Listener",
    "QueryPair",
    "RedirectConfig",
    "Rule",
    "TargetGroup",
    "WeightedTargetGroup",
]

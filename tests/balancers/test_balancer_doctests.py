"""The examples in the balancer modules' docstrings run and hold (they are lessons too)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "osilab.balancers.config",
    "osilab.balancers.config.model",
    "osilab.balancers.config.conditions",
    "osilab.balancers.config.actions",
    "osilab.balancers.config.parse",
    "osilab.balancers.rules",
    "osilab.balancers.hashing",
    "osilab.balancers.decision",
    "osilab.balancers.explain",
    "osilab.balancers.health",
    "osilab.balancers.nlb",
    "osilab.balancers.alb",
    "osilab.balancers.cdn",
    "osilab.balancers.config.cloudfront",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"

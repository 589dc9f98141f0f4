"""Fixtures for the journey tests: the lab's real multi-hop captures when they exist, else synthetic ones.

The lab records ``captures/<scenario>/<scenario>.pcapng`` with a ``topology.json`` beside
it. Until those exist (or where they are not checked out), the same shape is built here
by :mod:`journey.synthetic_lab`; the synthetic captures are always used by the unit tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import osilab

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"

#: The app's JSON answer names the cache outcome and the request id: an independent witness.
_CACHE_WITNESS = re.compile(rb'"cache": "(hit|miss)", "rid": "([A-Za-z0-9_-]+)"')


def lab_capture(scenario: str) -> Path | None:
    """The lab's recorded capture of ``scenario`` when it and its topology.json exist."""
    path = CAPTURES / scenario / f"{scenario}.pcapng"
    if path.is_file() and (path.parent / "topology.json").is_file():
        return path
    return None


def cache_outcomes(path: Path) -> dict[str, str]:
    """Request id -> "hit" / "miss", read from the app's JSON answers in the raw packets."""
    found: dict[str, str] = {}
    for packet in osilab.read(path):
        for outcome, rid in _CACHE_WITNESS.findall(packet.payload):
            found.setdefault(rid.decode(), outcome.decode())
    return found


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from journey.synthetic_lab import build_alb, build_nlb

    folder = tmp_path_factory.mktemp("journey-alb")
    other = tmp_path_factory.mktemp("journey-nlb")
    return {"alb": build_alb(folder), "nlb": build_nlb(other)}


@pytest.fixture(scope="session", params=["lab", "synthetic"])
def architecture(request: pytest.FixtureRequest, synthetic: dict[str, Path]) -> dict[str, Path]:
    """The ALB and NLB captures: the lab's recorded ones, and the synthetic ones (always)."""
    if request.param == "synthetic":
        return synthetic
    found = {name: lab_capture(name) for name in synthetic}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.skip(
            f"the lab's captures/{missing[0]}/{missing[0]}.pcapng (with topology.json) is not recorded yet"
        )
    return found  # type: ignore[return-value]

"""The ALB replay's fast path gives exactly the decisions of the packet path.

``replay(osilab.read(path), alb)`` reads TCP payloads straight from the records and is
told of SYNs by the streams stage; ``replay(iter(capture), alb)`` builds every Packet and
taps the SYNs itself. Every decision (packet, request, target, why with its "packets
after the SYN") must be the same, on every bundled and third-party capture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_paths import CAPTURES, thirdparty_captures

import osilab
from osilab.balancers import ApplicationLoadBalancer, default_config, replay
from osilab.balancers.compare import servers_seen

CAPTURE_FILES = thirdparty_captures() + sorted(CAPTURES.glob("*/*.pcapng"))


def _facts(result) -> tuple:  # type: ignore[no-untyped-def]
    rows = [(d.decided_at, str(d.flow), d.request_label, d.target, d.action, d.why, d.headers_to_target)
            for d in result.decisions]  # fmt: skip
    return rows, result.accounting, result.total


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_and_packet_paths_decide_the_same(path: Path) -> None:
    # A capture with no TCP server gets one listener, never hit (the default invents nothing).
    servers = [s for s in servers_seen(osilab.read(path)) if s[2] == "tcp"]
    config = default_config("application", servers or [("192.0.2.10", 80, "tcp")])
    fast = replay(osilab.read(path), ApplicationLoadBalancer(config))
    full = replay(iter(osilab.read(path)), ApplicationLoadBalancer(config))
    assert _facts(fast) == _facts(full)

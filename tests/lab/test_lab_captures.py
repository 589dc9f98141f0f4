"""The committed lab captures (captures/<scenario>/) keep the lab's promises (tshark, no root)."""

from __future__ import annotations

import pytest
from lab.lab_checks import (
    Scenario,
    check_addresses_behind_balancer,
    check_alb_rules,
    check_cache_and_sql,
    check_interfaces,
    check_proxy_v2,
    check_request_ids_on_hops,
    check_smuggle,
    check_tls,
    check_truth_matches_back_side,
    check_websocket,
)
from shared_paths import CAPTURES

pytestmark = pytest.mark.tshark

#: (scenario, promise) pairs: what each committed capture must show.
CASES = [
    ("alb", check_interfaces),
    ("alb", check_request_ids_on_hops),
    ("alb", check_addresses_behind_balancer),
    ("alb", check_tls),
    ("alb", check_cache_and_sql),
    ("alb", check_truth_matches_back_side),
    ("alb", check_alb_rules),
    ("nlb", check_interfaces),
    ("nlb", check_request_ids_on_hops),
    ("nlb", check_addresses_behind_balancer),
    ("nlb", check_tls),
    ("nlb", check_cache_and_sql),
    ("nlb", check_truth_matches_back_side),
    ("l4proxy", check_interfaces),
    ("l4proxy", check_request_ids_on_hops),
    ("l4proxy", check_addresses_behind_balancer),
    ("l4proxy", check_cache_and_sql),
    ("l4proxy", check_truth_matches_back_side),
    ("l4proxy", check_proxy_v2),
    ("smuggle", check_interfaces),
    ("smuggle", check_smuggle),
    ("websocket", check_interfaces),
    ("websocket", check_websocket),
]


@pytest.mark.parametrize(
    ("name", "check"), CASES, ids=[f"{n}-{c.__name__.removeprefix('check_')}" for n, c in CASES]
)
def test_committed_capture(name: str, check, tshark: str) -> None:
    folder = CAPTURES / name
    if not (folder / f"{name}.pcapng").exists():
        pytest.fail(f"captures/{name} is missing: re-record with 'sudo osilab lab record'")
    check(Scenario(folder))


@pytest.mark.parametrize("name", ["alb", "nlb", "l4proxy", "smuggle"])
def test_osilab_reader_sees_the_hops(name: str) -> None:
    """osilab's own reader names every hop and finds the MACs topology.json lists."""
    import json

    import osilab

    folder = CAPTURES / name
    topology = json.loads((folder / "topology.json").read_text())
    known = {i["mac"] for host in topology["hosts"] for i in host["interfaces"]}
    seen: dict[str, set[str]] = {}
    for packet in osilab.read(folder / f"{name}.pcapng"):
        eth = packet.layer("eth")
        seen.setdefault(packet.interface_name, set()).add(eth["src"])
    assert sorted(seen) == sorted(h["interface"] for h in topology["hops"])
    for hop, macs in seen.items():
        assert macs <= known and "00:00:00:00:00:00" not in macs, hop

"""The committed ``captures/cdn``: the real edge cache, the model beside it, the views (no root).

The edge is nginx with ``proxy_cache`` standing in for CloudFront (``osilab.lab.cdn``); the
model is :class:`osilab.CloudFrontDistribution`. The root-only re-recording runs the same
checks on a fresh capture (tests/lab/test_lab_record.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
from lab.cdn_checks import (
    agreement,
    check_cdn_back_side,
    check_cdn_model,
    check_cdn_origin_requests,
    check_cdn_plan,
    check_cdn_tshark,
)
from lab.lab_checks import Scenario, check_interfaces
from osilab_cli import run_osilab
from shared_paths import CAPTURES

import osilab
from osilab.balancers.tables import DECISION_COLUMNS

CDN = Scenario(CAPTURES / "cdn")
KEYLOG = str(CDN.folder / "keylog.txt")


@pytest.mark.parametrize(
    "check",
    [check_interfaces, check_cdn_plan, check_cdn_model, check_cdn_back_side,
     check_cdn_origin_requests, check_cdn_tshark],
    ids=lambda c: c.__name__.removeprefix("check_"),
)  # fmt: skip
def test_the_committed_capture(check) -> None:
    if check in (check_interfaces, check_cdn_tshark) and shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    check(CDN)


def test_agreement_counts(record_property) -> None:
    result = agreement(CDN)
    record_property("cdn_agreement", json.dumps(result["agree"]))
    print(f"\ncdn model vs the real edge: {result['requests']} requests, agree {result['agree']}")
    assert result["agree"] == {
        k: result["requests"] for k in ("cache", "behavior", "origin", "reached")
    }


def test_route_lb_cdn_uses_the_config_beside_the_capture() -> None:
    done = run_osilab("route", str(CDN.capture), "--lb", "cdn", "--keylog", KEYLOG, "--json")
    assert done.returncode == 0, done.stderr
    assert "cdn.config.json" in done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    truth = CDN.truth["requests"]
    assert len(lines) == len(truth)
    for line in lines:
        assert list(line)[:8] == list(DECISION_COLUMNS)[:8]  # design.md's keys, in order
        assert {"action", "cache", "behavior", "origin", "hop"} <= set(line)
        assert line["hop"] == "client-edge" and line["unit"] == "request"
    hits = [line for line in lines if line["cache"] == "Hit"]
    assert hits and all(h["action"] == "cache-hit" and h["target"] is None for h in hits)
    table = run_osilab("route", str(CDN.capture), "--lb", "cdn", "--keylog", KEYLOG)
    assert "RefreshHit" in table.stdout and "X-Cache: Miss" in table.stdout


def test_route_lb_cdn_without_a_distribution_config_says_how(tmp_path) -> None:
    shutil.copy(CDN.capture, tmp_path / "cdn.pcapng")
    done = run_osilab("route", str(tmp_path / "cdn.pcapng"), "--lb", "cdn", "--hop", "client-edge")
    assert done.returncode != 0 and "get-distribution-config" in done.stderr


def test_compare_with_cdn_puts_the_edge_beside_the_alb_and_the_nlb() -> None:
    done = run_osilab("compare", str(CDN.capture), "--keylog", KEYLOG, "--with", "cdn", "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows and all(
        "cdn" in row and "alb_target" in row and "nlb_target" in row for row in rows
    )
    hits = [row for row in rows if row["cdn"]["cache"] == "Hit"]
    # The ALB model, standing where the edge stands, would have sent every hit to a target.
    assert hits and all(row["alb_target"] for row in hits)


def test_the_journey_of_a_hit_stops_at_the_edge() -> None:
    truth = CDN.truth["requests"]
    hit = next(rid for rid, v in truth.items() if v["cache"] == "Hit")
    miss = next(rid for rid, v in truth.items() if v["reached"] == "alb")
    trip = osilab.request_journey(CDN.capture, hit, keylog=KEYLOG)
    assert trip.hops() == ["client", "edge", "client"]
    assert any("stops at the edge" in note for note in trip.notes)
    trip = osilab.request_journey(CDN.capture, miss, keylog=KEYLOG)
    hops = trip.hops()
    assert hops[:4] == ["client", "edge", "alb", hops[3]] and hops[3] in ("web1", "web2")
    assert {"cache", "db"} & set(hops) or "api1" in hops or "api2" in hops

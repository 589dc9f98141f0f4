"""The failover scenario (issue 18): the models, given the health the real balancers saw,
agree with them connection by connection (L4 role, NLB model) and request by request
(ALB role, ALB model).

The committed recording (captures/failover/) is checked without root; a root test
records the scenario afresh (``osilab lab record --scenario failover``) and checks the
same promises, like tests/lab/test_lab_record.py does for the other scenarios.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from shared_paths import CAPTURES

import osilab
from osilab.balancers import ApplicationLoadBalancer, NetworkLoadBalancer, replay
from osilab.balancers.config.beside import config_beside
from osilab.errors import LabError
from osilab.lab import configs, doctor, failover
from osilab.lab.topology import LAB

STOPPED = f"{LAB.services['web1']}:80"


def _front(capture: Path, hop: str):
    return (p for p in osilab.read(capture) if p.interface_name == hop)


def check_failover(folder: Path) -> dict[str, Any]:
    """Every promise of the scenario on one recording; returns the agreement counts."""
    capture = folder / "failover.pcapng"
    truth = json.loads((folder / "truth.json").read_text())
    section = truth["failover"]
    counts: dict[str, Any] = {}
    # the real balancers marked the stopped target down, then up, each by its own checks
    for role in ("l4proxy", "alb"):
        states = [m["state"] for m in section["marked"][role] if m["target"] == STOPPED]
        assert states == ["unhealthy", "healthy"], (role, section["marked"])
        down = section["marked"][role][0]["at"]
        assert section["stopped_at"] < down < section["started_at"], section
    # the configs beside the capture carry that schedule
    nlb_config = json.loads(config_beside(capture, "nlb").read_text())
    assert nlb_config["Health"] == failover.health_schedule(truth, "nlb")

    # --- L4 role vs the NLB model: where each connection went, which ones got an RST
    nlb = NetworkLoadBalancer(str(config_beside(capture, "nlb")), keep_decisions=None)
    result = replay(_front(capture, "client-l4p"), nlb)
    forwarded = {str(d.flow.client): d.target for d in result.decisions if d.action == "forward"}
    model_resets = {str(d.flow.client) for d in result.decisions if d.action == "reset"}
    connections = [c for c in truth["connections"] if c["balancer"] == "l4proxy"]
    real_resets = {c["client"] for c in connections if c["reset"] == "yes"}
    assert real_resets == set(section["resets"])
    down = section["marked"]["l4proxy"][0]["at"]
    for connection in connections:  # the capture shows each RST right when it was marked down
        if connection["reset"] == "yes":
            assert 0 <= float(connection["rst_at"]) - down < 0.2, (connection, down)
    assert real_resets and all(c["target"] == STOPPED for c in connections if c["reset"] == "yes")
    same = [c for c in connections if forwarded.get(c["client"]) == c["target"]]
    counts["connections"] = (len(same), len(connections))
    counts["resets"] = (len(model_resets & real_resets), len(real_resets), len(model_resets))
    assert len(same) == len(connections), [
        (c["client"], c["target"], forwarded.get(c["client"])) for c in connections
    ]
    assert model_resets == real_resets
    for decision in result.decisions:
        if decision.action == "reset":
            assert "TCP RST" in decision.why and STOPPED in decision.why
    # the client saw exactly those connections fail
    records = json.loads((folder / "client.json").read_text())
    failed = {r["source"] for r in records if "connection reset" in r.get("note", "")}
    assert failed == real_resets

    # --- ALB role vs the ALB model: where each request went
    alb = ApplicationLoadBalancer(str(config_beside(capture, "alb")), keep_decisions=None)
    decisions = replay(_front(capture, "client-alb"), alb).decisions
    by_rid = {}
    for decision in decisions:
        match = re.search(r"[?&]rid=(\w+)", decision.request.target if decision.request else "")
        if match:
            by_rid[match.group(1)] = decision
    real = {rid: v for rid, v in truth["requests"].items() if v.get("balancer") == "alb"}
    assert len(real) == 12
    agree = [rid for rid, v in real.items() if rid in by_rid and by_rid[rid].target == v["target"]]
    counts["requests"] = (len(agree), len(real))
    assert sorted(agree) == sorted(real), {
        rid: (v["target"], by_rid.get(rid)) for rid, v in real.items()
    }
    during = [by_rid[rid] for rid, v in real.items()
              if section["marked"]["alb"][0]["at"] < by_rid[rid].time < section["marked"]["alb"][1]["at"]]  # fmt: skip
    assert len(during) == 4 and {d.target for d in during} == {f"{LAB.services['web2']}:80"}
    assert all("unhealthy" in d.why for d in during)  # the moved requests say why
    return counts


def _recording() -> Path:
    folder = CAPTURES / "failover"
    if not (folder / "truth.json").exists():
        pytest.skip("captures/failover is not recorded (osilab lab record --scenario failover)")
    return folder


def test_the_committed_recording_agrees_with_the_models() -> None:
    counts = check_failover(_recording())
    print(f"\nmeasured: failover models vs HAProxy: {counts}")


def test_route_shows_the_resets_and_the_moved_requests(capsys: pytest.CaptureFixture[str]) -> None:
    from osilab.cli import main

    capture = str(_recording() / "failover.pcapng")
    assert main(["route", capture, "--lb", "nlb", "--hop", "client-l4p", "--json"]) == 0
    rows = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    resets = [r for r in rows if r.get("action") == "reset"]
    assert len(resets) == 2 and all("TCP RST" in r["why"] for r in resets)
    assert main(["route", capture, "--lb", "alb", "--hop", "client-alb", "--json"]) == 0
    rows = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    moved = [r for r in rows if "unhealthy, so new traffic" in r["why"]]
    assert len(moved) == 4 and {r["target"] for r in moved} == {f"{LAB.services['web2']}:80"}


def test_the_failover_haproxy_configs() -> None:
    targets = {"web1": "192.0.2.11", "web2": "192.0.2.12"}
    l4 = configs.haproxy_failover(role="l4", vip="203.0.113.30", targets=targets)
    alb = configs.haproxy_failover(role="alb", vip="203.0.113.10", targets=targets)
    assert "on-marked-down shutdown-sessions" in l4 and "option nolinger" in l4 and "mode tcp" in l4
    assert "option httpchk GET /" in alb and "shutdown-sessions" not in alb
    for text in (l4, alb):
        assert "balance static-rr" in text and "format iso" in text
    if shutil.which("haproxy"):
        for text in (l4, alb):
            done = subprocess.run(["haproxy", "-c", "-q", "-f", "/dev/stdin"], input=text,
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr


@pytest.mark.lab
@pytest.mark.slow
def test_a_fresh_recording(tmp_path: Path) -> None:
    try:
        doctor.require()
    except LabError as exc:
        pytest.skip(str(exc))
    from osilab.lab.record import record

    (summary,) = record(tmp_path, ["failover"], timeout=300)
    assert summary["scenario"] == "failover"
    counts = check_failover(tmp_path / "failover")
    print(f"\nmeasured: fresh failover recording vs models: {counts}")

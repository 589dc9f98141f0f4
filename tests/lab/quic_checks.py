"""The quic scenario's promises, on a recorded folder (the bundled one or a fresh one).

Shared by tests/lab/test_lab_quic.py (the bundled captures/quic) and the root re-record
test there. Each check reads only the folder: capture, truth.json, client.json, configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import osilab
from osilab.balancers.config.beside import config_beside
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.lab.quic import QUIC_PORT, SERVER_IDS, UDP_PORT

VIP = "203.0.113.20"


def _load(folder: Path) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    capture = folder / "quic.pcapng"
    truth = json.loads((folder / "truth.json").read_text())
    client = json.loads((folder / "client.json").read_text())
    return capture, truth, client


def model_paths(capture: Path, lb: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """client ip:port -> (target, fields read) as the NLB model configured by ``lb``'s config
    decides each flow of the front hop (client-nlb)."""
    config = config_beside(capture, lb)
    assert config is not None, f"no {lb}.config.json beside {capture}"
    nlb = NetworkLoadBalancer(str(config), keep_decisions=None)
    nlb.feed_flows(osilab.capture.flow_facts(osilab.read(capture)))
    return {
        f"{d.flow.client.ip}:{d.flow.client.port}": (d.target, d.seen)
        for d in nlb.decisions
        if d.target and d.flow.server.ip == VIP
    }


def check_model_agrees(folder: Path) -> None:
    """Each model (UDP listener, QUIC listener) sends every client address where the lab's
    real balancer did (the back side), and only the QUIC listener reads the DCID."""
    capture, truth, _client = _load(folder)
    for lb, port in (("nlb", UDP_PORT), ("nlb-quic", QUIC_PORT)):
        real = {p["client"]: p["target"] for p in truth["quic"]["paths"]
                if p["target"].endswith(f":{port}")}  # fmt: skip
        model = model_paths(capture, lb)
        assert real and {c: t for c, (t, _seen) in model.items()} == real, (lb, model, real)
        # only the QUIC listener, and only for the migrated client's new port, read the DCID
        read_dcid = {c for c, (_t, seen) in model.items() if seen == ("quic.dcid",)}
        assert bool(read_dcid) == (lb == "nlb-quic"), (lb, read_dcid)


def check_migration_story(folder: Path) -> None:
    """Behind the 5-tuple balancer the migrated request is stranded (the other instance
    dropped packets carrying the first one's server ID, the connection ended by its idle
    timeout); behind the QUIC-aware one the same instance answered from the new port."""
    _capture, truth, client = _load(folder)
    records = {r["rid"]: r for r in client if r["suite"] == "quic"}
    by_port: dict[int, list[dict[str, Any]]] = {}
    for record in records.values():
        by_port.setdefault(int(record["destination"].rsplit(":", 1)[1]), []).append(record)
    udp, aware = by_port[UDP_PORT], by_port[QUIC_PORT]
    # the 5-tuple balancer: the first request after the move is never answered
    moved = [r for r in udp if r["extra"]["migrated"]]
    assert [r["rid"] for r in moved] == truth["quic"]["stranded"]
    assert moved[0]["status"] is None and moved[0]["extra"]["ended"] == "Idle timeout"
    first = {truth["requests"][r["rid"]]["instance"] for r in udp if not r["extra"]["migrated"]}
    assert len(first) == 1
    dropped_by = {d["instance"] for d in truth["quic"]["dropped"] if d["port"] == UDP_PORT}
    assert dropped_by and first.isdisjoint(dropped_by)
    wanted = SERVER_IDS[first.pop()].hex()
    assert all(wanted in d["dcid"] for d in truth["quic"]["dropped"] if d["port"] == UDP_PORT)
    closed = [c for c in truth["quic"]["connections"] if c["event"] == "closed" and c["port"] == UDP_PORT]
    assert [c["reason"] for c in closed] == ["Idle timeout"]
    # the QUIC-aware balancer: every request answered, by one instance, from two ports
    assert all(r["status"] == 200 for r in aware)
    assert len({truth["requests"][r["rid"]]["instance"] for r in aware}) == 1
    assert len({truth["requests"][r["rid"]]["client"] for r in aware}) == 2
    assert all(r["served_by"] == truth["requests"][r["rid"]]["instance"] for r in aware)


def check_quic_tshark(folder: Path) -> None:
    """tshark and osilab read the same SNI from the client's Initial packets."""
    import shutil
    import subprocess

    capture, _truth, _client = _load(folder)
    if shutil.which("tshark") is None:
        return
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-Y", 'frame.interface_name == "client-nlb" && tls.handshake.type == 1',
         "-T", "fields", "-e", "tls.handshake.extensions_server_name"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    names = [line for line in done.stdout.split() if line]
    assert names == ["shop.example.com"] * 2, names

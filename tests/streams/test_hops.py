"""Hops: a capture taken on several interfaces is one set of flows per interface.

The lab captures every link of a scenario at once (captures/alb/alb.pcapng has seven
pcapng interfaces, one per hop). A flow's interface is part of its identity, so the
tracker's flows per interface are compared with tshark's: ``tcp.stream`` numbers
conversations, ``frame.interface_id`` says where each frame was seen, and the distinct
``(interface, stream)`` pairs are tshark's flows per hop. Every ``--json`` object of
``flows``, ``http``, ``tls`` and ``route`` then names its ``hop``.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from shared_paths import CAPTURES, THIRDPARTY

import osilab
from osilab.cli import main
from osilab.pipeline import track
from osilab.streams import FlowKey, FlowTable
from osilab.streams.keys import Endpoint

MULTI_INTERFACE = [
    CAPTURES / "alb" / "alb.pcapng",
    CAPTURES / "nlb" / "nlb.pcapng",
    CAPTURES / "l4proxy" / "l4proxy.pcapng",
    CAPTURES / "smuggle" / "smuggle.pcapng",
]
SINGLE_INTERFACE = THIRDPARTY / "zeek" / "http-get.pcap"


def _exists(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not here")
    return path


def _tshark_flows_per_interface(tshark: str, path: Path) -> Counter[int]:
    out = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.interface_id", "-e", "tcp.stream"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    pairs = {tuple(line.split("\t")) for line in out.splitlines()}
    return Counter(int(iface) for iface, stream in pairs if stream)


def _our_flows_per_interface(path: Path) -> Counter[int]:
    records = (record for step in track(osilab.read(path)) for record in step.ended)
    return Counter(record.interface for record in records if record.key.proto == "tcp")


@pytest.mark.tshark
@pytest.mark.parametrize("path", MULTI_INTERFACE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_flows_per_interface_match_tshark(tshark: str, path: Path) -> None:
    ours = _our_flows_per_interface(_exists(path))
    assert ours == _tshark_flows_per_interface(tshark, path)


def test_the_alb_capture_is_seven_sets_of_flows() -> None:
    path = _exists(CAPTURES / "alb" / "alb.pcapng")
    per_interface = _our_flows_per_interface(path)
    assert sorted(per_interface) == list(range(7)) and all(per_interface.values())


def test_the_same_endpoints_on_two_interfaces_are_two_flows() -> None:
    table = FlowTable()
    first, _, _ = table.packet("tcp", "192.0.2.1", 40000, "192.0.2.9", 80, 0x02, 1, 0.0, 60, 0, 0)
    again, _, _ = table.packet("tcp", "192.0.2.1", 40000, "192.0.2.9", 80, 0x02, 2, 0.0, 60, 0, 0)
    other, _, _ = table.packet("tcp", "192.0.2.9", 80, "192.0.2.1", 40000, 0x12, 3, 0.0, 60, 0, 1)
    assert again is first and other is not first
    assert other.key.interface == 1 and other.key.client == first.key.client
    assert str(other.key) == str(first.key) == "192.0.2.1:40000-192.0.2.9:80"
    assert [r.interface for r in (f.record() for f in table.finish())] == [0, 1]


def test_a_flow_key_keeps_its_hop_out_of_its_text() -> None:
    key = FlowKey("tcp", Endpoint("192.0.2.1", 40000), Endpoint("192.0.2.9", 80), 3)
    assert str(key) == "192.0.2.1:40000-192.0.2.9:80" and FlowKey.parse(str(key)).interface == 0
    assert key != FlowKey.parse(str(key)) and key.reversed().interface == 3


def _json_objects(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


COMMANDS = [
    ["flows"],
    ["flows", "--app"],
    ["http"],
    ["tls", "--keylog", str(CAPTURES / "alb" / "keylog.txt")],
    ["route", "--lb", "alb"],
    ["route", "--lb", "nlb"],
    ["compare"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_json_object_names_its_hop(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = _exists(CAPTURES / "alb" / "alb.pcapng")
    names = {iface.name for iface in _read_all(path).interfaces}
    objects = _json_objects(capsys, [command[0], str(path), *command[1:], "--json"])
    assert objects and all(obj["hop"] in names for obj in objects)
    # The lab's TLS is on the client side only; route and compare replay only the hop
    # where clients reach the balancer (topology.json beside the capture).
    if command[0] in ("route", "compare"):
        assert {obj["hop"] for obj in objects} == {"client-alb"}
    elif command[0] != "tls":
        assert len({obj["hop"] for obj in objects}) > 1


@pytest.mark.parametrize("command", [["flows"], ["http"], ["route", "--lb", "nlb"]], ids=" ".join)
def test_a_pcap_has_one_hop_called_if0(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    path = _exists(SINGLE_INTERFACE)
    objects = _json_objects(capsys, [command[0], str(path), *command[1:], "--json"])
    assert objects and {obj["hop"] for obj in objects} == {"if0"}


def test_tables_show_a_hop_column_only_for_several_interfaces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["flows", str(_exists(CAPTURES / "alb" / "alb.pcapng"))]) == 0
    assert capsys.readouterr().out.split()[0] == "hop"
    assert main(["flows", str(_exists(SINGLE_INTERFACE))]) == 0
    assert capsys.readouterr().out.split()[0] == "#"


def _read_all(path: Path) -> osilab.Capture:
    capture = osilab.read(path)
    for _ in capture:
        pass
    return capture

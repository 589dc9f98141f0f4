"""The journey's events: hops in order, the back end joined by timing, where each device stops reading."""

from __future__ import annotations

from pathlib import Path

import pytest
from journey.conftest import cache_outcomes

import osilab
from osilab.capture.packet import Packet
from osilab.errors import UsageError
from osilab.journey import journey, request_ids
from osilab.journey._index import CaptureIndex, describe
from osilab.protocols import Direction
from osilab.protocols.pgsql import PgsqlParser
from osilab.protocols.resp import RespParser

REQUEST_PATH = ["client", "{balancer}", "instance", "app"]


def _pick(path: Path, outcome: str) -> str:
    """A request id whose app answer says ``outcome`` ("hit"/"miss"), on an /api request."""
    outcomes = cache_outcomes(path)
    for rid in request_ids(path):
        if outcomes.get(rid) == outcome:
            return rid
    pytest.skip(f"{path.name} has no /api request whose answer says cache {outcome!r}")


def _roles(trip: osilab.journey.Journey) -> list[str]:  # type: ignore[name-defined]
    return [event.device.role for event in trip.events]


CASES = [
    # (scenario, cache outcome, balancer role, balancer stops at, PostgreSQL expected)
    ("alb", "miss", "alb", 7, True),
    ("alb", "hit", "alb", 7, False),
    ("nlb", "hit", "nlb", 4, False),
]


@pytest.mark.parametrize(("scenario", "outcome", "balancer", "stop", "database"), CASES)
def test_hops_in_order(architecture, scenario, outcome, balancer, stop, database):
    path = architecture[scenario]
    rid = _pick(path, outcome)
    trip = journey(path, request=rid)
    roles = _roles(trip)
    expected = [role.format(balancer=balancer) for role in REQUEST_PATH]
    assert roles[: len(expected)] == expected, trip.summary()
    assert roles[-len(expected) :] == list(reversed(expected)), trip.summary()
    assert [e.direction for e in trip.events][-1] == "response"
    # The back end sits between the app's two HTTP events, and every store message crosses the bridge.
    middle = roles[len(expected) : -len(expected)]
    assert "redis" in middle
    assert ("postgresql" in middle) is database, trip.summary()
    for before, event, after in zip(trip.events, trip.events[1:], trip.events[2:], strict=False):
        if event.device.role in ("redis", "postgresql"):
            assert before.device.role == "switch" and after.device.role == "switch"
    # Each event continues from the device before it: a connected path.
    for before, event in zip(trip.events, trip.events[1:], strict=False):
        assert event.came_from == before.device.name
    # Time order (the switch shows the same frame twice; hops may differ by clock granularity).
    times = [event.time for event in trip.events]
    assert all(b >= a - 0.001 for a, b in zip(times, times[1:], strict=False))
    assert trip.balancer is not None and trip.balancer_event().stopped_at == stop


@pytest.mark.parametrize(("scenario", "outcome"), [("alb", "miss"), ("alb", "hit")])
def test_database_query_carries_the_request_id(architecture, scenario, outcome):
    path = architecture[scenario]
    rid = _pick(path, outcome)
    trip = journey(path, request=rid)
    queries = [e for e in trip.events if e.device.role == "postgresql" and e.direction == "request"]
    if outcome == "miss":
        assert queries and f"rid={rid}" in queries[0].message
        assert any(f"rid={rid}" in note for note in trip.notes)
    else:
        assert queries == []
    commands = [
        e.message for e in trip.events if e.device.role == "redis" and e.direction == "request"
    ]
    assert any(command.startswith(f"SET rid:{rid}") for command in commands), commands


def test_alb_reads_up_to_l7_and_rewrites(architecture):
    path = architecture["alb"]
    trip = journey(path, request=_pick(path, "miss"))
    alb = trip.balancer_event()
    assert alb is not None and alb.device.role == "alb"
    assert [step.osi for step in alb.in_layers] == [1, 2, 3, 4, 7]
    assert alb.in_layers[-1].action == "stop" and alb.in_layers[-1].name == "http"
    out = {step.osi: step for step in alb.out_layers}
    assert out[7].action == "rewrote" and "x-forwarded-for" in out[7].detail.lower()
    assert out[4].action == "created"
    assert alb.packet_in.no != alb.packet_out.no
    # The ALB's connection to the target starts from the ALB's own address, not the client's.
    sent = osilab.read(path)
    by_no = {pkt.no: pkt for pkt in sent}
    assert by_no[alb.packet_out.no].ip_src in alb.device.addresses
    assert by_no[alb.packet_in.no].ip_src not in alb.device.addresses


def test_nlb_reads_up_to_l4_and_keeps_the_client_address(architecture):
    path = architecture["nlb"]
    trip = journey(path, request=_pick(path, "hit"))
    nlb = trip.balancer_event()
    assert nlb is not None and nlb.device.role == "nlb"
    assert [step.osi for step in nlb.in_layers] == [1, 2, 3, 4]
    assert nlb.in_layers[-1].action == "stop"
    out = {step.osi: step for step in nlb.out_layers}
    assert out[7].action == "kept" and out[4].action == "kept" and out[3].action == "rewrote"
    by_no = {pkt.no: pkt for pkt in osilab.read(path)}
    before, after = by_no[nlb.packet_in.no], by_no[nlb.packet_out.no]
    assert after.ip_src == before.ip_src  # client IP preservation
    assert after.ip_dst != before.ip_dst  # destination NAT
    assert after.payload == before.payload


@pytest.mark.parametrize(
    ("scenario", "outcome", "reason_source"),
    [
        ("alb", "miss", "balancer model"),
        ("nlb", "hit", "balancer model"),
    ],
)
def test_balancer_reason_comes_from_the_model(architecture, scenario, outcome, reason_source):
    path = architecture[scenario]
    trip = journey(path, request=_pick(path, outcome))
    event = trip.balancer_event()
    top = event.in_layers[-1]
    assert top.source == reason_source
    assert str(event.packet_in.no) in top.why or "SYN" in top.why
    plain = journey(path, request=trip.request_id, use_models=False).balancer_event()
    assert plain.in_layers[-1].source == "capture"


def test_bridge_stops_at_l2(architecture):
    path = architecture["alb"]
    trip = journey(path, request=_pick(path, "hit"))
    bridges = [e for e in trip.events if e.device.role == "switch"]
    assert bridges
    for event in bridges:
        assert event.stopped_at == 2
        assert event.packet_in.no == event.packet_out.no
        assert [step.action for step in event.out_layers] == ["kept", "sent"]


def test_static_file_turns_around_at_nginx(synthetic):
    trip = journey(synthetic["alb"], request="r0003")
    assert trip.hops() == ["client", "alb", "web1", "alb", "client"]
    nginx = trip.events[2]
    assert nginx.behaviour == "endpoint" and nginx.direction == "request"
    assert nginx.out_layers[0].action == "created" and "200" in nginx.out_layers[0].detail


def test_unknown_request_lists_the_ids(synthetic):
    with pytest.raises(UsageError) as caught:
        journey(synthetic["alb"], request="nope")
    assert "r0001" in str(caught.value)


def test_default_request_crosses_the_most_hops(synthetic):
    trip = journey(synthetic["alb"])
    assert trip.request_id in ("r0001", "r0002")


def test_without_topology_devices_are_addresses(synthetic):
    trip = journey(list(osilab.read(synthetic["alb"])), request="r0002")
    # The ALB is named by the address the client called; its other address is taken as the same device.
    assert trip.hops()[:3] == ["198.51.100.7", "203.0.113.10", "192.0.2.12"]
    assert trip.hops()[-3:] == ["192.0.2.12", "203.0.113.10", "198.51.100.7"]
    assert any("no topology.json" in note for note in trip.notes)
    nlb = journey(list(osilab.read(synthetic["nlb"])), request="r0101")
    assert nlb.hops()[:3] == ["198.51.100.7", "203.0.113.20", "192.0.2.11"]
    assert nlb.hops()[-3:] == ["192.0.2.11", "203.0.113.20", "198.51.100.7"]
    assert nlb.balancer_event().stopped_at == 4


def test_explicit_topology_argument(synthetic, tmp_path):
    moved = tmp_path / "elsewhere.pcapng"
    moved.write_bytes(synthetic["alb"].read_bytes())
    named = journey(moved, request="r0001", topology=synthetic["alb"].parent / "topology.json")
    assert named.hops()[:2] == ["client", "alb"]


def _words(parser, protocol: str, direction: Direction, data: bytes) -> str:
    """The journey's words for ``data`` as the pipeline's own parser reads it."""
    return describe(protocol, parser.feed(direction, data, 1, 0.0))


@pytest.mark.parametrize(
    ("direction", "data", "expected"),
    [
        (
            Direction.TO_SERVER,
            b"*3\r\n$3\r\nSET\r\n$8\r\nrid:r001\r\n$6\r\nitem:3\r\n",
            "SET rid:r001 item:3",
        ),
        (Direction.TO_CLIENT, b"+OK\r\n", "+OK"),
        (Direction.TO_CLIENT, b"$-1\r\n", "(nil): not in the cache"),
        (Direction.TO_CLIENT, b"$2\r\nhi\r\n", '"hi" (2 bytes)'),
        (Direction.TO_CLIENT, b"$30\r\n" + b"x" * 30 + b"\r\n", f'"{"x" * 30}" (30 bytes)'),
        (Direction.TO_CLIENT, b"", ""),
    ],
)
def test_resp_words(direction, data, expected):
    assert _words(RespParser(), "resp", direction, data) == expected


@pytest.mark.parametrize(
    ("direction", "data", "expected"),
    [
        (Direction.TO_SERVER, b"Q\x00\x00\x00\x0dSELECT 1\x00", "Simple query: SELECT 1"),
        (
            Direction.TO_CLIENT,
            b"C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I",
            "Command completion SELECT 1, Ready for query",
        ),
        (
            Direction.TO_CLIENT,
            b"T\x00\x00\x00\x1b\x00\x01id\x00"
            + b"\x00" * 18
            + b"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x013"
            + b"D\x00\x00\x00\x0b\x00\x01\x00\x00\x00\x014",
            "Row description, 2 Data rows",
        ),
        (Direction.TO_CLIENT, b"\x00\x01", "(no message)"),
    ],
)
def test_pgsql_words(direction, data, expected):
    parser = PgsqlParser()
    parser.feed(Direction.TO_SERVER, b"Q\x00\x00\x00\x05\x00", 1, 0.0)  # past the start-up
    assert _words(parser, "pgsql", direction, data) == expected


def test_journey_is_a_package_with_a_function():
    import osilab.journey.events as events

    assert osilab.journey.events is events  # the package is not rebound to the function
    assert callable(osilab.journey.journey) and osilab.request_journey is osilab.journey.journey


def test_flows_are_per_hop(synthetic):
    # The same connection seen on two hops (a mirror of client-alb): two flows, not one merged.
    packets = list(osilab.read(synthetic["alb"]))
    mirrored = [
        Packet(
            len(packets) + i + 1,
            pkt.time,
            pkt.data,
            pkt.linktype,
            interface=99,
            interface_name="mirror",
        )  # fmt: skip
        for i, pkt in enumerate(p for p in packets if p.interface_name == "client-alb")
    ]
    index = CaptureIndex(sorted(packets + mirrored, key=lambda pkt: (pkt.time, pkt.no)))
    legs = {ex.flow.hop: ex for ex in index.exchanges if ex.matches("r0001")}
    assert {"client-alb", "mirror"} <= set(legs), legs
    first, second = legs["client-alb"].flow.key, legs["mirror"].flow.key
    assert (first.client, first.server) == (second.client, second.server)
    assert first != second and second.interface == 99
    assert legs["client-alb"].response is not None and legs["mirror"].response is not None


def test_models_read_the_config_beside_the_capture(synthetic, tmp_path):
    bare = tmp_path / "alb.pcapng"
    bare.write_bytes(synthetic["alb"].read_bytes())
    (tmp_path / "topology.json").write_bytes(
        (synthetic["alb"].parent / "topology.json").read_bytes()
    )
    trip = journey(bare, request="r0001")
    assert trip.balancer_event().in_layers[-1].source == "capture"
    assert any("no alb.config.json beside the capture" in note for note in trip.notes)
    with_config = journey(synthetic["alb"], request="r0001")
    assert with_config.balancer_event().in_layers[-1].source == "balancer model"

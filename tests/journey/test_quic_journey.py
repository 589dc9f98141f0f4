"""The journey of a QUIC connection that migrated, against the lab's truth (captures/quic).

The oracle is truth.json's ``quic`` section, written from the back side of the capture and
the servers' own logs: which instance each client address reached (``paths``), which
requests came after the move (``migrated_requests``) and which were never answered
(``stranded``). The journey must find the same targets before and after the move, behind
each balancer, and say which field decided; the model's target must be the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from journey.conftest import CAPTURES

from osilab.journey import journey, quic_routes

FOLDER = CAPTURES / "quic"
CAPTURE = FOLDER / "quic.pcapng"
KEYLOG = str(FOLDER / "keylog.txt")

pytestmark = pytest.mark.skipif(not (FOLDER / "truth.json").is_file(),
                                reason="the lab's captures/quic is not recorded")  # fmt: skip


def _truth() -> dict:
    return json.loads((FOLDER / "truth.json").read_text())


def _client_records() -> dict[str, dict]:
    return {
        r["rid"]: r
        for r in json.loads((FOLDER / "client.json").read_text())
        if r["suite"] == "quic"
    }


def _paths() -> dict[str, dict]:
    """client ip:port -> its truth row (target, instance, datagrams each way)."""
    return {row["client"]: row for row in _truth()["quic"]["paths"]}


@pytest.mark.parametrize("keylog", [KEYLOG, None], ids=["keylog", "no-keylog"])
def test_each_client_address_goes_where_the_real_balancer_sent_it(keylog):
    paths = _paths()
    found = quic_routes(CAPTURE, keylog=keylog)
    rows = {row.client: row for _connection, routes in found for row in routes}
    assert set(rows) == set(paths)
    for client, truth in paths.items():
        row = rows[client]
        assert row.target == truth["target"] == row.model_target, (client, row)
        assert (row.to_target, row.from_target) == (truth["to_target"], truth["from_target"])
    # every connection migrated once: two client addresses each
    assert sorted(len(connection.clients) for connection, _ in found) == [2] * len(found)


def test_the_field_that_decided_5_tuple_behind_udp_server_id_behind_quic():
    rows = {row.client: row for _c, routes in quic_routes(CAPTURE, keylog=KEYLOG) for row in routes}
    for client, row in rows.items():
        first = rows[client].first_packet == min(r.first_packet for r in rows.values()
                                                 if r.balancer == row.balancer)  # fmt: skip
        if row.listener.startswith("QUIC") and not first:  # the migrated address
            assert row.seen == ("quic.dcid",) and "server ID 0x" in row.why
        else:  # a UDP listener, or the QUIC listener on the client's first (random) DCID
            assert "quic.dcid" not in row.seen and "hashing" in row.why


def _moved(rid: str) -> tuple[str, str]:
    """(first client address, the address it moved to) of a migrated request's connection."""
    record = _client_records()[rid]
    return record["extra"]["first_source"], record["source"]


def _balancer_events(trip, client: str):
    return [e for e in trip.events if e.device.role == "nlb" and e.direction == "request"
            and e.packet_in and e.in_layers and client.split(":")[1] in e.in_layers[-1].detail]  # fmt: skip


@pytest.mark.parametrize(
    "rid", sorted(_truth()["quic"]["migrated_requests"]) if FOLDER.is_dir() else []
)
def test_the_journey_of_a_migrated_connection_before_and_after(rid):
    truth, paths = _truth(), _paths()
    first, moved = _moved(rid)
    trip = journey(CAPTURE, connection=moved, keylog=KEYLOG)
    devices = {d.name: d for d in trip.devices}
    for client in (first, moved):
        event = _balancer_events(trip, client)[0]
        instance = paths[client]["instance"]
        assert event.goes_to == instance, (client, event.summary)
        assert event.packet_out.hop == paths[client]["hop"]
        assert paths[client]["target"].split(":")[0] in devices[instance].addresses
        step = event.in_layers[-1]
        assert step.source == "balancer model"
        listener_is_quic = paths[client]["target"].endswith(":4433")
        if client == moved and listener_is_quic:  # the server ID decided
            assert step.name == "quic" and "the 5-tuple did not decide" in step.why
        elif listener_is_quic:  # it read the DCID, found no server ID (the client's random one)
            assert step.name == "quic" and "carries no QuicServerId" in step.why
        else:  # a UDP listener reads no further than UDP
            assert step.name == "udp" and "hashing the protocol" in step.why
    stranded = rid in truth["quic"]["stranded"]
    after = [e for e in trip.events if e.device.name == paths[moved]["instance"]
             and e.packet_in and e.packet_in.hop == paths[moved]["hop"]]  # fmt: skip
    assert after, trip.text()
    if stranded:
        assert all(e.behaviour == "drop" for e in after)
        assert any(note.startswith("stranded:") for note in trip.notes)
        assert f"none of the {paths[moved]['to_target']} datagrams" in next(
            n for n in trip.notes if n.startswith("stranded:")
        )
    else:
        assert all(e.behaviour == "endpoint" for e in after)
        assert not any(note.startswith("stranded:") for note in trip.notes)


def test_an_http3_request_journey_is_its_connections_with_the_request_in_it():
    """``journey(capture, rid)`` of an HTTP/3 request after the move (decrypted through the
    connection-ID table) shows the request reaching the instance the server log names."""
    truth = _truth()
    answered = [
        rid for rid in truth["quic"]["migrated_requests"] if rid not in truth["quic"]["stranded"]
    ]
    rid = answered[0]
    trip = journey(CAPTURE, rid, keylog=KEYLOG)
    reached = [e for e in trip.events if e.direction == "request" and rid in e.message
               and e.device.role == "instance"]  # fmt: skip
    if not reached:
        pytest.skip(f"{rid} is not decrypted after the migration (the QUIC connection-ID table)")
    assert reached[0].device.name == truth["requests"][rid]["instance"]
    assert reached[0].stopped_at == 7


def test_cli_lists_connections_and_follows_one(capsys):
    from osilab.cli import main

    assert main(["journey", str(CAPTURE), "--connections", "--keylog", KEYLOG]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len({row["target"].split(":")[1] for row in _paths().values()})
    moved = _moved(_truth()["quic"]["stranded"][0])[1]
    assert main(["journey", str(CAPTURE), "--connection", moved, "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["behaviour"] == "drop" for e in events)


def test_an_unknown_connection_is_one_clear_error():
    from osilab.errors import UsageError

    with pytest.raises(UsageError, match="no QUIC connection 'ffff'"):
        journey(Path(CAPTURE), connection="ffff")

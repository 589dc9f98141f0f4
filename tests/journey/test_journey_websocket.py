"""The journey past a WebSocket Upgrade, and the ALB's ProtocolVersion in its Out layers.

Issue 19 item 2: after the 101 an ALB is an L4 balancer in effect. On the lab's websocket
capture (``osilab lab record --scenario websocket``) the journey of each Upgrade goes on
with the connection's first message each way; at the ALB its In layers stop at layer 4
("carried, not read"), with the ALB model's sentence, and the frame leaves byte for byte
as it came. tshark is the oracle for what the frames are (a WebSocket frame, masked from
the client, not from the server: RFC 6455 §5.1). Issue 18 item 2: the ALB's Out layer 7
names the target group's ProtocolVersion and what the capture shows it spoke.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from journey.conftest import lab_capture
from tshark_oracle import tshark_fields

from osilab.balancers.explain import alb_protocol_version_why
from osilab.journey import journey
from osilab.journey.events import MODEL

WEBSOCKET = lab_capture("websocket")
FAILOVER = lab_capture("failover")


def _truth(path: Path | None) -> dict:
    if path is None:
        pytest.skip("the lab's capture is not recorded (osilab lab record)")
    return json.loads((path.parent / "truth.json").read_text())


def _requests(balancer: str) -> list[str]:
    if WEBSOCKET is None:
        return ["(not recorded)"]
    truth = json.loads((WEBSOCKET.parent / "truth.json").read_text())
    return [rid for rid, real in truth["requests"].items() if real["balancer"] == balancer]


def _messages(trip):  # the events after the Upgrade
    return [event for event in trip.events if event.message.startswith("WebSocket ")]


@pytest.mark.parametrize("rid", _requests("alb"))
def test_after_the_upgrade_the_alb_reads_up_to_l4_only(rid):
    truth = _truth(WEBSOCKET)["requests"][rid]
    trip = journey(WEBSOCKET, request=rid)
    after = _messages(trip)
    # The first message out (alb, web, app) and the first one back (web, alb, client), sent
    # by the client in the event where it read the 101.
    assert [e.device.role for e in after] == ["alb", "instance", "app", "instance", "alb", "client"]
    before = trip.events[after[0].index - 1]
    assert before.device.role == "client" and before.message.startswith("HTTP/1.1 101")
    assert before.packet_out.no == after[0].packet_in.no
    for event in (e for e in after if e.device.role == "alb"):
        assert event.behaviour == "tunnel" and event.stopped_at == 4
        top = event.in_layers[-1]
        assert (top.name, top.action, top.source) == ("tcp", "stop", MODEL)
        assert "carried, not read" in top.why and "carried, not read" in top.detail
        assert truth["target"] in top.why  # the one decision, at the Upgrade, holds
        assert "layer 4 balancer" in top.why and "idle timeout" in top.why
        kept = event.out_layers[0]
        assert (kept.osi, kept.action) == (7, "kept") and "byte for byte" in kept.detail
    # The Upgrade itself was read at layer 7, as any request.
    assert trip.balancer_event().stopped_at == 7


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("rid", _requests("alb"))
def test_the_frames_the_journey_shows_are_websocket_frames_for_tshark(rid):
    _truth(WEBSOCKET)
    after = _messages(journey(WEBSOCKET, request=rid))
    shown = {e.packet_in.no: e for e in after if e.packet_in is not None}
    rows = tshark_fields(WEBSOCKET, "frame.number", "websocket.opcode", "websocket.mask",
                         "websocket.payload_length")  # fmt: skip
    tshark = {int(r[0]): r[1:] for r in rows if r and r[0].isdigit() and int(r[0]) in shown}
    assert set(tshark) == set(shown)
    for number, (opcode, mask, length) in tshark.items():
        event = shown[number]
        assert opcode == "1", number  # text: the lab's first message each way is text
        # RFC 6455 §5.1: a client masks every frame, a server none.
        assert mask in (("1", "True") if event.direction == "request" else ("0", "False")), number
        # The wire length; a permessage-deflate message names it as what it was inflated from.
        wire = f"inflated from {length})" if "inflated" in event.message else f"{length} bytes"
        assert wire in event.message, (number, event.message)


@pytest.mark.parametrize("rid", _requests("nlb"))
def test_through_the_nlb_every_message_is_forwarded_at_l4(rid):
    _truth(WEBSOCKET)
    after = _messages(journey(WEBSOCKET, request=rid))
    nlb = [e for e in after if e.device.role == "nlb"]
    assert len(nlb) == 2 and all(e.behaviour == "forward-l4" and e.stopped_at == 4 for e in nlb)
    # nginx proxies the WebSocket too: after its 101 it carries frames unread.
    assert all(e.behaviour == "tunnel" for e in after if e.device.role == "instance")


def test_without_models_the_alb_step_is_explained_from_the_capture():
    rid = _requests("alb")[0]
    _truth(WEBSOCKET)
    alb = next(e for e in _messages(journey(WEBSOCKET, request=rid, use_models=False))
               if e.device.role == "alb")  # fmt: skip
    assert alb.in_layers[-1].source == "capture" and "layer 4" in alb.in_layers[-1].why


def test_the_alb_out_layers_name_the_protocol_version():
    truth = _truth(FAILOVER)
    rid = next(r for r, real in truth["requests"].items() if real["balancer"] == "alb")
    alb = journey(FAILOVER, request=rid).balancer_event()
    out = alb.out_layers[0]
    assert (out.osi, out.action, out.source) == (7, "rewrote", MODEL)
    assert "ProtocolVersion HTTP1: HTTP/1.1 to the target" in out.detail
    assert "the capture shows HTTP/1.1" in out.why  # HAProxy spoke HTTP/1.1 to the target
    assert truth["requests"][rid]["http_version"] == "HTTP/1.1"


@pytest.mark.parametrize(
    ("version", "seen", "spoken", "agrees"),
    [
        # ALB-UG load-balancer-target-groups: what each ProtocolVersion speaks to the target.
        ("HTTP1", "HTTP/1.1", "HTTP/1.1", True),
        ("HTTP1", "HTTP/1.0", "HTTP/1.1", True),
        ("HTTP1", "HTTP/2", "HTTP/1.1", False),
        ("HTTP2", "HTTP/2", "HTTP/2", True),
        ("HTTP2", "HTTP/1.1", "HTTP/2", False),
        ("GRPC", "gRPC", "gRPC over HTTP/2", True),
        ("GRPC", "HTTP/2", "gRPC over HTTP/2", False),
    ],
)
def test_protocol_version_sentence(version, seen, spoken, agrees):
    why = alb_protocol_version_why("tg", version, seen)
    assert f"ProtocolVersion {version}" in why and f"speaks {spoken} to its targets" in why
    assert ("another protocol" not in why) is agrees
    assert ("(the default)" in why) is (version == "HTTP1")


def test_a_message_after_the_idle_timeout_would_not_be_carried():
    """The model the journey asks (``alb_message``) on w0004, the connection left idle: its
    last real message is carried; one sent after the idle timeout would not be."""
    from dataclasses import replace

    import osilab
    from osilab.balancers import load_config
    from osilab.balancers.config.beside import config_beside
    from osilab.journey._index import CaptureIndex
    from osilab.journey._models import alb_message
    from osilab.journey.path import find_legs

    truth = _truth(WEBSOCKET)
    rid = next(r for r, v in truth["websocket"].items() if v["close_code"] == 1006)  # left idle
    index = CaptureIndex(list(osilab.read(WEBSOCKET)))
    leg = find_legs(index, rid)[0]
    config = load_config(str(config_beside(WEBSOCKET, "alb")))
    last = index.websocket[leg.flow.key][-1]
    carried = alb_message(index, leg, config, last)
    assert carried is not None and carried.action == "forward"
    assert carried.target == truth["requests"][rid]["target"] and carried.unit == "message"
    idle = config.listener(leg.flow.key.server.port, "tcp").idle_timeout
    late = alb_message(index, leg, config, replace(last, time=last.time + idle + 0.5))
    assert late is not None and (late.action, late.target) == ("idle-timeout", None)
    assert "would not be carried" in late.why and f"{last.time + idle:.3f}" in late.why

"""One request's journey through a multi-hop capture: the events, device by device, layer by layer.

Theory of operation
-------------------
The lab records every hop of its network in one pcapng file, each hop on its own named
interface (``client-alb``, ``alb-web1``, ``web1-api``, ``api-redis``, ``api-db``...), and
every request carries an id (``X-Request-Id`` and ``?rid=``). A journey follows that one
request:

1. **Legs.** Every HTTP request carrying the id, on every hop, is one *leg*: the client's
   request to the balancer, the balancer's request to an instance, nginx's request to the
   app. Legs are ordered by the time their headers were complete.
2. **The back end, by timing.** The device that received the last leg (the app) answers
   it later on the same connection. Every Redis or PostgreSQL message the app sent or
   received *between* those two moments belongs to this request (the lab's client sends
   one request at a time). The id confirms it where it is visible: the Redis key
   ``rid:<id>`` and the SQL comment ``/* rid=<id> */``.
3. **PDUs.** The request path is then: the legs' request packets (the packet where each
   head became complete: where an L7 device can act), the store messages, and the legs'
   responses in reverse order.
4. **Devices.** The device that sent a frame owns its source MAC, the one that takes it in
   owns the destination MAC (:mod:`osilab.journey.network`). A frame between two hosts
   that are not linked directly crossed the bridge between them: the bridge gets its own
   event, in which it reads layer 2 only.
5. **Events.** One event per device handling the PDU, in path order (which is time order:
   each device acts after the one before it): what it read on the way **in**, from L1
   upwards, and where it stopped; what it rewrote or created on the way **out**, from the
   top down. What a device did is *observed*, by comparing the packet it received with
   the packet it sent:

   * the same TCP ports, sequence numbers and payload, a new destination address: the
     device forwarded at layer 4 without reading the payload (the NLB);
   * a new TCP connection carrying the same request with changed headers: the device
     read layer 7 (the ALB, nginx);
   * a different message: the device is an end point that answered or asked on
     (nginx serving a file, the app, Redis, PostgreSQL).

Each layer step has one sentence saying why. For a balancer the sentence is the balancer
model's own ``why`` (:mod:`osilab.journey._models`); a step explained from the capture
alone says so in its ``source``.

Where each part lives: :mod:`osilab.journey._index` (the capture on the one pipeline,
keyed by hop), :mod:`osilab.journey.path` (steps 1-4 and the behaviours),
:mod:`osilab.journey.steps` (step 5, the layers in and out), :mod:`osilab.journey._models`
(the balancer models), :mod:`osilab.journey.events` (the records) and
:mod:`osilab.journey.view` (the HTML). This module puts them together.

It is sans-IO: it is given an indexed capture, a parsed topology and the balancer
configurations; it reads no file and prints nothing. :func:`osilab.journey.journey` is
the edge that reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from osilab.balancers import BalancerConfig
from osilab.capture.packet import Packet
from osilab.errors import UsageError
from osilab.journey._index import CaptureIndex, Exchange
from osilab.journey._models import DECIDE, alb_message
from osilab.journey.events import BALANCER_ROLES, CAPTURE, JourneyEvent, PacketView
from osilab.journey.network import Device, Network
from osilab.journey.path import Arrival, arrivals_of, behaviour_of, find_legs, mac, path_pdus
from osilab.journey.steps import event_summary, in_steps, out_steps
from osilab.journey.view import journey_html

__all__ = ["Journey", "build_journey"]


@dataclass(frozen=True)
class Journey:
    """One request's journey: its events in order, the devices and links it crossed.

    Shows itself as text (:meth:`show`), as an interactive HTML view in a notebook
    (``_repr_html_``) and as a standalone document (:meth:`to_html`).
    """

    request_id: str
    capture: str
    events: tuple[JourneyEvent, ...]
    devices: tuple[Device, ...]
    links: tuple[tuple[str, str], ...]
    balancer: str | None = None
    notes: tuple[str, ...] = field(default=())

    def hops(self) -> list[str]:
        """The device of every event, in order: ``['client', 'alb', 'web1', ...]``."""
        return [event.device.name for event in self.events]

    def event(self, device: str, direction: str = "request") -> JourneyEvent:
        """The first event at ``device`` in ``direction``."""
        for event in self.events:
            if event.device.name == device and event.direction == direction:
                return event
        raise UsageError(f"request {self.request_id} has no {direction} event at {device!r}")

    def balancer_event(self) -> JourneyEvent | None:
        """The balancer's event on the way in (where the L4/L7 difference shows), if any."""
        if self.balancer is None:
            return None
        for event in self.events:
            if event.device.name == self.balancer and event.direction == "request":
                return event
        return None

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Any:
        return iter(self.events)

    def summary(self) -> str:
        path = " -> ".join(self.hops())
        return f"request {self.request_id}: {len(self.events)} events: {path}"

    def __repr__(self) -> str:
        return f"<Journey {self.request_id}: {len(self.events)} events>"

    def text(self) -> str:
        """The journey as plain text: one block per event, the layers in and out."""
        lines = [f"Journey of request {self.request_id} in {self.capture}"]
        for event in self.events:
            came = f" from {event.came_from}" if event.came_from else ""
            lines.append(
                f"\n[{event.index}] {event.device.name} ({event.device.title}), {event.direction}{came}"
                f": {event.summary}"
            )
            for label, steps in (("in ", event.in_layers), ("out", event.out_layers)):
                for step in steps:
                    lines.append(
                        f"    {label} L{step.osi} {step.name:<5} {step.action:<8} {step.detail}"
                    )
                    lines.append(
                        f"    {'':3} {'':14} why: {step.why}"
                        + (f" [{step.source}]" if step.source != CAPTURE else "")
                    )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def show(self, file: Any = None) -> None:
        """Print :meth:`text`."""
        print(self.text(), file=file)

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "capture": self.capture,
            "balancer": self.balancer,
            "devices": [
                {"name": d.name, "role": d.role, "title": d.title, "addresses": list(d.addresses)}
                for d in self.devices
            ],
            "links": [list(pair) for pair in self.links],
            "events": [event.to_json() for event in self.events],
            "notes": list(self.notes),
        }

    def to_html(self, *, standalone: bool = True) -> str:
        """The interactive view: a whole HTML document, or a fragment for a notebook."""
        return journey_html([self], standalone=standalone)

    def _repr_html_(self) -> str:
        return self.to_html(standalone=False)


def build_journey(
    index: CaptureIndex,
    network: Network,
    request_id: str,
    *,
    capture: str = "",
    use_models: bool = True,
    configs: Mapping[str, BalancerConfig] | None = None,
) -> Journey:
    """The journey of request ``request_id`` through an indexed capture (see the module docstring).

    ``configs`` are the balancer configurations by kind (``"alb"``, ``"nlb"``: the ones the
    lab wrote beside the capture); a balancer whose kind has none is explained from the
    capture. ``use_models=False`` explains every balancer from the capture only.
    Raises :class:`~osilab.errors.UsageError` when no request carries that id.
    """
    configs = configs or {}
    legs = find_legs(index, request_id)
    pdus, notes = path_pdus(index, network, legs)
    first = pdus[0].packet
    starter = network.device(network.owner(mac(first, "src"), first.ip_src)[0])
    if network.known and starter.role != "client":
        notes.append(
            f"the first plaintext request is {starter.name}'s: the client's leg before it is not readable "
            f"here (TLS-encrypted, or not captured), so the journey starts at {starter.name}."
        )
    events: list[JourneyEvent] = []
    balancer: str | None = None
    decisions: dict[str, Any] = {}
    # Behind a CloudFront edge the balancer's leg is the edge's request to it, not the client's.
    front = legs[:2] if _edge_of(network, legs[0]) else legs[:1]
    if (said := _edge_note(network, legs)) is not None:
        notes.append(said)
    for device_name, arrival_in, arrival_out in _plan(arrivals_of(network, pdus), notes):
        device = network.device(device_name)
        behaviour = behaviour_of(device, arrival_in, arrival_out)
        decision = None
        if network.known:
            is_balancer = (
                device.role in BALANCER_ROLES
                and arrival_in is not None
                and any(arrival_in.pdu.leg is leg for leg in front)
            )
        else:  # the first device to pass the client's request on
            is_balancer = (
                arrival_in is not None
                and arrival_in.pdu.leg is legs[0]
                and behaviour in ("forward-l4", "proxy-l4", "proxy-l7")
            )
        is_balancer = (
            is_balancer and arrival_in is not None and arrival_in.pdu.direction == "request"
        )
        if behaviour == "tunnel" and use_models:
            decision = _tunnel_decision(index, network, configs, device, front, arrival_in, arrival_out)
        elif is_balancer:
            assert arrival_in is not None and arrival_in.pdu.leg is not None
            balancer = balancer or device_name
            kind = _model_kind(device, behaviour)
            if use_models and kind is not None and device_name not in decisions:
                config = configs.get(kind)
                decisions[device_name] = (
                    DECIDE[kind](index, arrival_in.pdu.leg, config) if config else None
                )
            decision = decisions.get(device_name)
            if decision is not None and arrival_out is not None:
                notes.append(_model_vs_capture(device_name, decision, arrival_out.pdu.packet))
            elif use_models and not decisions.get(device_name):
                missing = (
                    f" (no {kind}.config.json beside the capture)"
                    if kind and not configs.get(kind)
                    else ""
                )
                notes.append(
                    f"{device_name}: no balancer model decision{missing}; its reasons are explained "
                    "from the capture."
                )
        steps_in = (
            in_steps(
                network,
                device,
                arrival_in,
                behaviour,
                arrival_out.pdu if arrival_out else None,
                decision,
            )
            if arrival_in
            else ()
        )
        steps_out = (
            out_steps(index, network, device, behaviour, arrival_in, arrival_out,
                      speaks=_protocol_version(configs, decision, behaviour))  # fmt: skip
            if arrival_out
            else ()
        )
        stopped = max((step.osi for step in steps_in), default=0)
        pdu = (arrival_in or arrival_out).pdu  # type: ignore[union-attr]
        events.append(
            JourneyEvent(
                index=len(events),
                time=pdu.packet.time if arrival_in else arrival_out.pdu.packet.time,  # type: ignore[union-attr]
                device=device,
                behaviour=behaviour,
                direction=pdu.direction,
                came_from=arrival_in.came_from if arrival_in else None,
                goes_to=arrival_out.device if arrival_out else None,
                packet_in=PacketView.of(arrival_in.pdu.packet) if arrival_in else None,
                packet_out=PacketView.of(arrival_out.pdu.packet) if arrival_out else None,
                in_layers=steps_in,
                out_layers=steps_out,
                message=pdu.message,
                summary=event_summary(device, behaviour, stopped, arrival_in, arrival_out),
            )
        )
    names = list(dict.fromkeys(event.device.name for event in events))
    on_path = set(names)
    links = tuple(pair for pair in network.linked() if set(pair) <= on_path)
    if not network.known:
        pairs = {
            (min(e.came_from, e.device.name), max(e.came_from, e.device.name))
            for e in events
            if e.came_from
        }
        links = tuple(sorted(pairs))
        notes.append("no topology.json: devices are named by IP address")
    return Journey(
        request_id=request_id,
        capture=capture,
        events=tuple(events),
        devices=tuple(network.device(name) for name in names),
        links=links,
        balancer=balancer,
        notes=tuple(notes),
    )


def _edge_of(network: Network, leg: Exchange) -> str | None:
    """The CloudFront edge (lab role ``cdn``) that received ``leg``, if one did."""
    name = network.owner(None, leg.flow.key.server.ip)[0] if network.known else None
    return name if name is not None and network.device(name).role == "cdn" else None


def _edge_note(network: Network, legs: list[Exchange]) -> str | None:
    """What the edge's ``X-Cache`` says: it answered itself (the journey stops there) or it
    asked an origin (the next leg). CloudFront-DG: ``X-Cache: Hit from cloudfront``..."""
    edge = _edge_of(network, legs[0])
    response = legs[0].response
    if edge is None or response is None:
        return None
    x_cache = response.header("x-cache")
    if x_cache is None:
        return None
    if len(legs) == 1:
        return (f"{edge} answered itself ({x_cache}): the request stops at the edge, and no "
                "origin (neither the static origin nor the ALB) ever sees it.")  # fmt: skip
    return (f"{edge} could not answer from its cache ({x_cache}): it asked its origin, the "
            "next leg of the journey.")  # fmt: skip


def _plan(
    arrivals: list[Arrival], notes: list[str]
) -> list[tuple[str, Arrival | None, Arrival | None]]:
    """``(device, arrival in, arrival out)`` per event, in path order.

    A device that sends a PDU without the capture showing what it received first (the
    client, or a hop that was not captured) gets an *origin* event: nothing in, one out.
    """
    plan: list[tuple[str, Arrival | None, Arrival | None]] = []
    previous: str | None = None
    for position, arrival in enumerate(arrivals):
        if arrival.came_from != previous:
            plan.append((arrival.came_from, None, arrival))
            if previous is not None:
                notes.append(
                    f"the capture does not show what {arrival.came_from} received before sending "
                    f"{arrival.pdu.message}"
                )
        following = arrivals[position + 1] if position + 1 < len(arrivals) else None
        onward = following if following and following.came_from == arrival.device else None
        plan.append((arrival.device, arrival, onward))
        previous = arrival.device
    return plan


def _tunnel_decision(
    index: CaptureIndex,
    network: Network,
    configs: Mapping[str, BalancerConfig],
    device: Device,
    front: list[Exchange],
    arrival_in: Arrival | None,
    arrival_out: Arrival | None,
) -> Any | None:
    """The ALB model on a WebSocket message the balancer carried after the Upgrade, either
    way (:func:`osilab.journey._models.alb_message`); ``None`` for any other device."""
    client_side = next(
        (a.pdu for a in (arrival_in, arrival_out) if a is not None and a.pdu.tunnel in front), None
    )
    config = configs.get("alb")
    if client_side is None or client_side.websocket is None or client_side.tunnel is None:
        return None
    if config is None or (network.known and device.role != "alb"):
        return None
    return alb_message(index, client_side.tunnel, config, client_side.websocket)


def _protocol_version(
    configs: Mapping[str, BalancerConfig], decision: Any | None, behaviour: str
) -> tuple[str, str] | None:
    """``(target group, ProtocolVersion)`` of an ALB request decision's target group."""
    config = configs.get("alb")
    if decision is None or behaviour != "proxy-l7" or config is None or decision.unit != "request":
        return None
    group = decision.target_group
    if group is None:
        return None
    return group, config.group(group).protocol_version


def _model_kind(device: Device, behaviour: str) -> str | None:
    """Which balancer model explains this device: an NLB forwards at layer 4, an ALB proxies at 7."""
    if behaviour == "forward-l4":
        return "nlb"
    if device.role in ("alb", "host") and behaviour == "proxy-l7":
        return "alb"
    return None


def _model_vs_capture(device: str, decision: Any, sent: Packet) -> str:
    target = getattr(decision, "target", None)
    real = f"{sent.ip_dst}:{sent.dst_port}"
    if target == real:
        return f"{device}: the balancer model chose {target}, as the capture shows."
    return (
        f"{device}: the balancer model chose {target}, the real balancer sent it to {real} (the model sees only "
        "this capture and hashes or counts its own way); the reasons say what the model did."
    )

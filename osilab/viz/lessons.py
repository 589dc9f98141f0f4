"""What the notebooks share about the lab captures: hops, the lab's balancer rules, the truth.

A lab capture (``captures/<scenario>/<scenario>.pcapng``) holds *every hop* of one
scenario, merged by time; each packet's pcapng interface names its hop (``client-alb``,
``alb-web1``, ``api-db`` ...). A lesson almost always wants one hop at a time: the NLB
and ALB models must be fed what the balancer itself received (the client side), and
"who is the client?" compares the front hop with the back hop. This module gives:

* :func:`capture_path`, :func:`hop_packets`, :func:`hops` - a scenario's file and its
  packets hop by hop;
* :func:`lab_alb_config` and :func:`lab_nlb_config` - the lab's ALB role written the way
  AWS describes a load balancer (``docs/design.md``), from the very table the lab
  configured HAProxy with (:data:`osilab.lab.configs.ALB_RULES`), so the models are fed
  the same rules the real balancer ran;
* :func:`truth` and :func:`client_records` - what the real balancers and the client
  recorded (``truth.json``, ``client.json``), to check a model or an answer against;
* :func:`journey_intervals` and :func:`hop_table` - a request's journey
  (:func:`osilab.journey.journey`) as a latency breakdown and as a table of which layers
  each device read, rewrote or terminated.

This module reads the small JSON files beside a capture; it draws nothing and prints
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from osilab.capture import Packet, read
from osilab.errors import UsageError
from osilab.viz import samples
from osilab.viz.balancing import Interval

__all__ = [
    "SCENARIOS",
    "capture_path",
    "hop_packets",
    "hops",
    "lab_targets",
    "lab_alb_config",
    "lab_nlb_config",
    "truth",
    "client_records",
    "journey_intervals",
    "hop_table",
]

#: The lab's scenarios, as ``captures/README.md`` describes them.
SCENARIOS = ("alb", "nlb", "l4proxy", "smuggle")

#: The lab's instances (the targets of every balancer role) and their addresses.
_INSTANCES = {"web1": "192.0.2.11", "web2": "192.0.2.12"}


def capture_path(scenario: str) -> Path:
    """The capture file of one lab scenario (``captures/<scenario>/<scenario>.pcapng``).

    Raises:
        CaptureError: the capture is missing (the message says how to record it).
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"no lab scenario {scenario!r}; there are: {', '.join(SCENARIOS)}")
    return samples.path(f"{scenario}/{scenario}.pcapng")


def hop_packets(source: str | Path | Iterable[Packet], *names: str) -> list[Packet]:
    """The packets captured on the hops ``names`` (all hops when none is given).

    ``source`` is a scenario name (``"alb"``), a capture path, or packets already read.
    A name ending in ``*`` is a prefix: ``hop_packets("alb", "alb-web*")`` is the ALB's
    whole back side.
    """
    if isinstance(source, str) and source in SCENARIOS:
        packets: Iterable[Packet] = read(capture_path(source))
    elif isinstance(source, str | Path):
        packets = read(source)
    else:
        packets = source
    if not names:
        return list(packets)
    exact = {n for n in names if not n.endswith("*")}
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return [
        p
        for p in packets
        if p.interface_name in exact or (prefixes and (p.interface_name or "").startswith(prefixes))
    ]


def hops(packets: Iterable[Packet]) -> dict[str, int]:
    """Hop name -> number of packets captured there, in order of first appearance."""
    counts: dict[str, int] = {}
    for pkt in packets:
        name = pkt.interface_name or f"interface {pkt.interface}"
        counts[name] = counts.get(name, 0) + 1
    return counts


def lab_targets(port: int = 80) -> dict[str, str]:
    """Instance name -> ``ip:port`` of the lab's targets (``web1``, ``web2``)."""
    return {name: f"{ip}:{port}" for name, ip in _INSTANCES.items()}


def lab_alb_config(port: int = 80, https_port: int | None = None) -> dict[str, Any]:
    """The lab's ALB role as an AWS-shaped configuration: its six rules and seven target groups.

    :func:`osilab.lab.configs.aws_alb_config` writes it from the very table the lab
    turned into HAProxy ACLs, so the ALB model and the real balancer run the same rules.
    With ``https_port`` (443 in the lab) an HTTPS listener with the same rules is added;
    replay it with the capture's key log to read those requests.
    """
    from osilab.lab.configs import aws_alb_config

    return aws_alb_config(lab_targets(port), port, https_port)


def lab_nlb_config(ports: Sequence[int] = (80,)) -> dict[str, Any]:
    """The lab's NLB role, AWS-shaped: one TCP listener per port, both instances as targets.

    An NLB listener has no rules: its only "decision" is a hash of the flow.
    """
    groups, listeners = [], []
    for port in ports:
        name = f"tg-tcp-{port}"
        groups.append(
            {
                "Name": name,
                "Protocol": "TCP",
                "Port": port,
                "Targets": list(lab_targets(port).values()),
            }
        )
        listeners.append(
            {
                "Protocol": "TCP",
                "Port": port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": name}],
            }
        )
    return {"Type": "network", "TargetGroups": groups, "Listeners": listeners}


def _side_file(scenario: str, name: str) -> Any:
    path = capture_path(scenario).parent / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def truth(scenario: str) -> dict[str, Any]:
    """``truth.json`` of a scenario: what the real balancers decided (see ``captures/README.md``)."""
    data: dict[str, Any] = _side_file(scenario, "truth.json")
    return data


def client_records(scenario: str) -> list[dict[str, Any]]:
    """``client.json`` of a scenario: one record per request the client sent."""
    data = _side_file(scenario, "client.json")
    return list(data if isinstance(data, list) else data.get("requests", []))


def journey_intervals(trip: Any) -> list[Interval]:
    """A journey as a latency breakdown: one interval per step, from one event to the next.

    Each event of :func:`osilab.journey.journey` is a device handling the request (or
    its response) at a moment the capture saw; the time until the next event is spent
    in that device or on the link after it. The interval is coloured by the highest
    layer the device read (a switch is layer 2, a balancer or server layer 7).
    """
    events = list(trip.events)
    intervals = []
    for here, nxt in zip(events, events[1:], strict=False):
        highest = max((step.osi for step in here.in_layers), default=7)
        intervals.append(
            Interval(
                label=f"{here.index}: {here.device.name} ({here.direction})",
                start=here.time,
                end=nxt.time,
                osi=highest if highest >= 2 else 2,
            )
        )
    return intervals


def hop_table(trip: Any) -> list[dict[str, Any]]:
    """One row per event: the device, the highest layer it read, what it rewrote or created.

    ``reads_up_to`` is the highest layer the device had to read to do its job (a switch
    stops at layer 2, a router at 3, a proxy or a server at 7); ``rewrites`` lists the
    headers it changed and passed on, ``creates`` the headers it wrote afresh (a proxy
    creates new TCP/IP headers: it *terminates* the connection it received).
    """
    rows = []
    for event in trip.events:
        read_steps = [s for s in event.in_layers if s.action in ("read", "stop")]
        top = max(read_steps, key=lambda s: s.osi, default=None)
        rows.append(
            {
                "step": event.index,
                "device": event.device.name,
                "direction": event.direction,
                "reads_up_to": f"L{top.osi} {top.name}" if top is not None else "-",
                "rewrites": ", ".join(
                    f"L{s.osi} {s.name}" for s in event.out_layers if s.action == "rewrote"
                )
                or "-",
                "creates": ", ".join(
                    f"L{s.osi} {s.name}" for s in event.out_layers if s.action == "created"
                )
                or "-",
            }
        )
    return rows

"""What the notebooks share about the lab captures: hops, the lab's balancer rules, the truth.

A lab capture (``captures/<scenario>/<scenario>.pcapng``) holds *every hop* of one
scenario, merged by time; each packet's pcapng interface names its hop (``client-alb``,
``alb-web1``, ``api-db`` ...). A lesson almost always wants one hop at a time: the NLB
and ALB models must be fed what the balancer itself received (the client side), and
"who is the client?" compares the front hop with the back hop. This module gives:

* :func:`capture_path`, :func:`hop_packets`, :func:`hops` - a scenario's file and its
  packets hop by hop;
* :func:`lab_config`, :func:`balancer_config`, :func:`lab_alb_config` and
  :func:`lab_nlb_config` - the lab's balancers written the way AWS describes a load
  balancer (``../shared/docs/design.md``), read from the ``alb.config.json`` and
  ``nlb.config.json`` the lab wrote beside each capture from the very table it
  configured HAProxy with, so the models are fed the same rules the real balancer ran;
* :func:`truth` and :func:`client_records` - what the real balancers and the client
  recorded (``truth.json``, ``client.json``), to check a model or an answer against;
* :func:`journey_intervals` and :func:`hop_table` - a request's journey
  (:func:`osilab.journey.journey`) as a latency breakdown and as a table of which layers
  each device read, rewrote or terminated.

This module reads the small JSON files beside a capture; it draws nothing, prints
nothing, and never imports :mod:`osilab.lab` (the lab is a later stage: it *writes* these
files, the lessons only read them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from osilab.balancers.config import BalancerConfig, load_config
from osilab.balancers.config.beside import CONFIG_SUFFIX, config_beside
from osilab.capture import Packet, read
from osilab.errors import UsageError
from osilab.lessons import samples
from osilab.viz.balancing import Interval

__all__ = [
    "SCENARIOS",
    "capture_path",
    "hop_packets",
    "hops",
    "lab_config",
    "balancer_config",
    "lab_alb_config",
    "lab_nlb_config",
    "truth",
    "client_records",
    "journey_intervals",
    "hop_table",
]

#: The lab's scenarios, as ``captures/README.md`` describes them.
SCENARIOS = ("alb", "nlb", "l4proxy", "smuggle", "websocket", "failover", "cdn", "quic")


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


def _config_path(scenario: str, lb: str) -> Path:
    path = config_beside(capture_path(scenario), lb)
    if path is None:
        raise UsageError(
            f"the lab scenario {scenario!r} has no {lb.upper()} (no {lb}{CONFIG_SUFFIX} beside "
            f"its capture); 'sudo osilab lab record' writes it"
        )
    return path


def lab_config(scenario: str, lb: str) -> dict[str, Any]:
    """The config of balancer ``lb`` (``"alb"``, ``"nlb"``) the lab wrote beside a scenario's capture.

    ``osilab lab record`` writes ``captures/<scenario>/alb.config.json`` and
    ``nlb.config.json`` (:mod:`osilab.balancers.config.beside`): the rules and targets the
    real balancer ran, in AWS's shape. The result is a fresh dict on every call, so a
    lesson may change it (add a rule, an attribute) and parse it again.

    Raises:
        UsageError: the scenario has no such balancer (the ``alb`` scenario has no NLB).
    """
    data: dict[str, Any] = json.loads(_config_path(scenario, lb).read_text(encoding="utf-8"))
    return data


def balancer_config(scenario: str, lb: str) -> BalancerConfig:
    """:func:`lab_config`, parsed and checked (:func:`osilab.balancers.config.load_config`).

    Raises:
        UsageError: the scenario has no such balancer.
        ConfigError: the file is not a valid configuration (the message names it).
    """
    return load_config(_config_path(scenario, lb))


def lab_alb_config(scenario: str = "alb", *, https: bool = False) -> dict[str, Any]:
    """The lab's ALB role as an AWS-shaped configuration: its six rules and seven target groups.

    Read from ``alb.config.json`` beside the capture, which the lab wrote from the very
    table it turned into HAProxy ACLs (:data:`osilab.lab.configs.ALB_RULES`), so the ALB
    model and the real balancer run the same rules. The HTTP listener only, unless
    ``https``: the HTTPS listener has the same rules, and its requests can only be read
    with the capture's key log (``keylog.txt``).
    """
    config = lab_config(scenario, "alb")
    if not https:
        config["Listeners"] = [lis for lis in config["Listeners"] if lis["Protocol"] != "HTTPS"]
    return config


def lab_nlb_config(ports: Sequence[int] = (80,), scenario: str = "nlb") -> dict[str, Any]:
    """The lab's NLB role, AWS-shaped: the TCP listeners on ``ports``, both instances as targets.

    Read from ``nlb.config.json`` beside the capture (the NLB role listens on 80 and 443).
    An NLB listener has no rules: its only "decision" is a hash of the flow.

    Raises:
        UsageError: the lab's NLB has no listener on one of ``ports``.
    """
    config = lab_config(scenario, "nlb")
    listeners = {lis["Port"]: lis for lis in config["Listeners"]}
    missing = [port for port in ports if port not in listeners]
    if missing:
        raise UsageError(
            f"the lab's NLB listens on {', '.join(map(str, listeners))}, not on "
            f"{', '.join(map(str, missing))}"
        )
    config["Listeners"] = [listeners[port] for port in ports]
    used = {a["TargetGroupName"] for lis in config["Listeners"] for a in lis["DefaultActions"]}
    config["TargetGroups"] = [g for g in config["TargetGroups"] if g["Name"] in used]
    return config


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

"""Ask the balancer models why a balancer did what the capture shows.

The journey *sees* what a balancer did (the packets on both of its sides); the models of
:mod:`osilab.balancers` *explain* it, in the one sentence of their
:class:`~osilab.balancers.decision.Decision`. This module feeds a model what the real
balancer was fed on the client-side hop and returns the decision for the journey's
request or flow:

* the ALB model gets every HTTP request that reached the ALB's address on that hop, in
  order (round robin depends on the requests before), configured with the lab's own
  listener rules when :mod:`osilab.lab.configs` is importable;
* the NLB model gets every packet of that hop (it decides at each flow's SYN).

A model is a model: when its target differs from the one the capture shows, the journey
says so rather than pretending. When :mod:`osilab.balancers` cannot be imported the
functions return ``None`` and the journey explains from the capture alone (and marks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from osilab.journey._index import CaptureIndex, Exchange
    from osilab.journey.network import Network

__all__ = ["alb_decision", "nlb_decision"]


def _targets(
    network: Network, index: CaptureIndex, balancer_ips: set[str], port: int
) -> dict[str, str]:
    """Instance name -> ``ip:port``: the topology's instances, else the servers the balancer called."""
    found = {
        device.name: f"{device.addresses[0]}:{port}"
        for device in network.devices.values()
        if device.role == "instance" and device.addresses
    }
    if found:
        return found
    for exchange in index.exchanges:
        if exchange.flow.key.client.ip in balancer_ips:
            server = exchange.flow.key.server
            found.setdefault(server.ip, f"{server.ip}:{port}")
    return found


def _alb_config(targets: dict[str, str], port: int) -> dict[str, Any]:
    """The lab's ALB role as an AWS-shaped configuration, over the targets the capture shows."""
    from osilab.lab.configs import aws_alb_config

    return aws_alb_config(targets, port)


def alb_decision(index: CaptureIndex, network: Network, leg: Exchange) -> Any | None:
    """The ALB model's decision for ``leg``'s request (``None`` when the model is unavailable)."""
    try:
        from osilab.balancers import ApplicationLoadBalancer
        from osilab.errors import OsilabError
    except ImportError:
        return None
    vip = leg.flow.key.server
    balancer_ips = set(network.device(network.owner(None, vip.ip)[0]).addresses) | {vip.ip}
    targets = _targets(network, index, balancer_ips, vip.port)
    if not targets:
        return None
    try:
        alb = ApplicationLoadBalancer(_alb_config(targets, vip.port))
    except OsilabError:
        return None
    for exchange in index.exchanges:
        if exchange.flow.hop != leg.flow.hop or exchange.flow.key.server != vip:
            continue
        if exchange.flow.syn_packet is not None:
            alb.connection_opened(exchange.flow.key, exchange.flow.syn_packet)
        decision = alb.request(exchange.request)
        if exchange is leg:
            return decision
        if exchange.response is not None:
            alb.response(exchange.response)
    return None


def nlb_decision(index: CaptureIndex, network: Network, leg: Exchange) -> Any | None:
    """The NLB model's decision for the flow carrying ``leg`` (``None`` when unavailable)."""
    try:
        from osilab.balancers import NetworkLoadBalancer
        from osilab.errors import OsilabError
    except ImportError:
        return None
    vip = leg.flow.key.server
    balancer_ips = set(network.device(network.owner(None, vip.ip)[0]).addresses) | {vip.ip}
    targets = _targets(network, index, balancer_ips, vip.port)
    if not targets:
        return None
    config = {
        "Type": "network",
        "TargetGroups": [
            {
                "Name": "tg-web",
                "Protocol": "TCP",
                "Port": vip.port,
                "Targets": list(targets.values()),
            }
        ],
        "Listeners": [
            {
                "Protocol": "TCP",
                "Port": vip.port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "tg-web"}],
            }
        ],
    }
    try:
        nlb = NetworkLoadBalancer(config)
    except OsilabError:
        return None
    for packet in index.packets.values():
        if (packet.interface_name or f"interface {packet.interface}") == leg.flow.hop:
            nlb.feed_packet(packet)
    return nlb.flow_decision(leg.flow.key)

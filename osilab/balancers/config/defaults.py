"""Configurations osilab invents: a default from a capture, and the other balancer's twin.

Theory of operation
-------------------
A learner with a capture and no configuration still gets an answer:
:func:`default_config` builds one listener and one target group per server port the
clients connected to, over targets the capture shows (never an invented address). And
to put the two balancers side by side, :func:`counterpart` turns an ALB's configuration
into the NLB in front of the same targets, or back. Both build
an AWS-shaped document and check it with :func:`~osilab.balancers.config.parse.parse_config`,
so an invented configuration obeys every rule a pasted one does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osilab.balancers.config.model import APPLICATION, NETWORK, BalancerConfig
from osilab.balancers.config.parse import parse_config
from osilab.errors import ConfigError

__all__ = ["default_config", "counterpart"]

def default_config(
    lb_type: str,
    servers: Iterable[tuple[str, int, str]],
    targets: Iterable[tuple[str, int, str]] = (),
) -> BalancerConfig:
    """A configuration built only from what a capture shows.

    ``servers`` are ``(ip, port, proto)`` of the server side of every client flow on the
    balancer's hop (proto "tcp"/"udp"): each server port becomes one listener and one
    target group ``<proto>-<port>``. ``targets`` are the servers the balancer's *back
    side* connects to, when the capture holds that hop (a lab capture's ``alb-web1``):

    - with ``targets``, a listener's group holds the targets on the same port, else
      every target (an ALB ends the client's connection on 443 and opens its own to 80);
    - without, it holds the servers the clients reached on that port (the capture was
      taken behind the balancer, or in front of one server).

    No address is invented: every target is one the capture shows. The ALB forwards
    everything by round robin (no rules); the NLB hashes the 5-tuple into a Maglev
    table; an NLB listener on 443 is TCP (TLS passes through).

    >>> config = default_config("application", [("203.0.113.10", 80, "tcp")],
    ...                         [("192.0.2.11", 80, "tcp"), ("192.0.2.12", 80, "tcp")])
    >>> config.group("tcp-80").targets
    ('192.0.2.11:80', '192.0.2.12:80')
    """
    if lb_type not in (APPLICATION, NETWORK):
        raise ConfigError(f"lb type must be 'application' or 'network', not {lb_type!r}")
    by_port = _hosts_by_port(lb_type, servers)
    if not by_port:
        raise ConfigError(
            "the capture shows no server the clients connected to (no TCP handshake or "
            "UDP service), so there is nothing to build a listener from: give --config"
        )
    back = _hosts_by_port(lb_type, targets)
    everyone = [(ip, port) for (port, _), hosts in back.items() for ip in hosts]
    groups, listeners = [], []
    for (port, proto), hosts in sorted(by_port.items()):
        name = f"{proto}-{port}"
        if not back:
            chosen = [(ip, port) for ip in hosts]
        else:
            chosen = [(ip, port) for ip in back.get((port, proto), [])] or everyone
        members = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in chosen]
        group_port = chosen[0][1]
        if lb_type == APPLICATION:
            protocol = "HTTPS" if port == 443 else "HTTP"
            group_protocol = "HTTPS" if group_port == 443 else "HTTP"
        else:
            protocol = group_protocol = proto.upper()
        groups.append(
            {"Name": name, "Protocol": group_protocol, "Port": group_port, "Targets": members}
        )
        listeners.append(
            {
                "Protocol": protocol,
                "Port": port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": name}],
            }
        )
    return parse_config(
        {
            "Type": lb_type,
            "Name": f"osilab default {lb_type}",
            "TargetGroups": groups,
            "Listeners": listeners,
        }
    )


def _hosts_by_port(
    lb_type: str, servers: Iterable[tuple[str, int, str]]
) -> dict[tuple[int, str], list[str]]:
    """``(port, proto) -> [ip, ...]`` in first-seen order (an ALB takes TCP only)."""
    by_port: dict[tuple[int, str], list[str]] = {}
    for ip, port, proto in servers:
        if lb_type == APPLICATION and proto != "tcp":
            continue
        hosts = by_port.setdefault((port, proto), [])
        if ip not in hosts:
            hosts.append(ip)
    return by_port


def counterpart(config: BalancerConfig) -> BalancerConfig:
    """The same targets behind the other kind of balancer, for side-by-side comparisons.

    ALB -> NLB: each HTTP listener becomes TCP on the same port (HTTPS becomes TLS),
    every target group keeps its targets, and the rules disappear (an NLB has none): the
    listener forwards to the target group of the ALB's *default* action.
    NLB -> ALB: TCP/TLS listeners become HTTP/HTTPS with the same default action.
    """
    if config.is_network:
        lb_type, listen = APPLICATION, {"TCP": "HTTP", "TLS": "HTTPS", "TCP_UDP": "HTTP"}
        group_protocol = {"TCP": "HTTP", "TLS": "HTTPS", "TCP_UDP": "HTTP", "UDP": "HTTP"}
    else:
        lb_type, listen = NETWORK, {"HTTP": "TCP", "HTTPS": "TLS"}
        group_protocol = {"HTTP": "TCP", "HTTPS": "TLS"}
    groups = [
        {
            "Name": g.name,
            "Protocol": group_protocol.get(g.protocol, "TCP"),
            "Port": g.port,
            "Targets": list(g.targets),
            "HealthChanges": [
                {"Time": c.time, "Target": c.target, "State": c.state} for c in g.health_changes
            ],
            **({"Algorithm": g.algorithm} if lb_type == APPLICATION else {}),
        }
        for g in config.target_groups
    ]
    listeners = []
    for listener in config.listeners:
        if listener.protocol not in listen:
            continue
        action = listener.default_action
        forward: dict[str, Any] = {"Type": "forward"}
        if action.type == "forward":
            forward["ForwardConfig"] = {
                "TargetGroups": [
                    {"TargetGroupName": e.name, "Weight": e.weight} for e in action.target_groups
                ]
            }
        else:  # an NLB can only forward: use the first group
            forward["TargetGroupName"] = config.target_groups[0].name
        listeners.append(
            {
                "Protocol": listen[listener.protocol],
                "Port": listener.port,
                "DefaultActions": [forward],
            }
        )
    if not listeners:
        kinds = ", ".join(f"{li.protocol}:{li.port}" for li in config.listeners)
        raise ConfigError(
            f"no listener of this {config.type} load balancer ({kinds}) has a counterpart: "
            "an ALB takes only TCP (HTTP/HTTPS) traffic"
        )
    return parse_config(
        {
            "Type": lb_type,
            "Name": f"{config.name or config.type} ({lb_type} counterpart)",
            "Seed": config.seed,
            "TargetGroups": groups,
            "Listeners": listeners,
        }
    )

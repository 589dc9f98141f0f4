"""Configurations osilab invents: a default from a capture, and the other balancer's twin.

Theory of operation
-------------------
A learner with a capture and no configuration still gets an answer:
:func:`default_config` builds one listener and one target group per server port the
capture talks to. And to put the two balancers side by side, :func:`counterpart` turns
an ALB's configuration into the NLB in front of the same targets, or back. Both build
an AWS-shaped document and check it with :func:`~osilab.balancers.config.parse.parse_config`,
so an invented configuration obeys every rule a pasted one does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osilab.balancers.config.model import APPLICATION, NETWORK, BalancerConfig
from osilab.balancers.config.parse import parse_config
from osilab.errors import ConfigError

__all__ = ["DEFAULT_TARGET_HOSTS", "default_config", "counterpart"]

#: The targets osilab invents when a capture shows a single server: documentation
#: addresses (RFC 5737), like the lab's EC2 instances.
DEFAULT_TARGET_HOSTS = ("192.0.2.11", "192.0.2.12", "192.0.2.13")


def default_config(lb_type: str, servers: Iterable[tuple[str, int, str]]) -> BalancerConfig:
    """A sensible configuration derived from the servers a capture talks to.

    ``servers`` are ``(ip, port, proto)`` of the server side of every flow (proto
    "tcp"/"udp"). For every server port there is one listener and one target group
    ``<proto>-<port>``:

    - its targets are the distinct server IPs seen on that port when there are at least
      two (the capture was taken *behind* a balancer, so these are the real backends);
      otherwise three documentation targets 192.0.2.11-13 on that port;
    - the ALB forwards everything by round robin (no rules), the NLB hashes the 5-tuple
      into a Maglev table; an NLB listener on 443 is TCP (TLS passes through).
    """
    if lb_type not in (APPLICATION, NETWORK):
        raise ConfigError(f"lb type must be 'application' or 'network', not {lb_type!r}")
    by_port: dict[tuple[int, str], list[str]] = {}
    for ip, port, proto in servers:
        if lb_type == APPLICATION and proto != "tcp":
            continue
        hosts = by_port.setdefault((port, proto), [])
        if ip not in hosts:
            hosts.append(ip)
    if not by_port:
        by_port[(80, "tcp")] = []
    groups, listeners = [], []
    for (port, proto), hosts in sorted(by_port.items()):
        name = f"{proto}-{port}"
        chosen = hosts if len(hosts) >= 2 else list(DEFAULT_TARGET_HOSTS)
        targets = [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in chosen]
        if lb_type == APPLICATION:
            protocol = "HTTPS" if port == 443 else "HTTP"
        else:
            protocol = proto.upper()
        groups.append({"Name": name, "Protocol": protocol, "Port": port, "Targets": targets})
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

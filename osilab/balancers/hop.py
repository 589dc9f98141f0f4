"""Which hop of a multi-hop capture a balancer stands on.

Theory of operation
-------------------
A lab capture holds every hop of one scenario (``client-alb``, ``alb-web1``,
``alb-web2``, ``web1-api``...), each on its own pcapng interface. A balancer sees one of
them: the hop where the clients' traffic reaches it. Replaying all seven would count the
same request once per hop, turn the ALB's own back-side connections into clients and the
Redis and PostgreSQL ports into listeners. So :func:`choose_hop` picks one interface:

1. ``--interface N`` (as pcapng numbers interfaces, from 0) or ``--hop NAME`` when given;
2. else, from the lab's ``topology.json``: the captured hop whose link joins a host of
   role ``client`` to the host of the balancer's role (``alb`` for ``--lb alb``, ``nlb``
   for ``--lb nlb``); when the scenario has no such hop, the single captured link from a
   client to any balancer (:data:`BALANCER_ROLES`); several are an error that lists them;
3. a capture of one interface is replayed whole;
4. a capture of several interfaces with neither is an error listing its interfaces.

The choice also names the **back side**: the captured hops from that balancer to its
targets, where a default configuration finds the real targets
(:func:`osilab.balancers.config.default_config`).

The topology is a parsed mapping: this module reads no file (the command line reads
``topology.json`` beside the capture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osilab.errors import UsageError

__all__ = ["BALANCER_ROLES", "HopChoice", "choose_hop"]

#: The lab roles that balance traffic (topology.json ``hosts[].role``).
BALANCER_ROLES = ("alb", "nlb", "l4proxy", "cdn")

#: ``--lb`` -> the lab roles that play that balancer, preferred first: an NLB is played by
#: the nftables balancer, else by the L4 proxy (HAProxy in tcp mode), both per-connection.
_ROLES_OF = {"alb": ("alb",), "nlb": ("nlb", "l4proxy"), "cdn": ("cdn",)}


@dataclass(frozen=True, slots=True)
class HopChoice:
    """The interface to replay (``None``: all of them) and why.

    Attributes:
        interface: the pcapng interface index, or ``None`` for the whole capture.
        name: its hop name (``"client-alb"``), ``""`` for the whole capture.
        back: interface indexes of the balancer's back side (its hops to the targets).
        reason: one sentence saying how the hop was chosen.
    """

    interface: int | None
    name: str
    back: tuple[int, ...] = ()
    reason: str = ""


def _listing(hops: Sequence[str]) -> str:
    return ", ".join(f"{index} {name}" for index, name in enumerate(hops))


def _links(topology: Mapping[str, Any], hops: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(hop, host a, host b)`` of every link captured in this file."""
    found = []
    for link in topology.get("links", ()) or ():
        hop = link.get("hop")
        if hop in hops:
            found.append((hop, link["a"]["host"], link["b"]["host"]))
    return found


def _front(
    topology: Mapping[str, Any], hops: Sequence[str], lb: str | None
) -> tuple[str, str] | None:
    """``(hop, balancer host)`` where clients reach the balancer, from the topology."""
    roles = {host["name"]: host.get("role") for host in topology.get("hosts", ()) or ()}
    client_links = []
    for hop, a, b in _links(topology, hops):
        if roles.get(a) == "client" and roles.get(b) in BALANCER_ROLES:
            client_links.append((hop, b))
        elif roles.get(b) == "client" and roles.get(a) in BALANCER_ROLES:
            client_links.append((hop, a))
    chosen = []
    for wanted in _ROLES_OF.get(lb or "", ()):
        chosen = [link for link in client_links if roles.get(link[1]) == wanted]
        if chosen:
            break
    if not chosen:
        chosen = client_links
    if len(chosen) > 1:
        names = ", ".join(f"interface {hops.index(hop)} {hop}" for hop, _ in chosen)
        raise UsageError(
            f"the capture holds several hops where clients reach a balancer ({names}); "
            "choose one with --hop NAME or --interface N"
        )
    return chosen[0] if chosen else None


def _back(topology: Mapping[str, Any], hops: Sequence[str], balancer: str) -> tuple[int, ...]:
    """The captured hops from ``balancer`` to anything but a client: its targets' side."""
    roles = {host["name"]: host.get("role") for host in topology.get("hosts", ()) or ()}
    back = []
    for hop, a, b in _links(topology, hops):
        other = b if a == balancer else a if b == balancer else None
        if other is not None and roles.get(other) != "client":
            back.append(hops.index(hop))
    return tuple(back)


def choose_hop(
    hops: Sequence[str],
    topology: Mapping[str, Any] | None,
    lb: str | None,
    *,
    hop: str | None = None,
    interface: int | None = None,
) -> HopChoice:
    """The interface a balancer (``lb``: ``"alb"``, ``"nlb"``, ``None`` for either) sees.

    ``hops`` are the capture's hop names in interface order (``Capture.hop_name``).
    ``hop`` / ``interface`` are the user's choice (``--hop`` / ``--interface``).

    >>> topo = {"hosts": [{"name": "c", "role": "client"}, {"name": "a", "role": "alb"},
    ...                   {"name": "w", "role": "instance"}],
    ...         "links": [{"hop": "c-a", "a": {"host": "c"}, "b": {"host": "a"}},
    ...                   {"hop": "a-w", "a": {"host": "a"}, "b": {"host": "w"}}]}
    >>> choice = choose_hop(["c-a", "a-w"], topo, "alb")
    >>> choice.interface, choice.name, choice.back
    (0, 'c-a', (1,))
    """
    if hop is not None and interface is not None:
        raise UsageError("give --hop NAME or --interface N, not both")
    if interface is not None:
        if not 0 <= interface < len(hops):
            raise UsageError(
                f"no interface {interface} in this capture (interfaces: {_listing(hops)})"
            )
        return HopChoice(interface, hops[interface], reason=f"--interface {interface}")
    if hop is not None:
        if hop not in hops:
            raise UsageError(f"no hop named {hop!r} in this capture (interfaces: {_listing(hops)})")
        return HopChoice(hops.index(hop), hop, reason=f"--hop {hop}")
    front = _front(topology, hops, lb) if topology is not None else None
    if front is not None:
        name, balancer = front
        return HopChoice(
            hops.index(name),
            name,
            _back(topology or {}, hops, balancer),
            f"topology.json: the hop where clients reach {balancer}",
        )
    if len(hops) <= 1:
        return HopChoice(None, "", reason="the capture has one interface")
    where = (
        "its topology.json names no captured hop from a client to a balancer"
        if topology is not None
        else "there is no topology.json beside it"
    )
    raise UsageError(
        f"the capture was taken on {len(hops)} interfaces ({_listing(hops)}) and {where}: "
        "say which one the balancer sees with --hop NAME or --interface N"
    )

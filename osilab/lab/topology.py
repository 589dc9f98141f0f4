"""The lab's network, declared as data: hosts, interfaces, links, routes.

This module owns *what* the lab network looks like and nothing else. It never runs a
command, opens a socket or touches a file: :func:`build_commands` turns the declaration
into the ``ip``/``sysctl``/``ethtool`` command lines that :mod:`osilab.lab.runtime` runs,
and :meth:`Topology.to_json` describes it for the journey view (``topology.json``).

The picture (every box is a Linux network namespace named ``osl-<host>``; the names on
the lines are the captured ends, i.e. the hops)::

                        client-alb    +- alb: HAProxy mode http -+   alb-web1, alb-web2
                      +-------------->| 203.0.113.10  192.0.2.2  |------------------+
   +- client -------+ |               +--------------------------+                  |
   | 198.51.100.7   | | client-nlb    +- nlb: nftables DNAT -----+   nlb-web1, nlb-web2
   | 198.51.100.8   |-+-------------->| 203.0.113.20  192.0.2.3  |------------------+
   +----------------+ |               +--------------------------+                  |
                      | client-l4p    +- l4p: HAProxy mode tcp --+   l4p-web1, l4p-web2
                      +-------------->| 203.0.113.30  192.0.2.4  |------------------+
                                      +--------------------------+                  |
       +----------------------------------------------------------------------------+
       v
   +- web1 nginx -+ web1-api +- api1 app -+             +- cache: Redis ----+
   | 192.0.2.11   |--------->| 192.0.2.21 |--+ api-redis| 192.0.2.30        |
   | +.13 .15 .17 |          +------------+  +- br-data +- db: PostgreSQL --+
   |  .19 (ALB)   |                          |  api-db  | 192.0.2.40        |
   +--------------+                          |          +-------------------+
   +- web2 nginx -+ web2-api +- api2 app -+  |
   | 192.0.2.12   |--------->| 192.0.2.22 |--+
   | +.14 .16 .18 |          +------------+
   |  (ALB)       |
   +--------------+

The CloudFront edge (``edge``, 203.0.113.40) sits beside them: ``client-edge`` from the
viewers, ``edge-s3`` to the static origin (192.0.2.50) and ``edge-alb`` to the ALB
role's public address, so a request it cannot answer from its cache goes on to the ALB.

Every link is a veth pair; each end is named ``<this host>-<peer>`` so that a capture
taken on it is labelled with the hop it shows (pcapng keeps interface names). The data
stores sit on a Linux bridge (``br-data`` in the ``data`` namespace), like instances in
one subnet. Addresses come only from the documentation ranges of RFC 5737: clients in
198.51.100.0/24, balancer virtual IPs in 203.0.113.0/24, instances and data stores in
192.0.2.0/24. No namespace has a link to the host, so nothing can leave the lab.

The instances' *default route* points at the NLB: that is what lets an NLB keep the
client's address (AWS: "client IP preservation") and still see the replies, which its
connection tracking turns back into replies from the virtual IP.

**Distinct targets are distinct addresses.** The ALB role's seven target groups must not
share targets, or routing by host, header or URL would not show in a capture: every
request would still land on 192.0.2.11 or .12. So each instance carries *secondary
addresses* on its link to the ALB (:data:`SECONDARY_ADDRESSES`: web1 the odd ones .13 to
.19, web2 the even ones .14 to .18), as an EC2 instance's network interface carries
secondary private IPs, and the ALB's target groups register them as ``ip`` targets
(AWS ``TargetType: ip``): one address per (target group, instance). nginx listens on
every one of them, so the hops stay the same (``alb-web1``/``alb-web2``) while each
rule's target group has targets no other group has. The NLB, the L4 proxy and the QUIC
balancers keep the primary addresses .11/.12; the secondaries sit on the ALB's link
only, and the ALB reaches each one by its own /32 route, so the instances answer the ALB
on that same link (the NLB's default-route trick is untouched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PREFIX",
    "Interface",
    "Route",
    "Host",
    "Link",
    "Topology",
    "SECONDARY_ADDRESSES",
    "LAB",
    "namespace",
    "build_commands",
    "OFFLOADS_OFF",
]

#: Every namespace the lab creates starts with this; stale ones are removed at start.
PREFIX = "osl-"

#: ``ethtool -K`` features turned off on every veth end, so that the kernel hands
#: tcpdump real MTU-sized frames instead of 64 KB "super-segments" (TSO/GSO/GRO) and
#: checksums are computed in software (tx/rx checksum offload off).
OFFLOADS_OFF = ("tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")


#: Each instance's secondary addresses, by target name (``<instance>.<use>``): the ALB
#: role's target groups register them as ``ip`` targets
#: (:data:`osilab.lab.configs.ALB_TARGET_GROUPS`), like an ENI's secondary private IPs.
#: They sit on the instance's link to the ALB only; the other balancers reach .11/.12.
SECONDARY_ADDRESSES: dict[str, dict[str, str]] = {
    "web1": {"web1.api": "192.0.2.13", "web1.canary": "192.0.2.15",
             "web1.write": "192.0.2.17", "web1.office": "192.0.2.19"},
    "web2": {"web2.api": "192.0.2.14", "web2.admin": "192.0.2.16", "web2.beta": "192.0.2.18"},
}  # fmt: skip


def namespace(host: str) -> str:
    """The network namespace name of a lab host: ``namespace("alb") == "osl-alb"``."""
    return PREFIX + host


@dataclass(frozen=True, slots=True)
class Interface:
    """One end of a veth pair (or a bridge port) inside a host.

    ``addresses`` are CIDR strings (``"192.0.2.11/32"``); a /32 on a point-to-point
    link is enough because every peer gets an explicit route (see :class:`Route`).
    """

    host: str
    name: str
    mac: str
    addresses: tuple[str, ...] = ()
    captured: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A route in one host: ``destination`` (CIDR or ``default``) out of ``device``.

    ``via`` names a next-hop router (used only for the instances' default route, which
    points back through the NLB); ``source`` is the preferred source address.
    """

    host: str
    destination: str
    device: str
    via: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Host:
    """A lab machine: one namespace, a role, and whether it forwards packets."""

    name: str
    role: str
    forwards: bool = False
    bridge: str | None = None

    @property
    def namespace(self) -> str:
        return namespace(self.name)


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair: two interfaces in two hosts. The ``captured`` end names the hop."""

    end_a: Interface
    end_b: Interface

    @property
    def captured(self) -> Interface | None:
        """The end tcpdump listens on, or None for an uncaptured bridge port."""
        if self.end_a.captured:
            return self.end_a
        return self.end_b if self.end_b.captured else None

    @property
    def hop(self) -> str:
        """The capture name of this link: the name of its captured end."""
        return self.end_a.name if self.end_a.captured else self.end_b.name


@dataclass(frozen=True, slots=True)
class Topology:
    """The whole lab network: hosts, links and routes, plus the service addresses."""

    hosts: tuple[Host, ...]
    links: tuple[Link, ...]
    routes: tuple[Route, ...]
    services: dict[str, str] = field(default_factory=dict)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def interfaces(self, host: str | None = None) -> list[Interface]:
        ends = [end for link in self.links for end in (link.end_a, link.end_b)]
        return [end for end in ends if host is None or end.host == host]

    def hop(self, name: str) -> Interface:
        """The captured interface called ``name`` (``"alb-web1"``)."""
        for end in self.interfaces():
            if end.captured and end.name == name:
                return end
        raise KeyError(name)

    def to_json(self, hops: tuple[str, ...]) -> dict[str, Any]:
        """The ``topology.json`` document for a capture that recorded ``hops``.

        Hosts list every interface with its MAC and addresses; ``links`` lists every
        veth pair; ``hops`` are the links captured in this file, in path order.
        """
        return {
            "hosts": [
                {
                    "name": host.name,
                    "role": host.role,
                    "namespace": host.namespace,
                    "forwards_ip": host.forwards,
                    "interfaces": [
                        {
                            "name": end.name,
                            "mac": end.mac,
                            "ip": [a.split("/")[0] for a in end.addresses],
                            "cidr": list(end.addresses),
                        }
                        for end in self.interfaces(host.name)
                    ],
                }
                for host in self.hosts
            ],
            "links": [
                {
                    "a": {"host": link.end_a.host, "interface": link.end_a.name},
                    "b": {"host": link.end_b.host, "interface": link.end_b.name},
                    "hop": link.hop if link.captured else None,
                    "captured_in": link.captured.host if link.captured else None,
                    "description": link.captured.description if link.captured else "",
                }
                for link in self.links
            ],
            "hops": [
                {
                    "interface": name,
                    "host": self.hop(name).host,
                    "description": self.hop(name).description,
                }
                for name in hops
            ],
            "services": dict(self.services),
        }


def _mac(link_index: int, side: int) -> str:
    # Locally administered unicast (0x02 in the first octet): never a real vendor's MAC,
    # and deterministic, so the same run gives the same addresses in every capture.
    return f"02:00:00:00:{link_index:02x}:{side:02x}"


def _declare() -> Topology:
    hosts = (
        Host("client", "client"),
        Host("alb", "alb"),
        Host("nlb", "nlb", forwards=True),
        Host("l4p", "l4proxy"),
        Host("web1", "instance"),
        Host("web2", "instance"),
        Host("api1", "app"),
        Host("api2", "app"),
        Host("cache", "redis"),
        Host("db", "postgresql"),
        Host("edge", "cdn"),
        Host("s3", "static-origin"),
        Host("data", "switch", bridge="br-data"),
    )
    address = {
        "client": "198.51.100.7",
        "client2": "198.51.100.8",
        "alb": "203.0.113.10",
        "alb-back": "192.0.2.2",
        "nlb": "203.0.113.20",
        "nlb-back": "192.0.2.3",
        "l4p": "203.0.113.30",
        "l4p-back": "192.0.2.4",
        "web1": "192.0.2.11",
        "web2": "192.0.2.12",
        "api1": "192.0.2.21",
        "api2": "192.0.2.22",
        "cache": "192.0.2.30",
        "db": "192.0.2.40",
        "edge": "203.0.113.40",
        "edge-alb": "203.0.113.41",
        "edge-back": "192.0.2.5",
        "s3": "192.0.2.50",
    }
    links: list[Link] = []
    routes: list[Route] = []

    def link(
        host_a: str,
        addrs_a: tuple[str, ...],
        host_b: str,
        addrs_b: tuple[str, ...],
        *,
        name_a: str | None = None,
        name_b: str | None = None,
        captured: str = "a",
        description: str = "",
    ) -> None:
        index = len(links) + 1
        end_a = Interface(
            host_a,
            name_a or f"{host_a}-{host_b}",
            _mac(index, 1),
            addrs_a,
            captured == "a",
            description if captured == "a" else "",
        )
        end_b = Interface(
            host_b,
            name_b or f"{host_b}-{host_a}",
            _mac(index, 2),
            addrs_b,
            captured == "b",
            description if captured == "b" else "",
        )
        links.append(Link(end_a, end_b))

    clients = (address["client"] + "/32", address["client2"] + "/32")
    for balancer in ("alb", "nlb", "l4p"):
        vip = address[balancer]
        link(
            "client",
            clients,
            balancer,
            (vip + "/32",),
            description=f"client side of the {balancer}: clients to the virtual IP {vip}",
        )
        routes.append(Route("client", vip + "/32", f"client-{balancer}", source=address["client"]))
        routes.append(Route(balancer, "198.51.100.0/24", f"{balancer}-client", source=vip))
        back = address[f"{balancer}-back"]
        for web in ("web1", "web2"):
            # The ALB's targets: the instance's primary address and, on this link only, its
            # secondary ones (one per target group it serves); each gets a /32 route.
            extra = tuple(SECONDARY_ADDRESSES[web].values()) if balancer == "alb" else ()
            link(
                balancer,
                (back + "/32",),
                web,
                tuple(ip + "/32" for ip in (address[web], *extra)),
                description=f"back side of the {balancer}: {balancer} to target {web}",
            )
            for target in (address[web], *extra):
                routes.append(Route(balancer, target + "/32", f"{balancer}-{web}", source=back))
            routes.append(Route(web, back + "/32", f"{web}-{balancer}", source=address[web]))
    for web, api in (("web1", "api1"), ("web2", "api2")):
        # Targets answer clients through the NLB: the NLB keeps the client's address.
        routes.append(Route(web, "default", f"{web}-nlb", via=address["nlb-back"]))
        link(
            web,
            (address[web] + "/32",),
            api,
            (address[api] + "/32",),
            name_a=f"{web}-api",
            name_b=f"api-{web}",
            description=f"inside instance {web}: nginx proxies /api to the app {api}",
        )
        routes.append(Route(web, address[api] + "/32", f"{web}-api", source=address[web]))
        routes.append(Route(api, address[web] + "/32", f"api-{web}", source=address[api]))
        link(api, (address[api] + "/24",), "data", (), name_b=f"sw-{api}", captured="none")
    # The two stores, each on its port of the data subnet (host, interface, what it carries).
    for store, name_a, what in (
        ("cache", "api-redis", "the apps to Redis (cache), seen at the cache's port"),
        ("db", "api-db", "the apps to PostgreSQL, seen at the database's port"),
    ):
        link(
            store,
            (address[store] + "/24",),
            "data",
            (),
            name_a=name_a,
            name_b=f"sw-{store}",
            description=f"{what} of the data subnet",
        )
    # The CloudFront edge (issue 21): viewers reach it at 203.0.113.40; it fetches /static/*
    # from the static origin (nginx standing in for S3) and the rest from the ALB role's
    # public address, as a distribution's origins are reached (lab.cdn).
    edge = address["edge"]
    link("client", clients, "edge", (edge + "/32",),
         description=f"viewers to the CloudFront edge {edge} (nginx proxy_cache)")  # fmt: skip
    routes.append(Route("client", edge + "/32", "client-edge", source=address["client"]))
    routes.append(Route("edge", "198.51.100.0/24", "edge-client", source=edge))
    for origin, near, far, what in (
        ("s3", address["edge-back"], address["s3"], "the static origin (S3's role)"),
        ("alb", address["edge-alb"], address["alb"], "the ALB role's public address"),
    ):
        link("edge", (near + "/32",), origin, (far + "/32",) if origin == "s3" else (),
             description=f"the edge to its origin: {what}")  # fmt: skip
        routes.append(Route("edge", far + "/32", f"edge-{origin}", source=near))
        routes.append(Route(origin, near + "/32", f"{origin}-edge", source=far))
    services = {
        "alb_http": f"{address['alb']}:80",
        "alb_https": f"{address['alb']}:443",
        "nlb_http": f"{address['nlb']}:80",
        "nlb_tls": f"{address['nlb']}:443",
        "l4p_http": f"{address['l4p']}:80",
        "l4p_proxy_v2": f"{address['l4p']}:81",
        "cdn_http": f"{address['edge']}:80",
        "cdn_https": f"{address['edge']}:443",
        **{name: ip for name, ip in address.items()},
        **{name: ip for extra in SECONDARY_ADDRESSES.values() for name, ip in extra.items()},
    }
    return Topology(hosts, tuple(links), tuple(routes), services)


#: The one lab network every scenario runs on.
LAB = _declare()


def build_commands(topology: Topology) -> list[tuple[str | None, tuple[str, ...]]]:
    """The command lines that build ``topology``: ``(namespace or None, argv)`` pairs.

    Order matters: namespaces, then per-namespace sysctls (IPv6 off so captures hold
    only the lab's IPv4 traffic, reverse-path filter off because hosts own several
    /32 links, forwarding only where the host forwards), then veth pairs created
    straight into their namespaces, then addresses, MACs, offloads, bridge ports and
    routes.
    """
    commands: list[tuple[str | None, tuple[str, ...]]] = []
    for host in topology.hosts:
        commands.append((None, ("ip", "netns", "add", host.namespace)))
    for host in topology.hosts:
        ns = host.namespace
        sysctls = [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            f"net.ipv4.ip_forward={1 if host.forwards else 0}",
        ]
        for setting in sysctls:
            commands.append((ns, ("sysctl", "-q", "-w", setting)))
        commands.append((ns, ("ip", "link", "set", "lo", "up")))
        if host.bridge:
            commands.append((ns, ("ip", "link", "add", host.bridge, "type", "bridge")))
            commands.append((ns, ("ip", "link", "set", host.bridge, "up")))
    for link in topology.links:
        a, b = link.end_a, link.end_b
        commands.append(
            (
                None,
                (
                    "ip", "link", "add", a.name, "netns", namespace(a.host), "address", a.mac,
                    "type", "veth",
                    "peer", "name", b.name, "netns", namespace(b.host), "address", b.mac,
                ),
            )
        )  # fmt: skip
    for end in topology.interfaces():
        ns = namespace(end.host)
        host = topology.host(end.host)
        for cidr in end.addresses:
            commands.append((ns, ("ip", "addr", "add", cidr, "dev", end.name)))
        if host.bridge:
            commands.append((ns, ("ip", "link", "set", end.name, "master", host.bridge)))
        commands.append((ns, ("ip", "link", "set", end.name, "up")))
        commands.append((ns, ("ethtool", "-K", end.name, *OFFLOADS_OFF)))
    for route in topology.routes:
        argv = ["ip", "route", "add", route.destination]
        if route.via:
            argv += ["via", route.via]
        argv += ["dev", route.device]
        if route.via:
            argv.append("onlink")
        if route.source:
            argv += ["src", route.source]
        commands.append((namespace(route.host), tuple(argv)))
    return commands

"""The ``quic`` scenario: a connection is not a 5-tuple any more.

Theory of operation
-------------------
Each instance (``web1``, ``web2``) runs a real HTTP/3 server (aioquic,
:mod:`osilab.lab.quic_server`) on UDP :data:`UDP_PORT` and :data:`QUIC_PORT`. Every
connection ID it issues is in QUIC-LB's *plaintext* form (draft-ietf-quic-load-balancers
§5.1)::

    0x0b | server ID (8 bytes, :data:`SERVER_IDS`) | nonce (3 random bytes)

The first octet's three high bits are the config rotation (``0b000``), its five low bits
the length of the rest of the ID (11: QUIC-LB's "self-encoded length"); the server ID
has the 8 bytes of an AWS ``QuicServerId``.

Two L4 balancers share the NLB role's namespace (:func:`nftables_quic`, loaded for this
scenario only), both nftables DNAT in ``prerouting``:

* **the 5-tuple balancer**, ``VIP:443/udp``: ``jhash`` of the addresses and ports, as the
  NLB role does for TCP (an NLB ``UDP`` listener);
* **the QUIC-aware balancer**, ``VIP:4433/udp``: a *short-header* packet (first bit of the
  UDP payload 0, RFC 9000 §17.3) whose Destination Connection ID carries a known server ID
  (raw payload match ``@th,80,64``: bits 80-143 from the start of the UDP header, i.e.
  UDP payload bytes 2-9) goes to that server; anything else (the client's Initial, whose
  DCID the client drew at random) is hashed like the first balancer (an NLB ``QUIC``
  listener with targets registered with a ``QuicServerId``).

As any NAT, nftables consults its ``nat`` chain only on a flow's first packet; conntrack
keeps the rest of the flow on the same target. A migrated client is a new flow: the rule
runs again, now on a short-header packet.

The client (:mod:`osilab.lab.quic_client`) makes HTTP/3 requests through each balancer,
then moves its connection to a new UDP socket (a port the 5-tuple hash sends to the
*other* instance) and goes on. Behind the QUIC-aware balancer the same server answers
(after path validation, RFC 9000 §8.2); behind the 5-tuple balancer the other server,
which does not know the connection ID, drops the packets, and the connection ends by
its idle timeout (:data:`IDLE_TIMEOUT`): the traffic stops by itself.

truth.json's ``quic`` section comes from the servers' own logs (which server answered
which request, on which client address, under which connection ID) and from the back
side of the capture (which instance each client address reached, :func:`path_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from osilab.balancers.quic_lb import SERVER_ID_LENGTH
from osilab.lab.configs import NLB_SEED
from osilab.lab.runtime import hop_endpoints

__all__ = [
    "TARGETS",
    "UDP_PORT",
    "QUIC_PORT",
    "IDLE_TIMEOUT",
    "SERVER_IDS",
    "CID_LENGTH",
    "FIRST_OCTET",
    "connection_id",
    "nftables_quic",
    "balancer_configs",
    "path_rows",
    "parse_server_log",
    "quic_truth",
]

TARGETS = ("web1", "web2")
#: The 5-tuple balancer's port (an NLB UDP listener) and the QUIC-aware one's.
UDP_PORT = 443
QUIC_PORT = 4433
#: Seconds of silence after which both ends drop a QUIC connection (max_idle_timeout).
IDLE_TIMEOUT = 4.0
#: Each instance's QuicServerId: ``osilab`` then its number (readable in a hex dump).
SERVER_IDS = {name: b"osilab\0" + bytes([n]) for n, name in enumerate(TARGETS, 1)}
#: Bytes of each connection ID the servers issue: first octet, server ID, 3-byte nonce.
CID_LENGTH = 1 + SERVER_ID_LENGTH + 3
#: Config rotation 0b000, then the length of the rest of the ID (QUIC-LB §5.1).
FIRST_OCTET = CID_LENGTH - 1


def connection_id(server_id: bytes, nonce: bytes) -> bytes:
    """A QUIC-LB plaintext connection ID.

    >>> connection_id(SERVER_IDS["web1"], b"abc").hex()
    '0b6f73696c61620001616263'
    """
    return bytes([FIRST_OCTET]) + server_id + nonce


def nftables_quic(*, vip: str, targets: Mapping[str, str]) -> str:
    """Both balancers as one nftables table (``targets``: lab host -> address).

    The table is flushed first, so loading it twice leaves one copy of each rule.
    """
    addresses = [targets[name] for name in TARGETS]
    mapping = ", ".join(f"{index} : {address}" for index, address in enumerate(addresses))
    hashed = (f"dnat to jhash ip saddr . udp sport . ip daddr . udp dport mod {len(addresses)} "
              f"seed {NLB_SEED:#x} map {{ {mapping} }}")  # fmt: skip
    by_id = "\n".join(
        f"        ip daddr {vip} udp dport {QUIC_PORT} @th,64,1 0 "
        f"@th,80,{SERVER_ID_LENGTH * 8} 0x{SERVER_IDS[name].hex()} dnat to {targets[name]}"
        for name in TARGETS
    )
    return (
        "table ip quic {}\nflush table ip quic\n"
        "table ip quic {\n"
        "    chain prerouting {\n"
        "        type nat hook prerouting priority dstnat; policy accept;\n"
        f"        ip daddr {vip} udp dport {UDP_PORT} {hashed}\n"
        f"{by_id}\n"
        f"        ip daddr {vip} udp dport {QUIC_PORT} {hashed}\n"
        "    }\n"
        "}\n"
    )


def balancer_configs(services: Mapping[str, str]) -> dict[str, Any]:
    """The NLB as AWS would be configured for each lab balancer: ``nlb`` (a UDP listener)
    and ``nlb-quic`` (a QUIC listener, targets with a ``QuicServerId``).

    AWS allows no QUIC listener beside a UDP one on the same NLB (NLB-UG create-listener),
    so they are two configs. Both groups hash with the lab's nftables jhash and seed.
    """
    shapes = {"nlb": ("UDP", UDP_PORT, False), "nlb-quic": ("QUIC", QUIC_PORT, True)}
    rendered = {}
    for role, (protocol, port, ids) in shapes.items():
        group = f"tg-{protocol.lower()}-{port}"
        targets = [
            {"Id": services[name], "Port": port,
             **({"QuicServerId": "0x" + SERVER_IDS[name].hex()} if ids else {})}
            for name in TARGETS
        ]  # fmt: skip
        rendered[role] = {
            "Type": "network",
            "TargetGroups": [{"Name": group, "Protocol": protocol, "Port": port,
                              "Targets": targets, "HashTable": "nft-jhash", "HashSeed": NLB_SEED}],
            "Listeners": [{"Protocol": protocol, "Port": port,
                           "DefaultActions": [{"Type": "forward", "TargetGroupName": group}]}],
        }  # fmt: skip
    return rendered


def path_rows(capture: Path, hops: Iterable[str], services: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each client address seen on the back side (``nlb-web*``): instance, port, datagrams."""
    instances = {services[name]: name for name in TARGETS}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for hop, src, sport, dst, dport in hop_endpoints(capture, hops, "udp", "udp"):
        if dst in instances:  # client -> instance
            client, target, name = f"{src}:{sport}", f"{dst}:{dport}", instances[dst]
        elif src in instances:
            client, target, name = f"{dst}:{dport}", f"{src}:{sport}", instances[src]
        else:
            continue
        row = rows.setdefault((client, target), {"client": client, "target": target,
                                                 "instance": name, "hop": hop,
                                                 "to_target": 0, "from_target": 0})  # fmt: skip
        row["to_target" if dst in instances else "from_target"] += 1
    return list(rows.values())


def parse_server_log(text: str) -> list[dict[str, Any]]:
    """The JSON lines the lab's HTTP/3 servers write (:mod:`osilab.lab.quic_server`)."""
    import json

    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def quic_truth(
    logs: Mapping[str, str], paths: list[dict[str, Any]], client_records: list[dict[str, Any]]
) -> dict[str, Any]:
    """truth.json's ``requests`` (who answered each HTTP/3 request) and ``quic`` section."""
    events = [row for name, text in logs.items() if name.startswith("quic-")
              for row in parse_server_log(text)]  # fmt: skip
    events.sort(key=lambda row: row.get("at", 0))
    requests = {
        row["rid"]: {
            "balancer": "nlb-quic" if row["port"] == QUIC_PORT else "nlb",
            "target": f"{row['server']}:{row['port']}", "instance": row["instance"],
            "client": row["client"], "dcid": row["dcid"], "stream": row["stream"],
        }
        for row in events if row.get("event") == "request"
    }  # fmt: skip
    migrated = {r["rid"]: r["extra"] for r in client_records
                if r.get("suite") == "quic" and r.get("extra", {}).get("migrated")}  # fmt: skip
    return {
        "requests": requests,
        "quic": {
            "server_ids": {name: "0x" + sid.hex() for name, sid in SERVER_IDS.items()},
            "paths": paths,
            "connections": [row for row in events if row.get("event") in ("connection", "closed")],
            "dropped": [row for row in events if row.get("event") == "dropped"],
            "migrated_requests": sorted(migrated),
            "stranded": sorted(rid for rid in migrated if rid not in requests),
        },
    }

"""The ``failover`` scenario: a target dies mid-traffic behind both balancer roles, and comes back.

Theory of operation
-------------------
Two HAProxies run for this scenario only (their health-check traffic would otherwise
fill every other capture), both on port :data:`~osilab.lab.configs.FAILOVER_PORT`
(:func:`osilab.lab.configs.haproxy_failover`):

* the **L4 role**, on the L4 proxy's address: ``mode tcp``, ``check``,
  ``on-marked-down shutdown-sessions``, ``option nolinger`` — when it marks a target down
  it ends that target's sessions with an RST to the client, as an NLB does to the flows
  of a target that becomes unhealthy;
* the **ALB role**, on the ALB's address: ``mode http`` with an HTTP check; requests in
  flight finish, the next request on a kept-alive connection goes elsewhere.

The client (``failover`` suite, :mod:`osilab.lab.client`) keeps connections open, then
makes ``web1`` refuse new TCP connections (nftables ``reject with tcp reset`` in web1's
namespace: what the kernel of a stopped server answers), so its health checks fail
while its open connections stay up — the balancer, not the target, ends them. Later it
lets ``web1`` accept again.

truth.json gets a ``failover`` section from HAProxy's logs (ISO timestamps: when each
balancer marked the target down and up) and from the capture (which client connections
got an RST from the L4 role), plus each connection and request, as in the other
scenarios. :func:`health_schedule` turns the marks into the ``Health`` schedule of the
AWS-shaped configs written beside the capture (:func:`balancer_configs`), so that the
models replay the capture with the health the real balancers saw.

Everything here is pure (text in, dicts out) except :func:`reset_rows`, which asks tshark.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from osilab.lab import truth
from osilab.lab.configs import FAILOVER_PORT, haproxy_failover
from osilab.lab.runtime import run

__all__ = [
    "TARGETS",
    "STOPPED",
    "servers",
    "wait_listening",
    "marks",
    "reset_rows",
    "failover_truth",
    "health_schedule",
    "balancer_configs",
]

#: The instances behind both roles, and the one that is stopped and started again.
TARGETS = ("web1", "web2")
STOPPED = "web1"

_MARK = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d) Server tg-failover/(?P<server>\w+) "
    r"is (?P<state>DOWN|UP)\b"
)


def servers(services: Mapping[str, str]) -> dict[str, tuple[str, str, str]]:
    """The scenario's HAProxies: log name -> (lab host, address it listens on, config text)."""
    targets = {name: services[name] for name in TARGETS}
    return {
        "haproxy-failover-l4": ("l4p", services["l4p"], haproxy_failover(role="l4", vip=services["l4p"], targets=targets)),
        "haproxy-failover-alb": ("alb", services["alb"], haproxy_failover(role="alb", vip=services["alb"], targets=targets)),
    }  # fmt: skip


def wait_listening(namespace: str, address: str, timeout: float = 10.0) -> None:
    """Wait until HAProxy listens on ``address``:FAILOVER_PORT in ``namespace``, without
    connecting: a probe connection through the L4 role would take a round-robin turn
    (and a target) that no capture shows, and the model would start one turn behind."""
    import time

    from osilab.errors import LabError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = run(["ss", "-Hltn", f"src {address} sport = :{FAILOVER_PORT}"], ns=namespace,
                   check=False, timeout=5)  # fmt: skip
        if done.stdout.strip():
            return
        time.sleep(0.1)
    raise LabError(
        f"nothing listens on {address}:{FAILOVER_PORT} in {namespace} after {timeout:.0f} s"
    )


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def marks(log: str, services: Mapping[str, str]) -> list[dict[str, Any]]:
    """When HAProxy marked a target down (``unhealthy``) or up (``healthy``), from its log.

    >>> marks("2026-12-01T22:23:02.638528+00:00 Server tg-failover/web1 is DOWN, reason: x",
    ...       {"web1": "192.0.2.11"})
    [{'target': '192.0.2.11:80', 'state': 'unhealthy', 'at': 1764627782.638528}]
    """
    found = []
    for line in log.splitlines():
        match = _MARK.match(line.strip())
        if match:
            state = "unhealthy" if match["state"] == "DOWN" else "healthy"
            target = f"{services[match['server']]}:80"
            found.append({"target": target, "state": state, "at": _epoch(match["at"])})
    return found


def reset_rows(capture: Path, hop: str, balancer: str) -> list[dict[str, Any]]:
    """The RSTs the balancer at ``balancer`` (ip) sent to clients on ``hop``: client, time."""
    done = run(
        ["tshark", "-n", "-r", str(capture), "-Y",
         f'frame.interface_name == "{hop}" && tcp.flags.reset == 1 && ip.src == {balancer} '
         f"&& tcp.srcport == {FAILOVER_PORT}",
         "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.dst", "-e", "tcp.dstport"],
        timeout=120,
    )  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            client = f"{parts[1]}:{parts[2]}"
            rows.setdefault(client, {"client": client, "at": float(parts[0])})
    return list(rows.values())


def failover_truth(
    logs: Mapping[str, str],
    resets: Iterable[Mapping[str, Any]],
    client_records: list[dict[str, Any]],
    services: Mapping[str, str],
) -> dict[str, Any]:
    """The scenario's truth.json parts: ``failover``, ``connections``, ``requests``."""
    l4_log = logs.get("haproxy-failover-l4", "")
    alb_log = logs.get("haproxy-failover-alb", "")
    first_rst = {row["client"]: row["at"] for row in resets}
    rows = []
    for row in truth.parse_haproxy_tcp(l4_log):
        if row.get("frontend") != "failover-l4":
            continue
        rows.append({
            "client": row["client"], "target": row["target"], "target_group": row["target_group"],
            "termination": row.get("termination", ""), "accepted": row.get("accept", ""),
            # 'D': HAProxy killed the session because its server went down (shutdown-sessions)
            "reset": "yes" if row.get("termination", "").startswith("D") else "no",
            "rst_at": str(first_rst.get(row["client"], "")),
        })  # fmt: skip
    connections, requests = truth.connection_truth(
        rows, client_records, source="haproxy tcp log + client-l4p RSTs", virtual_ip=services["l4p"]
    )
    alb = truth.alb_truth(
        r for r in truth.parse_haproxy_http(alb_log) if r.get("frontend") == "failover-alb"
    )
    requests.update({rid: {"balancer": "alb", **value} for rid, value in alb.items()})
    actions = {r["extra"]["action"]: r["extra"]["at"] for r in client_records
               if r.get("suite") == "failover" and "action" in r.get("extra", {})}  # fmt: skip
    return {
        "failover": {
            "stopped": f"{services[STOPPED]}:80",
            "stopped_at": actions.get("stop"),
            "started_at": actions.get("start"),
            "marked": {"l4proxy": marks(l4_log, services), "alb": marks(alb_log, services)},
            # the sessions HAProxy killed when it marked their server down; with option
            # nolinger it also ends a session the client closes with RST, which is not one
            "resets": sorted(c["client"] for c in connections if c.get("reset") == "yes"),
        },
        "connections": [{"balancer": "l4proxy", **c} for c in connections],
        "requests": {
            rid: {"balancer": "l4proxy", **v} if "balancer" not in v else v
            for rid, v in requests.items()
        },  # fmt: skip
    }


def health_schedule(document: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    """The ``Health`` schedule of a model (``"nlb"``: the L4 role's marks; ``"alb"``) from truth.json."""
    marked = (
        document.get("failover", {})
        .get("marked", {})
        .get("l4proxy" if role == "nlb" else "alb", [])
    )
    return [{"Target": m["target"], "At": m["at"], "State": m["state"]} for m in marked]


def balancer_configs(services: Mapping[str, str], document: Mapping[str, Any]) -> dict[str, Any]:
    """The AWS-shaped configs of both roles, with the health the real balancers saw.

    The NLB's group uses ``HashTable: round-robin``: HAProxy's ``static-rr``, not AWS's
    hash, so that the model's targets can be checked connection by connection; what the
    scenario checks is what health does to open flows and new ones. Health checks are
    replaced by the schedule read from HAProxy's log.
    """
    targets = [f"{services[name]}:80" for name in TARGETS]
    listener = {"Port": FAILOVER_PORT,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "tg-failover"}]}  # fmt: skip
    return {
        role: {
            "Type": kind,
            "TargetGroups": [{"Name": "tg-failover", "Protocol": protocol, "Port": 80,
                              "Targets": targets, **spread}],
            "Listeners": [{"Protocol": protocol, **listener}],
            "Health": health_schedule(document, role),
        }
        for role, (kind, protocol, spread) in _ROLE_SHAPES.items()
    }  # fmt: skip


#: Each role's config type, protocol and how its group spreads connections.
_ROLE_SHAPES: dict[str, tuple[str, str, dict[str, str]]] = {
    "nlb": ("network", "TCP", {"HashTable": "round-robin"}),
    "alb": ("application", "HTTP", {"Algorithm": "round_robin"}),
}

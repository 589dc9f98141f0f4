"""A replay's decisions as a table, and as comments on the packets they were made at.

Two ways out of a replay (:func:`osilab.balancers.replay.replay`) besides the terminal:

* :func:`decision_rows` -- one row per decision, exactly the objects of ``osilab route
  --json`` (:meth:`Decision.to_json` plus the ``hop``), typed by :data:`DECISION_COLUMNS`
  (the shared machinery is :mod:`osilab.capture.tables`);
* :func:`marked_packets` -- the packets of every flow a balancer decided on, each decision's
  *why* written as the pcapng comment (``opt_comment``) of the packet it was decided at,
  so ``osilab route --write OUT.pcapng`` opens in Wireshark with the reasons beside the
  frames (``tshark -r OUT.pcapng -T fields -e frame.comment``).

A decision is on the packet where the balancer could decide: the NLB on the flow's first
packet (the SYN), the ALB on the packet that completed the request's head.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from osilab.balancers.decision import Decision
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.balancers.replay import replay
from osilab.capture import Capture, Packet
from osilab.capture.tables import Rows
from osilab.streams.keys import FlowKey

if TYPE_CHECKING:  # an NLB's table never needs the ALB's code
    from osilab.balancers.alb import ApplicationLoadBalancer

__all__ = ["DECISION_COLUMNS", "decision_row", "decision_rows", "Marks", "marked_packets"]

#: design.md's ``route`` keys (the Decision's), the extras it may carry, then ``hop``.
#: A key not declared here still becomes a column, typed as its values say.
DECISION_COLUMNS: Mapping[str, str] = MappingProxyType({
    "unit": "str", "flow": "str", "request": "str", "decided_at": "int",
    "target_group": "str", "target": "str", "seen": "list[str]", "why": "str",
    "time": "float", "action": "str", "proto": "str", "request_index": "int", "host": "str",
    "first_packet": "int", "status": "int", "rule": "str", "location": "str",
    "listener": "str", "client_ip_at_target": "str", "headers_to_target": "list[list[str]]",
    "proxy_v2": "str", "cookies": "list[str]", "hop": "str",
})  # fmt: skip


def decision_row(decision: Decision, capture: Capture) -> dict[str, Any]:
    """One ``osilab route --json`` object: the decision's keys and the ``hop`` it was on."""
    return {**decision.to_json(), "hop": capture.hop_name(decision.flow.interface, decision.flow.tunnel)}


def decision_rows(
    capture: Capture,
    balancer: NetworkLoadBalancer | ApplicationLoadBalancer,
    *,
    keylog: str | None = None,
) -> Rows:
    """Replay ``capture`` through ``balancer`` now and give its decisions as a table.

    The replay runs once, here (a balancer keeps state: round robin, flow hashes), and
    the table is read from the decisions it made, in the order it made them.
    """
    rows: list[dict[str, Any]] = []
    replay(capture, balancer, keylog=keylog, on_decision=lambda d: rows.append(decision_row(d, capture)))
    return Rows("decisions", lambda: iter(rows), DECISION_COLUMNS)


def _sides(key: FlowKey) -> tuple[int, str, frozenset[tuple[str, int]]]:
    """A flow's identity in either direction: hop, protocol, its two endpoints."""
    return key.interface, key.proto, frozenset({(key.client.ip, key.client.port),
                                                (key.server.ip, key.server.port)})  # fmt: skip


@dataclass(slots=True)
class Marks:
    """What a replay decided, kept small enough to mark the packets afterwards: the
    flows decided on and each decision's comment by the packet it was made at.

    Pass :meth:`add` as ``replay(..., on_decision=marks.add)``.
    """

    lb: str
    flows: set[tuple[int, str, frozenset[tuple[str, int]]]] = field(default_factory=set)
    comments: dict[int, list[str]] = field(default_factory=dict)

    def add(self, decision: Decision) -> None:
        """Remember one decision (its flow, and its why on its packet)."""
        self.flows.add(_sides(decision.flow))
        where = decision.destination
        what = decision.request_label or str(decision.flow)
        self.comments.setdefault(decision.decided_at, []).append(
            f"osilab {self.lb} (frame {decision.decided_at} of the capture read): {what} -> {where}: {decision.why}"
        )


def marked_packets(packets: Iterable[Packet], marks: Marks) -> Iterator[Packet]:
    """The packets of the flows in ``marks``, in capture order, each packet a decision was
    made at carrying that decision's why as its comment (after any comment it had; several
    decisions on one packet, e.g. pipelined requests, are joined by `` | ``)."""
    for pkt in packets:
        facts = pkt.facts
        if facts.proto is None or facts.src is None or facts.dst is None:
            continue
        sides = (pkt.interface, facts.proto,
                 frozenset({(facts.src, facts.src_port), (facts.dst, facts.dst_port)}))  # fmt: skip
        if sides not in marks.flows:
            continue
        notes = marks.comments.get(pkt.no)
        if notes:
            pkt.comment = " | ".join(([pkt.comment] if pkt.comment else []) + notes)
        yield pkt

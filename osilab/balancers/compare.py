"""The NLB and the ALB side by side on one capture.

The same packets go through both models in one pass: the NLB sees every packet, the
ALB sees the HTTP requests built from them. For every request the comparison shows
where each model sent it and at which packet it decided, so the difference is
visible:

- the NLB decided at the SYN, before the request existed, and every request on that
  connection (keep-alive) went to the same target;
- the ALB decided at the packet that completed the request's headers, per request,
  possibly choosing a different target for each request on one connection.

It also gives per-target counts and the imbalance (max / mean) of each model, the time
from the SYN to the decision (packets and milliseconds) and the requests per
connection.

Like :mod:`osilab.balancers.replay`, this module opens no file.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from osilab.balancers.config import BalancerConfig, counterpart, default_config, load_config
from osilab.balancers.decision import Decision, imbalance
from osilab.balancers.explain import nlb_missed_syn_why, nlb_request_why
from osilab.balancers.nlb import TCP_ACK, TCP_SYN, NetworkLoadBalancer
from osilab.balancers.replay import Replay, http_messages, one_hop
from osilab.capture.facts import flow_facts
from osilab.capture.reader import Capture
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey
from osilab.streams.rows import FlowKeys

__all__ = ["Comparison", "ComparisonRow", "compare", "servers_seen", "servers_by_hop", "configs_for"]


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One request, as each model routed it.

    ``syn_packet``/``syn_time`` are the connection's SYN (where the NLB decided), when
    captured; ``alb_packets_after_syn`` and ``alb_ms_after_syn`` measure how much later
    the ALB could decide.
    """

    request: HttpRequest
    nlb_target: str | None
    nlb_decided_at: int | None
    nlb_why: str
    alb_target: str | None
    alb_decided_at: int
    alb_action: str
    alb_why: str
    syn_packet: int | None
    syn_time: float | None

    @property
    def alb_packets_after_syn(self) -> int | None:
        return None if self.syn_packet is None else self.alb_decided_at - self.syn_packet

    @property
    def alb_ms_after_syn(self) -> float | None:
        return None if self.syn_time is None else (self.request.time - self.syn_time) * 1000.0

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": str(self.request.flow),
            "request": f"{self.request.method} {self.request.target}",
            "request_index": self.request.index,
            "nlb_target": self.nlb_target,
            "nlb_decided_at": self.nlb_decided_at,
            "alb_target": self.alb_target,
            "alb_action": self.alb_action,
            "alb_decided_at": self.alb_decided_at,
            "alb_packets_after_syn": self.alb_packets_after_syn,
            "alb_ms_after_syn": None
            if self.alb_ms_after_syn is None
            else round(self.alb_ms_after_syn, 3),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Both models on one capture (see the module docstring)."""

    nlb: Replay
    alb: Replay
    rows: tuple[ComparisonRow, ...]
    targets: tuple[str, ...]
    #: The ALB's registered targets, when its configuration differs from the NLB's
    #: (empty: the same as ``targets``). Each model's spread counts its own targets only.
    alb_targets: tuple[str, ...] = ()

    def nlb_request_counts(self) -> dict[str, int]:
        """Requests per target as the NLB spread them (a request follows its connection)."""
        counter = Counter(row.nlb_target for row in self.rows if row.nlb_target)
        return {t: counter.get(t, 0) for t in self._all_targets(counter)}

    def nlb_flow_counts(self) -> dict[str, int]:
        """Connections (flows) per target, as the NLB counts its decisions."""
        return self.nlb.decisions.counts()

    def alb_request_counts(self) -> dict[str, int]:
        """Requests per target as the ALB spread them."""
        counter = Counter(row.alb_target for row in self.rows if row.alb_target)
        return {t: counter.get(t, 0) for t in self._all_targets(counter, self.alb_targets)}

    def _all_targets(self, counter: Counter[Any], registered: tuple[str, ...] = ()) -> list[str]:
        known = registered or self.targets
        extra = [t for t in counter if t and t not in known]
        return list(known) + extra

    def imbalance(self) -> dict[str, float]:
        """max / mean of requests per target, for each model."""
        return {
            "nlb": imbalance(self.nlb_request_counts().values()),
            "alb": imbalance(self.alb_request_counts().values()),
        }

    def requests_per_connection(self) -> dict[str, int]:
        """Requests carried by each client connection (keep-alive)."""
        return dict(Counter(str(row.request.flow) for row in self.rows))

    def time_to_decision(self) -> dict[str, float | None]:
        """Mean packets and milliseconds from the SYN to the ALB's decision (NLB: 0, it decides at the SYN)."""
        packets = [
            r.alb_packets_after_syn for r in self.rows if r.alb_packets_after_syn is not None
        ]
        millis = [r.alb_ms_after_syn for r in self.rows if r.alb_ms_after_syn is not None]
        return {
            "alb_mean_packets_after_syn": sum(packets) / len(packets) if packets else None,
            "alb_mean_ms_after_syn": sum(millis) / len(millis) if millis else None,
            "nlb_packets_after_syn": 0.0 if packets else None,
        }

    def summary(self) -> str:
        """One line: requests, connections, and each model's imbalance."""
        ratio = self.imbalance()
        return (
            f"{len(self.rows)} requests on {len(self.requests_per_connection())} connections; "
            f"imbalance (max/mean) NLB {ratio['nlb']:.2f}, ALB {ratio['alb']:.2f}"
        )

    def show(self, file: TextIO | None = None) -> None:
        """Print one line per request, then the summary lines."""
        for row in self.rows:
            print(
                f"{row.request.method} {row.request.target}: NLB {row.nlb_target} at packet "
                f"{row.nlb_decided_at}, ALB {row.alb_target or row.alb_action} at packet {row.alb_decided_at}",
                file=file,
            )
        for line in self.summary_lines():
            print(line, file=file)

    def summary_lines(self) -> list[str]:
        """The summary a terminal or a notebook prints under the table."""
        per_conn = self.requests_per_connection()
        lines = [
            f"requests: {len(self.rows)} on {len(per_conn)} connections "
            f"({max(per_conn.values(), default=0)} at most on one: keep-alive)",
            "NLB requests per target: "
            + ", ".join(f"{t} {n}" for t, n in self.nlb_request_counts().items()),
            "ALB requests per target: "
            + ", ".join(f"{t} {n}" for t, n in self.alb_request_counts().items()),
        ]
        ratio = self.imbalance()
        lines.append(f"imbalance (max/mean): NLB {ratio['nlb']:.2f}, ALB {ratio['alb']:.2f}")
        timing = self.time_to_decision()
        if timing["alb_mean_packets_after_syn"] is not None:
            lines.append(
                "time to decision from the SYN: NLB 0 packets (it decides at the SYN), "
                f"ALB {timing['alb_mean_packets_after_syn']:.1f} packets / "
                f"{timing['alb_mean_ms_after_syn']:.2f} ms on average"
            )
        lines.append(self.nlb.summary())
        lines.append(self.alb.summary())
        return lines

    def to_dataframe(self) -> Any:
        """One row per request (needs pandas)."""
        import pandas as pd

        return pd.DataFrame([row.to_json() for row in self.rows])

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "request",
                "flow",
                "NLB target",
                "NLB decided at",
                "ALB target",
                "ALB decided at",
                "after SYN",
            )
        )
        body = []
        for row in self.rows[:200]:
            cells = (
                f"{row.request.method} {row.request.target}",
                str(row.request.flow),
                row.nlb_target or "",
                str(row.nlb_decided_at or ""),
                row.alb_target or row.alb_action,
                str(row.alb_decided_at),
                "" if row.alb_packets_after_syn is None else f"{row.alb_packets_after_syn} packets",
            )
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        summary = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary_lines())
        return f"<table><tr>{head}</tr>{''.join(body)}</table><ul>{summary}</ul>"


def servers_by_hop(packets: Iterable[Any]) -> dict[int, list[tuple[str, int, str]]]:
    """The ``(ip, port, proto)`` servers each hop's flows talk to, in first-seen order.

    Keys are capture interfaces (hops, as pcapng numbers them). For each flow: the
    destination of a client SYN (or the source of a SYN-ACK) is the server; when the
    handshake was not captured, the side with the lower port (the other is usually
    ephemeral). A :class:`~osilab.capture.reader.Capture` is read by the fast path
    (:func:`osilab.capture.facts.flow_facts`), other packets one by one.

    The state kept is sized for a SYN flood (a million half-open flows): a flow whose
    server its handshake named is one packed ``int`` in a set; only a flow first seen
    without a SYN keeps its guess, until a SYN overrules it.
    """
    keys = FlowKeys()
    named: set[int] = set()  # flows whose SYN (or SYN-ACK) named the server
    #: a flow first seen without a SYN -> (its hop, the lower-port side, its order)
    guesses: dict[int, tuple[int, tuple[str, int, str], int]] = {}
    first: dict[tuple[int, tuple[str, int, str]], int] = {}  # (hop, server) -> first flow's order
    flows = 0
    for interface, proto, src, dst, flags in _endpoints(packets):
        if None in src or None in dst or not src[1] or not dst[1]:
            continue  # port 0 is not a service
        ident = (proto, src[0], src[1], dst[0], dst[1], interface, "")
        key = min(keys.pair(*ident))  # the flow's key, either direction
        if key in named:
            continue
        if flags & TCP_SYN:
            server = dst if not flags & TCP_ACK else src
            guessed = guesses.pop(key, None)
            if guessed is None:
                order, flows = flows, flows + 1
            else:
                order = guessed[2]
            named.add(key)
            found = (interface, (server[0], server[1], proto))
            first[found] = min(first.get(found, order), order)
        elif key not in guesses:
            server = src if src[1] < dst[1] else dst
            guesses[key] = (interface, (server[0], server[1], proto), flows)
            flows += 1
    for interface, guess, order in guesses.values():
        first[(interface, guess)] = min(first.get((interface, guess), order), order)
    hops: dict[int, list[tuple[str, int, str]]] = {}
    for (interface, found_server), _ in sorted(first.items(), key=lambda item: item[1]):
        hops.setdefault(interface, []).append(found_server)
    return hops


def _endpoints(
    packets: Iterable[Any],
) -> Iterator[tuple[int, str, tuple[Any, Any], tuple[Any, Any], int]]:
    """``(interface, proto, (src, port), (dst, port), tcp flags)`` of every TCP/UDP frame."""
    if isinstance(packets, Capture):
        for facts in flow_facts(packets):
            if facts.proto in ("tcp", "udp") and facts.damaged is None:
                yield (facts.interface, facts.proto, (facts.src, facts.src_port),
                       (facts.dst, facts.dst_port), facts.tcp_flags or 0)  # fmt: skip
        return
    for packet in packets:
        try:
            proto = packet.proto
            if proto not in ("tcp", "udp"):
                continue
            src = (packet.ip_src, packet.src_port)
            dst = (packet.ip_dst, packet.dst_port)
            flags = (packet.tcp_flags or 0) if proto == "tcp" else 0
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # a damaged header: it says nothing reliable
        yield getattr(packet, "interface", 0) or 0, proto, src, dst, flags


def servers_seen(packets: Iterable[Any]) -> list[tuple[str, int, str]]:
    """The ``(ip, port, proto)`` servers a capture talks to, on any hop, in first-seen order
    (see :func:`servers_by_hop`)."""
    hops = servers_by_hop(packets)
    return list(dict.fromkeys(server for servers in hops.values() for server in servers))


def configs_for(
    config: BalancerConfig | dict[str, Any] | str | None,
    servers: Sequence[tuple[str, int, str]] = (),
) -> tuple[BalancerConfig, BalancerConfig]:
    """``(nlb_config, alb_config)`` from one configuration of either type (or the default)."""
    if config is None:
        return default_config("network", servers), default_config("application", servers)
    loaded = load_config(config)
    other = counterpart(loaded)
    return (loaded, other) if loaded.is_network else (other, loaded)


def compare(
    packets: Iterable[Any],
    config: BalancerConfig | dict[str, Any] | str | None = None,
    *,
    alb_config: BalancerConfig | dict[str, Any] | str | None = None,
    messages: Iterable[HttpRequest | HttpResponse] | None = None,
    keylog: str | None = None,
    interface: int | None = None,
    warnings: Iterable[str] = (),
) -> Comparison:
    """Run both models over the same packets.

    ``config`` may describe either balancer; the other is derived from it
    (:func:`osilab.balancers.config.counterpart`). With no configuration at all, the
    packets are read into memory once to find the servers and the defaults of
    :func:`osilab.balancers.config.default_config` are used. ``alb_config`` overrides
    the ALB side. ``messages`` gives the HTTP messages directly (else
    :func:`osilab.pipeline.iter_http` builds them from the packets). ``interface``
    compares only that capture interface (hop; :func:`osilab.balancers.replay.one_hop`),
    and ``warnings`` (the configuration's ``accepted, not modelled`` lines) are kept on
    both replays.
    """
    if interface is not None:
        packets = one_hop(packets, interface)
        if messages is not None:
            messages = one_hop(messages, interface)  # type: ignore[assignment]
    if config is None and alb_config is None:
        packets = list(packets)
        nlb_config, alb_side = configs_for(None, servers_seen(packets))
    elif config is None:
        alb_side = load_config(alb_config)  # type: ignore[arg-type]
        nlb_config = counterpart(alb_side)
    else:
        loaded = load_config(config)
        if loaded.is_network:
            nlb_config = loaded
            alb_side = load_config(alb_config) if alb_config is not None else counterpart(loaded)
        else:
            nlb_config, alb_side = counterpart(loaded), loaded
    from osilab.balancers.alb import ApplicationLoadBalancer  # (the HTTP stack: for compare only)

    nlb = NetworkLoadBalancer(nlb_config)
    alb = ApplicationLoadBalancer(alb_side)
    syns: dict[FlowKey, tuple[int, float]] = {}

    def tap(source: Iterable[Any]) -> Iterator[Any]:
        for packet in source:
            fate = nlb.feed_packet(packet)
            if fate.new_flow and fate.decision is not None:
                syns[fate.decision.flow] = (packet.no, packet.time)
                alb.connection_opened(fate.decision.flow, packet.no, packet.time)
            yield packet

    if messages is None:
        stream: Iterable[Any] = http_messages(tap(packets), keylog=keylog)
    else:
        for _ in tap(packets):
            pass
        stream = messages
    rows = []
    counts: Counter[str] = Counter()
    by_flow: dict[FlowKey, list[Decision]] = {}
    indexed = 0
    for message in stream:
        decisions = nlb.decisions
        for decision in decisions[indexed:]:
            by_flow.setdefault(decision.flow, []).append(decision)
        indexed = len(decisions)
        result = alb.feed(message)
        if result is None:
            continue
        request = message
        assert isinstance(request, HttpRequest)
        counts["routed" if result.forwarded else result.action] += 1
        nlb_decision = None
        for candidate in by_flow.get(request.flow, []):
            if candidate.decided_at <= request.first_packet:
                nlb_decision = candidate
        syn = syns.get(request.flow) if nlb_decision else None
        if nlb_decision is not None:
            syn = (nlb_decision.decided_at, nlb_decision.time)
        rows.append(
            ComparisonRow(
                request=request,
                nlb_target=nlb_decision.target if nlb_decision else None,
                nlb_decided_at=nlb_decision.decided_at if nlb_decision else None,
                nlb_why=(
                    nlb_request_why(request, nlb_decision.decided_at, nlb_decision.target)
                    if nlb_decision
                    else nlb_missed_syn_why()
                ),
                alb_target=result.target,
                alb_decided_at=result.decided_at,
                alb_action=result.action,
                alb_why=result.why,
                syn_packet=syn[0] if syn else None,
                syn_time=syn[1] if syn else None,
            )
        )
    nlb_accounting = dict(nlb.accounting)
    notes = tuple(warnings)
    nlb_replay = Replay(
        "nlb", "packet", nlb.decisions, sum(nlb_accounting.values()), nlb_accounting,
        warnings=notes,
    )
    alb_replay = Replay(
        "alb", "request", alb.decisions, sum(counts.values()), dict(counts), warnings=notes
    )
    targets = tuple(dict.fromkeys(t for g in nlb_config.target_groups for t in g.targets))
    alb_targets = tuple(dict.fromkeys(t for g in alb_side.target_groups for t in g.targets))
    return Comparison(nlb_replay, alb_replay, tuple(rows), targets, alb_targets)

"""Replay a capture through a balancer model: the edge between packets and decisions.

:func:`replay` takes a capture (``osilab.read(path)``) or any iterable of packets and a
balancer, feeds the balancer what it can see, and returns a :class:`Replay`: the
decisions and an **accounting** that sums to the total, so nothing silently disappears.

- An NLB (:class:`~osilab.balancers.nlb.NetworkLoadBalancer`) is fed every packet. Each
  packet is either *routed* (it belongs to a flow with a decision) or *not routable*
  with a reason (non-IP, no listener, mid-stream without a handshake, damaged, idle
  timeout). The unit is the packet.
- An ALB (:class:`~osilab.balancers.alb.ApplicationLoadBalancer`) is fed HTTP requests
  and responses, which :func:`osilab.pipeline.iter_http` builds from the packets
  (or which may be given directly). The unit is the request: each is forwarded,
  redirected, answered with a fixed response, blocked, or not routable.

Big captures
------------
A replay streams: memory depends on the live flows, not on the capture's size.

- Given a :class:`~osilab.capture.reader.Capture` (``osilab.read(path)``), the NLB is fed
  from :func:`osilab.capture.facts.flow_facts` through
  :meth:`NetworkLoadBalancer.feed_flows`: the same decisions as feeding full packets, at
  the speed of the record walk. The ALB is fed from the streams stage's own fast path
  (TCP payloads straight from the records, :func:`osilab.pipeline.tracker.conversations`).
- Decisions are *made* for everything, but a balancer keeps only the first
  :data:`~osilab.balancers.decision.KEEP_DECISIONS` of them (``keep_decisions=None``
  on the balancer keeps all); :attr:`Replay.dropped` says how many were not kept, and
  ``on_decision`` sees every one of them as it is made.
- In a notebook, a big capture gets a progress bar (``progress=``).

One hop
-------
A multi-hop capture holds the same traffic once per hop; a balancer stands on one of
them. ``interface=N`` replays only the frames of pcapng interface ``N``
(:meth:`~osilab.capture.reader.Capture.on_interface`, so both fast paths keep their
speed); :func:`osilab.balancers.hop.choose_hop` says which one a balancer sees.

This module reads nothing itself: the caller opens the capture.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TextIO

from osilab._progress import library_bar
from osilab.balancers.decision import Decision, DecisionList
from osilab.balancers.nlb import NetworkLoadBalancer
from osilab.capture.facts import flow_facts
from osilab.capture.reader import Capture
from osilab.errors import UsageError
from osilab.protocols.messages import HttpRequest, HttpResponse
from osilab.streams.keys import FlowKey

if TYPE_CHECKING:  # imported where an L7 replay needs them: an NLB replay reads no stream
    from osilab.balancers.alb import ApplicationLoadBalancer
    from osilab.balancers.cdn import CloudFrontDistribution

__all__ = ["Replay", "replay", "http_messages", "one_hop"]


@dataclass(frozen=True, slots=True)
class Replay:
    """The outcome of a replay: the decisions, and an accounting that sums to the total."""

    #: Which model was fed.
    balancer: Literal["nlb", "alb", "cdn"]
    #: What ``total`` counts: packets (NLB) or requests (ALB).
    unit: Literal["packet", "request"]
    #: Every decision kept, in packet order.
    decisions: DecisionList
    #: Packets (NLB) or requests (ALB) fed.
    total: int
    #: ``{"routed": n, "<reason>": n, ...}``; the values sum to ``total``.
    accounting: dict[str, int] = field(default_factory=dict)
    #: Decisions made but not kept (the balancer's ``keep_decisions`` cap was hit).
    dropped: int = 0
    #: What the configuration said that the model does not use, one line per field
    #: (``accepted, not modelled: FIELD (why)``, from
    #: :func:`osilab.balancers.config.formats.load_configs`).
    warnings: tuple[str, ...] = ()

    @property
    def routed(self) -> int:
        return self.accounting.get("routed", 0)

    @property
    def not_routable(self) -> dict[str, int]:
        """Reasons and counts of everything not routed to a target."""
        return {k: v for k, v in self.accounting.items() if k != "routed"}

    def summary(self) -> str:
        other = ", ".join(f"{k} {v}" for k, v in sorted(self.not_routable.items())) or "none"
        kept = f"{len(self.decisions)} decisions"
        if self.dropped:
            kept += (
                f" kept, {self.dropped} more made but not kept (keep_decisions cap; "
                "on_decision sees them all)"
            )
        return (
            f"{self.balancer.upper()}: {self.total} {self.unit}s, {self.routed} routed, "
            f"not routed: {other}; {kept}"
        )

    def show(self, file: TextIO | None = None) -> None:
        """Print the summary, the accounting and every decision."""
        print(self.summary(), file=file)
        for line in self.warnings:
            print(f"warning: {line}", file=file)
        self.decisions.show(file=file)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
            for k, v in sorted(self.accounting.items())
        )
        return (
            f"<p>{html.escape(self.summary())}</p><table><tr><th>{self.unit}s</th><th>count</th></tr>"
            f"{rows}</table>{self.decisions._repr_html_()}"
        )


def http_messages(
    packets: Iterable[Any],
    *,
    keylog: str | None = None,
    on_syn: Callable[[FlowKey, int, float], object] | None = None,
    on_end: Callable[[FlowKey], object] | None = None,
    on_certificate: Callable[[FlowKey, tuple[bytes, ...]], object] | None = None,
    unread_tls: set[FlowKey] | None = None,
) -> Iterator[HttpRequest | HttpResponse]:
    """HTTP requests and responses from packets, via :func:`osilab.pipeline.iter_http`.

    ``on_syn(flow, packet_no, time)`` is told of every client SYN on the way,
    ``on_end(flow)`` of every flow that ended, and ``on_certificate(flow, chain)`` of the
    certificate chain a client presented (mutual TLS); ``unread_tls`` collects the TLS
    flows the key log could not open (their requests are invisible to an L7 model).
    """
    from osilab.pipeline import iter_http  # the streams stage and parsers: no NLB replay needs them

    yield from iter_http(packets, keylog=keylog, on_syn=on_syn, on_end=on_end,
                         on_certificate=on_certificate, unread_tls=unread_tls)  # fmt: skip


def one_hop(source: Iterable[Any], interface: int) -> Iterable[Any]:
    """Only what was seen on capture interface ``interface``: of a capture, its frames
    (still the fast paths); of packets, those with that ``interface``; of HTTP messages,
    those whose flow is on it."""
    if isinstance(source, Capture):
        return source.on_interface(interface)
    return (
        item
        for item in source
        if (item.flow.interface if _is_message(item) else getattr(item, "interface", 0))
        == interface
    )


def _is_message(item: Any) -> bool:
    return isinstance(item, HttpRequest | HttpResponse)


def replay(
    source: Iterable[Any],
    balancer: NetworkLoadBalancer | ApplicationLoadBalancer | CloudFrontDistribution,
    *,
    keylog: str | None = None,
    on_decision: Callable[[Decision], object] | None = None,
    progress: bool | None = None,
    interface: int | None = None,
    warnings: Iterable[str] = (),
    unread_tls: set[FlowKey] | None = None,
) -> Replay:
    """Feed a capture (or packets, or HTTP messages for an ALB) to a balancer.

    Args:
        source: ``osilab.read(path)`` (the fast paths), any iterable of packets, or, for
            an ALB, HTTP messages.
        balancer: the model to feed.
        keylog: an NSS key log, for an ALB behind TLS.
        on_decision: called with every decision as it is made, kept or not.
        progress: a bar for big captures: ``None`` in a notebook only, ``True`` also in
            a terminal, ``False`` never.
        interface: replay only this capture interface (hop), as pcapng numbers them
            from 0; ``None``: every frame.
        warnings: the configuration's ``accepted, not modelled`` lines, kept on the
            result (:attr:`Replay.warnings`).
        unread_tls: a set the L7 replay fills with the TLS flows it could not decrypt.

    >>> # nlb = NetworkLoadBalancer(config); replay(osilab.read("web.pcap"), nlb).summary()
    """
    if interface is not None:
        source = one_hop(source, interface)
    if on_decision is not None:
        balancer.on_decision = on_decision
    try:
        with library_bar(source, show=progress):
            result = _replay(source, balancer, keylog, unread_tls)
        return replace(result, warnings=tuple(warnings)) if warnings else result
    finally:
        if on_decision is not None:
            balancer.on_decision = None


def _replay(
    source: Iterable[Any],
    balancer: NetworkLoadBalancer | ApplicationLoadBalancer | CloudFrontDistribution,
    keylog: str | None,
    unread_tls: set[FlowKey] | None = None,
) -> Replay:
    if isinstance(balancer, NetworkLoadBalancer):
        if isinstance(source, Capture):
            balancer.feed_flows(flow_facts(source))  # the fast path: no Packet objects
        else:
            for packet in source:
                balancer.feed_packet(packet)
        accounting = dict(balancer.accounting)
        return Replay("nlb", "packet", balancer.decisions, sum(accounting.values()), accounting,
                      balancer.decisions_dropped)  # fmt: skip
    from osilab.balancers.alb import ApplicationLoadBalancer  # (an NLB replay never gets here)
    from osilab.balancers.cdn import CloudFrontDistribution

    if isinstance(balancer, ApplicationLoadBalancer | CloudFrontDistribution):  # fed requests
        # The streams stage tells the ALB of every client SYN (for "N packets after the
        # SYN"), of every flow that ended (so it can forget it) and, for mTLS listeners, of
        # the certificate chain each client presented in its handshake, on either path.
        on_syn, on_end = balancer.connection_opened, balancer.connection_ended
        on_cert = (balancer.client_certificate
                   if isinstance(balancer, ApplicationLoadBalancer) else None)  # fmt: skip
        kind: Literal["alb", "cdn"] = (
            "cdn" if isinstance(balancer, CloudFrontDistribution) else "alb"
        )
        if isinstance(source, Capture):  # the streams stage's fast path: no Packet objects
            messages: Iterable[Any] = http_messages(
                source, keylog=keylog, on_syn=on_syn, on_end=on_end, on_certificate=on_cert,
                unread_tls=unread_tls,
            )
        else:
            iterator = iter(source)
            first = next(iterator, None)
            if first is None:
                return Replay(kind, "request", balancer.decisions, 0, {})

            def rejoined() -> Iterator[Any]:
                yield first
                yield from iterator

            if _is_message(first):
                messages = rejoined()
            else:
                messages = http_messages(rejoined(), keylog=keylog, on_syn=on_syn, on_end=on_end,
                                         on_certificate=on_cert, unread_tls=unread_tls)  # fmt: skip
        counts: Counter[str] = Counter()
        for message in messages:
            decision = balancer.feed(message)
            if decision is None:
                continue
            if decision.forwarded:
                counts["routed"] += 1
            else:
                counts[decision.action] += 1
        return Replay(kind, "request", balancer.decisions, sum(counts.values()), dict(counts),
                      balancer.decisions_dropped)  # fmt: skip
    raise UsageError(
        f"replay needs a NetworkLoadBalancer or an ApplicationLoadBalancer, not {type(balancer).__name__}"
    )

"""Decisions: what a balancer chose, when, from which fields, and why.

A :class:`Decision` is the one record both balancer models produce. Its first keys are
the command-line contract of ``osilab route --json`` (``../shared/docs/design.md``): ``unit``,
``flow``, ``request``, ``decided_at``, ``target_group``, ``target``, ``seen``, ``why``.

- An NLB decides once per **flow** (``unit="flow"``), at the flow's first packet
  (the SYN), from addresses and ports; ``request`` is ``None``.
- An ALB decides once per **request** (``unit="request"``), at the packet where the
  request's headers are complete; ``seen`` lists the HTTP fields its rules read.

:class:`DecisionList` is a read-only sequence of decisions with the summaries a lesson
needs: per-target counts, the imbalance (max / mean), a table (``to_dataframe`` when
pandas is installed) and an HTML view for notebooks.

This module knows no balancer's policy: it holds and shows results, and
:class:`DecisionKeeper` is the part both models share (their configuration, their seed,
the decisions they keep).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, overload

from osilab.balancers.config import BalancerConfig, load_config
from osilab.errors import ConfigError
from osilab.protocols.messages import HttpRequest
from osilab.streams.frozen import quick_init
from osilab.streams.keys import FlowKey

__all__ = ["Decision", "DeferredDecision", "DecisionList", "DecisionKeeper", "imbalance", "KEEP_DECISIONS"]

#: Decisions a balancer keeps for inspection (the first ones, in packet order). A decision
#: is a few KiB (the request, its headers to the target, a sentence of why), so a 1.5 GB
#: capture's millions of requests would need gigabytes; past this cap decisions are still
#: *made* and counted in the accounting, only not kept, and ``decisions_dropped`` says how
#: many (the marker that the cap was hit). ``keep_decisions=None`` keeps all of them.
KEEP_DECISIONS = 10_000


class DecisionKeeper:
    """What both balancer models share: a checked configuration, a seed, the decisions kept.

    A model names its ``kind`` (``"nlb"``/``"alb"``) and the configuration ``lb_type`` it
    models, sets up its own state in :meth:`_start`, and calls :meth:`_record` for every
    decision it makes.

    Args:
        config: a :class:`~osilab.balancers.config.BalancerConfig`, an AWS-shaped dict,
            or the path of a JSON/YAML file (:func:`~osilab.balancers.config.load_config`).
        seed: overrides the configuration's ``Seed`` (everything random or opaque).
        keep_decisions: most decisions kept (:data:`KEEP_DECISIONS`); ``None``: all.
    """

    kind: str
    lb_type: str

    def __init__(
        self,
        config: BalancerConfig | dict[str, Any] | str,
        *,
        seed: int | None = None,
        keep_decisions: int | None = KEEP_DECISIONS,
    ) -> None:
        self.config = load_config(config)
        if self.config.type != self.lb_type:
            raise ConfigError(
                f"{type(self).__name__} needs a configuration with Type '{self.lb_type}'"
            )
        self.seed = self.config.seed if seed is None else seed
        #: Most decisions kept (:data:`KEEP_DECISIONS`); None: all.
        self.keep_decisions = keep_decisions
        #: Decisions made but not kept because of ``keep_decisions`` (0: none dropped).
        self.decisions_dropped = 0
        #: Called with every decision as it is made (streaming: ``osilab route --json``).
        self.on_decision: Callable[[Decision], object] | None = None
        self._decisions: list[Decision] = []
        self._start()

    def _start(self) -> None:
        """The model's own state (flow table, target groups...), once the config is checked."""

    @property
    def decisions(self) -> DecisionList:
        """Every decision kept so far, in packet order."""
        targets = [t for g in self.config.target_groups for t in g.targets]
        return DecisionList(self._decisions, targets=targets)

    def _record(self, decision: Decision) -> Decision:
        """Keep ``decision`` if under the cap (else count it as dropped); tell ``on_decision``."""
        if self.keep_decisions is None or len(self._decisions) < self.keep_decisions:
            self._decisions.append(decision)
        else:
            self.decisions_dropped += 1
        if self.on_decision is not None:
            self.on_decision(decision)
        return decision


@quick_init  # an ALB makes one for every request
@dataclass(frozen=True, slots=True)
class Decision:
    """One balancer decision.

    Attributes:
        unit: ``"flow"`` (NLB) or ``"request"`` (ALB).
        flow: the client -> balancer flow the decision belongs to.
        request: the HTTP request decided on (ALB), else ``None``.
        decided_at: the packet number where the balancer had enough to decide.
        time: that packet's capture time.
        target_group: the chosen target group (``None`` when nothing was forwarded).
        target: the chosen target ``"ip:port"`` (``None`` when nothing was forwarded).
        seen: the fields the balancer read to decide (Wireshark names).
        why: one readable sentence.
        action: ``"forward"``, ``"redirect"``, ``"fixed-response"``, ``"blocked"``
            (desync mitigation), ``"connection-closed"`` (a request that arrived on a
            connection the desync mitigation had closed) or ``"not-routable"``.
        status: the HTTP status the balancer itself answered with (redirect,
            fixed-response, blocked), else ``None``.
        rule: the rule's priority (ALB), ``"default"``, or ``None`` (NLB).
        location: the redirect's ``Location``.
        headers_to_target: the request headers as the target receives them (ALB).
        proxy_v2: the PROXY protocol v2 header the target receives first (NLB, when on).
        client_ip_at_target: the source address the target sees.
        first_packet: the flow's first packet (NLB: the SYN) or the request's first packet.
        listener: ``"PROTOCOL:port"`` of the listener that took the traffic.
        cookies: ``Set-Cookie`` values the balancer adds to the response (stickiness).
        request_line_to_target: the request line the target receives, when a rule's
            transforms rewrote it (ALB).
    """

    unit: str
    flow: FlowKey
    request: HttpRequest | None
    decided_at: int
    time: float
    target_group: str | None
    target: str | None
    seen: tuple[str, ...]
    why: str
    action: str = "forward"
    status: int | None = None
    rule: str | None = None
    location: str | None = None
    headers_to_target: tuple[tuple[str, str], ...] = ()
    proxy_v2: bytes | None = None
    client_ip_at_target: str | None = None
    first_packet: int | None = None
    listener: str | None = None
    cookies: tuple[str, ...] = ()
    request_line_to_target: str | None = None

    @property
    def forwarded(self) -> bool:
        """True when the traffic went to a target."""
        return self.action == "forward" and self.target is not None

    @property
    def request_label(self) -> str | None:
        """The request as a short string (``"GET /api/items?id=3"``), or ``None``."""
        if self.request is None:
            return None
        return f"{self.request.method} {self.request.target}"

    @property
    def destination(self) -> str:
        """Where the decision sent it, in words: the target (``"192.0.2.11:80"``); what the
        balancer did to a target's flow (``"reset 192.0.2.11:80"``); or the answer it gave
        itself (``"redirect 301"``, ``"blocked 400"``)."""
        if self.target is not None:
            return self.target if self.action == "forward" else f"{self.action} {self.target}"
        return f"{self.action} {self.status or ''}".strip()

    def summary(self) -> str:
        """One line: where, when, to whom."""
        what = self.request_label or str(self.flow)
        return f"packet {self.decided_at}: {what} -> {self.destination}"

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``osilab route --json`` (contract keys first, extras after)."""
        data: dict[str, Any] = {
            "unit": self.unit,
            "flow": str(self.flow),
            "request": self.request_label,
            "decided_at": self.decided_at,
            "target_group": self.target_group,
            "target": self.target,
            "seen": list(self.seen),
            "why": self.why,
            "time": self.time,
            "action": self.action,
            "proto": self.flow.proto,
        }
        if self.request is not None:
            data["request_index"] = self.request.index
            data["host"] = self.request.host
            data["first_packet"] = self.request.first_packet
        elif self.first_packet is not None:
            data["first_packet"] = self.first_packet
        optional = {
            "status": self.status,
            "rule": self.rule,
            "location": self.location,
            "listener": self.listener,
            "client_ip_at_target": self.client_ip_at_target,
            "request_line_to_target": self.request_line_to_target,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        if self.headers_to_target:
            data["headers_to_target"] = [list(pair) for pair in self.headers_to_target]
        if self.proxy_v2 is not None:
            data["proxy_v2"] = self.proxy_v2.hex()
        if self.cookies:
            data["cookies"] = list(self.cookies)
        return data

    def text(self) -> str:
        """A few lines for a terminal: summary, why, seen, and what the target receives."""
        lines = [self.summary(), f"  why:  {self.why}", f"  seen: {', '.join(self.seen)}"]
        if self.request_line_to_target:
            lines.append(f"  request line to target: {self.request_line_to_target}")
        if self.headers_to_target:
            lines.append("  headers to target:")
            lines.extend(f"    {k}: {v}" for k, v in self.headers_to_target)
        if self.proxy_v2 is not None:
            lines.append(f"  PROXY v2 header: {self.proxy_v2.hex(' ')}")
        return "\n".join(lines)

    def show(self, file: TextIO | None = None) -> None:
        """Print :meth:`text` (to ``file``, default standard output)."""
        print(self.text(), file=file)

    def _repr_html_(self) -> str:
        rows = [
            ("unit", self.unit),
            ("flow", str(self.flow)),
            ("request", self.request_label or ""),
            ("decided at packet", str(self.decided_at)),
            ("action", self.action + (f" {self.status}" if self.status else "")),
            ("target group", self.target_group or ""),
            ("target", self.target or ""),
            ("seen", ", ".join(self.seen)),
            ("why", self.why),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>{html.escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table class='osilab-decision'>{body}</table>"


#: The value a deferred field holds until it is first read (see :class:`DeferredDecision`).
_PENDING: Any = object()
#: The slots :class:`Decision` stores ``why`` and ``headers_to_target`` in.
_WHY_SLOT: Any = Decision.__dict__["why"]
_HEADERS_SLOT: Any = Decision.__dict__["headers_to_target"]


def _deferred(slot: Any, builder: str) -> property:
    """A property over ``slot`` that calls the instance's ``builder`` on the first read."""

    def get(self: DeferredDecision) -> Any:
        value = slot.__get__(self, Decision)
        if value is _PENDING:
            value = getattr(self, builder)()
            if self._keep_built:
                slot.__set__(self, value)
        return value

    # (__init__ fills the slot itself: only __setstate__, for copy and pickle, gets here)
    def set_once(self: DeferredDecision, value: Any) -> None:
        slot.__set__(self, value)

    return property(get, set_once, doc=slot.__doc__)


class DeferredDecision(Decision):
    """A :class:`Decision` whose ``why`` and ``headers_to_target`` are built when first read.

    An ALB decides every request, but a replay streamed with ``keep_decisions=0`` (the
    benchmark, a lesson counting targets) reads neither the sentence nor the headers of
    most of them: building them costs about a fifth of the replay. The model passes the
    two builders instead, *pure* functions of what it knew when it decided (state such as
    the SYN packet is read at decision time and bound into them), so the value read later
    is the one an eager decision would have held: ``to_json``, ``text``, equality with an
    eager :class:`Decision` of the same fields all agree (``tests/balancers``). Frozen as
    its parent: each field is built at most once, then kept; with ``keep_built=False``
    built again at each read instead (an NLB holds a decision per flow, for millions of
    flows in a SYN flood: the sentence streamed once need not stay in memory).
    """

    __slots__ = ("_why_of", "_headers_of", "_keep_built")
    _why_of: Callable[[], str]
    _headers_of: Callable[[], tuple[tuple[str, str], ...]]
    _keep_built: bool

    def __init__(
        self,
        *args: Any,
        why_of: Callable[[], str] | None = None,
        headers_of: Callable[[], tuple[tuple[str, str], ...]] | None = None,
        keep_built: bool = True,
        **fields: Any,
    ) -> None:
        _set_keep_built(self, keep_built)  # (the slots' own setters, as in quick_init)
        if why_of is not None:
            _set_why_of(self, why_of)
            fields["why"] = _PENDING
        if headers_of is not None:
            _set_headers_of(self, headers_of)
            fields["headers_to_target"] = _PENDING
        _decision_init(self, *args, **fields)

    why = _deferred(_WHY_SLOT, "_why_of")  # type: ignore[assignment]
    headers_to_target = _deferred(_HEADERS_SLOT, "_headers_of")  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in Decision.__dataclass_fields__)

    __hash__ = Decision.__hash__


_set_keep_built = DeferredDecision._keep_built.__set__  # type: ignore[attr-defined]
_set_why_of = DeferredDecision._why_of.__set__  # type: ignore[attr-defined]
_set_headers_of = DeferredDecision._headers_of.__set__  # type: ignore[attr-defined]
_decision_init = Decision.__init__


def imbalance(counts: Iterable[int]) -> float:
    """max / mean of per-target counts: 1.0 is perfectly even, N means one target took all.

    >>> imbalance([5, 5, 5])
    1.0
    >>> imbalance([9, 0, 0])
    3.0
    """
    values = list(counts)
    if not values or sum(values) == 0:
        return 0.0
    return max(values) / (sum(values) / len(values))


class DecisionList(Sequence[Decision]):
    """A read-only list of decisions, with the summaries a lesson needs."""

    __slots__ = ("_items", "_targets")

    def __init__(self, decisions: Iterable[Decision] = (), *, targets: Sequence[str] = ()) -> None:
        self._items = tuple(decisions)
        self._targets = tuple(targets)

    @overload
    def __getitem__(self, index: int) -> Decision: ...

    @overload
    def __getitem__(self, index: slice) -> DecisionList: ...

    def __getitem__(self, index: int | slice) -> Decision | DecisionList:
        if isinstance(index, slice):
            return DecisionList(self._items[index], targets=self._targets)
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"DecisionList({len(self)} decisions)"

    def counts(self) -> dict[str, int]:
        """Decisions per target, every registered target listed (0 when unused)."""
        counter = Counter(d.target for d in self._items if d.forwarded)
        result = {target: counter.get(target, 0) for target in self._targets}
        for target, count in counter.items():
            if target is not None and target not in result:
                result[target] = count
        return result

    def imbalance(self) -> float:
        """max / mean over the per-target counts (see :func:`imbalance`)."""
        return imbalance(self.counts().values())

    def summary(self) -> str:
        """One line: how many decisions, per target, and the imbalance."""
        counts = ", ".join(f"{t} {n}" for t, n in self.counts().items())
        return f"{len(self)} decisions; per target: {counts or 'none'}; imbalance {self.imbalance():.2f}"

    def show(self, file: TextIO | None = None) -> None:
        """Print every decision's summary line, then the totals."""
        for decision in self._items:
            print(decision.summary(), file=file)
        print(self.summary(), file=file)

    def to_json(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self._items]

    def to_dataframe(self) -> Any:
        """A pandas DataFrame, one row per decision (needs pandas: ``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            from osilab.errors import UsageError

            raise UsageError("to_dataframe() needs pandas: pip install pandas") from None
        rows = []
        for d in self._items:
            row = d.to_json()
            row["seen"] = ", ".join(d.seen)
            row.pop("headers_to_target", None)
            rows.append(row)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>" for h in ("decided at", "flow", "request", "action", "target", "why")
        )
        body = []
        for d in self._items[:200]:
            cells = (
                str(d.decided_at),
                str(d.flow),
                d.request_label or "",
                d.action + (f" {d.status}" if d.status else ""),
                d.target or "",
                d.why,
            )
            body.append(
                "<tr>"
                + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in cells)
                + "</tr>"
            )
        more = f"<p>... {len(self) - 200} more</p>" if len(self) > 200 else ""
        counts = ", ".join(f"{t}: {n}" for t, n in self.counts().items())
        caption = f"<p>{len(self)} decisions; per target: {html.escape(counts)}; imbalance (max/mean) {self.imbalance():.2f}</p>"
        return (
            f"{caption}<table class='osilab-decisions'><tr>{head}</tr>{''.join(body)}</table>{more}"
        )

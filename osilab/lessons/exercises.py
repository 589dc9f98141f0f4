"""Exercises with automatic checks, for team sessions (notebook 10).

Each exercise asks one question about a real capture. Its :meth:`Exercise.check`
compares the learner's answer with what the capture (and osilab's models of the
balancers) say, and returns a :class:`Feedback`: right or wrong, and, when wrong, *why*
- which layer was forgotten, which balancer the answer describes, which request a rule
sent to the wrong place. A checker never just says "no".

>>> from osilab.lessons import exercises
>>> ex = exercises.get("header-bytes")                    # doctest: +SKIP
>>> print(ex.question)                                    # doctest: +SKIP
>>> ex.check(54)                                          # doctest: +SKIP
Feedback(correct=False, message='Not quite: 54 bytes would be ...')

The exercises:

=====================  ============================================================
``header-bytes``       how many header bytes come before the HTTP request?
``nlb-decision``       in which packet did the NLB decide?
``alb-decision``       in which packet could the ALB decide for a given request?
``nlb-fields``         which fields can an NLB choose a target from?
``alb-rules``          write ALB listener rules that send some requests elsewhere
``desync-tier``        how would the ALB classify this request head?
=====================  ============================================================

Every exercise runs on a bundled lab capture (``captures/<scenario>/``, see
``captures/README.md``), on one hop of it: the packets the balancer in question received.
The right answer is never written in this file: each checker computes it from the capture
and from osilab's own models (the dissector, the HTTP reader, the NLB and ALB models),
so a re-recorded capture, with other ports and other packet numbers, still checks.

This module reads captures through :func:`osilab.read`, finds them with
:mod:`osilab.lessons.samples`, and configures the NLB model with the ``nlb.config.json``
the lab wrote beside the capture (:func:`osilab.lessons.scenarios.balancer_config`); it
prints nothing (the notebook shows the feedback).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from osilab.capture import Packet, read
from osilab.capture.packet import TCP_ACK, TCP_SYN
from osilab.errors import ConfigError, UsageError
from osilab.lessons import samples
from osilab.lessons.scenarios import balancer_config, client_records
from osilab.protocols.messages import HttpRequest
from osilab.viz.conversation import http_requests

__all__ = [
    "Feedback",
    "Exercise",
    "HeaderBytes",
    "NlbDecision",
    "AlbDecision",
    "NlbFields",
    "AlbRules",
    "DesyncTier",
    "EXERCISES",
    "get",
    "names",
]


@dataclass(frozen=True, slots=True)
class Feedback:
    """The checker's answer: ``correct`` and a message that says why."""

    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return ("Right. " if self.correct else "Not yet. ") + self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.correct else "#b00000"
        mark = "&#10004; Right." if self.correct else "&#10008; Not yet."
        return (
            f"<div style='font-size:16px;border-left:6px solid {colour};padding:6px 10px'>"
            f"<b style='color:{colour}'>{mark}</b> {html.escape(self.message)}</div>"
        )


def _as_int(answer: Any, what: str) -> int | Feedback:
    if isinstance(answer, bool) or not isinstance(answer, int | str):
        return Feedback(
            False, f"Answer with {what} (a whole number), not {type(answer).__name__} {answer!r}."
        )
    try:
        return int(str(answer).strip().lstrip("#"))
    except ValueError:
        return Feedback(False, f"Answer with {what} (a whole number such as 4), not {answer!r}.")


@dataclass(frozen=True)
class Exercise:
    """One question about one capture. Subclasses set the question and implement :meth:`_check`."""

    name: str
    capture: str
    question: str
    hint: str = ""
    hop: str | None = None

    @cached_property
    def path(self) -> Path:
        """The capture file (raises CaptureError naming where it looked when it is missing)."""
        return samples.path(self.capture)

    @cached_property
    def packets(self) -> tuple[Packet, ...]:
        """The packets of the exercise's hop (all of the capture's when ``hop`` is None), read once.

        A lab capture merges every hop of a scenario; a balancer only ever sees its own
        client side, so that is what the question is about.
        """
        return tuple(p for p in read(self.path) if self.hop is None or p.interface_name == self.hop)

    @property
    def scenario(self) -> str:
        """The lab scenario of the capture (``"alb"`` for ``alb/alb.pcapng``)."""
        return Path(self.capture).parts[0]

    def check(self, answer: Any) -> Feedback:
        """Compare ``answer`` with the capture; never raises for a wrong answer."""
        return self._check(answer)

    def _check(self, answer: Any) -> Feedback:  # pragma: no cover - abstract
        raise NotImplementedError

    def packet(self, number: int) -> Packet:
        for pkt in self.packets:
            if pkt.no == number:
                return pkt
        raise UsageError(f"{self.capture} has no packet {number}")

    def __str__(self) -> str:
        where = f"{self.capture}, hop {self.hop}" if self.hop else self.capture
        hint = f"\nHint: {self.hint}" if self.hint else ""
        return f"Exercise {self.name} ({where})\n{self.question}{hint}"

    def _repr_html_(self) -> str:
        hint = f"<div style='color:#555'>Hint: {html.escape(self.hint)}</div>" if self.hint else ""
        where = html.escape(self.capture) + (
            f"</code>, hop <code>{html.escape(self.hop)}" if self.hop else ""
        )
        question = html.escape(self.question).replace("\n", "<br>")
        return (
            f"<div style='font-size:16px'><b>Exercise {html.escape(self.name)}</b> "
            f"(capture <code>{where}</code>)<br>{question}{hint}</div>"
        )


# --------------------------------------------------------------------------- header-bytes


@dataclass(frozen=True)
class HeaderBytes(Exercise):
    """How many bytes of headers (link + network + transport) precede the first HTTP request?"""

    name: str = "header-bytes"
    capture: str = "alb/alb.pcapng"
    hop: str | None = "client-alb"
    question: str = (
        "In captures/alb/alb.pcapng, on the hop client-alb, find the first packet that carries an "
        "HTTP request. How many bytes of headers (all the layers below HTTP) come before its "
        "request line?"
    )
    hint: str = "Add the header length of every layer below HTTP; look at tcp.hdr_len."

    @cached_property
    def request_packet(self) -> Packet:
        for pkt in self.packets:
            if "http" in pkt and "request.method" in pkt["http"]:
                return pkt
        raise UsageError(f"{self.capture} has no HTTP request")  # pragma: no cover - fixed capture

    def _check(self, answer: Any) -> Feedback:
        value = _as_int(answer, "a number of bytes")
        if isinstance(value, Feedback):
            return value
        pkt = self.request_packet
        below = [lay for lay in pkt.layers if lay.offset < pkt["http"].offset]
        right = pkt["http"].offset
        parts = " + ".join(f"{lay.name} {lay.length}" for lay in below)
        if value == right:
            return Feedback(
                True, f"Packet {pkt.no}: {parts} = {right} bytes before the request line."
            )
        for lay in below:
            if value == right - lay.length:
                return Feedback(
                    False,
                    f"{value} leaves out one layer: the {lay.name} header ({lay.length} bytes, OSI layer {lay.osi}). "
                    "Every layer below HTTP adds its own header.",
                )
        tcp = pkt["tcp"]
        if value == right - tcp.length + 20 and tcp.length != 20:
            return Feedback(
                False,
                f"{value} counts a 20-byte TCP header, but this one carries options {tcp.get('options')}: "
                f"tcp.hdr_len is {tcp.length}. The header length field, not the minimum, says where data starts.",
            )
        if value == len(pkt.data):
            return Feedback(
                False,
                f"{value} is the whole frame, request included; only the headers before it count.",
            )
        if value > right:
            return Feedback(
                False,
                f"{value} is too many: the HTTP request starts before byte {value} of packet {pkt.no}.",
            )
        return Feedback(
            False,
            f"{value} is too few: the layers below HTTP in packet {pkt.no} are {', '.join(lay.name for lay in below)}.",
        )


# --------------------------------------------------------------------------- decisions


def _syn_packets(packets: Iterable[Packet]) -> list[Packet]:
    return [
        p
        for p in packets
        if p.proto == "tcp" and (p.tcp_flags or 0) & TCP_SYN and not (p.tcp_flags or 0) & TCP_ACK
    ]


def _nlb_replay(packets: Sequence[Packet], scenario: str) -> Any:
    """The NLB model, configured as the lab's NLB role in ``scenario`` was, fed ``packets``.

    The config is the ``nlb.config.json`` the lab wrote beside the capture (TCP listeners
    on 80 and 443, both instances as targets).
    """
    from osilab.balancers import NetworkLoadBalancer, replay

    return replay(packets, NetworkLoadBalancer(balancer_config(scenario, "nlb")))


def _packet_role(packets: Sequence[Packet], number: int) -> str:
    """What a packet is, in words a learner knows (used to explain a wrong packet number)."""
    pkt = next((p for p in packets if p.no == number), None)
    if pkt is None:
        first, last = (packets[0].no, packets[-1].no) if packets else (0, 0)
        if first <= number <= last:
            return (
                f"packet {number} was captured on another hop of the lab, not on the one this "
                "question is about (the balancer never saw it)"
            )
        return f"there is no packet {number} here: this hop has packets {first} to {last}"
    flags = pkt.tcp_flags or 0
    if pkt.proto != "tcp":
        return f"packet {number} is not TCP ({' / '.join(pkt.names())})"
    if flags & TCP_SYN and flags & TCP_ACK:
        return f"packet {number} is the server's SYN-ACK, the second step of the handshake"
    if flags & TCP_SYN:
        return f"packet {number} is a client's SYN, the first packet of a connection"
    if "http" in pkt and "request.method" in pkt["http"]:
        return f"packet {number} carries an HTTP request ({pkt['http'].summary.splitlines()[0]})"
    if "http" in pkt:
        return f"packet {number} carries an HTTP response"
    if not pkt.payload:
        return (
            f"packet {number} is a bare TCP segment [{pkt['tcp'].get('flags_str')}] with no payload"
        )
    return f"packet {number} carries {len(pkt.payload)} bytes of payload"


@dataclass(frozen=True)
class NlbDecision(Exercise):
    """In which packet did the NLB choose the target for the connection?"""

    name: str = "nlb-decision"
    capture: str = "nlb/nlb.pcapng"
    hop: str | None = "client-nlb"
    question: str = (
        "Replay captures/nlb/nlb.pcapng (hop client-nlb) through an NLB. The first TCP connection "
        "carries several keep-alive HTTP requests. In which packet did the NLB choose the target "
        "for that connection?"
    )
    hint: str = "What does a layer-4 balancer need, and which packet is the first to carry it?"

    @cached_property
    def decision(self) -> Any:
        """The NLB model's decision for the capture's first connection."""
        decisions = _nlb_replay(self.packets, self.scenario).decisions
        if not decisions:
            raise UsageError(f"the NLB made no decision on {self.capture}")
        return decisions[0]

    @property
    def decided_at(self) -> int:
        return int(self.decision.decided_at)

    @cached_property
    def requests(self) -> list[HttpRequest]:
        """The HTTP requests of that first connection, in order."""
        return [r for r in http_requests(self.packets) if r.flow == self.decision.flow]

    def _check(self, answer: Any) -> Feedback:
        value = _as_int(answer, "a packet number")
        if isinstance(value, Feedback):
            return value
        right = self.decided_at
        if value == right:
            return Feedback(
                True,
                f"Packet {right}, the SYN: it already carries the addresses and ports the NLB hashes "
                f"({', '.join(self.decision.seen)}). Every later packet of the connection, all "
                f"{len(self.requests)} requests included, follows that choice.",
            )
        role = _packet_role(self.packets, value)
        if "HTTP request" in role:
            why = (
                "That is where an L7 balancer (ALB) can decide. An NLB never waits for HTTP: it had "
                f"already chosen at packet {right}, before any request existed."
            )
        elif "SYN-ACK" in role:
            why = (
                "The SYN-ACK comes from the target the NLB already chose: the SYN had to be forwarded "
                "somewhere before anyone could answer it."
            )
        elif "there is no packet" in role or "another hop" in role:
            why = "Pick a packet of the hop the NLB received."
        else:
            why = "By then the NLB had already decided; it decides on the first packet of a new connection."
        return Feedback(False, f"{role}. {why}")


@dataclass(frozen=True)
class AlbDecision(Exercise):
    """In which packet could the ALB decide for a given request on a keep-alive connection?"""

    name: str = "alb-decision"
    capture: str = "alb/alb.pcapng"
    hop: str | None = "client-alb"
    suite: str = "slow_head"
    question: str = (
        "In captures/alb/alb.pcapng (hop client-alb) the lab client sent one request head in four "
        "pieces (GET /api/items/9, the 'slow_head' request). In which packet could the ALB choose "
        "a target for it?"
    )
    hint: str = "An ALB decides per request, when that request's headers are complete."

    @cached_property
    def requests(self) -> list[HttpRequest]:
        return http_requests(self.packets)

    @cached_property
    def request(self) -> HttpRequest:
        """The request the question is about: the client's record of its suite names its id."""
        rid = next(r["rid"] for r in client_records(self.scenario) if r["suite"] == self.suite)
        for request in self.requests:
            if request.header("X-Request-Id") == rid:
                return request
        raise UsageError(f"request {rid} is not on hop {self.hop} of {self.capture}")

    def _check(self, answer: Any) -> Feedback:
        value = _as_int(answer, "a packet number")
        if isinstance(value, Feedback):
            return value
        target = self.request
        right = target.headers_complete_packet
        if value == right:
            return Feedback(
                True,
                f"Packet {right} completes the headers of {target.method} {target.target}; only then can the "
                "ALB match its rules. It decides again for every request on the connection.",
            )
        syns = {p.no for p in _syn_packets(self.packets)}
        if value in syns:
            return Feedback(
                False,
                f"Packet {value} is the SYN: that is where an NLB decides. The ALB answers the handshake itself "
                "and has no HTTP to route on yet.",
            )
        for other in self.requests:
            if (
                other.flow == target.flow
                and other is not target
                and value in (other.first_packet, other.headers_complete_packet)
            ):
                return Feedback(
                    False,
                    f"Packet {value} carries another request ({other.method} {other.target}). On a keep-alive "
                    "connection the ALB decides again for each request, so the second one has its own packet.",
                )
        if target.first_packet < value < right:
            return Feedback(
                False,
                f"Packet {value} lies between the request's first bytes (packet {target.first_packet}) and the "
                f"end of its headers: the ALB must wait for the blank line that ends them.",
            )
        if target.first_packet != right and value == target.first_packet:
            return Feedback(
                False,
                f"Packet {value} has the request's first bytes, but its headers end only in packet {right}: "
                "the ALB must wait for the blank line that ends them.",
            )
        return Feedback(
            False,
            f"{_packet_role(self.packets, value)}; the ALB needs the request's complete headers.",
        )


# --------------------------------------------------------------------------- nlb-fields

#: The fields offered to choose from in :class:`NlbFields` (Wireshark names).
FIELD_CHOICES = (
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "tcp.srcport",
    "tcp.dstport",
    "http.host",
    "http.request.uri",
    "http.request.method",
    "http.cookie",
    "tls.handshake.extensions_server_name",
    "eth.src",
)


@dataclass(frozen=True)
class NlbFields(Exercise):
    """Which fields does an NLB read to choose a target?"""

    name: str = "nlb-fields"
    capture: str = "nlb/nlb.pcapng"
    hop: str | None = "client-nlb"
    question: str = (
        "From this list, which fields did the NLB read to choose a target for the first connection "
        "of captures/nlb/nlb.pcapng (hop client-nlb)? " + ", ".join(FIELD_CHOICES)
    )
    hint: str = (
        "Look at the packet where the NLB decided: which of these fields does it even contain?"
    )

    @cached_property
    def seen(self) -> frozenset[str]:
        decisions = _nlb_replay(self.packets, self.scenario).decisions
        return frozenset(decisions[0].seen)

    def _check(self, answer: Any) -> Feedback:
        if isinstance(answer, str):
            answer = [a.strip() for a in answer.replace(";", ",").split(",") if a.strip()]
        if not isinstance(answer, Iterable):
            return Feedback(
                False, "Answer with a list (or set) of field names, e.g. ['ip.src', 'tcp.dstport']."
            )
        given = {str(a) for a in answer}
        unknown = given - set(FIELD_CHOICES)
        if unknown:
            return Feedback(
                False, f"Pick from the list; these are not in it: {', '.join(sorted(unknown))}."
            )
        if given == self.seen:
            return Feedback(
                True,
                "The NLB hashes the flow's addresses and ports, all present in the SYN: "
                + ", ".join(sorted(self.seen))
                + ".",
            )
        notes = []
        l7 = sorted(f for f in given if f.startswith(("http.", "tls.")))
        if l7:
            notes.append(
                f"{', '.join(l7)} are application-layer fields: they do not exist yet in the SYN, where the NLB "
                "decides, and an NLB never reads the payload (with a TLS listener the SNI only picks the certificate)."
            )
        if "eth.src" in given:
            notes.append(
                "eth.src is rewritten at every IP hop (OSI layer 2 is per link): no balancer routes on it."
            )
        missing = sorted(self.seen - given)
        if missing:
            notes.append(
                f"Missing: {', '.join(missing)}; the NLB hashes the whole flow, not just part of it."
            )
        return Feedback(False, " ".join(notes))


# --------------------------------------------------------------------------- alb-rules


@dataclass(frozen=True)
class AlbRules(Exercise):
    """Write the ``Rules`` of an ALB listener that send some requests of a capture elsewhere."""

    name: str = "alb-rules"
    capture: str = "alb/alb.pcapng"
    hop: str | None = "client-alb"
    question: str = (
        "Write the Rules list of an ALB HTTP:80 listener (as `aws elbv2 describe-rules` prints them) so that "
        "the requests of captures/alb/alb.pcapng (hop client-alb, port 80) whose path starts with /static/ "
        "go to the target group 'static' and every other request goes to 'web' (the listener's default "
        "action already forwards to 'web')."
    )
    hint: str = "One rule with a path-pattern condition. Patterns must match the whole path."
    groups: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {
            "web": ("192.0.2.11:80", "192.0.2.12:80"),
            "static": ("192.0.2.12:80",),
        }
    )
    default_group: str = "web"
    expected: Callable[[HttpRequest], str] = lambda request: (
        "static" if request.path.startswith("/static/") else "web"
    )

    @cached_property
    def requests(self) -> list[HttpRequest]:
        """The plain-HTTP requests to the listener's port 80 (HTTPS ones go to another listener)."""
        return [r for r in http_requests(self.packets) if r.flow.server.port == 80]

    def config(self, rules: Any) -> dict[str, Any]:
        """The whole balancer configuration the learner's rules are checked in."""
        return {
            "Type": "application",
            "TargetGroups": [
                {"Name": name, "Protocol": "HTTP", "Port": 80, "Targets": list(targets)}
                for name, targets in self.groups.items()
            ],
            "Listeners": [
                {
                    "Protocol": "HTTP",
                    "Port": 80,
                    "Rules": rules,
                    "DefaultActions": [{"Type": "forward", "TargetGroupName": self.default_group}],
                }
            ],
        }

    def _check(self, answer: Any) -> Feedback:
        from osilab.balancers import parse_config
        from osilab.balancers.rules import evaluate_rules

        if isinstance(answer, str):
            try:
                answer = json.loads(answer)
            except json.JSONDecodeError as exc:
                return Feedback(False, f"That is not valid JSON: {exc}.")
        if isinstance(answer, Mapping) and "Rules" in answer:
            answer = answer["Rules"]
        if not isinstance(answer, list):
            return Feedback(
                False,
                'Give the Rules as a list of rule objects: [{"Priority": "10", "Conditions": [...], "Actions": [...]}].',
            )
        try:
            config = parse_config(self.config(answer))
        except ConfigError as exc:
            return Feedback(False, f"AWS would refuse these rules: {exc}")
        listener = config.listeners[0]
        wrong = []
        for request in self.requests:
            match = evaluate_rules(listener.rules, request)
            action = match.rule.actions[0] if match.rule is not None else listener.default_action
            groups = (
                [entry.name for entry in action.target_groups] if action.type == "forward" else []
            )
            got = (
                groups[0]
                if len(groups) == 1
                else (f"{action.type}" if not groups else "/".join(groups))
            )
            want = self.expected(request)
            if got != want:
                wrong.append(
                    f"{request.method} {request.target} went to {got!r} (expected {want!r}) because {match.why}"
                )
        if not wrong:
            return Feedback(
                True, f"All {len(self.requests)} requests of the capture go where they should."
            )
        advice = ""
        if any("no rule matched" in w for w in wrong):
            advice = " Remember: a path pattern must match the whole path (/static matches only /static itself; /static/* matches below it), and it never sees the query string."
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        return Feedback(
            False,
            f"{len(wrong)} of {len(self.requests)} requests go to the wrong place: {shown}.{advice}",
        )


# --------------------------------------------------------------------------- desync-tier


@dataclass(frozen=True)
class DesyncTier(Exercise):
    """Which of http-desync-guardian's tiers does the ALB put the smuggling attempt in?"""

    name: str = "desync-tier"
    capture: str = "smuggle/smuggle.pcapng"
    hop: str | None = "client-alb"
    question: str = (
        "The first request of captures/smuggle/smuggle.pcapng (hop client-alb) is a CL.TE smuggling "
        "attempt. Which tier does the ALB's desync guard (http-desync-guardian) put it in: Compliant, "
        "Acceptable, Ambiguous or Severe? Print ex.request_head to see it."
    )
    hint: str = "Two headers say where the body ends. What if two servers believe different ones?"

    @cached_property
    def request(self) -> HttpRequest:
        """The capture's first request on the ALB's client side."""
        found = http_requests(self.packets)
        if not found:
            raise UsageError(f"{self.capture} has no HTTP request on hop {self.hop}")
        return found[0]

    @property
    def request_head(self) -> str:
        """The request line and headers, as the ALB received them."""
        r = self.request
        lines = [f"{r.method} {r.target} {r.version}", *(f"{k}: {v}" for k, v in r.headers)]
        return "\n".join(lines)

    @cached_property
    def verdict(self) -> Any:
        """The guardian's verdict, computed by :mod:`osilab.protocols.desync` from the captured head."""
        from osilab.protocols.desync import classify_request

        r = self.request
        return r.desync or classify_request(r.method, r.target, r.version, list(r.headers))

    def _check(self, answer: Any) -> Feedback:
        tiers = ("Compliant", "Acceptable", "Ambiguous", "Severe")
        text = str(answer).strip().capitalize()
        if text not in tiers:
            return Feedback(False, f"Answer with one of {', '.join(tiers)}, not {answer!r}.")
        right = self.verdict.klass
        reason = self.verdict.reason
        if text == right:
            return Feedback(
                True,
                f"{right} ({reason}): {(self.verdict.detail or 'both body headers are present').rstrip('.')}.",
            )
        if tiers.index(text) < tiers.index(right):
            return Feedback(
                False,
                f"{text} is too lenient. With both Content-Length and Transfer-Encoding, a front end and a back end "
                f"may disagree on where the body ends: the guardian's reason is {reason}.",
            )
        return Feedback(False, f"{text} is stricter than the guardian: it says {right} ({reason}).")


# --------------------------------------------------------------------------- registry

#: Every exercise, by name (a factory each, so a fresh exercise reads its capture lazily).
EXERCISES: Mapping[str, Callable[[], Exercise]] = {
    "header-bytes": HeaderBytes,
    "nlb-decision": NlbDecision,
    "alb-decision": AlbDecision,
    "nlb-fields": NlbFields,
    "alb-rules": AlbRules,
    "desync-tier": DesyncTier,
}


def names() -> list[str]:
    """The exercises' names, in the order the notebook asks them."""
    return list(EXERCISES)


def get(name: str) -> Exercise:
    """A fresh exercise by name.

    Raises:
        UsageError: no such exercise (the message lists them).
    """
    factory = EXERCISES.get(name)
    if factory is None:
        raise UsageError(f"no exercise {name!r}; there are: {', '.join(EXERCISES)}")
    return factory()

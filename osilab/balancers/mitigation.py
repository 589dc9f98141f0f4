"""Desync mitigation: what an AWS ALB does with a request, given its desync verdict.

:mod:`osilab.protocols.desync` *classifies* a request head as AWS's http-desync-guardian
does (Compliant, Acceptable, Ambiguous, Severe). What the load balancer then *does* with
it is a separate, configured decision: the ALB attribute
``routing.http.desync_mitigation_mode`` (``monitor``, ``defensive`` -- the default --
or ``strictest``). This module is that decision, and the only place osilab writes it
down: one table, mode x tier -> action (:data:`POLICY`), read by the ALB model
(:mod:`osilab.balancers.alb`) and by :func:`normalise`.

The table is the ALB User Guide's, as summarised in ``lb-reference.md`` §1.8
(``../shared/docs/lb-reference.md``)::

    | Class      | monitor | defensive (default)                      | strictest |
    |------------|---------|------------------------------------------|-----------|
    | Compliant  | allow   | allow                                    | allow     |
    | Acceptable | allow   | allow                                    | block     |
    | Ambiguous  | allow   | allow, then close client and target conn | block     |
    | Severe     | allow   | 400 + close                              | block     |

What this module must not know: bytes, headers as read off the wire, h11 or captures.
It takes a :class:`~osilab.protocols.messages.DesyncVerdict` (and, for
:func:`normalise`, a parsed request) and returns frozen records.

References:
    AWS, "Desync mitigation mode", Application Load Balancers User Guide
    (application-load-balancers.md); aws/http-desync-guardian ``docs/README.md``;
    RFC 7230 §3.3.2 (a forwarder "MUST remove the received Content-Length").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from osilab.errors import ConfigError
from osilab.protocols.desync import HeaderTier, Tier, classify_with_tiers
from osilab.protocols.messages import DesyncVerdict

__all__ = [
    "MitigationMode",
    "MitigationAction",
    "POLICY",
    "Mitigation",
    "mitigate",
    "NormalisedRequest",
    "normalise",
]

Text = str | bytes
"""A request element as given: text (UTF-8 on the wire) or the wire bytes."""


class MitigationMode(StrEnum):
    """The ALB attribute ``routing.http.desync_mitigation_mode`` (default ``defensive``)."""

    MONITOR = "monitor"
    DEFENSIVE = "defensive"
    STRICTEST = "strictest"


class MitigationAction(StrEnum):
    """What the ALB does with one request."""

    FORWARD = "forward"  # route it to a target; keep both connections
    FORWARD_THEN_CLOSE = "forward_then_close"  # route it, then close client and target connections
    BLOCK_400 = "block_400"  # answer 400 Bad Request and close the client connection
    BLOCK = "block"  # refuse it (not forwarded); the client connection is closed


_FORWARD, _THEN_CLOSE = MitigationAction.FORWARD, MitigationAction.FORWARD_THEN_CLOSE
_BLOCK_400, _BLOCK = MitigationAction.BLOCK_400, MitigationAction.BLOCK

# The table of the module docstring (lb-reference.md §1.8, from the ALB User Guide,
# "Desync mitigation mode"), written as it is printed: a row per tier, a column per mode.
# fmt: off
_MODES = (MitigationMode.MONITOR, MitigationMode.DEFENSIVE, MitigationMode.STRICTEST)
_TABLE = (
    #                 monitor   defensive    strictest
    (Tier.Compliant,  (_FORWARD, _FORWARD,    _FORWARD)),
    (Tier.Acceptable, (_FORWARD, _FORWARD,    _BLOCK)),
    (Tier.Ambiguous,  (_FORWARD, _THEN_CLOSE, _BLOCK)),
    (Tier.Severe,     (_FORWARD, _BLOCK_400,  _BLOCK)),
)
# fmt: on

#: The one desync policy: ``(mode, tier) -> action``, every pair once.
POLICY: MappingProxyType[tuple[MitigationMode, Tier], MitigationAction] = MappingProxyType(
    {
        (mode, tier): action
        for tier, actions in _TABLE
        for mode, action in zip(_MODES, actions, strict=True)
    }
)

_WHAT_THE_ALB_DOES = MappingProxyType(
    {
        _FORWARD: "forwards it to a target and keeps both connections open",
        _THEN_CLOSE: "forwards it, then closes both the client and the target connection, "
        "so that bytes a server might take for a smuggled next request are thrown away",
        _BLOCK_400: "answers 400 Bad Request and closes the client connection; the request "
        "never reaches a target, as its boundaries cannot be trusted",
        _BLOCK: "blocks it: the request never reaches a target and the client connection is closed",
    }
)


@dataclass(frozen=True, slots=True)
class Mitigation:
    """The ALB's action on one classified request.

    Attributes:
        action: a :class:`MitigationAction` value (``"forward"``, ``"forward_then_close"``,
            ``"block_400"``, ``"block"``).
        mode: the desync mitigation mode that decided it.
        klass, reason: the verdict it acted on.
        close_client_connection, close_target_connection: which connections the ALB
            closes after this request.
        counted_as_non_compliant: the request adds one to the CloudWatch metric
            ``DesyncMitigationMode_NonCompliant_Request_Count`` (any request that is not
            Compliant, in every mode).
        why: a sentence saying which rule fired and what the ALB does.
    """

    action: str
    mode: str
    klass: str
    reason: str | None
    close_client_connection: bool
    close_target_connection: bool
    counted_as_non_compliant: bool
    why: str

    @property
    def forwarded(self) -> bool:
        """Whether the request reaches a target."""
        return self.action in (MitigationAction.FORWARD, MitigationAction.FORWARD_THEN_CLOSE)

    @property
    def summary(self) -> str:
        """One line: ``defensive: Ambiguous (BothTeClPresent) -> forward_then_close``."""
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.mode}: {self.klass}{reason} -> {self.action}"


def _mode(mode: MitigationMode | str) -> MitigationMode:
    try:
        return MitigationMode(str(mode).lower())
    except ValueError:
        choices = ", ".join(m.value for m in MitigationMode)
        raise ConfigError(
            f"routing.http.desync_mitigation_mode {mode!r} is not one of {choices}"
        ) from None


def _tier(verdict: DesyncVerdict) -> Tier:
    try:
        return Tier[verdict.klass]
    except KeyError:
        choices = ", ".join(t.name for t in Tier)
        raise ConfigError(f"desync class {verdict.klass!r} is not one of {choices}") from None


def mitigate(
    verdict: DesyncVerdict, mode: MitigationMode | str = MitigationMode.DEFENSIVE
) -> Mitigation:
    """What an ALB in ``mode`` does with a request that got ``verdict``.

    ``monitor`` forwards everything (it only counts and logs); ``defensive`` (the AWS
    default) forwards Compliant and Acceptable requests, forwards an Ambiguous one and
    then closes both connections, and answers a Severe one with 400; ``strictest``
    forwards only Compliant requests.

    Raises:
        ConfigError: for a mode or class AWS does not have.

    Examples:
        >>> from osilab.protocols.desync import classify_request
        >>> v = classify_request("POST", "/", "HTTP/1.1",
        ...                      [("Content-Length", "4"), ("Transfer-Encoding", "chunked")])
        >>> mitigate(v, "defensive").action
        'forward_then_close'
        >>> mitigate(v, "strictest").action
        'block'
    """
    chosen = _mode(mode)
    tier = _tier(verdict)
    action = POLICY[(chosen, tier)]
    closes = action is not MitigationAction.FORWARD
    rule = f"rule {verdict.reason}" if verdict.reason else "no rule"
    why = f"{rule} fired, so the request is {tier.name}; in {chosen.value} mode the ALB "
    why += _WHAT_THE_ALB_DOES[action] + "."
    return Mitigation(
        action=action.value,
        mode=chosen.value,
        klass=tier.name,
        reason=verdict.reason,
        close_client_connection=closes,
        close_target_connection=action is MitigationAction.FORWARD_THEN_CLOSE,
        counted_as_non_compliant=tier is not Tier.Compliant,
        why=why,
    )


# ---------------------------------------------------------------------------
# Normalisation: the headers a forwarded request keeps
# ---------------------------------------------------------------------------

_VALID_HEADER_NAME = re.compile(rb"[-A-Za-z0-9]+")


def _valid_header_name(name: Text) -> bool:
    """Whether a name, as its wire bytes, is one ELB accepts: ``[-A-Za-z0-9]+``."""
    raw = name if isinstance(name, bytes) else str(name).encode("utf-8", "surrogateescape")
    return _VALID_HEADER_NAME.fullmatch(raw) is not None


@dataclass(frozen=True, slots=True)
class NormalisedRequest:
    """The headers an ALB would send on to the target, and those it would drop.

    Attributes:
        forwarded: whether the request reaches a target at all (see :func:`mitigate`).
        headers: the ``(name, value)`` pairs sent on, in order, as given.
        removed: the pairs dropped.
        why: a sentence per removal rule that applied, or why nothing changed.
    """

    forwarded: bool
    headers: tuple[tuple[Text, Text], ...]
    removed: tuple[tuple[Text, Text], ...]
    why: str


def normalise(
    method: Text,
    uri: Text,
    version: Text,
    headers: Sequence[tuple[Text, Text]],
    mode: MitigationMode | str = MitigationMode.DEFENSIVE,
    *,
    drop_invalid_header_fields: bool = False,
) -> NormalisedRequest:
    """The headers an ALB forwards for this request: osilab's model, stated plainly.

    AWS does not publish exactly how an ALB rewrites the requests it forwards. osilab
    models two documented rules, and nothing more:

    1. **Bad headers are removed** in ``defensive`` and ``strictest`` modes. The
       guardian marks some headers *Bad* (:func:`~osilab.protocols.desync.header_tiers`) and its interface says
       they "MUST be removed before sending to backends" (``src/lib.rs``). In practice
       this is the Content-Length beside a Transfer-Encoding (RFC 7230 §3.3.2: a
       forwarder "MUST remove the received Content-Length"), the second copy of a
       repeated Content-Length (the RFC's "replace the duplicated field-values with a
       single valid Content-Length"), and headers with an empty name. Only Ambiguous
       requests are both forwarded and carry Bad headers, so in effect this rewrites
       the Ambiguous requests that defensive mode forwards. ``monitor`` mode observes
       only and changes nothing.
    2. **Invalid header names are dropped** when the separate ALB attribute
       ``routing.http.drop_invalid_header_fields.enabled`` is true (default false), in
       any mode: "Elastic Load Balancing requires that message header names conform to
       the regular expression [-A-Za-z0-9]+" (ALB User Guide). ``X_Token`` is dropped.

    Not modelled: any rewriting of Acceptable requests (AWS documents none), and the
    headers an ALB adds (``X-Forwarded-For``, ``X-Amzn-Trace-Id``...), which belong to
    the balancer model.

    Examples:
        >>> n = normalise("POST", "/", "HTTP/1.1",
        ...               [("Transfer-Encoding", "chunked"), ("Content-Length", "4")])
        >>> n.headers, n.removed
        ((('Transfer-Encoding', 'chunked'),), (('Content-Length', '4'),))
    """
    chosen = _mode(mode)
    verdict, tiers = classify_with_tiers(method, uri, version, headers)
    mitigation = mitigate(verdict, chosen)
    if not mitigation.forwarded:
        return NormalisedRequest(
            forwarded=False,
            headers=tuple(headers),
            removed=(),
            why=f"not forwarded: {mitigation.why}",
        )

    kept: list[tuple[Text, Text]] = []
    removed: list[tuple[Text, Text]] = []
    reasons: set[str] = set()
    for pair, tier in zip(headers, tiers, strict=True):
        if chosen is not MitigationMode.MONITOR and tier is HeaderTier.Bad:
            removed.append(pair)
            reasons.add(
                "headers the guardian marks Bad are removed before the request reaches a target"
            )
        elif drop_invalid_header_fields and not _valid_header_name(pair[0]):
            removed.append(pair)
            reasons.add(
                "drop_invalid_header_fields is on, so names outside [-A-Za-z0-9]+ are dropped"
            )
        else:
            kept.append(pair)
    if reasons:
        why = "; ".join(sorted(reasons)) + "."
    elif chosen is MitigationMode.MONITOR:
        why = "monitor mode only observes: the request is forwarded unchanged."
    else:
        why = "nothing to remove: the request is forwarded unchanged."
    return NormalisedRequest(forwarded=True, headers=tuple(kept), removed=tuple(removed), why=why)

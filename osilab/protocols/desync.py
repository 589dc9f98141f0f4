"""HTTP desync classification: how an AWS ALB judges a request head before it forwards it.

The problem: request smuggling
------------------------------
An HTTP/1.1 connection is a plain byte stream, and requests follow one another on it
with nothing between them. Where one request's body ends, and so where the next request
starts, is told by two headers (RFC 7230 §3.3.3):

* ``Content-Length: 13`` -- the body is the next 13 bytes;
* ``Transfer-Encoding: chunked`` -- the body is a run of chunks, ended by a ``0`` chunk.

A load balancer and the server behind it both read the same bytes. If they disagree
about where a body ends, the bytes one of them thinks are "the rest of the body" are,
for the other, *the start of the next request*. That next request was never seen (or
checked, or routed, or logged) by the balancer: it was smuggled past it, and its
response may be delivered to another user who shares the back-end connection. This is
HTTP desync (Linhart et al. 2005; Kettle, "HTTP Desync Attacks", 2019). The classic
shapes::

    CL.TE   the front end obeys Content-Length, the back end Transfer-Encoding
    TE.CL   the other way round
    TE.TE   both obey Transfer-Encoding, but one of them fails to see a disguised one
            ("Transfer-Encoding : chunked", "Transfer_Encoding", "\\x01Transfer-Encoding"...)

What AWS does
-------------
AWS's Application and Classic Load Balancers pass every HTTP/1.x request head through
the open-source library http-desync-guardian (github.com/aws/http-desync-guardian) and
act on its verdict according to the load balancer attribute
``routing.http.desync_mitigation_mode``. The guardian puts each request in one of four
tiers:

=============  ==============================================================
Compliant      follows RFC 7230.
Acceptable     breaks RFC 7230, but cannot move a request boundary.
Ambiguous      breaks RFC 7230 in a way that servers may read differently.
Severe         malformed, or almost certainly crafted to desynchronise.
=============  ==============================================================

Each check that fails names a *reason* (``BothTeClPresent``, ``SuspiciousHeader``...),
and every reason belongs to exactly one tier (:data:`REASON_TIERS`). The verdict is the
worst tier reached, and its reason is the **first** check that reached that tier: a
later check of the same tier does not replace it. The checks run in this order:

1. (raw heads only) the reader's findings: bare-LF line ends, folded (obs-fold) lines,
   lines without a colon, a missing request-target, a missing final empty line;
2. each header in wire order: its characters (name must be an RFC 7230 token; value
   visible ASCII, obs-text, space or tab; CR, LF or NUL anywhere is Severe), an empty
   name, and a name that *looks like* ``Transfer-Encoding`` or ``Content-Length``
   without being it (the TE.TE disguise);
3. the body headers together: Transfer-Encoding on HTTP/1.0 or older, Content-Length on
   HTTP/0.9, unknown or repeated ``chunked`` codings, Content-Length values that are not
   one 64-bit decimal number, a body on GET or HEAD, and both TE and CL at once;
4. the method (a token), the version (``HTTP/1.x``), the request-target (no control
   characters; a space is tolerated).

Each header also gets its own tier (Compliant / NonCompliant / Bad); a *Bad* header is
one the guardian says must not reach a back end (:func:`header_tiers`).

This module **classifies only**. What the ALB then does with each tier in each mode is
one table in :mod:`osilab.balancers.mitigation` (``lb-reference.md`` §1.8), and the
tolerant reader that splits a raw head is :mod:`osilab.protocols._http_tolerant`.

This module is a Python port of the guardian's rules (``src/request_analyzer.rs``,
``src/http_token_utils.rs``, ``src/raw_request_parser.rs``), checked against the
guardian's own test cases (``tests/protocols/test_desync.py``: all 87 agree on tier,
reason and per-header tiers). Three deliberate differences:

* The guardian skips analysis for versions that compare at or above ``"HTTP/2"`` **as
  byte strings**, so ``"http/1.1"`` or ``"XYZ"`` would be called Compliant. Here only a
  version that really starts ``HTTP/2`` .. ``HTTP/9`` is skipped; anything else is
  checked (a garbage version is Severe, ``BadVersion``).
* A Transfer-Encoding list whose final coding is not ``chunked`` (``gzip``, ``chunked,
  gzip``) is Ambiguous, ``UndefinedTransferEncodingSemantics``: RFC 9112 §6.3 says such a
  request's body length "cannot be determined reliably", which the guardian's rules do not
  check (they accept any list of known codings). It is checked last among the body
  headers, so every guardian case keeps its reason (``gzip`` beside a Content-Length is
  still ``BothTeClPresent``).
* ``detail`` is a sentence written for learners, not the guardian's log line, though it
  names the same things (the header, shown with invisible bytes escaped as ``\\0x01``;
  values of headers other than TE/CL masked to ``_`` as the guardian masks them in logs).

What this module must not know: sockets, files, captures, h11, or any balancer
configuration or mitigation mode. It takes strings or bytes and returns frozen records.

References:
    RFC 7230 §3.2 (header fields), §3.3 (message body), §9.5 (request smuggling).
    aws/http-desync-guardian ``docs/README.md`` (tiers, reasons, mitigations).
    AWS, "Desync mitigation mode", Application Load Balancers User Guide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from types import MappingProxyType

from osilab.protocols._http_tolerant import (
    COLON,
    HT,
    SP,
    TCHAR,
    Likeness,
    ParsedHead,
    likeness,
    masked,
    read_head,
    trim,
    visible,
)
from osilab.protocols.messages import DesyncVerdict

__all__ = [
    "Tier",
    "HeaderTier",
    "REASON_TIERS",
    "classify_request",
    "classify_with_tiers",
    "header_tiers",
    "ParsedHead",
    "parse_request_head",
    "classify_head",
]

Text = str | bytes
"""A request element as given: text (encoded to bytes as UTF-8) or the wire bytes."""


class Tier(IntEnum):
    """The guardian's request tiers, in order of danger (``RequestSafetyTier``).

    The member names are the exact strings of :attr:`DesyncVerdict.klass`.
    """

    Compliant = 0
    Acceptable = 1
    Ambiguous = 2
    Severe = 3


class HeaderTier(IntEnum):
    """The guardian's per-header tiers (``HeaderSafetyTier``).

    ``Bad`` headers "MUST be removed before sending to backends" (guardian ``src/lib.rs``).
    """

    Compliant = 0
    NonCompliant = 1
    Bad = 2


# Every reason the guardian can give, and the one tier it always comes with
# (aws/http-desync-guardian docs/README.md, "Classification Reasons").
REASON_TIERS: MappingProxyType[str, Tier] = MappingProxyType(
    {
        # Acceptable: breaks the RFC, cannot move a request boundary.
        "NonCompliantHeader": Tier.Acceptable,
        "SpaceInUri": Tier.Acceptable,
        "NonCompliantVersion": Tier.Acceptable,
        "GetHeadZeroContentLength": Tier.Acceptable,
        "NonCrLfLineTermination": Tier.Acceptable,
        # Ambiguous: servers may disagree about where the request ends.
        "EmptyHeader": Tier.Ambiguous,
        "AmbiguousUri": Tier.Ambiguous,
        "UndefinedContentLengthSemantics": Tier.Ambiguous,
        "UndefinedTransferEncodingSemantics": Tier.Ambiguous,
        "DuplicateContentLength": Tier.Ambiguous,
        "BothTeClPresent": Tier.Ambiguous,
        "SuspiciousHeader": Tier.Ambiguous,
        "MultilineHeader": Tier.Ambiguous,
        "PartialHeaderLine": Tier.Ambiguous,
        "MissingLastEmptyLine": Tier.Ambiguous,
        "MissingHeaderColon": Tier.Ambiguous,
        "MissingUri": Tier.Ambiguous,
        # Severe: malformed or crafted.
        "BadHeader": Tier.Severe,
        "BadUri": Tier.Severe,
        "BadVersion": Tier.Severe,
        "MultipleContentLength": Tier.Severe,
        "BadContentLength": Tier.Severe,
        "MultipleTransferEncodingChunked": Tier.Severe,
        "BadTransferEncoding": Tier.Severe,
        "BadMethod": Tier.Severe,
    }
)

# ---------------------------------------------------------------------------
# Character classes (RFC 7230 §3.2.6, §3.2; RFC 5234 appendix B.1; the token and
# whitespace classes are shared with the reader, osilab.protocols._http_tolerant)
# ---------------------------------------------------------------------------

_DIGITS = frozenset(b"0123456789")
# CR, LF and NUL inside a name, value or URI mean a parser already went wrong, or that
# someone hopes one will: the guardian calls these "bad characters".
_BAD_CHARS = frozenset(b"\r\n\x00")

_TRANSFER_ENCODING = b"transfer-encoding"
_CONTENT_LENGTH = b"content-length"
# The transfer codings registered by RFC 7230 §4 (plus "identity", which the guardian
# still accepts although RFC 7230 removed it).
_KNOWN_CODINGS = frozenset({b"chunked", b"compress", b"deflate", b"gzip", b"identity"})
_U64_MAX = 2**64 - 1


def _is_value_char(byte: int) -> bool:
    """field-vchar, obs-text, SP or HTAB: what a header value may hold (RFC 7230 §3.2)."""
    return 0x20 <= byte < 0x7F or byte >= 0x80 or byte == HT


def _is_uri_char(byte: int) -> bool:
    """Anything above SP except DEL: the guardian's test for a request-target byte."""
    return byte > SP and byte != 0x7F


def _wire(element: Text) -> bytes:
    """The bytes of an element: bytes as given; text as UTF-8.

    ``surrogateescape`` makes the round trip exact for text that was itself decoded
    from wire bytes with ``errors="surrogateescape"`` (as :class:`ParsedHead` is).
    """
    if isinstance(element, bytes | bytearray | memoryview):
        return bytes(element)
    return str(element).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# The working state of one analysis
# ---------------------------------------------------------------------------


class _Findings:
    """The verdict so far: the worst tier reached, and the first rule that reached it."""

    __slots__ = ("tier", "reason", "detail")

    def __init__(self) -> None:
        self.tier = Tier.Compliant
        self.reason: str | None = None
        self.detail = ""

    def report(self, reason: str, detail: str) -> None:
        """A rule fired. It wins only if its tier is strictly worse than the verdict so far."""
        tier = REASON_TIERS[reason]
        if tier > self.tier:
            self.tier, self.reason, self.detail = tier, reason, detail

    def verdict(self) -> DesyncVerdict:
        if self.reason is None:
            return DesyncVerdict(Tier.Compliant.name, None, "")
        return DesyncVerdict(self.tier.name, self.reason, self.detail)


class _Header:
    """One header under analysis (mutable: later rules raise its tier)."""

    __slots__ = ("name", "value", "tier", "essential")

    def __init__(self, name: bytes, value: bytes) -> None:
        self.name = name
        self.value = value
        self.tier = HeaderTier.Compliant
        # True for a header that *is* Transfer-Encoding or Content-Length (any case).
        self.essential = False

    def shown(self) -> str:
        """``"Name": "value"`` for a sentence; only TE/CL values are shown in full."""
        value = visible(self.value) if self.essential else masked(self.value)
        return f"{visible(self.name)}: {value}"

    def raise_to(self, tier: HeaderTier) -> None:
        self.tier = max(self.tier, tier)


def _character_tier(raw: bytes, allowed: Callable[[int], bool]) -> HeaderTier:
    tier = HeaderTier.Compliant
    for byte in raw:
        if not allowed(byte):
            if byte in _BAD_CHARS:
                return HeaderTier.Bad
            tier = HeaderTier.NonCompliant
    return tier


def _header_character_tier(header: _Header) -> HeaderTier:
    """A header's tier from its characters alone: the worse of its name and its value."""
    return max(
        _character_tier(header.name, TCHAR.__contains__),
        _character_tier(header.value, _is_value_char),
    )


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------


def _is_http2_or_later(version: bytes) -> bool:
    """``HTTP/2``, ``HTTP/3``...: the guardian analyses HTTP/1.x only."""
    return len(version) >= 6 and version.startswith(b"HTTP/") and 0x32 <= version[5] <= 0x39


def _analyse(
    method: bytes, uri: bytes, version: bytes, headers: list[_Header], findings: _Findings
) -> None:
    """Run every rule over one request head, in the guardian's order."""
    if not trim(version):
        # A request line without a version is an HTTP/0.9 "simple request".
        version = b"HTTP/0.9"
    transfer_encodings: list[int] = []
    content_lengths: list[int] = []
    for index, header in enumerate(headers):
        _check_header(header, index, findings, transfer_encodings, content_lengths)
    _check_body_headers(method, version, headers, transfer_encodings, content_lengths, findings)
    _check_method(method, findings)
    _check_version(version, findings)
    _check_uri(uri, findings)


def _check_header(
    header: _Header,
    index: int,
    findings: _Findings,
    transfer_encodings: list[int],
    content_lengths: list[int],
) -> None:
    """One header on its own: characters, empty name, look-alike of TE or CL."""
    te_likeness = likeness(_TRANSFER_ENCODING, header.name)
    cl_likeness = (
        likeness(_CONTENT_LENGTH, header.name)
        if te_likeness is Likeness.DISTANT
        else Likeness.DISTANT
    )
    header.essential = Likeness.IDENTICAL in (te_likeness, cl_likeness)
    header.tier = _header_character_tier(header)
    if header.tier is HeaderTier.Bad:
        findings.report(
            "BadHeader",
            f"header {header.shown()} contains CR, LF or NUL; a line break or a "
            "string end inside a header is how a second request or header is hidden "
            "from one parser and shown to another.",
        )
    elif header.tier is HeaderTier.NonCompliant:
        findings.report(
            "NonCompliantHeader",
            f"header {header.shown()} has a character RFC 7230 does not allow "
            "(a space or control character in the name, or a control character in the "
            "value); harmless here, as it is not a header that frames the body.",
        )

    trimmed = trim(header.name)
    if not trimmed or trimmed[0] == COLON:
        header.tier = HeaderTier.Bad
        findings.report(
            "EmptyHeader",
            f"header {header.shown()} has an empty name; servers disagree on "
            "whether such a line is a header, a continuation or garbage.",
        )
    elif not header.essential and header.tier is not HeaderTier.Bad:
        if te_likeness is Likeness.SAME_LETTERS:
            transfer_encodings.append(index)
            target = "Transfer-Encoding"
        elif cl_likeness is Likeness.SAME_LETTERS:
            content_lengths.append(index)
            target = "Content-Length"
        else:
            return
        header.tier = HeaderTier.NonCompliant
        findings.report(
            "SuspiciousHeader",
            f"header {header.shown()} is too close to {target}: a server that "
            f"trims or normalises names will obey it as {target}, one that does not "
            "will ignore it, and the two will disagree on where the body ends.",
        )
    elif te_likeness is Likeness.IDENTICAL:
        transfer_encodings.append(index)
    elif cl_likeness is Likeness.IDENTICAL:
        content_lengths.append(index)


def _check_body_headers(
    method: bytes,
    version: bytes,
    headers: list[_Header],
    transfer_encodings: list[int],
    content_lengths: list[int],
    findings: _Findings,
) -> None:
    """Transfer-Encoding and Content-Length together: the headers that frame a body."""
    if not transfer_encodings and not content_lengths:
        return

    def mark(indexes: list[int], tier: HeaderTier) -> None:
        for index in indexes:
            headers[index].raise_to(tier)

    # Versions are compared as byte strings, as the guardian does.
    if version <= b"HTTP/1.0" and transfer_encodings:
        findings.report(
            "UndefinedTransferEncodingSemantics",
            f"Transfer-Encoding is not defined for {visible(version)} "
            "(chunked coding arrived with HTTP/1.1), so an older server frames the body "
            "by other means.",
        )
        mark(transfer_encodings, HeaderTier.NonCompliant)
        mark(content_lengths, HeaderTier.Bad)
        return
    if version < b"HTTP/1.0" and content_lengths:
        findings.report(
            "UndefinedContentLengthSemantics",
            f"Content-Length is not defined for {visible(version)}: an HTTP/0.9 "
            "request has no headers and no body.",
        )
        mark(content_lengths, HeaderTier.NonCompliant)
        return

    has_transfer_encoding = _check_transfer_encodings(headers, transfer_encodings, findings)
    content_length = _check_content_lengths(headers, content_lengths, findings)

    if method in (b"GET", b"HEAD"):
        # RFC 7231 §4.3.1: "A payload within a GET request message has no defined
        # semantics", so a server may ignore a body that another one reads.
        shown_method = visible(method)
        if has_transfer_encoding:
            findings.report(
                "UndefinedTransferEncodingSemantics",
                f"a {shown_method} request has Transfer-Encoding; a body on "
                f"{shown_method} has no defined meaning, so servers may skip it or not.",
            )
            mark(transfer_encodings, HeaderTier.NonCompliant)
        if content_length == 0:
            findings.report(
                "GetHeadZeroContentLength",
                f"a {shown_method} request has Content-Length: 0; needless but "
                "harmless, as there is no body either way.",
            )
            mark(content_lengths, HeaderTier.NonCompliant)
        elif content_length is not None:
            findings.report(
                "UndefinedContentLengthSemantics",
                f"a {shown_method} request has Content-Length: {content_length}; "
                "a server that ignores bodies on GET/HEAD reads those bytes as the next "
                "request.",
            )
            mark(content_lengths, HeaderTier.NonCompliant)

    if content_length is not None and has_transfer_encoding:
        # RFC 7230 §3.3.2: such a message "might indicate an attempt to perform request
        # smuggling"; a forwarder "MUST remove the received Content-Length".
        mark(content_lengths, HeaderTier.Bad)
        first = headers[content_lengths[0]]
        findings.report(
            "BothTeClPresent",
            f"header {first.shown()} comes with a Transfer-Encoding header: "
            "the CL.TE / TE.CL smuggling shape, where each server may pick a different "
            "one to find the end of the body.",
        )

    if has_transfer_encoding and _final_coding(headers, transfer_encodings) != b"chunked":
        # RFC 9112 §6.3: "If a Transfer-Encoding header field is present in a request and
        # the chunked transfer coding is not the final encoding, the message body length
        # cannot be determined reliably" (osilab's addition; see the module docstring).
        findings.report(
            "UndefinedTransferEncodingSemantics",
            "the Transfer-Encoding list of this request does not end in chunked, so "
            "(RFC 9112 §6.3) its body length cannot be determined: one server reads no "
            "body, another reads to the end of the connection, a third refuses it.",
        )


def _final_coding(headers: list[_Header], transfer_encodings: list[int]) -> bytes:
    """The last coding of the request's Transfer-Encoding list, all its headers in order
    (RFC 9110 §5.3: repeated fields are one comma-separated list)."""
    essential = [headers[index].value for index in transfer_encodings if headers[index].essential]
    if not essential:
        return b"chunked"  # only look-alike names: judged as SuspiciousHeader already
    return trim(trim(essential[-1].split(b",")[-1]).split(b";", 1)[0]).lower()


def _known_coding(item: bytes) -> bytes | None:
    """The coding in one list item (``" gzip ; q=1 "`` -> ``b"gzip"``), if it is known."""
    coding = trim(trim(item).split(b";", 1)[0]).lower()
    return coding if coding in _KNOWN_CODINGS else None


def _check_transfer_encodings(
    headers: list[_Header], transfer_encodings: list[int], findings: _Findings
) -> bool:
    """Each coding must be known, and ``chunked`` must not be applied twice in a row.

    RFC 7230 §3.3.1: "A sender MUST NOT apply chunked more than once to a message body".
    Returns whether there is any Transfer-Encoding header at all.
    """
    chunked_just_before = False
    repeated_chunked = False
    for index in transfer_encodings:
        header = headers[index]
        for item in header.value.split(b","):
            coding = _known_coding(item)
            if coding is None:
                header.tier = HeaderTier.Bad
                findings.report(
                    "BadTransferEncoding",
                    f"header {header.shown()} names a transfer "
                    "coding that is not chunked, compress, deflate, gzip or identity; "
                    "a server that does not know it cannot find the end of the body.",
                )
                continue
            is_chunked = coding == b"chunked"
            if chunked_just_before and is_chunked:
                repeated_chunked = True
                header.tier = HeaderTier.Bad
                findings.report(
                    "MultipleTransferEncodingChunked",
                    f"header {header.shown()} applies chunked "
                    "a second time; one server de-chunks once, another twice.",
                )
            chunked_just_before = is_chunked
    if repeated_chunked:
        for index in transfer_encodings:
            headers[index].tier = HeaderTier.Bad
    return bool(transfer_encodings)


def _parse_content_length(value: bytes) -> tuple[int, str | None]:
    """A Content-Length value as a number, or the reason it is not one.

    Only ASCII digits, after trimming spaces and tabs, that fit in 64 bits. An empty
    value counts as 0, as in the guardian.
    """
    number = 0
    for byte in trim(value):
        if byte not in _DIGITS:
            return 0, "not an integer"
        number = number * 10 + (byte - 0x30)
        if number > _U64_MAX:
            return 0, "more than 64 bits"
    return number, None


def _check_content_lengths(
    headers: list[_Header], content_lengths: list[int], findings: _Findings
) -> int | None:
    """Every Content-Length must be one decimal number, and all must agree.

    RFC 7230 §3.3.2: different values are an error; identical repeats may be merged.
    Returns the first valid value, or ``None``.
    """
    length: int | None = None
    any_bad = False
    for index in content_lengths:
        header = headers[index]
        number, problem = _parse_content_length(header.value)
        if problem is not None:
            any_bad = True
            findings.report(
                "BadContentLength",
                f"header {header.shown()} is {problem}: Content-Length must be one "
                "decimal number, and servers "
                "that read '1000,1000' or '1000 1000' differently frame the body differently.",
            )
        elif length is None:
            length = number
        elif number != length:
            any_bad = True
            findings.report(
                "MultipleContentLength",
                f"Multiple Content-Length headers with different values: {length} first, "
                f"then {header.shown()}; each server may obey a different one.",
            )
        else:
            header.tier = HeaderTier.Bad
            findings.report(
                "DuplicateContentLength",
                f"header {header.shown()} repeats an earlier "
                "Content-Length with the same value; some servers merge the two, "
                "others reject the request.",
            )
    if any_bad:
        for index in content_lengths:
            headers[index].tier = HeaderTier.Bad
    return length


def _check_method(method: bytes, findings: _Findings) -> None:
    """The method must be a token (RFC 7230 §3.1.1)."""
    if any(byte not in TCHAR for byte in method):
        findings.report(
            "BadMethod",
            f"method {visible(method)} has a character that is not allowed in "
            "a token, so the request line cannot be read reliably.",
        )


def _check_version(version: bytes, findings: _Findings) -> None:
    """``HTTP/1.0`` and ``HTTP/1.1`` are right; ``HTTP/0.9``, ``HTTP/1.2``-``1.9`` and
    versions with spaces around them are tolerated; anything else is malformed."""
    trimmed = trim(version)
    if trimmed == b"HTTP/0.9":
        findings.report(
            "NonCompliantVersion",
            f"version {visible(version)} (HTTP/0.9 has no RFC) is tolerated.",
        )
        return
    well_formed = len(trimmed) == 8 and trimmed.startswith(b"HTTP/1.") and trimmed[7] in _DIGITS
    if not well_formed:
        findings.report(
            "BadVersion",
            f"version {visible(version)} is not HTTP/1.x, so the request line itself is in doubt.",
        )
    elif len(trimmed) != len(version) or trimmed[7] > ord("1"):
        findings.report(
            "NonCompliantVersion",
            f"version {visible(version)} is not exactly HTTP/1.0 or HTTP/1.1, but it is tolerated.",
        )


def _check_uri(uri: bytes, findings: _Findings) -> None:
    """The request-target must hold no CR, LF or NUL; other control characters are
    ambiguous, and a raw space is tolerated (it means the request line still parsed)."""
    kinds = set()
    for byte in uri:
        if _is_uri_char(byte):
            continue
        if byte in _BAD_CHARS:
            kinds.add("BadUri")
            break  # nothing after it can make the verdict worse
        kinds.add("SpaceInUri" if byte == SP else "AmbiguousUri")
    shown = masked(uri)
    if "BadUri" in kinds:
        findings.report("BadUri", f"URI (request-target) {shown} contains CR, LF or NUL.")
    if "AmbiguousUri" in kinds:
        findings.report(
            "AmbiguousUri",
            f"URI (request-target) {shown} contains a control character (tab, DEL or another "
            "CTL) that servers treat differently.",
        )
    if "SpaceInUri" in kinds:
        findings.report(
            "SpaceInUri",
            f"URI (request-target) {shown} contains an unescaped space; tolerated, as the "
            "request line still parsed.",
        )


# ---------------------------------------------------------------------------
# Public API: parsed requests
# ---------------------------------------------------------------------------


def _prepare(headers: Sequence[tuple[Text, Text]]) -> list[_Header]:
    return [_Header(_wire(name), _wire(value)) for name, value in headers]


def classify_request(
    method: Text, uri: Text, version: Text, headers: Sequence[tuple[Text, Text]]
) -> DesyncVerdict:
    """Classify an already-parsed HTTP/1.x request head as the ALB's guardian would.

    Args:
        method: the method as sent (``"POST"``); compared case-sensitively, as on the wire.
        uri: the request-target, query included.
        version: the whole version token, ``"HTTP/1.1"`` (not h11's ``"1.1"``); an
            empty version means HTTP/0.9.
        headers: ``(name, value)`` pairs in wire order, names as sent. Repeated headers
            must stay separate pairs: the number of Content-Length headers matters.

    Each element may be ``str`` (encoded as UTF-8, so ``"Tranſfer-Encoding"`` is seen as
    the bytes a client would send) or ``bytes`` (used as is).

    Returns:
        the verdict: ``klass`` the worst tier reached, ``reason`` the first rule that
        reached it (``None`` when Compliant), ``detail`` a sentence naming the header.

    Examples:
        >>> classify_request("POST", "/", "HTTP/1.1",
        ...                  [("Content-Length", "13"), ("Transfer-Encoding", "chunked")]).reason
        'BothTeClPresent'
        >>> classify_request("POST", "/", "HTTP/1.1", [("Transfer-Encoding ", "chunked")]).klass
        'Ambiguous'
        >>> classify_request("GET", "/", "HTTP/1.1", [("Host", "shop.example")]).klass
        'Compliant'
    """
    verdict, _ = _classify_parts(_wire(method), _wire(uri), _wire(version), _prepare(headers))
    return verdict


def header_tiers(
    method: Text, uri: Text, version: Text, headers: Sequence[tuple[Text, Text]]
) -> tuple[str, ...]:
    """Each header's own tier after classification: ``"Compliant"``, ``"NonCompliant"``
    or ``"Bad"``, one per header in order.

    A header is *Bad* when its characters are (CR, LF, NUL), when its name is empty, or
    when the body-header rules condemn it: the Content-Length beside a Transfer-Encoding,
    a repeated Content-Length, every Content-Length when they disagree. The guardian says
    Bad headers must not reach a back end (see :func:`osilab.balancers.mitigation.normalise`).

    Examples:
        >>> header_tiers("POST", "/", "HTTP/1.1",
        ...              [("Transfer-Encoding", "chunked"), ("Content-Length", "5")])
        ('Compliant', 'Bad')
    """
    return tuple(tier.name for tier in classify_with_tiers(method, uri, version, headers)[1])


def classify_with_tiers(
    method: Text, uri: Text, version: Text, headers: Sequence[tuple[Text, Text]]
) -> tuple[DesyncVerdict, tuple[HeaderTier, ...]]:
    """The request's verdict and each header's own tier, from one analysis.

    What a forwarder needs to decide both *whether* to forward and *which headers* to
    drop (:func:`osilab.balancers.mitigation.normalise`).

    Examples:
        >>> verdict, tiers = classify_with_tiers(
        ...     "POST", "/", "HTTP/1.1", [("Transfer-Encoding", "chunked"), ("Content-Length", "5")])
        >>> verdict.reason, [tier.name for tier in tiers]
        ('BothTeClPresent', ['Compliant', 'Bad'])
    """
    verdict, prepared = _classify_parts(
        _wire(method), _wire(uri), _wire(version), _prepare(headers)
    )
    return verdict, tuple(header.tier for header in prepared)


def _classify_parts(
    method: bytes,
    uri: bytes,
    version: bytes,
    headers: list[_Header],
    findings: _Findings | None = None,
) -> tuple[DesyncVerdict, list[_Header]]:
    if _is_http2_or_later(version):
        return (
            DesyncVerdict(
                Tier.Compliant.name,
                None,
                f"version {visible(version)}: the guardian analyses HTTP/1.x only.",
            ),
            headers,
        )
    findings = findings if findings is not None else _Findings()
    _analyse(method, uri, version, headers, findings)
    return findings.verdict(), headers


# ---------------------------------------------------------------------------
# Raw heads: the tolerant reader's findings, then every rule
# ---------------------------------------------------------------------------


def parse_request_head(raw: bytes) -> ParsedHead:
    """Read a raw HTTP/1.x request head tolerantly; never raises on any bytes.

    Unlike a strict parser (h11), this reader keeps going through bare-LF line ends,
    folded lines, lines without a colon, a missing version or a missing final empty
    line, so that a malformed request can still be shown and classified
    (:mod:`osilab.protocols._http_tolerant`).

    Examples:
        >>> head = parse_request_head(b"GET /a HTTP/1.1\\nHost: shop.example\\n\\nBODY")
        >>> head.method, head.uri, head.version, head.headers, head.head_length
        ('GET', '/a', 'HTTP/1.1', (('Host', 'shop.example'),), 36)
    """
    return read_head(bytes(raw)).parsed()


def classify_head(raw: bytes) -> tuple[ParsedHead, DesyncVerdict]:
    """Read a raw request head tolerantly and classify it, reader findings included.

    This is the guardian's "raw request" mode: besides every rule of
    :func:`classify_request`, it reports how the head itself is written (bare LF line
    ends, obs-fold, missing colon, missing request-target, missing empty line). It never
    raises, whatever the bytes.

    Examples:
        >>> head, verdict = classify_head(
        ...     b"POST / HTTP/1.1\\r\\nHost: a\\r\\nTransfer-Encoding: chunked\\r\\n"
        ...     b"Content-Length: 4\\r\\n\\r\\n")
        >>> verdict.klass, verdict.reason
        ('Ambiguous', 'BothTeClPresent')
        >>> classify_head(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n folded\\r\\n\\r\\n")[1].reason
        'MultilineHeader'
    """
    head = read_head(bytes(raw))
    findings = _Findings()
    for reason, detail in head.findings:  # the reader's findings come first, in order
        findings.report(reason, detail)
    headers = [_Header(name, value) for name, value in head.headers]
    verdict, _ = _classify_parts(head.method, head.uri, head.version, headers, findings)
    return head.parsed(), verdict

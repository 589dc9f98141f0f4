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
``routing.http.desync_mitigation_mode`` (see :func:`mitigate`). The guardian puts each
request in one of four tiers:

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
one the guardian says must not reach a back end (:func:`header_tiers`, :func:`normalise`).

This module is a Python port of the guardian's rules (``src/request_analyzer.rs``,
``src/http_token_utils.rs``, ``src/raw_request_parser.rs``), checked against the
guardian's own test cases (``tests/protocols/test_desync.py``: all 87 agree on tier,
reason and per-header tiers). Two deliberate differences:

* The guardian skips analysis for versions that compare at or above ``"HTTP/2"`` **as
  byte strings**, so ``"http/1.1"`` or ``"XYZ"`` would be called Compliant. Here only a
  version that really starts ``HTTP/2`` .. ``HTTP/9`` is skipped; anything else is
  checked (a garbage version is Severe, ``BadVersion``).
* ``detail`` is a sentence written for learners, not the guardian's log line, though it
  names the same things (the header, shown with invisible bytes escaped as ``\\0x01``;
  values of headers other than TE/CL masked to ``_`` as the guardian masks them in logs).

What this module must not know: sockets, files, captures, h11, or any balancer
configuration. It takes strings or bytes and returns frozen records.

References:
    RFC 7230 §3.2 (header fields), §3.3 (message body), §9.5 (request smuggling).
    aws/http-desync-guardian ``docs/README.md`` (tiers, reasons, mitigations).
    AWS, "Desync mitigation mode", Application Load Balancers User Guide.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum, StrEnum
from types import MappingProxyType

from osilab.errors import ConfigError
from osilab.protocols.messages import DesyncVerdict

__all__ = [
    "Tier",
    "HeaderTier",
    "REASON_TIERS",
    "classify_request",
    "header_tiers",
    "ParsedHead",
    "parse_request_head",
    "classify_head",
    "MitigationMode",
    "MitigationAction",
    "Mitigation",
    "mitigate",
    "NormalisedRequest",
    "normalise",
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
# Character classes (RFC 7230 §3.2.6, §3.2; RFC 5234 appendix B.1)
# ---------------------------------------------------------------------------

_SP, _HT, _CR, _LF, _COLON = 0x20, 0x09, 0x0D, 0x0A, 0x3A
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# tchar: the characters of a token (method, header name).
_TCHAR = _ALNUM | frozenset(b"!#$%&'*+-.^_`|~")
# CR, LF and NUL inside a name, value or URI mean a parser already went wrong, or that
# someone hopes one will: the guardian calls these "bad characters".
_BAD_CHARS = frozenset(b"\r\n\x00")
_WHITESPACE = b" \t"  # RFC 7230 OWS: SP and HTAB only.
_MAX_SHOWN = 140  # bytes of one element quoted in a detail sentence

_TRANSFER_ENCODING = b"transfer-encoding"
_CONTENT_LENGTH = b"content-length"
# The transfer codings registered by RFC 7230 §4 (plus "identity", which the guardian
# still accepts although RFC 7230 removed it).
_KNOWN_CODINGS = frozenset({b"chunked", b"compress", b"deflate", b"gzip", b"identity"})
_U64_MAX = 2**64 - 1


def _is_value_char(byte: int) -> bool:
    """field-vchar, obs-text, SP or HTAB: what a header value may hold (RFC 7230 §3.2)."""
    return 0x20 <= byte < 0x7F or byte >= 0x80 or byte == _HT


def _is_uri_char(byte: int) -> bool:
    """Anything above SP except DEL: the guardian's test for a request-target byte."""
    return byte > _SP and byte != 0x7F


def _trim(raw: bytes) -> bytes:
    return raw.strip(_WHITESPACE)


def _wire(text: Text) -> bytes:
    """The bytes of an element: bytes as given; text as UTF-8.

    ``surrogateescape`` makes the round trip exact for text that was itself decoded
    from wire bytes with ``errors="surrogateescape"`` (as :class:`ParsedHead` is).
    """
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text)
    return str(text).encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# Showing bytes in a sentence
# ---------------------------------------------------------------------------

_ESCAPES = {_CR: "\\r", _LF: "\\n", _HT: "\\t", 0x5C: "\\\\"}


def _visible(raw: bytes) -> str:
    """Quote ``raw`` with every invisible byte spelled out: ``"chunked\\0x11"``."""
    pieces = []
    for byte in raw[:_MAX_SHOWN]:
        if byte in _ESCAPES:
            pieces.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            pieces.append(chr(byte))
        else:
            pieces.append(f"\\{byte:#04x}")
    more = "..." if len(raw) > _MAX_SHOWN else ""
    return '"' + "".join(pieces) + more + '"'


def _masked(raw: bytes) -> str:
    """Quote a header value without revealing it: each run of ordinary characters
    becomes one ``_``; spaces and control characters stay visible.

    The guardian logs values this way so that cookies and tokens never reach a log,
    while the characters that matter for smuggling still show: ``"_\\r\\n _"``.
    """
    pieces: list[str] = []
    for byte in raw[:_MAX_SHOWN]:
        if byte in _ESCAPES:
            piece = _ESCAPES[byte]
        elif byte == _SP:
            piece = " "
        elif byte < 0x20 or byte == 0x7F:
            piece = f"\\{byte:#04x}"
        elif not pieces or pieces[-1] != "_":
            piece = "_"
        else:
            continue
        pieces.append(piece)
    return '"' + "".join(pieces) + '"'


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
        value = _visible(self.value) if self.essential else _masked(self.value)
        return f"{_visible(self.name)}: {value}"

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
        _character_tier(header.name, _TCHAR.__contains__),
        _character_tier(header.value, _is_value_char),
    )


# ---------------------------------------------------------------------------
# Look-alike header names (the TE.TE disguise)
# ---------------------------------------------------------------------------


class _Likeness(Enum):
    IDENTICAL = "identical"  # the same name, ignoring ASCII case
    SAME_LETTERS = "same letters"  # same letters, but other bytes around or between them
    DISTANT = "distant"  # another header


# Two UTF-8 letters that some runtimes upper-case into ASCII letters of
# "Transfer-Encoding": U+017F LATIN SMALL LETTER LONG S ("ſ".upper() == "S") and
# U+0131 LATIN SMALL LETTER DOTLESS I ("ı".upper() == "I").
_LOOKALIKE_LETTERS = frozenset({(ord("s"), 0xC5, 0xBF), (ord("i"), 0xC4, 0xB1)})


def _lower(byte: int) -> int:
    return byte | 0x20 if 0x41 <= byte <= 0x5A else byte


def _skip_to_alnum(name: bytes, index: int) -> int:
    while index < len(name) and name[index] not in _ALNUM:
        index += 1
    return index


def _skip_blanks(name: bytes, index: int) -> int:
    """Skip control bytes and spaces (everything up to and including SP)."""
    while index < len(name) and name[index] <= _SP:
        index += 1
    return index


def _same_letter(letter: int, name: bytes, index: int) -> tuple[bool, int]:
    """Does ``name`` spell ``letter`` at ``index``? Returns (yes, index after it)."""
    if letter == _lower(name[index]):
        return True, index + 1
    if index + 1 < len(name) and (letter, name[index], name[index + 1]) in _LOOKALIKE_LETTERS:
        return True, index + 2
    return False, index + 1


def _likeness(important: bytes, name: bytes) -> _Likeness:
    """How close a header name is to ``important`` (lower-case letters and ``-``).

    Walks both names letter by letter. Bytes that are not letters or digits around the
    name, and anything in place of the ``-``, are skipped; if every letter of
    ``important`` is found in order and nothing alphanumeric is left over, the name is
    one that *some* server will normalise into the important header. Examples::

        Transfer-Encoding     IDENTICAL
        transfer_encoding     SAME_LETTERS   (delimiter differs)
        " Transfer-Encoding"  SAME_LETTERS   (leading space)
        Tranſfer-Encoding     SAME_LETTERS   (U+017F, upper-cases to "S")
        Transfer-Encodings    DISTANT        (an extra letter)
    """
    length = len(name)
    if length < len(important):
        return _Likeness.DISTANT
    index = _skip_to_alnum(name, 0)
    identical = index == 0 and len(important) == length
    for letter in important:
        if index == length:
            return _Likeness.DISTANT
        is_delimiter = letter == ord("-")
        same, after = _same_letter(letter, name, index)
        if not same:
            if not is_delimiter:
                break
            identical = False
        index = _skip_to_alnum(name, after) if is_delimiter else _skip_blanks(name, after)
    exhausted = index == length
    if exhausted and identical:
        return _Likeness.IDENTICAL
    if exhausted or _skip_to_alnum(name, index) == length:
        return _Likeness.SAME_LETTERS
    return _Likeness.DISTANT


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
    if not _trim(version):
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
    te_likeness = _likeness(_TRANSFER_ENCODING, header.name)
    cl_likeness = (
        _likeness(_CONTENT_LENGTH, header.name)
        if te_likeness is _Likeness.DISTANT
        else _Likeness.DISTANT
    )
    header.essential = _Likeness.IDENTICAL in (te_likeness, cl_likeness)
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

    trimmed = _trim(header.name)
    if not trimmed or trimmed[0] == _COLON:
        header.tier = HeaderTier.Bad
        findings.report(
            "EmptyHeader",
            f"header {header.shown()} has an empty name; servers disagree on "
            "whether such a line is a header, a continuation or garbage.",
        )
    elif not header.essential and header.tier is not HeaderTier.Bad:
        if te_likeness is _Likeness.SAME_LETTERS:
            transfer_encodings.append(index)
            target = "Transfer-Encoding"
        elif cl_likeness is _Likeness.SAME_LETTERS:
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
    elif te_likeness is _Likeness.IDENTICAL:
        transfer_encodings.append(index)
    elif cl_likeness is _Likeness.IDENTICAL:
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
            f"Transfer-Encoding is not defined for {_visible(version)} "
            "(chunked coding arrived with HTTP/1.1), so an older server frames the body "
            "by other means.",
        )
        mark(transfer_encodings, HeaderTier.NonCompliant)
        mark(content_lengths, HeaderTier.Bad)
        return
    if version < b"HTTP/1.0" and content_lengths:
        findings.report(
            "UndefinedContentLengthSemantics",
            f"Content-Length is not defined for {_visible(version)}: an HTTP/0.9 "
            "request has no headers and no body.",
        )
        mark(content_lengths, HeaderTier.NonCompliant)
        return

    has_transfer_encoding = _check_transfer_encodings(headers, transfer_encodings, findings)
    content_length = _check_content_lengths(headers, content_lengths, findings)

    if method in (b"GET", b"HEAD"):
        # RFC 7231 §4.3.1: "A payload within a GET request message has no defined
        # semantics", so a server may ignore a body that another one reads.
        shown_method = _visible(method)
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


def _known_coding(item: bytes) -> bytes | None:
    """The coding in one list item (``" gzip ; q=1 "`` -> ``b"gzip"``), if it is known."""
    coding = _trim(_trim(item).split(b";", 1)[0]).lower()
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
    for byte in _trim(value):
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
    if any(byte not in _TCHAR for byte in method):
        findings.report(
            "BadMethod",
            f"method {_visible(method)} has a character that is not allowed in "
            "a token, so the request line cannot be read reliably.",
        )


def _check_version(version: bytes, findings: _Findings) -> None:
    """``HTTP/1.0`` and ``HTTP/1.1`` are right; ``HTTP/0.9``, ``HTTP/1.2``-``1.9`` and
    versions with spaces around them are tolerated; anything else is malformed."""
    trimmed = _trim(version)
    if trimmed == b"HTTP/0.9":
        findings.report(
            "NonCompliantVersion",
            f"version {_visible(version)} (HTTP/0.9 has no RFC) is tolerated.",
        )
        return
    well_formed = len(trimmed) == 8 and trimmed.startswith(b"HTTP/1.") and trimmed[7] in _DIGITS
    if not well_formed:
        findings.report(
            "BadVersion",
            f"version {_visible(version)} is not HTTP/1.x, so the request line itself is in doubt.",
        )
    elif len(trimmed) != len(version) or trimmed[7] > ord("1"):
        findings.report(
            "NonCompliantVersion",
            f"version {_visible(version)} is not exactly HTTP/1.0 or HTTP/1.1, "
            "but it is tolerated.",
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
        kinds.add("SpaceInUri" if byte == _SP else "AmbiguousUri")
    shown = _masked(uri)
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
    Bad headers must not reach a back end (see :func:`normalise`).

    Examples:
        >>> header_tiers("POST", "/", "HTTP/1.1",
        ...              [("Transfer-Encoding", "chunked"), ("Content-Length", "5")])
        ('Compliant', 'Bad')
    """
    prepared = _prepare(headers)
    _classify_parts(_wire(method), _wire(uri), _wire(version), prepared)
    return tuple(header.tier.name for header in prepared)


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
                f"version {_visible(version)}: the guardian analyses HTTP/1.x only.",
            ),
            headers,
        )
    findings = findings if findings is not None else _Findings()
    _analyse(method, uri, version, headers, findings)
    return findings.verdict(), headers


# ---------------------------------------------------------------------------
# The tolerant head reader
# ---------------------------------------------------------------------------


class _Window:
    """A view ``buf[pos:end]`` that can be cut from the front or the back.

    ``pos > end`` marks a *partial* window: the delimiter it was cut at was missing.
    """

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def done(self) -> bool:
        return self.pos >= self.end

    def partial(self) -> bool:
        return self.pos > self.end

    def data(self) -> bytes:
        return self.buf[self.pos : self.end] if self.pos < self.end else b""

    def starts_with_whitespace(self) -> bool:
        return self.pos < self.end and self.buf[self.pos] in _WHITESPACE

    def drop_final_cr(self) -> bool:
        """Remove a CR before the (already removed) LF; False if there was none."""
        if self.end > self.pos and self.buf[self.end - 1] == _CR:
            self.end -= 1
            return True
        return False

    def cut_front(self, delimiter: int) -> _Window:
        """Cut the token up to ``delimiter`` off the front (the delimiter is dropped)."""
        found = self.buf.find(bytes([delimiter]), self.pos, self.end) if self.pos < self.end else -1
        stop = found if found >= 0 else max(self.pos, self.end)
        token = _Window(self.buf, self.pos, stop)
        self.pos = stop + 1
        return token

    def cut_back(self, delimiter: int) -> _Window:
        """Cut the last token off the back, as a request line's version is found.

        Bytes that are not token characters at the very end (trailing spaces, say) are
        kept in the token rather than taken for the delimiter: ``"HTTP/1.1 \\t "`` is one
        version token, which the version rule then judges.
        """
        current = self.end - 1 if self.end > self.pos else self.pos
        skipping_non_tokens = True
        while self.pos < current and (self.buf[current] != delimiter or skipping_non_tokens):
            skipping_non_tokens = skipping_non_tokens and self.buf[current] not in _TCHAR
            current -= 1
        if self.pos <= current < self.end:
            begin = current + 1 if self.buf[current] == delimiter else current
            token = _Window(self.buf, begin, self.end)
            self.end = begin - 1
            return token
        return _Window(self.buf, 1, 0)  # nothing there at all


@dataclass(frozen=True, slots=True)
class ParsedHead:
    """A request head as the tolerant reader saw it.

    Attributes:
        method, uri, version: the request line's three parts (``version`` is ``""``
            when the line had none: an HTTP/0.9 request, or a mangled line).
        headers: ``(name, value)`` pairs in wire order. Names are exactly as sent;
            values lose the spaces and tabs around them (RFC 7230 "OWS"). A folded
            continuation line (obs-fold) is its own pair, under the name of the
            header it continues, as the guardian sees it.
        head_length: bytes of ``raw`` that the head took, through its empty line (or
            all of ``raw`` if there was none); a body, if any, starts here.
        complete: whether the head ended with an empty line.

    Text is decoded as UTF-8 with ``errors="surrogateescape"``: every byte survives,
    and passing these strings back to :func:`classify_request` gives the same bytes.
    """

    method: str
    uri: str
    version: str
    headers: tuple[tuple[str, str], ...]
    head_length: int
    complete: bool

    @property
    def summary(self) -> str:
        """One line: ``'POST /search HTTP/1.1', 3 headers, 93-byte head``."""
        line = " ".join(part for part in (self.method, self.uri, self.version) if part)
        ending = "" if self.complete else ", no final empty line"
        return f"{line!r}, {len(self.headers)} headers, {self.head_length}-byte head{ending}"


def _read_head(
    raw: bytes, findings: _Findings
) -> tuple[bytes, bytes, bytes, list[_Header], int, bool]:
    """Split a raw head the way the guardian's reader does, reporting what is odd."""
    buffer = _Window(raw, 0, len(raw))
    method, uri, version = _read_request_line(buffer, findings)

    headers: list[_Header] = []
    folded_name: bytes | None = None  # the header a continuation line would continue
    in_content_type = False  # Content-Type may legitimately be folded (message/http)
    complete = False
    while True:
        line = buffer.cut_front(_LF)
        if not line.drop_final_cr():
            findings.report(
                "NonCrLfLineTermination",
                "a header line ends with a bare LF instead of CRLF; tolerated "
                "(as nginx does), though RFC 7230 §3.5 only allows it as a robustness rule.",
            )
        if line.done():
            complete = not buffer.partial()
            break
        folded = line.starts_with_whitespace()
        first = line.cut_front(_COLON).data()
        has_colon = not line.partial()
        if not folded and has_colon:
            in_content_type = first.lower() == b"content-type"
            folded_name = first
        if folded and folded_name is not None and (in_content_type or not has_colon):
            # A continuation of the previous header: its name, this line as the value.
            name, value = folded_name, first
        else:
            # A header; or a folded line that mimics one (" Content-Length: 10").
            name, value = first, line.data()
        headers.append(_Header(name, value))

        if not folded and not has_colon:
            findings.report(
                "MissingHeaderColon",
                f"header line {_visible(name)} has no colon; one "
                "server may drop it, another glue it to the previous header.",
            )
        if folded and not in_content_type:
            findings.report(
                "MultilineHeader",
                f"header {_visible(name)} is folded over several lines "
                "(obs-fold, deprecated by RFC 7230 §3.2.4); servers that unfold and servers "
                "that do not see different headers.",
            )
        if buffer.partial():
            findings.report(
                "PartialHeaderLine",
                "the last header line is not terminated; the head is cut short.",
            )
            break
        if buffer.done():
            findings.report(
                "MissingLastEmptyLine",
                "the head does not end with an empty line, so where it ends "
                "(and a body starts) is a guess.",
            )
            break
    head_length = min(buffer.pos, len(raw))
    return method, uri, version, headers, head_length, complete


def _read_request_line(buffer: _Window, findings: _Findings) -> tuple[bytes, bytes, bytes]:
    """request-line = method SP request-target SP HTTP-version CRLF (RFC 7230 §3.1.1).

    The method is cut at the first space, the version at the last one; whatever lies
    between is the request-target, spaces and all.
    """
    line = buffer.cut_front(_LF)
    if not line.drop_final_cr():
        findings.report(
            "NonCrLfLineTermination",
            "the request line ends with a bare LF instead of CRLF; tolerated.",
        )
    method = line.cut_front(_SP)
    version = line.cut_back(_SP)
    uri = line
    if (uri.partial() and version.data().startswith(b"HTTP/1.")) or (version.done() and uri.done()):
        shown = " ".join(_visible(part.data()) for part in (method, uri, version))
        findings.report(
            "MissingUri",
            f"the request line has no URI (request-target): {shown}.",
        )
    elif uri.partial():
        # Only two words: "GET /path" is an HTTP/0.9 request with no version.
        uri, version = version, _Window(b"", 0, 0)
    return method.data(), uri.data(), version.data()


def parse_request_head(raw: bytes) -> ParsedHead:
    """Read a raw HTTP/1.x request head tolerantly; never raises on any bytes.

    Unlike a strict parser (h11), this reader keeps going through bare-LF line ends,
    folded lines, lines without a colon, a missing version or a missing final empty
    line, so that a malformed request can still be shown and classified.

    Examples:
        >>> head = parse_request_head(b"GET /a HTTP/1.1\\nHost: shop.example\\n\\nBODY")
        >>> head.method, head.uri, head.version, head.headers, head.head_length
        ('GET', '/a', 'HTTP/1.1', (('Host', 'shop.example'),), 36)
    """
    return classify_head(raw)[0]


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
    raw = bytes(raw)
    findings = _Findings()
    method, uri, version, headers, head_length, complete = _read_head(raw, findings)
    verdict, _ = _classify_parts(method, uri, version, headers, findings)
    head = ParsedHead(
        method=_text(method),
        uri=_text(uri),
        version=_text(version),
        headers=tuple((_text(h.name), _text(_trim(h.value))) for h in headers),
        head_length=head_length,
        complete=complete,
    )
    return head, verdict


# ---------------------------------------------------------------------------
# Mitigation: what the ALB does with a verdict
# ---------------------------------------------------------------------------


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

# lb-reference.md §1.8 (ALB User Guide, "Desync mitigation mode"):
#
#   | Class      | monitor | defensive (default)                      | strictest |
#   |------------|---------|------------------------------------------|-----------|
#   | Compliant  | allow   | allow                                    | allow     |
#   | Acceptable | allow   | allow                                    | block     |
#   | Ambiguous  | allow   | allow, then close client and target conn | block     |
#   | Severe     | allow   | 400 + close                              | block     |
_POLICY: MappingProxyType[tuple[MitigationMode, Tier], MitigationAction] = MappingProxyType(
    {
        (MitigationMode.MONITOR, Tier.Compliant): _FORWARD,
        (MitigationMode.MONITOR, Tier.Acceptable): _FORWARD,
        (MitigationMode.MONITOR, Tier.Ambiguous): _FORWARD,
        (MitigationMode.MONITOR, Tier.Severe): _FORWARD,
        (MitigationMode.DEFENSIVE, Tier.Compliant): _FORWARD,
        (MitigationMode.DEFENSIVE, Tier.Acceptable): _FORWARD,
        (MitigationMode.DEFENSIVE, Tier.Ambiguous): _THEN_CLOSE,
        (MitigationMode.DEFENSIVE, Tier.Severe): _BLOCK_400,
        (MitigationMode.STRICTEST, Tier.Compliant): _FORWARD,
        (MitigationMode.STRICTEST, Tier.Acceptable): _BLOCK,
        (MitigationMode.STRICTEST, Tier.Ambiguous): _BLOCK,
        (MitigationMode.STRICTEST, Tier.Severe): _BLOCK,
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
        >>> v = classify_request("POST", "/", "HTTP/1.1",
        ...                      [("Content-Length", "4"), ("Transfer-Encoding", "chunked")])
        >>> mitigate(v, "defensive").action
        'forward_then_close'
        >>> mitigate(v, "strictest").action
        'block'
    """
    chosen = _mode(mode)
    tier = _tier(verdict)
    action = _POLICY[(chosen, tier)]
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
       guardian marks some headers *Bad* (:func:`header_tiers`) and its interface says
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
    prepared = _prepare(headers)
    verdict, _ = _classify_parts(_wire(method), _wire(uri), _wire(version), prepared)
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
    for pair, header in zip(headers, prepared, strict=True):
        if chosen is not MitigationMode.MONITOR and header.tier is HeaderTier.Bad:
            removed.append(pair)
            reasons.add(
                "headers the guardian marks Bad are removed before the request reaches a target"
            )
        elif drop_invalid_header_fields and not _VALID_HEADER_NAME.fullmatch(header.name):
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

"""Tests for osilab.protocols.desync: the ALB's HTTP desync classifier.

The oracle is AWS http-desync-guardian's own classification cases (four YAML files in
``shared/desync-cases``, read in place, never copied). Each case gives a parsed request
and the expected tier, reason, per-header tiers and words the message must contain.

Strings are unescaped the way the guardian's own runner does (``unescape_value`` in
``src/request_analyzer.rs``): after YAML has read a scalar, ``\\xNN``, ``\\b``, ``\\f``,
``\\n``, ``\\r``, ``\\t`` are escapes and ``\\`` before any other character stands for
that character. For single-quoted scalars this is what the desync-cases README says; for
double-quoted ones YAML has already unescaped once, so ``"chunked\\\\\\\\0x11"`` becomes
``chunked\\0x11``, the form the guardian's message (and ours) prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_paths import DESYNC_CASES, SHARED

from osilab.protocols.desync import (
    REASON_TIERS,
    ParsedHead,
    Tier,
    classify_head,
    classify_request,
    header_tiers,
    parse_request_head,
)
from osilab.protocols.messages import DesyncVerdict

CASE_FILES = ("rfc-compliant.yaml", "acceptable.yaml", "ambiguous.yaml", "severe.yaml")
TIER_NAMES = tuple(t.name for t in Tier)

# Cases this port does not match, each with the reason. Every entry is run as a strict
# xfail, so a case that starts to pass (or a stale entry) fails the suite. Empty: all
# 87 cases agree on tier, reason and message words.
KNOWN_DISAGREEMENTS: dict[str, str] = {}

# The guardian's runner also classifies a raw head built from each case, and allows the
# raw verdict a different tier when the raw reason is one of these (building a raw head
# from parsed parts can itself fold lines or spread spaces): it then only requires that
# the raw head is not called Compliant.
RAW_MAY_DIFFER = frozenset(
    {
        "MultilineHeader",
        "MissingHeaderColon",
        "SpaceInUri",
        "AmbiguousUri",
        "NonCrLfLineTermination",
    }
)


# ---------------------------------------------------------------------------
# Loading the guardian's cases
# ---------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def unescape(text: str) -> str:
    """The guardian runner's second unescaping pass over a YAML string."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 == len(text):
            out.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "x":
            out.append(chr(int(text[index + 2 : index + 4], 16)))
            index += 4
        else:
            out.append(_SIMPLE_ESCAPES.get(following, following))
            index += 2
    return "".join(out)


def _field(value: object) -> str:
    """A YAML scalar as the runner reads it: numbers as their decimal text."""
    if value is None:
        raise ValueError("a required field is missing")
    return unescape(value if isinstance(value, str) else str(value))


@dataclass(frozen=True)
class Case:
    file: str
    number: int
    name: str
    method: str
    uri: str
    version: str
    headers: tuple[tuple[str, str], ...]
    header_tiers: tuple[str, ...]
    tier: str
    reason: str
    required: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.file.removesuffix('.yaml')}#{self.number}:{self.name}"

    def raw_head(self) -> bytes:
        """The raw head the guardian's runner builds from the parsed parts."""
        lines = [f"{self.method} {self.uri} {self.version}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in self.headers]
        return ("".join(lines) + "\r\n").encode("utf-8")


def load_cases() -> list[Case]:
    cases: list[Case] = []
    if not DESYNC_CASES.is_dir():
        return cases
    for file_name in CASE_FILES:
        documents = yaml.safe_load((DESYNC_CASES / file_name).read_text(encoding="utf-8"))
        for number, entry in enumerate(documents, start=1):
            headers = entry.get("headers") or []
            expected = entry["expected"]
            cases.append(
                Case(
                    file=file_name,
                    number=number,
                    name=entry["name"],
                    method=_field(entry["method"]),
                    uri=_field(entry["uri"]),
                    version=_field(entry["version"]),
                    headers=tuple((_field(h["name"]), _field(h["value"])) for h in headers),
                    header_tiers=tuple(_field(h["tier"]) for h in headers),
                    tier=_field(expected["tier"]),
                    reason=_field(expected["reason"]),
                    required=tuple(_field(i) for i in expected.get("required_message_items") or ()),
                )
            )
    return cases


CASES = load_cases()


def _params() -> list[Any]:
    params: list[Any] = []
    for case in CASES:
        marks = []
        if case.id in KNOWN_DISAGREEMENTS:
            marks.append(pytest.mark.xfail(reason=KNOWN_DISAGREEMENTS[case.id], strict=True))
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def _classify(case: Case) -> DesyncVerdict:
    return classify_request(case.method, case.uri, case.version, case.headers)


def _reason(verdict: DesyncVerdict) -> str:
    """The guardian says ``Compliant`` where osilab's verdict has no reason (``None``)."""
    return verdict.reason if verdict.reason is not None else "Compliant"


def _missing_words(case: Case, verdict: DesyncVerdict) -> list[str]:
    """Required message words absent from the detail (case-insensitive, as upstream)."""
    detail = verdict.detail.lower()
    return [word for word in case.required if word.lower() not in detail]


# ---------------------------------------------------------------------------
# The guardian's cases
# ---------------------------------------------------------------------------


def test_the_guardian_cases_are_there() -> None:
    if not DESYNC_CASES.is_dir():
        pytest.skip(f"the guardian's cases are not at {DESYNC_CASES} (set OSILAB_SHARED)")
    assert {case.file for case in CASES} == set(CASE_FILES)
    assert len(CASES) >= 80, "the four upstream files hold 87 cases at commit 7dd6f37"
    assert {case.tier for case in CASES} == set(TIER_NAMES)
    assert set(KNOWN_DISAGREEMENTS) <= {case.id for case in CASES}, "a stale xfail entry"


@pytest.mark.parametrize("case", _params())
def test_case_tier_reason_and_message(case: Case) -> None:
    verdict = _classify(case)
    assert (verdict.klass, _reason(verdict)) == (case.tier, case.reason), verdict.detail
    assert not _missing_words(case, verdict), verdict.detail


@pytest.mark.parametrize("case", _params())
def test_case_header_tiers(case: Case) -> None:
    """The guardian's runner also checks each header's own tier after analysis."""
    tiers = header_tiers(case.method, case.uri, case.version, case.headers)
    assert tiers == case.header_tiers


@pytest.mark.parametrize("case", _params())
def test_case_as_a_raw_head(case: Case) -> None:
    """The tolerant reader agrees with the parsed path, as the guardian's runner checks."""
    head, verdict = classify_head(case.raw_head())
    assert head.complete
    if verdict.reason in RAW_MAY_DIFFER:
        assert verdict.klass != "Compliant"
    else:
        assert verdict.klass == case.tier, verdict.detail


def test_agreement_figure(capsys: pytest.CaptureFixture[str]) -> None:
    """The headline number: cases matched / total, tier and reason counted separately."""
    if not CASES:
        pytest.skip(f"the guardian's cases are not at {DESYNC_CASES}")
    tier_ok = reason_ok = words_ok = 0
    for case in CASES:
        verdict = _classify(case)
        tier_ok += verdict.klass == case.tier
        reason_ok += _reason(verdict) == case.reason
        words_ok += not _missing_words(case, verdict)
    total = len(CASES)
    print(  # reported in the measurements summary (tests/conftest.py)
        f"\nmeasured: desync agreement with http-desync-guardian's cases: tier {tier_ok}/{total}, "
        f"reason {reason_ok}/{total}, message words {words_ok}/{total}"
    )
    expected = total - len(KNOWN_DISAGREEMENTS)
    assert (tier_ok, reason_ok, words_ok) == (expected, expected, expected)


def test_reason_tiers_match_the_reference() -> None:
    """REASON_TIERS agrees with the reasons lb-reference.md §1.8 lists per class."""
    reference = SHARED / "docs" / "lb-reference.md"
    if not reference.is_file():
        pytest.skip(f"lb-reference.md is not at {reference}")
    listed: dict[str, str] = {}
    for line in reference.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*- \*(Acceptable|Ambiguous|Severe)\*: (.*)", line)
        if match:
            for name in re.findall(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+\b", match.group(2)):
                listed[name] = match.group(1)
    assert len(listed) >= 15
    assert {name: REASON_TIERS[name].name for name in listed} == listed


# ---------------------------------------------------------------------------
# Hand-written raw heads: the smuggling shapes and the reader's findings
# ---------------------------------------------------------------------------

RAW_HEADS = [
    # (id, raw head, class, reason, a word the detail must contain)
    (
        "CL.TE: both framing headers",
        b"POST /search HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 13\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
        "Ambiguous",
        "BothTeClPresent",
        "Content-Length",
    ),
    (
        "TE.CL: a space before the colon disguises TE",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n",
        "Ambiguous",
        "SuspiciousHeader",
        "Transfer-Encoding ",
    ),
    (
        "TE.TE: a second, unknown coding",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
        "Severe",
        "BadTransferEncoding",
        '" x"',
    ),
    (
        "obs-fold continues a header",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Note: one\r\n two\r\n\r\n",
        "Ambiguous",
        "MultilineHeader",
        "X-Note",
    ),
    (
        "obs-fold hides a Transfer-Encoding",
        b"POST / HTTP/1.1\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        "Ambiguous",
        "MultilineHeader",
        "Transfer-Encoding",
    ),
    (
        "a folded Content-Type is allowed",
        b"POST / HTTP/1.1\r\nContent-Type: multipart/mixed;\r\n boundary=x\r\n\r\n",
        "Compliant",
        None,
        "",
    ),
    (
        "bare LF line ends",
        b"GET / HTTP/1.1\nHost: a\n\n",
        "Acceptable",
        "NonCrLfLineTermination",
        "LF",
    ),
    (
        "NUL in a header value",
        b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        "Severe",
        "BadHeader",
        "\\0x00",
    ),
    (
        "no final empty line",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        "Ambiguous",
        "MissingLastEmptyLine",
        "empty line",
    ),
    (
        "a header line without colon",
        b"GET / HTTP/1.1\r\nHost a\r\n\r\n",
        "Ambiguous",
        "MissingHeaderColon",
        "Host a",
    ),
    ("no request-target", b"GET HTTP/1.1\r\n\r\n", "Ambiguous", "MissingUri", "GET"),
    ("nothing at all", b"", "Ambiguous", "MissingUri", "no URI"),
    (
        "an unterminated last line",
        b"GET / HTTP/1.1\r\nHost: a",
        "Ambiguous",
        "PartialHeaderLine",
        "terminated",
    ),
    (
        "HTTP/0.9 simple request",
        b"GET /index.html\r\n\r\n",
        "Acceptable",
        "NonCompliantVersion",
        "",
    ),
    ("CR inside the target", b"GET /a\rb HTTP/1.1\r\n\r\n", "Severe", "BadUri", "\\r"),
    ("a space inside the target", b"GET /a b HTTP/1.1\r\n\r\n", "Acceptable", "SpaceInUri", ""),
    (
        "a body on GET",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "Ambiguous",
        "UndefinedContentLengthSemantics",
        "Content-Length: 5",
    ),
    (
        "HTTP/2 is out of the guardian's scope",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "Compliant",
        None,
        "HTTP/1.x only",
    ),
    (
        "a garbage version is not skipped as HTTP/2",
        b"GET / XYZ\r\n\r\n",
        "Severe",
        "BadVersion",
        "XYZ",
    ),
]


@pytest.mark.parametrize(
    ("raw", "klass", "reason", "word"), [pytest.param(*row[1:], id=row[0]) for row in RAW_HEADS]
)
def test_raw_heads(raw: bytes, klass: str, reason: str | None, word: str) -> None:
    head, verdict = classify_head(raw)
    assert (verdict.klass, verdict.reason) == (klass, reason), verdict.detail
    assert word in verdict.detail
    assert 0 <= head.head_length <= len(raw)


def test_reader_splits_a_smuggling_head() -> None:
    raw = (
        b"POST /search HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 13\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED"
    )
    head = parse_request_head(raw)
    assert (head.method, head.uri, head.version) == ("POST", "/search", "HTTP/1.1")
    assert head.headers == (
        ("Host", "shop.example"),
        ("Content-Length", "13"),
        ("Transfer-Encoding", "chunked"),
    )
    assert head.complete
    assert raw[head.head_length :] == b"0\r\n\r\nSMUGGLED"
    assert head.summary == "'POST /search HTTP/1.1', 3 headers, 93-byte head"


def test_reader_keeps_folded_lines_under_their_header() -> None:
    head = parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-Note: one\r\n two\r\n\r\n")
    assert head.headers == (("Host", "a"), ("X-Note", "one"), ("X-Note", "two"))


def test_reader_without_version_and_without_empty_line() -> None:
    head = parse_request_head(b"GET /index.html\r\n")
    assert (head.method, head.uri, head.version) == ("GET", "/index.html", "")
    assert head.headers == ()
    assert head.head_length == len(b"GET /index.html\r\n")
    assert not head.complete


def test_reader_keeps_every_byte_of_non_utf8_text() -> None:
    raw = b"GET /caf\xe9 HTTP/1.1\r\nX-\xff: \xfe\r\n\r\n"
    head, verdict = classify_head(raw)
    assert head.uri.encode("utf-8", "surrogateescape") == b"/caf\xe9"
    assert head.headers[0][0].encode("utf-8", "surrogateescape") == b"X-\xff"
    # Passing the parsed strings back gives the same bytes, so the same verdict.
    again = classify_request(head.method, head.uri, head.version, head.headers)
    assert (
        (again.klass, again.reason)
        == (verdict.klass, verdict.reason)
        == (
            "Acceptable",
            "NonCompliantHeader",
        )
    )


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


def _check_verdict(verdict: DesyncVerdict) -> None:
    assert verdict.klass in TIER_NAMES
    if verdict.reason is None:
        assert verdict.klass == "Compliant"
    else:
        assert REASON_TIERS[verdict.reason].name == verdict.klass
        assert verdict.detail


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_classify_head_never_raises_on_any_bytes(raw: bytes) -> None:
    head, verdict = classify_head(raw)
    assert isinstance(head, ParsedHead)
    _check_verdict(verdict)
    assert 0 <= head.head_length <= len(raw)
    assert raw.startswith(head.method.encode("utf-8", "surrogateescape"))


_FRAGMENTS = st.sampled_from(
    [
        b"GET",
        b"POST",
        b"HEAD",
        b" ",
        b"\t",
        b"/",
        b"/a?b=c",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/0.9",
        b"HTTP/2",
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b": ",
        b"Host",
        b"Transfer-Encoding",
        b"Transfer_Encoding",
        b"Content-Length",
        b"content-length",
        b"Content-Type",
        b"chunked",
        b"gzip, chunked",
        b"0",
        b"42",
        b"18446744073709551616",
        b",",
        b"\x00",
        b"\x01",
        b"\xc5\xbf",
        b"\xff",
    ]
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map(b"".join))
def test_classify_head_never_raises_on_header_like_bytes(raw: bytes) -> None:
    head, verdict = classify_head(raw)
    _check_verdict(verdict)
    assert 0 <= head.head_length <= len(raw)


_TOKEN_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\r\n\t\x00 :-_"),
    max_size=24,
)


@settings(max_examples=300, deadline=None)
@given(
    _TOKEN_TEXT,
    _TOKEN_TEXT,
    _TOKEN_TEXT,
    st.lists(st.tuples(_TOKEN_TEXT, _TOKEN_TEXT), max_size=6),
)
def test_classify_request_never_raises(
    method: str, uri: str, version: str, headers: list[tuple[str, str]]
) -> None:
    verdict = classify_request(method, uri, version, headers)
    _check_verdict(verdict)
    assert len(header_tiers(method, uri, version, headers)) == len(headers)


_SAFE_NAME = st.sampled_from(["Host", "Accept", "Content-Length", "Transfer-Encoding", "X-A"])
_SAFE_VALUE = st.sampled_from(["a", "chunked", "gzip", "0", "12", "12, 12", "x y", "\x01"])


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "HEAD", "PUT"]),
    st.sampled_from(["/", "/a?b=c", "/caf\u00e9"]),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/1.2"]),
    st.lists(st.tuples(_SAFE_NAME, _SAFE_VALUE), max_size=5),
)
def test_a_clean_raw_head_classifies_like_its_parts(
    method: str, uri: str, version: str, headers: list[tuple[str, str]]
) -> None:
    """With CRLF line ends, no folding and one colon per line, the reader adds nothing."""
    raw = f"{method} {uri} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    head, from_raw = classify_head(raw.encode("utf-8"))
    assert (head.method, head.uri, head.version) == (method, uri, version)
    assert head.headers == tuple(headers)
    from_parts = classify_request(method, uri, version, headers)
    assert (from_raw.klass, from_raw.reason) == (from_parts.klass, from_parts.reason)


def test_case_files_are_read_not_copied() -> None:
    """The guardian's YAML stays in shared/; the repository holds no copy of it."""
    repo = Path(__file__).resolve().parents[2]
    copies = [p for name in CASE_FILES for p in repo.rglob(name) if ".venv" not in p.parts]
    assert copies == []


def test_docstring_examples_run() -> None:
    """The examples in the module's docstrings are lessons; they must stay true."""
    import doctest

    import osilab.protocols._http_tolerant as reader
    import osilab.protocols.desync as desync

    result = doctest.testmod(desync)
    assert result.attempted >= 10
    assert result.failed == 0
    result = doctest.testmod(reader)
    assert result.attempted >= 3
    assert result.failed == 0

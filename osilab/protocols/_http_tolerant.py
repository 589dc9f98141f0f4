"""The tolerant HTTP/1.x request-head reader: the one place osilab reads what h11 refuses.

HTTP/1 heads are read in exactly three roles in osilab, each written once:

* **h11** reads every message it accepts (:mod:`osilab.protocols.http`);
* the **plain fast reader** (:mod:`osilab.protocols._http_fast`) reads the plain heads
  that make up nearly all traffic, and refuses everything else to h11;
* **this reader** reads any bytes at all. An AWS ALB still classifies a request that a
  strict parser refuses (design: such requests are reported, with their verdict), so
  the desync classifier (:mod:`osilab.protocols.desync`) needs a reader that keeps
  going through bare-LF line ends, folded (obs-fold) lines, lines without a colon, a
  missing version or a missing final empty line, and says what it met on the way.

It is a port of the guardian's ``src/raw_request_parser.rs``: a request line cut at its
first and last space (unless the target holds a second HTTP-version word: then the version
starts there, see :func:`_read_request_line`), then header lines cut at LF (a CR before it
is dropped) and at the first colon. What it notes is a list of ``(reason, detail)`` pairs, the guardian's
reason names; it judges nothing (the tiers belong to :mod:`osilab.protocols.desync`).

Also here, as both the reader and the classifier need them: the RFC 7230 character
classes, the two ways bytes are quoted in a sentence (:func:`visible`, :func:`masked`),
and how closely a header name resembles another once a lenient server has trimmed and
normalised it (:func:`likeness`: the TE.TE disguise, ``"Transfer_Encoding"``).

What this module must not know: h11, flows, packets, tiers or balancers. Bytes in,
frozen records out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ParsedHead",
    "RawHead",
    "Finding",
    "read_head",
    "Likeness",
    "likeness",
    "visible",
    "masked",
    "trim",
    "text",
    "SP",
    "HT",
    "CR",
    "LF",
    "COLON",
    "ALNUM",
    "TCHAR",
    "WHITESPACE",
]

#: ``(reason, detail)``: one oddity the reader met, named as the guardian names it.
Finding = tuple[str, str]

# ---------------------------------------------------------------------------
# Character classes (RFC 7230 §3.2.6, §3.2; RFC 5234 appendix B.1)
# ---------------------------------------------------------------------------

SP, HT, CR, LF, COLON = 0x20, 0x09, 0x0D, 0x0A, 0x3A
ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
#: tchar: the characters of a token (method, header name).
TCHAR = ALNUM | frozenset(b"!#$%&'*+-.^_`|~")
WHITESPACE = b" \t"  # RFC 7230 OWS: SP and HTAB only.
_MAX_SHOWN = 140  # bytes of one element quoted in a detail sentence


def trim(raw: bytes) -> bytes:
    """``raw`` without the spaces and tabs around it (RFC 7230 OWS)."""
    return raw.strip(WHITESPACE)


def text(raw: bytes) -> str:
    """Bytes as text that keeps every byte (UTF-8, ``surrogateescape``)."""
    return raw.decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------
# Showing bytes in a sentence
# ---------------------------------------------------------------------------

_ESCAPES = {CR: "\\r", LF: "\\n", HT: "\\t", 0x5C: "\\\\"}


def visible(raw: bytes) -> str:
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


def masked(raw: bytes) -> str:
    """Quote a header value without revealing it: each run of ordinary characters
    becomes one ``_``; spaces and control characters stay visible.

    The guardian logs values this way so that cookies and tokens never reach a log,
    while the characters that matter for smuggling still show: ``"_\\r\\n _"``.
    """
    pieces: list[str] = []
    for byte in raw[:_MAX_SHOWN]:
        if byte in _ESCAPES:
            piece = _ESCAPES[byte]
        elif byte == SP:
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
# Look-alike header names (the TE.TE disguise)
# ---------------------------------------------------------------------------


class Likeness(Enum):
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
    while index < len(name) and name[index] not in ALNUM:
        index += 1
    return index


def _skip_blanks(name: bytes, index: int) -> int:
    """Skip control bytes and spaces (everything up to and including SP)."""
    while index < len(name) and name[index] <= SP:
        index += 1
    return index


def _same_letter(letter: int, name: bytes, index: int) -> tuple[bool, int]:
    """Does ``name`` spell ``letter`` at ``index``? Returns (yes, index after it)."""
    if letter == _lower(name[index]):
        return True, index + 1
    if index + 1 < len(name) and (letter, name[index], name[index + 1]) in _LOOKALIKE_LETTERS:
        return True, index + 2
    return False, index + 1


def likeness(important: bytes, name: bytes) -> Likeness:
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
        return Likeness.DISTANT
    index = _skip_to_alnum(name, 0)
    identical = index == 0 and len(important) == length
    for letter in important:
        if index == length:
            return Likeness.DISTANT
        is_delimiter = letter == ord("-")
        same, after = _same_letter(letter, name, index)
        if not same:
            if not is_delimiter:
                break
            identical = False
        index = _skip_to_alnum(name, after) if is_delimiter else _skip_blanks(name, after)
    exhausted = index == length
    if exhausted and identical:
        return Likeness.IDENTICAL
    if exhausted or _skip_to_alnum(name, index) == length:
        return Likeness.SAME_LETTERS
    return Likeness.DISTANT


# ---------------------------------------------------------------------------
# The reader
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
        return self.pos < self.end and self.buf[self.pos] in WHITESPACE

    def drop_final_cr(self) -> bool:
        """Remove a CR before the (already removed) LF; False if there was none."""
        if self.end > self.pos and self.buf[self.end - 1] == CR:
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
            skipping_non_tokens = skipping_non_tokens and self.buf[current] not in TCHAR
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
    and passing these strings back to
    :func:`osilab.protocols.desync.classify_request` gives the same bytes.
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


@dataclass(frozen=True, slots=True)
class RawHead:
    """A request head split into its wire parts, with what was odd about its writing.

    Attributes:
        method, uri, version: the request line's three parts, as bytes.
        headers: ``(name, value)`` byte pairs in wire order, values untrimmed.
        head_length, complete: as in :class:`ParsedHead`.
        findings: ``(reason, detail)`` for each oddity, in the order it was met
            (bare LF, obs-fold, a missing colon, request-target or empty line);
            the reasons are the guardian's names.
    """

    method: bytes
    uri: bytes
    version: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    head_length: int
    complete: bool
    findings: tuple[Finding, ...]

    def parsed(self) -> ParsedHead:
        """The same head as text, values trimmed of spaces and tabs."""
        return ParsedHead(
            method=text(self.method),
            uri=text(self.uri),
            version=text(self.version),
            headers=tuple((text(name), text(trim(value))) for name, value in self.headers),
            head_length=self.head_length,
            complete=self.complete,
        )


def _note(findings: list[Finding], reason: str, detail: str) -> None:
    findings.append((reason, detail))


def read_head(raw: bytes) -> RawHead:
    """Split a raw request head the way the guardian's reader does; never raises.

    Examples:
        >>> head = read_head(b"GET / HTTP/1.1\\nHost: a\\n\\n")
        >>> head.method, head.headers, head.complete
        (b'GET', ((b'Host', b' a'),), True)
        >>> [reason for reason, _ in head.findings]
        ['NonCrLfLineTermination', 'NonCrLfLineTermination', 'NonCrLfLineTermination']
    """
    findings: list[Finding] = []
    method, uri, version, headers, head_length, complete = _split_head(raw, findings)
    return RawHead(method, uri, version, tuple(headers), head_length, complete, tuple(findings))


def _split_head(
    raw: bytes, findings: list[Finding]
) -> tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]], int, bool]:
    """The request line, then each header line, noting what is odd as it goes."""
    buffer = _Window(raw, 0, len(raw))
    method, uri, version = _read_request_line(buffer, findings)

    headers: list[tuple[bytes, bytes]] = []
    folded_name: bytes | None = None  # the header a continuation line would continue
    in_content_type = False  # Content-Type may legitimately be folded (message/http)
    complete = False
    while True:
        line = buffer.cut_front(LF)
        if not line.drop_final_cr():
            _note(
                findings,
                "NonCrLfLineTermination",
                "a header line ends with a bare LF instead of CRLF; tolerated "
                "(as nginx does), though RFC 7230 §3.5 only allows it as a robustness rule.",
            )
        if line.done():
            complete = not buffer.partial()
            break
        folded = line.starts_with_whitespace()
        first = line.cut_front(COLON).data()
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
        headers.append((name, value))

        if not folded and not has_colon:
            _note(
                findings,
                "MissingHeaderColon",
                f"header line {visible(name)} has no colon; one "
                "server may drop it, another glue it to the previous header.",
            )
        if folded and not in_content_type:
            _note(
                findings,
                "MultilineHeader",
                f"header {visible(name)} is folded over several lines "
                "(obs-fold, deprecated by RFC 7230 §3.2.4); servers that unfold and servers "
                "that do not see different headers.",
            )
        if buffer.partial():
            _note(
                findings,
                "PartialHeaderLine",
                "the last header line is not terminated; the head is cut short.",
            )
            break
        if buffer.done():
            _note(
                findings,
                "MissingLastEmptyLine",
                "the head does not end with an empty line, so where it ends "
                "(and a body starts) is a guess.",
            )
            break
    head_length = min(buffer.pos, len(raw))
    return method, uri, version, headers, head_length, complete


def _read_request_line(buffer: _Window, findings: list[Finding]) -> tuple[bytes, bytes, bytes]:
    """request-line = method SP request-target SP HTTP-version CRLF (RFC 7230 §3.1.1).

    The method is cut at the first space, the version at the last one; whatever lies
    between is the request-target, spaces and all.
    """
    line = buffer.cut_front(LF)
    if not line.drop_final_cr():
        _note(
            findings,
            "NonCrLfLineTermination",
            "the request line ends with a bare LF instead of CRLF; tolerated.",
        )
    method = line.cut_front(SP)
    version = line.cut_back(SP)
    uri = line
    if (uri.partial() and version.data().startswith(b"HTTP/1.")) or (version.done() and uri.done()):
        shown = " ".join(visible(part.data()) for part in (method, uri, version))
        _note(
            findings,
            "MissingUri",
            f"the request line has no URI (request-target): {shown}.",
        )
    elif uri.partial():
        # Only two words: "GET /path" is an HTTP/0.9 request with no version.
        uri, version = version, _Window(b"", 0, 0)
    target = uri.data()
    second = _VERSION_WORD.search(target)
    if second is not None:
        # Two versions: "GET /a HTTP/1.1 HTTP/1.1". A server reading the line from the
        # front takes "/a" for the target and the rest for the version, which is then
        # malformed: the guardian's own case "[space] in URI resulted in a bad version"
        # (tests/uri-specific-test-cases.yaml) calls that Severe, BadVersion. Cutting at
        # the last space only (as raw_request_parser.rs does) would hide it as SpaceInUri.
        versions = target[second.start() + 1 :] + b" " + version.data()
        return method.data(), target[: second.start()], versions
    return method.data(), target, version.data()


# An HTTP-version word (RFC 9112 §2.3) inside what the last space left as the target.
_VERSION_WORD = re.compile(rb" HTTP/[0-9]\.[0-9](?= |$)")

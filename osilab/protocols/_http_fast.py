"""A strict, fast reader for the plain HTTP/1.x messages that make up nearly all traffic.

Why it exists
-------------
:class:`~osilab.protocols.http.HttpParser` lets h11 read every message, on a fresh h11
connection per message, and lets :mod:`osilab.protocols.desync` judge every request head
as an AWS ALB would. That is exact, and it costs about 100 microseconds per request:
most of an ALB replay's time, measured with cProfile on the benchmark capture (h11's
event machinery, and the desync reader on heads that all differ by a request id).

But nearly every message on a real capture is *plain*: one segment holds its whole head
(and body), every line ends in CRLF, names are tokens, values are visible ASCII, the body
is framed by at most one ``Content-Length``. For such a message there is nothing for h11
to decide that a few ``bytes`` operations cannot, and nothing for the desync guardian to
find. This module reads exactly those messages, and **refuses everything else** by
returning ``None``; the caller then uses h11 and the desync module as before. So the fast
reader never has to be clever: when in doubt, it says no.

The promise, checked by ``tests/protocols/test_http_fast.py``:

* whatever :func:`read_request` / :func:`read_response` accept, h11 reads the same way
  (method, target, version, headers as sent with values trimmed, body length, where the
  next message starts);
* a request head it calls :data:`PLAIN` is Compliant for the desync guardian
  (:func:`osilab.protocols.desync.classify_head`): no bare LF, no folded line, token
  names, no control characters, a request-target of visible ASCII, ``HTTP/1.0`` or
  ``HTTP/1.1``, and neither ``Transfer-Encoding`` nor ``Content-Length`` nor a name that
  looks like either. Heads with a ``Content-Length`` are read here but still judged by
  the guardian (a ``Content-Length`` on a GET is not Compliant).

What this module must not know: flows, packets, h11's objects, balancers. Bytes in,
plain tuples out.
"""

from __future__ import annotations

import re

__all__ = ["read_request", "read_response", "PLAIN", "MAX_HEAD"]

#: The verdict marker :func:`read_request` gives a head the desync guardian would call
#: Compliant without having to read it.
PLAIN = "plain"

#: Heads longer than this go to h11 (whose own limit is 16 KiB).
MAX_HEAD = 8 * 1024

# RFC 9112 §3 request-line with a token method (any token: RFC 9110 §9.1, so QUERY or a
# vendor's own method is read here too); the target is visible ASCII (no SP, no CTL, no
# DEL); the version is HTTP/1.0 or HTTP/1.1 exactly.
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(1\.[01])")
# RFC 9112 §4 status-line: a three-digit code and a reason of visible ASCII and spaces.
_STATUS_LINE = re.compile(r"HTTP/(1\.[01]) ([2-5][0-9][0-9]) ([\x20-\x7e]*)")
# RFC 9110 §5.1 field lines, all at once: a token name, ":", then visible ASCII and
# spaces up to CRLF (a tab or obs-text in a value is legal, but left to h11). One match
# for the whole block proves there is no bare CR or LF and no control character.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FIELD_BLOCK = re.compile(rb"(?:" + _TOKEN + rb":[\x20-\x7e]*\r\n)*" + _TOKEN + rb":[\x20-\x7e]*")
_NON_ALNUM = "".join(chr(c) for c in range(128) if not chr(c).isalnum())
_DROP_NON_ALNUM = str.maketrans("", "", _NON_ALNUM)
_FRAMING_LOOKALIKES = frozenset(("transferencoding", "contentlength"))

#: ``(method, target, version, headers, head_length, body_length, verdict)``; the
#: headers are ``(name as sent, value trimmed)`` pairs; verdict is :data:`PLAIN` or
#: ``None`` (the caller asks the desync guardian). Text is the bytes decoded as ASCII.
Request = tuple[str, str, str, tuple[tuple[str, str], ...], int, int, "str | None"]
#: ``(status, reason, version, headers, head_length, body_length)``.
Response = tuple[int, str, str, tuple[tuple[str, str], ...], int, int]


#: Header blocks already read (a server repeats its headers, a client too): bounded.
_BLOCKS: dict[bytes, tuple[tuple[tuple[str, str], ...], int | None, bool, int] | None] = {}
_BLOCKS_LIMIT = 4096


def _fields(
    data: bytes, start: int, end: int
) -> tuple[tuple[tuple[str, str], ...], int | None, bool, int] | None:
    """Header lines of ``data[start:end]``: (headers, content length, suspicious, hosts).

    ``None`` when any line is not plain, a ``Transfer-Encoding`` or ``Upgrade`` is
    present, or ``Content-Length`` is repeated or not a plain decimal number. A pure
    function of the bytes, so identical blocks are read once (:data:`_BLOCKS`).
    """
    block = data[start:end]
    try:
        return _BLOCKS[block]
    except KeyError:
        pass
    found = _read_fields(block)
    if len(_BLOCKS) >= _BLOCKS_LIMIT:
        _BLOCKS.clear()
    _BLOCKS[block] = found
    return found


def _read_fields(block: bytes) -> tuple[tuple[tuple[str, str], ...], int | None, bool, int] | None:
    headers: list[tuple[str, str]] = []
    length: int | None = None
    suspicious = False
    hosts = 0
    if not block:
        return (), length, suspicious, hosts
    if _FIELD_BLOCK.fullmatch(block) is None:
        return None
    for line in block.decode("ascii").split("\r\n"):
        name, _, value = line.partition(":")
        value = value.strip(" ")
        size = len(name)
        if size == 4 or size == 7 or size >= 13:  # host, upgrade, and the framing headers
            lowered = name.lower()
            if lowered == "host":
                hosts += 1
            elif lowered == "content-length":
                if length is not None or not value.isdigit() or len(value) > 18:
                    return None
                length = int(value)
            elif lowered == "transfer-encoding" or lowered == "upgrade":
                return None
            elif size >= 13 and lowered.translate(_DROP_NON_ALNUM) in _FRAMING_LOOKALIKES:
                suspicious = True  # "Content_Length" and friends: the guardian must see it
        headers.append((name, value))
    return tuple(headers), length, suspicious, hosts


def _start_line(data: bytes, pattern: re.Pattern[str]) -> tuple[re.Match[str], int, int] | None:
    """``(match, end of the start line, end of the head)`` when the head is whole (within
    :data:`MAX_HEAD`) and its first line matches ``pattern`` exactly, else ``None``."""
    end = data.find(b"\r\n\r\n", 0, MAX_HEAD)
    if end < 0:
        return None
    line_end = data.find(b"\r\n", 0, end + 2)
    match = pattern.fullmatch(data[:line_end].decode("latin-1"))
    return None if match is None else (match, line_end, end)


def read_request(data: bytes) -> Request | None:
    """The plain request at the start of ``data``, whole (head and body), or ``None``.

    >>> method, target, version, headers, head, body, verdict = read_request(
    ...     b"GET /a?b=1 HTTP/1.1\\r\\nHost: shop.example\\r\\n\\r\\nGET /next")
    >>> method, target, version, headers, head, body, verdict
    ('GET', '/a?b=1', '1.1', (('Host', 'shop.example'),), 43, 0, 'plain')
    >>> read_request(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n") is None   # the head is not whole
    True
    """
    start = _start_line(data, _REQUEST_LINE)
    if start is None:
        return None
    request_line, line_end, end = start
    method, target, version = request_line.groups()
    if method == "CONNECT":
        return None  # a tunnel: h11 and the parser's pause handle it
    found = _fields(data, line_end + 2, end)
    if found is None:
        return None
    headers, length, suspicious, hosts = found
    if hosts != 1:  # h11 refuses a missing or repeated Host (RFC 9112 §3.2)
        return None
    head_length = end + 4
    body = length or 0
    if len(data) < head_length + body:
        return None  # the body is not all here: h11 follows it across segments
    verdict = None if (length is not None or suspicious) else PLAIN
    return method, target, version, headers, head_length, body, verdict


def read_response(data: bytes, method: bytes) -> Response | None:
    """The plain response at the start of ``data``, whole, to a request of ``method``.

    Only responses whose end ``Content-Length`` tells are read here: a ``HEAD`` or
    ``CONNECT`` request, a ``1xx``, ``204`` or ``304`` status, a chunked body or a body
    that runs to the close go to h11.

    >>> read_response(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok", b"GET")
    (200, 'OK', '1.1', (('Content-Length', '2'),), 38, 2)
    """
    if method in (b"HEAD", b"CONNECT"):
        return None
    start = _start_line(data, _STATUS_LINE)
    if start is None:
        return None
    status_line, line_end, end = start
    version, code, reason = status_line.groups()
    status = int(code)
    if status in (204, 304):
        return None
    found = _fields(data, line_end + 2, end)
    if found is None:
        return None
    headers, length, _suspicious, _hosts = found
    if length is None:
        return None
    head_length = end + 4
    if len(data) < head_length + length:
        return None
    return status, reason, version, headers, head_length, length

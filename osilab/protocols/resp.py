"""Redis RESP2/RESP3 on a reassembled stream: the commands a client sends and the replies.

Theory of operation
-------------------
Redis speaks RESP, the REdis Serialization Protocol (redis.io/docs/reference/protocol-spec).
Every value starts with one byte that says its type and ends its header line with CRLF:

====  =================  ===========================================
byte  type               example
====  =================  ===========================================
``+`` simple string      ``+OK\\r\\n``
``-`` error              ``-ERR unknown command\\r\\n``
``:`` integer            ``:1000\\r\\n``
``$`` bulk string        ``$5\\r\\nhello\\r\\n`` (``$-1`` is null in RESP2)
``*`` array              ``*2\\r\\n$3\\r\\nGET\\r\\n$6\\r\\nuser:1\\r\\n``
``_`` null (RESP3)       ``_\\r\\n``
``#`` boolean (RESP3)    ``#t\\r\\n``
``,`` double (RESP3)     ``,3.14\\r\\n``
``(`` big number         ``(3492890328409238509324850943850943825024385\\r\\n``
``!`` blob error         ``!21\\r\\nSYNTAX invalid syntax\\r\\n``
``=`` verbatim string    ``=15\\r\\ntxt:Some string\\r\\n``
``%`` map, ``~`` set,    ``%1\\r\\n+key\\r\\n:1\\r\\n``
``|`` attribute,
``>`` push
====  =================  ===========================================

A *command* is an array of bulk strings (``SET user:1 alice``); a client may also send an
*inline command*, a plain text line (``PING\\r\\n``), which is how ``telnet`` users talk to
Redis. Replies come back in order, so the n-th reply answers the n-th command (pipelining).

The parser keeps a buffer per direction and reads whole values from its front. Hostile
input is bounded: nesting depth (:data:`MAX_DEPTH`), elements per aggregate
(:data:`MAX_ELEMENTS`) and bulk length (:data:`MAX_BULK`). A server line that is not RESP
(``-`` or ``+`` missing) is reported as a damaged message, not raised.

What the parser reports: one :class:`~osilab.protocols.AppMessage` per command or
reply, on the packet that completes it (``message`` is a :class:`RespCommand` or
:class:`RespReply`).

What this module must not know: packets, reassembly, sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import FlowKey

__all__ = [
    "RespParser",
    "RespCommand",
    "RespReply",
    "RespError",
    "read_value",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_BULK",
]

#: Deepest nesting of aggregates accepted.
MAX_DEPTH = 32
#: Most elements in one aggregate (Redis itself allows more; a capture rarely does).
MAX_ELEMENTS = 1 << 20
#: Largest bulk string accepted (Redis's proto-max-bulk-len default is 512 MB).
MAX_BULK = 64 * 1024 * 1024
#: Longest header or inline line (Redis refuses inline commands past 64 KiB).
MAX_LINE = 64 * 1024


@dataclass(frozen=True, slots=True)
class RespError:
    """An error reply (``-ERR ...`` or RESP3's ``!`` blob error)."""

    message: str


@dataclass(frozen=True, slots=True)
class RespCommand:
    """A client command: ``name`` upper-cased, ``arguments`` as sent; ``inline`` for text lines."""

    name: str
    arguments: tuple[bytes, ...]
    inline: bool = False


@dataclass(frozen=True, slots=True)
class RespReply:
    """A server reply: ``kind`` is the type byte as a name, ``value`` the decoded value."""

    kind: str
    value: Any


class _Incomplete(Exception):
    """Internal: the buffer ends inside a value; wait for more bytes."""


class _Bad(Exception):
    """Internal: the bytes are not RESP (message is the reason)."""


_KINDS = {
    ord("+"): "simple_string", ord("-"): "error", ord(":"): "integer", ord("$"): "bulk_string",
    ord("*"): "array", ord("_"): "null", ord("#"): "boolean", ord(","): "double",
    ord("("): "big_number", ord("!"): "blob_error", ord("="): "verbatim_string", ord("%"): "map",
    ord("~"): "set", ord("|"): "attribute", ord(">"): "push",
}


def _line(data: bytes | bytearray, start: int) -> tuple[bytes, int]:
    end = data.find(b"\r\n", start, start + MAX_LINE)
    if end < 0:
        if len(data) - start >= MAX_LINE:
            raise _Bad("a line longer than 64 KiB")
        raise _Incomplete
    return bytes(data[start:end]), end + 2


def _count(text: bytes, what: str, limit: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _Bad(f"{what} length {text[:20]!r} is not a number") from None
    if value > limit:
        raise _Bad(f"{what} length {value} is beyond osilab's limit of {limit}")
    return value


def read_value(data: bytes | bytearray, start: int = 0, depth: int = 0) -> tuple[Any, int]:
    """Read one RESP value at ``start``; returns (value, offset after it).

    Raises ``_Incomplete`` (internal) when more bytes are needed and ``_Bad`` when the
    bytes are not RESP; :class:`RespParser` turns both into results.

    >>> read_value(b"*2\\r\\n$3\\r\\nGET\\r\\n$6\\r\\nuser:1\\r\\n")
    ([b'GET', b'user:1'], 25)
    """
    if start >= len(data):
        raise _Incomplete
    if depth > MAX_DEPTH:
        raise _Bad(f"values nested deeper than {MAX_DEPTH}")
    kind = data[start]
    header, position = _line(data, start + 1)
    if kind in (ord("+"), ord("(")):
        return header, position
    if kind == ord("-"):
        return RespError(header.decode("utf-8", "replace")), position
    if kind == ord(":"):
        try:
            return int(header), position
        except ValueError:
            raise _Bad(f"integer {header[:20]!r} is not a number") from None
    if kind == ord("_"):
        return None, position
    if kind == ord("#"):
        return header == b"t", position
    if kind == ord(","):
        try:
            return float(header), position
        except ValueError:
            raise _Bad(f"double {header[:20]!r} is not a number") from None
    if kind in (ord("$"), ord("!"), ord("=")):
        size = _count(header, "bulk", MAX_BULK)
        if size < 0:
            return None, position
        if len(data) < position + size + 2:
            raise _Incomplete
        if data[position + size : position + size + 2] != b"\r\n":
            raise _Bad("bulk string not followed by CRLF")
        body = bytes(data[position : position + size])
        if kind == ord("!"):
            return RespError(body.decode("utf-8", "replace")), position + size + 2
        return body, position + size + 2
    if kind in (ord("*"), ord("~"), ord(">"), ord("%"), ord("|")):
        count = _count(header, "aggregate", MAX_ELEMENTS)
        if count < 0:
            return None, position
        if kind in (ord("%"), ord("|")):
            count *= 2
        items = []
        for _ in range(count):
            item, position = read_value(data, position, depth + 1)
            items.append(item)
        if kind in (ord("%"), ord("|")):
            return dict(zip(items[::2], items[1::2], strict=True)) if all(
                isinstance(k, (bytes, int, float, bool)) or k is None for k in items[::2]
            ) else items, position
        return items, position
    raise _Bad(f"type byte {bytes([kind])!r} is not RESP")


def _short(value: Any, width: int = 40) -> str:
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
    elif isinstance(value, RespError):
        text = value.message
    elif isinstance(value, list):
        text = "[" + ", ".join(_short(v, 12) for v in value[:4]) + (", ..." if len(value) > 4 else "") + "]"
    else:
        text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class RespParser:
    """Sans-IO RESP parser for one flow: commands to the server, replies back.

    >>> from osilab.protocols import Direction
    >>> parser = RespParser()
    >>> [m.summary for m in parser.feed(Direction.TO_SERVER, b"*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\nv\\r\\n", 4, 0.0)]
    ['SET k v']
    >>> [m.summary for m in parser.feed(Direction.TO_CLIENT, b"+OK\\r\\n", 5, 0.0)]
    ['+OK']
    """

    protocol = "resp"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        # One constructor for every parser (the table in osilab.pipeline.dispatch);
        # ``keylog`` is for TLS, which this protocol does not carry.
        self.flow = flow
        self._buffers = {Direction.TO_SERVER: bytearray(), Direction.TO_CLIENT: bytearray()}
        self._first = {Direction.TO_SERVER: 0, Direction.TO_CLIENT: 0}
        self._dead: dict[Direction, str] = {}

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """The next bytes of one direction; returns the commands or replies completed."""
        if direction in self._dead:
            return []
        buffer = self._buffers[direction]
        if not buffer:
            self._first[direction] = packet_no
        buffer += data
        out: list[AppMessage] = []
        while buffer:
            try:
                message, used = self._one(direction, buffer, self._first[direction], packet_no, time)
            except _Incomplete:
                if len(buffer) > MAX_BULK + MAX_LINE:
                    self._dead[direction] = "value larger than osilab's limit"
                    buffer.clear()
                break
            except _Bad as exc:
                out.append(self._damaged(direction, self._first[direction], packet_no, time, len(buffer),
                                         str(exc)))
                self._dead[direction] = str(exc)
                buffer.clear()
                break
            del buffer[:used]
            out.append(message)
            self._first[direction] = packet_no
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Lost bytes: value boundaries cannot be found again, so this side stops."""
        self._dead[direction] = f"{size} bytes lost"
        self._buffers[direction].clear()
        return []

    def close(self) -> list[AppMessage]:
        """Nothing is pending except a cut value, which is dropped."""
        return []

    # -- internals ----------------------------------------------------------------------

    def _one(
        self, direction: Direction, buffer: bytearray, first: int, last: int, time: float
    ) -> tuple[AppMessage, int]:
        to_server = direction is Direction.TO_SERVER
        if buffer[0] not in _KINDS:
            line, used = _line(buffer, 0)
            text = line.decode("utf-8", "backslashreplace")
            if to_server:  # an inline command: words separated by spaces
                words = tuple(line.split())
                command = RespCommand(words[0].decode("utf-8", "replace").upper() if words else "",
                                      words[1:], inline=True)
                return self._command(direction, command, first, last, time, used), used
            return self._damaged(direction, first, last, time, used,
                                 f"server line {_short(text.encode())!r} is not RESP"), used
        value, used = read_value(buffer, 0)
        if to_server and isinstance(value, list) and value and all(isinstance(v, bytes) for v in value):
            command = RespCommand(value[0].decode("utf-8", "replace").upper(), tuple(value[1:]))
            return self._command(direction, command, first, last, time, used), used
        kind = _KINDS[buffer[0]]
        reply = RespReply(kind, value)
        fields: dict[str, Any] = {"stage": "complete", "type": kind, "request": to_server}
        if kind in ("simple_string", "bulk_string", "verbatim_string") and isinstance(value, bytes):
            fields[f"{kind}.value" if kind != "simple_string" else "simple_string"] = value.decode(
                "utf-8", "replace"
            )
        elif isinstance(value, RespError):
            fields["error"] = value.message
        elif kind == "integer":
            fields["integer"] = value
        elif isinstance(value, list):
            fields["array.length"] = len(value)
        prefix = {"simple_string": "+", "error": "-", "integer": ":", "blob_error": "-"}.get(kind, "")
        summary = prefix + _short(value) if prefix else f"{kind} {_short(value)}"
        return AppMessage("resp", direction, first, last, used, summary, fields, time, reply), used

    @staticmethod
    def _command(
        direction: Direction, command: RespCommand, first: int, last: int, time: float, used: int
    ) -> AppMessage:
        shown = " ".join(_short(a, 30) for a in command.arguments[:4])
        more = f" (+{len(command.arguments) - 4} more)" if len(command.arguments) > 4 else ""
        fields = {
            "stage": "complete",
            "request": True,
            "command": command.name,
            "arguments": tuple(a.decode("utf-8", "backslashreplace") for a in command.arguments[:16]),
            "inline": command.inline,
        }
        summary = f"{command.name} {shown}{more}".rstrip()
        return AppMessage("resp", direction, first, last, used, summary, fields, time, command)

    @staticmethod
    def _damaged(
        direction: Direction, first: int, last: int, time: float, used: int, why: str
    ) -> AppMessage:
        return AppMessage("resp", direction, first, last, used, f"RESP: {why}",
                          {"stage": "complete", "request": direction is Direction.TO_SERVER},
                          time, None, why)

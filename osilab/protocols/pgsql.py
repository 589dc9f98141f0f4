"""The PostgreSQL frontend/backend protocol (version 3) on a reassembled stream.

Theory of operation
-------------------
A PostgreSQL client (the *frontend*) and server (the *backend*) exchange *messages*
(PostgreSQL documentation, "Frontend/Backend Protocol", chapter 55). Every message but
the very first is a type byte, a 4-byte length that counts itself but not the type byte,
and a body::

    'Q' | 00 00 00 11 | select now() \\0        (Simple query, length 17)

The first message a client sends has no type byte, only a length and a 4-byte code that
says what it is: a StartupMessage (protocol 3.0, then ``user``/``database`` parameters),
an SSLRequest (code 80877103), a GSSENCRequest or a CancelRequest. The server answers an
SSLRequest with one unframed byte: ``S`` (TLS follows, from the ClientHello on: this
parser hands the rest of the flow to :class:`~osilab.protocols.tls.TlsParser`) or ``N``.

Then a conversation reads like this:

* authentication (``R`` Authentication request, SASL / password messages from the
  client), ``S`` Parameter status, ``K`` Backend key data, ``Z`` Ready for query;
* the **simple query** protocol: ``Q`` carries SQL text; the answer is ``T`` Row
  description (column names), ``D`` Data rows, ``C`` Command completion (``SELECT 1``)
  or ``E`` Error, then ``Z`` Ready for query;
* the **extended query** protocol: ``P`` Parse (a statement with ``$1`` placeholders),
  ``B`` Bind (values), ``D`` Describe, ``E`` Execute, ``S`` Sync, answered by ``1`` Parse
  completion, ``2`` Bind completion, rows, ``C``, ``Z``.

Type names follow Wireshark's ``pgsql.type`` strings ("Simple query", "Row description"...)
so that osilab and tshark can be compared message by message.

Hostile bytes: a length below 4 or beyond :data:`MAX_MESSAGE` marks the message damaged
and stops that direction (its framing is lost); nothing is raised.

What this module must not know: packets, reassembly, sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import FlowKey

__all__ = [
    "PgsqlParser",
    "PgsqlMessage",
    "FRONTEND_TYPES",
    "BACKEND_TYPES",
    "SSL_REQUEST_CODE",
    "MAX_MESSAGE",
]

#: Frontend (client) message types, named as Wireshark's pgsql.type.
FRONTEND_TYPES: MappingProxyType[str, str] = MappingProxyType({
    "p": "Password message", "Q": "Simple query", "P": "Parse", "B": "Bind", "E": "Execute",
    "D": "Describe", "C": "Close", "H": "Flush", "S": "Sync", "F": "Function call",
    "d": "Copy data", "c": "Copy completion", "f": "Copy failure", "X": "Termination",
})

#: Backend (server) message types, named as Wireshark's pgsql.type.
BACKEND_TYPES: MappingProxyType[str, str] = MappingProxyType({
    "R": "Authentication request", "K": "Backend key data", "S": "Parameter status",
    "1": "Parse completion", "2": "Bind completion", "3": "Close completion",
    "C": "Command completion", "t": "Parameter description", "T": "Row description",
    "D": "Data row", "I": "Empty query", "n": "No data", "E": "Error", "N": "Notice",
    "s": "Portal suspended", "Z": "Ready for query", "A": "Notification",
    "V": "Function call response", "G": "CopyIn response", "H": "CopyOut response",
    "W": "CopyBoth response", "d": "Copy data", "c": "Copy completion",
    "v": "Negotiate protocol version",
})

#: The codes of the untyped first message (after the length).
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3 = 196608
_FIRST_CODES = MappingProxyType({
    SSL_REQUEST_CODE: "SSL request", GSSENC_REQUEST_CODE: "GSSAPI encryption request",
    CANCEL_REQUEST_CODE: "Cancel request", PROTOCOL_3: "Startup message",
})

#: Largest message accepted (the server's own limit for most messages is 1 GB).
MAX_MESSAGE = 64 * 1024 * 1024

#: Error and notice field codes (chapter 55.8) -> field names.
_ERROR_FIELDS = {"S": "severity", "V": "severity", "C": "code", "M": "message", "D": "detail",
                 "H": "hint", "P": "position"}


@dataclass(frozen=True, slots=True)
class PgsqlMessage:
    """One protocol message.

    Attributes:
        type_code: the type byte as a character (``""`` for the untyped first messages).
        type: Wireshark's name for it ("Simple query", "Data row", "SSL request"...).
        frontend: True when sent by the client.
        length: the length field (counts itself, not the type byte).
        body: the message body.
    """

    type_code: str
    type: str
    frontend: bool
    length: int
    body: bytes


def _cstrings(body: bytes) -> list[str]:
    return [part.decode("utf-8", "replace") for part in body.split(b"\x00")]


def _bind(body: bytes) -> dict[str, Any]:
    """A Bind's portal, statement and parameter values (text quoted, binary as hex).

    Layout (PostgreSQL docs, "Message Formats", Bind): portal and statement names as
    C strings; n format codes (0 text, 1 binary; none: all text, one: for all); n values,
    each an int32 length (-1: NULL) and its bytes. ``S_1`` names a statement pgjdbc
    prepared on the server; an empty name is the unnamed statement of the Parse before.
    """
    portal_end = body.find(b"\x00")
    statement_end = body.find(b"\x00", portal_end + 1)
    fields: dict[str, Any] = {"portal": body[:portal_end].decode("utf-8", "replace"),
                              "statement": body[portal_end + 1 : max(statement_end, 0)].decode("utf-8", "replace")}  # fmt: skip
    values: list[str] = []
    position = statement_end + 1
    count = int.from_bytes(body[position : position + 2], "big")
    formats = [int.from_bytes(body[position + 2 + 2 * i : position + 4 + 2 * i], "big")
               for i in range(count)]  # fmt: skip
    position += 2 + 2 * count + 2
    for i in range(int.from_bytes(body[position - 2 : position], "big")):
        if statement_end < 0 or position + 4 > len(body):
            break  # a short body: the values read so far
        size = int.from_bytes(body[position : position + 4], "big", signed=True)
        data = body[position + 4 : position + 4 + max(size, 0)]
        binary = (formats[0] if len(formats) == 1 else formats[i] if i < len(formats) else 0) == 1
        values.append("NULL" if size < 0 else f"0x{data.hex()}" if binary
                      else repr(data.decode("utf-8", "replace")))  # fmt: skip
        position += 4 + max(size, 0)
    fields["values"] = tuple(values)
    return fields


def _details(message: PgsqlMessage) -> tuple[dict[str, Any], str]:
    """Key fields and the summary's tail for one message (never raises on odd bodies)."""
    body, code = message.body, message.type_code
    fields: dict[str, Any] = {}
    tail = ""
    if message.type in ("Startup message",):
        parts = _cstrings(body[4:])
        params = dict(zip(parts[0::2], parts[1::2], strict=False))
        params.pop("", None)
        fields["parameters"] = params
        tail = " ".join(f"{k}={v}" for k, v in params.items() if k in ("user", "database"))
    elif message.frontend and code == "Q":
        query = fields["query"] = _cstrings(body)[0]
        tail = query
    elif message.frontend and code == "P":
        parts = _cstrings(body)
        fields["statement"] = parts[0]
        query = fields["query"] = parts[1] if len(parts) > 1 else ""
        tail = query
    elif message.frontend and code == "B":
        fields.update(_bind(body))
        values = [f"${i}={v}" for i, v in enumerate(fields["values"], 1)]
        tail = " ".join([fields["statement"], *values] if fields["statement"] else values)
    elif message.frontend and code == "E":
        fields["portal"] = _cstrings(body)[0]
    elif not message.frontend and code == "C":
        fields["tag"] = _cstrings(body)[0]
        tail = fields["tag"]
    elif not message.frontend and code in ("E", "N"):
        for part in body.split(b"\x00"):
            if part and chr(part[0]) in _ERROR_FIELDS:
                fields.setdefault(_ERROR_FIELDS[chr(part[0])], part[1:].decode("utf-8", "replace"))
        tail = f"{fields.get('severity', '')} {fields.get('code', '')} {fields.get('message', '')}".strip()
    elif not message.frontend and code == "Z" and body:
        fields["status"] = chr(body[0])
        tail = {"I": "idle", "T": "in a transaction", "E": "failed transaction"}.get(chr(body[0]), "")
    elif not message.frontend and code == "R" and len(body) >= 4:
        fields["authtype"] = int.from_bytes(body[:4], "big")
    elif not message.frontend and code == "S":
        parts = _cstrings(body)
        fields["parameter_name"], fields["parameter_value"] = parts[0], parts[1] if len(parts) > 1 else ""
        tail = f"{fields['parameter_name']}={fields['parameter_value']}"
    elif not message.frontend and code == "T" and len(body) >= 2:
        count = int.from_bytes(body[:2], "big")
        names, position = [], 2
        for _ in range(min(count, 1600)):  # 1600 is PostgreSQL's column limit
            end = body.find(b"\x00", position)
            if end < 0:
                break
            names.append(body[position:end].decode("utf-8", "replace"))
            position = end + 1 + 18
        fields["field.count"], fields["field.names"] = count, tuple(names)
        tail = ", ".join(names)
    elif not message.frontend and code == "D" and len(body) >= 2:
        count = int.from_bytes(body[:2], "big")
        columns: list[str | None] = []
        position = 2
        for _ in range(min(count, 1600)):
            if position + 4 > len(body):
                break
            size = int.from_bytes(body[position : position + 4], "big", signed=True)
            position += 4
            if size < 0:
                columns.append(None)
                continue
            columns.append(body[position : position + size].decode("utf-8", "replace"))
            position += size
        fields["field.count"], fields["columns"] = count, tuple(columns)
        tail = ", ".join("NULL" if v is None else v for v in columns)
    return fields, tail


class _Side:
    __slots__ = ("buffer", "first", "dead")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.first = 0
        self.dead: str | None = None


class PgsqlParser:
    """Sans-IO PostgreSQL protocol parser for one flow (both directions).

    >>> from osilab.protocols import Direction
    >>> parser = PgsqlParser()
    >>> [m.summary for m in parser.feed(Direction.TO_SERVER, b"Q\\x00\\x00\\x00\\x11select now()\\x00", 20, 0.0)]
    ['>Q Simple query: select now()']
    """

    protocol = "pgsql"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        self.flow = flow
        self.keylog = keylog  # for the TLS that may follow an SSLRequest
        self._sides = {Direction.TO_SERVER: _Side(), Direction.TO_CLIENT: _Side()}
        self._startup = True  # the client's next message may be untyped
        self._awaiting_ssl: str | None = None  # "ssl" / "gss": the server's one-byte answer is due
        self._tls: Any = None  # after 'S', the TLS parser takes over
        self._opaque = False  # after a GSSAPI 'G': encrypted, not decoded
        self._sasl = 0  # 0: no SASL, 1: initial response due, 2: continuation responses

    # -- the StreamParser contract ------------------------------------------------------

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """The next bytes of one direction; returns the messages completed."""
        if self._tls is not None:
            return self._tls.feed(direction, data, packet_no, time)
        side = self._sides[direction]
        if side.dead or self._opaque or not data:
            return []
        if not side.buffer:
            side.first = packet_no
        side.buffer += data
        out: list[AppMessage] = []
        while side.buffer and not side.dead:
            if self._tls is not None:  # the bytes after 'S' belong to TLS
                rest = bytes(side.buffer)
                side.buffer.clear()
                out += self._tls.feed(direction, rest, packet_no, time)
                break
            found = self._one(direction, side, packet_no, time)
            if found is None:
                break
            out.append(found)
            side.first = packet_no
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Lost bytes: message boundaries cannot be found again, so this direction stops."""
        if self._tls is not None:
            return self._tls.gap(direction, size, packet_no)
        side = self._sides[direction]
        side.dead = f"{size} bytes lost"
        side.buffer.clear()
        return []

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        """This direction finished: hand the news to TLS when it has taken over."""
        if self._tls is not None and hasattr(self._tls, "end"):
            return self._tls.end(direction, packet_no, time)
        return []

    def close(self) -> list[AppMessage]:
        """The flow ended; a message cut short is dropped."""
        return self._tls.close() if self._tls is not None else []

    # -- internals ----------------------------------------------------------------------

    def _one(self, direction: Direction, side: _Side, packet_no: int, time: float) -> AppMessage | None:
        buffer = side.buffer
        frontend = direction is Direction.TO_SERVER
        if not frontend and self._awaiting_ssl and buffer[0:1] in (b"S", b"N", b"G"):
            return self._ssl_answer(direction, side, packet_no, time)
        untyped = frontend and self._startup and len(buffer) >= 1 and buffer[0] == 0
        if untyped:
            if len(buffer) < 8:
                return None
            length = int.from_bytes(buffer[:4], "big")
            code = int.from_bytes(buffer[4:8], "big")
            type_code, header = "", 0
            name = _FIRST_CODES.get(code, "Startup message" if code >> 16 == 3 else "Unknown startup")
        else:
            if len(buffer) < 5:
                return None
            type_code = chr(buffer[0])
            length = int.from_bytes(buffer[1:5], "big")
            header = 1
            table = FRONTEND_TYPES if frontend else BACKEND_TYPES
            name = table.get(type_code, f"Unknown message type {type_code!r}")
            if frontend and type_code == "p":
                name = {1: "SASLInitialResponse message", 2: "SASLResponse message"}.get(
                    self._sasl, name
                )
                self._sasl = 2 if self._sasl else 0
        if length < 4 or length > MAX_MESSAGE:
            why = f"message length {length} is {'below 4' if length < 4 else 'beyond the limit'}"
            side.dead = why
            used = len(buffer)
            buffer.clear()
            return AppMessage("pgsql", direction, side.first, packet_no, used, f"PostgreSQL: {why}",
                              {"stage": "complete", "frontend": frontend}, time, None, why)
        total = header + length
        if len(buffer) < total:
            return None
        body = bytes(buffer[header + 4 : total]) if header else bytes(buffer[4:total])
        del buffer[:total]
        if untyped:
            self._startup = name in ("SSL request", "GSSAPI encryption request")
            if name == "SSL request":
                self._awaiting_ssl = "ssl"
            elif name == "GSSAPI encryption request":
                self._awaiting_ssl = "gss"
        elif frontend:
            self._startup = False
        if not frontend and type_code == "R" and len(body) >= 4:
            auth = int.from_bytes(body[:4], "big")
            self._sasl = 1 if auth == 10 else (2 if auth == 11 else 0)
        message = PgsqlMessage(type_code, name, frontend, length, body)
        fields, tail = _details(message)
        fields.update({"stage": "complete", "type": name, "length": length, "frontend": frontend})
        arrow = ">" if frontend else "<"
        summary = f"{arrow}{type_code} {name}" + (f": {tail}" if tail else "")
        if len(summary) > 120:
            summary = summary[:117] + "..."
        return AppMessage("pgsql", direction, side.first, packet_no, total, summary, fields, time,
                          message)

    def _ssl_answer(self, direction: Direction, side: _Side, packet_no: int, time: float) -> AppMessage:
        answer = chr(side.buffer[0])
        del side.buffer[:1]
        kind, self._awaiting_ssl = self._awaiting_ssl, None
        if answer == "S" and kind == "ssl":
            from osilab.protocols.tls import TlsParser

            self._tls = TlsParser(self.flow, keylog=self.keylog)
        elif answer == "G" and kind == "gss":
            self._opaque = True
        what = {"S": "TLS accepted", "G": "GSSAPI encryption accepted", "N": "refused"}[answer]
        # Wireshark shows this unframed byte as no PDU of its own: not a layer.
        return AppMessage("pgsql", direction, side.first, packet_no, 1,
                          f"<{answer} {kind.upper() if kind else ''} response: {what}",
                          {"stage": "complete", "type": "SSL response", "layer": False,
                           "frontend": False}, time)

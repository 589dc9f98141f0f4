"""DNS messages over UDP and TCP: header, questions and answers (RFC 1035).

Theory of operation
-------------------
Before a browser can open a connection to ``shop.example`` it asks DNS for an address.
A DNS message (RFC 1035 §4.1) is a 12-byte header -- an ``id`` that pairs a response with
its query, flags (``qr`` query/response, ``opcode``, ``aa``, ``tc``, ``rd``, ``ra``,
``rcode``) and four counts -- then the question, answer, authority and additional
sections. Over UDP one datagram is one message; over TCP (used for large answers and zone
transfers, RFC 7766) each message is preceded by a 2-byte length.

Names are sequences of labels (``3www7example3com0``); to save space a name may end in a
*compression pointer* (two bytes starting ``11``) to an earlier name in the message
(§4.1.4). A hostile message can point in a loop, so :func:`read_name` follows at most
:data:`MAX_POINTERS` pointers and only ever *backwards*, and a name longer than 255 bytes
is refused.

What the parser reports: one :class:`~osilab.protocols.AppMessage` per message, with
Wireshark's field names (``id``, ``flags.response``, ``flags.opcode``, ``flags.rcode``,
``qry.name``, ``qry.type``, ``count.queries``, ``count.answers``, ``a``, ``aaaa``,
``cname``); ``message`` is a :class:`DnsMessage`. Damaged messages are marked, never
raised.

What this module must not know: packets, sockets, reassembly.

References:
    RFC 1035 (DNS), RFC 3596 (AAAA), RFC 7766 (DNS over TCP), RFC 6895 (registries).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from osilab.errors import DecodeError
from osilab.protocols import AppMessage, Direction
from osilab.streams.keys import FlowKey

__all__ = [
    "DnsParser",
    "DnsMessage",
    "Question",
    "ResourceRecord",
    "parse_message",
    "read_name",
    "TYPES",
    "RCODES",
    "MAX_POINTERS",
]

#: Record types (IANA DNS parameters), the ones a learner meets.
TYPES: MappingProxyType[int, str] = MappingProxyType({
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA",
    33: "SRV", 41: "OPT", 43: "DS", 46: "RRSIG", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY",
})

#: Response codes (RFC 1035 §4.1.1, RFC 6895).
RCODES: MappingProxyType[int, str] = MappingProxyType({
    0: "No error", 1: "Format error", 2: "Server failure", 3: "No such name", 4: "Not implemented",
    5: "Refused",
})

#: Most compression pointers followed in one name (loop protection).
MAX_POINTERS = 32

#: Most questions or records read from one message (a hostile count cannot make us spin).
MAX_RECORDS = 512


@dataclass(frozen=True, slots=True)
class Question:
    """One entry of the question section: ``name``, ``type`` (QTYPE), ``klass`` (QCLASS)."""

    name: str
    type: int
    klass: int


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """One answer record: ``name``, ``type``, ``klass``, ``ttl`` and ``data`` (RDATA).

    ``value`` is RDATA made readable: an address for A/AAAA, a name for CNAME/NS/PTR,
    else the hex of the bytes.
    """

    name: str
    type: int
    klass: int
    ttl: int
    data: bytes
    value: str


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """A DNS message (RFC 1035 §4.1.1), header fields in wire order.

    ``qr`` is False for a query and True for a response; ``rcode`` 3 is NXDOMAIN.
    ``damaged`` says why the sections could not all be read (the header always could).
    """

    id: int
    qr: bool
    opcode: int
    authoritative: bool
    truncated: bool
    recursion_desired: bool
    recursion_available: bool
    rcode: int
    questions: tuple[Question, ...]
    answers: tuple[ResourceRecord, ...]
    counts: tuple[int, int, int, int]
    damaged: str | None = None


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """Read a (possibly compressed) name at ``offset``; returns (name, offset after it).

    Raises :class:`~osilab.errors.DecodeError` on a loop, a forward pointer, a cut label or
    a name longer than 255 bytes.

    >>> read_name(b"\\x03www\\x07example\\x00\\xc0\\x04", 13)
    ('example', 15)
    """
    labels: list[str] = []
    after: int | None = None
    position = offset
    pointers = 0
    size = 0
    while True:
        if position >= len(message):
            raise DecodeError(f"name at byte {offset} runs past the message", layer="dns", offset=offset)
        length = message[position]
        if length & 0xC0 == 0xC0:
            if position + 1 >= len(message):
                raise DecodeError("compression pointer cut short", layer="dns", offset=position)
            target = ((length & 0x3F) << 8) | message[position + 1]
            pointers += 1
            if pointers > MAX_POINTERS or target >= position:
                raise DecodeError(
                    f"compression pointer at byte {position} loops or points forward",
                    layer="dns", offset=position,
                )
            if after is None:
                after = position + 2
            position = target
            continue
        if length & 0xC0:
            raise DecodeError(f"label type 0x{length:02x} is not supported", layer="dns", offset=position)
        if length == 0:
            return ".".join(labels), (after if after is not None else position + 1)
        label = message[position + 1 : position + 1 + length]
        if len(label) < length:
            raise DecodeError("label cut short", layer="dns", offset=position)
        size += length + 1
        if size > 255:
            raise DecodeError("name longer than 255 bytes", layer="dns", offset=offset)
        labels.append(label.decode("ascii", "backslashreplace"))
        position += 1 + length


def _rdata_value(message: bytes, rtype: int, start: int, data: bytes) -> str:
    if rtype == 1 and len(data) == 4:
        return str(ipaddress.IPv4Address(data))
    if rtype == 28 and len(data) == 16:
        return str(ipaddress.IPv6Address(data))
    if rtype in (2, 5, 12):
        try:
            return read_name(message, start)[0]
        except DecodeError:
            return data.hex()
    if rtype == 16:
        strings = txt_strings(data)
        if strings is not None:
            return " ".join(f'"{text}"' for text in strings)
    return data.hex()


def txt_strings(data: bytes) -> tuple[str, ...] | None:
    """A TXT record's text (RFC 1035 §3.3.14): one or more <character-string>s, each a
    length byte and that many bytes. Shown as dig shows them, each in quotes; bytes that
    are not printable ASCII as ``\\DDD``. ``None`` when the lengths overrun the data.

    >>> txt_strings(b"\\x05hello\\x03v=1")
    ('hello', 'v=1')
    """
    strings: list[str] = []
    p = 0
    while p < len(data):
        size = data[p]
        chunk = data[p + 1 : p + 1 + size]
        if len(chunk) < size:
            return None
        strings.append("".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else
                               (f"\\{chr(b)}" if b in (34, 92) else f"\\{b:03d}") for b in chunk))  # fmt: skip
        p += 1 + size
    return tuple(strings)


def parse_message(message: bytes) -> DnsMessage:
    """Parse one DNS message. Raises ``DecodeError`` only when the 12-byte header is cut;
    damage after the header is reported in :attr:`DnsMessage.damaged`."""
    if len(message) < 12:
        raise DecodeError(f"DNS header needs 12 bytes, {len(message)} here", layer="dns")
    ident, flags = int.from_bytes(message[0:2], "big"), int.from_bytes(message[2:4], "big")
    counts = tuple(int.from_bytes(message[i : i + 2], "big") for i in (4, 6, 8, 10))
    questions: list[Question] = []
    answers: list[ResourceRecord] = []
    damaged = None
    position = 12
    try:
        for _ in range(min(counts[0], MAX_RECORDS)):
            name, (qtype, qclass), position = _named_numbers(message, position, _QUESTION)
            questions.append(Question(name, qtype, qclass))
        for _ in range(min(counts[1], MAX_RECORDS)):
            name, numbers, start = _named_numbers(message, position, _RECORD)
            rtype, rclass, ttl, rdlength = numbers
            data = message[start : start + rdlength]
            if len(data) < rdlength:
                raise DecodeError("record data cut short", layer="dns", offset=start)
            answers.append(
                ResourceRecord(name, rtype, rclass, ttl, data, _rdata_value(message, rtype, start, data))
            )
            position = start + rdlength
    except DecodeError as exc:
        damaged = exc.reason
    return DnsMessage(
        ident, bool(flags & 0x8000), (flags >> 11) & 0xF, bool(flags & 0x0400),
        bool(flags & 0x0200), bool(flags & 0x0100), bool(flags & 0x0080), flags & 0xF,
        tuple(questions), tuple(answers), counts, damaged,  # type: ignore[arg-type]
    )


# The fixed fields after a name, as (byte widths, what is cut short when they are missing):
# a question's QTYPE, QCLASS (RFC 1035 §4.1.2); a record's TYPE, CLASS, TTL, RDLENGTH (§4.1.3).
_QUESTION = ((2, 2), "question")
_RECORD = ((2, 2, 4, 2), "resource record")


def _named_numbers(
    message: bytes, position: int, layout: tuple[tuple[int, ...], str]
) -> tuple[str, tuple[int, ...], int]:
    """A (compressed) name, then big-endian numbers of the given widths; the position after."""
    widths, what = layout
    name, position = read_name(message, position)
    if position + sum(widths) > len(message):
        raise DecodeError(f"{what} cut short", layer="dns", offset=position)
    numbers = []
    for width in widths:
        numbers.append(int.from_bytes(message[position : position + width], "big"))
        position += width
    return name, tuple(numbers), position


def _fields(dns: DnsMessage) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "stage": "complete",
        "id": dns.id,
        "flags.response": dns.qr,
        "flags.opcode": dns.opcode,
        "flags.rcode": dns.rcode,
        "count.queries": dns.counts[0],
        "count.answers": dns.counts[1],
    }
    if dns.questions:
        fields["qry.name"] = dns.questions[0].name
        fields["qry.type"] = dns.questions[0].type
    for key, rtype in (("a", 1), ("aaaa", 28), ("cname", 5), ("txt", 16)):
        values = tuple(r.value for r in dns.answers if r.type == rtype)
        if values:
            fields[key] = values
    return fields


def _summary(dns: DnsMessage) -> str:
    kind = "response" if dns.qr else "query"
    question = dns.questions[0] if dns.questions else None
    text = f"DNS {kind} 0x{dns.id:04x}"
    if question is not None:
        text += f" {TYPES.get(question.type, question.type)} {question.name}"
    if dns.qr:
        if dns.rcode:
            text += f" {RCODES.get(dns.rcode, f'rcode {dns.rcode}')}"
        shown = [r.value for r in dns.answers[:3]]
        if shown:
            text += " -> " + ", ".join(shown) + (" ..." if len(dns.answers) > 3 else "")
    return text


class DnsParser:
    """Sans-IO DNS parser for one flow: datagrams over UDP, length-prefixed over TCP.

    >>> from osilab.protocols import Direction
    >>> query = bytes.fromhex("abcd01000001000000000000") + b"\\x04shop\\x07example\\x00\\x00\\x01\\x00\\x01"
    >>> [m.summary for m in DnsParser().feed(Direction.TO_SERVER, query, 1, 0.0)]
    ['DNS query 0xabcd A shop.example']
    """

    protocol = "dns"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        # One constructor for every parser (the table in osilab.pipeline.dispatch);
        # ``keylog`` is for TLS, which this protocol does not carry.
        self.flow = flow
        self.tcp = flow is not None and flow.proto == "tcp"
        self._buffers = {Direction.TO_SERVER: bytearray(), Direction.TO_CLIENT: bytearray()}
        self._first = {Direction.TO_SERVER: 0, Direction.TO_CLIENT: 0}
        self._lost = {Direction.TO_SERVER: False, Direction.TO_CLIENT: False}

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """A datagram (UDP) or the next stream bytes (TCP); returns the messages completed."""
        if not self.tcp:
            return [self._message(direction, bytes(data), packet_no, packet_no, time, len(data))]
        if self._lost[direction]:
            return []
        buffer = self._buffers[direction]
        if not buffer:
            self._first[direction] = packet_no
        buffer += data
        out = []
        while len(buffer) >= 2:
            size = int.from_bytes(buffer[:2], "big")
            if len(buffer) < 2 + size:
                break
            body = bytes(buffer[2 : 2 + size])
            del buffer[: 2 + size]
            out.append(self._message(direction, body, self._first[direction], packet_no, time, size + 2))
            self._first[direction] = packet_no
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Lost bytes break TCP framing (lengths cannot be found again): stop this side."""
        self._lost[direction] = True
        self._buffers[direction].clear()
        return []

    def close(self) -> list[AppMessage]:
        """Nothing is waiting except cut TCP messages, which are dropped."""
        return []

    @staticmethod
    def _message(
        direction: Direction, body: bytes, first: int, last: int, time: float, length: int
    ) -> AppMessage:
        try:
            dns = parse_message(body)
        except DecodeError as exc:
            return AppMessage("dns", direction, first, last, length, f"DNS: {exc.reason}",
                              {"stage": "complete"}, time, None, exc.reason)
        return AppMessage("dns", direction, first, last, length, _summary(dns), _fields(dns), time,
                          dns, dns.damaged)

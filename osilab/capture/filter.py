"""Wireshark display filters over the fields osilab decodes: ``tcp.port == 80 && http.request``.

A display filter is a test on one frame. People who know Wireshark already write them, so
osilab reads the same language, over the same names (:mod:`osilab.capture.fields` is the
table of the fields it knows). The subset, also written in ``docs/filters.md``:

* a protocol or a field alone tests presence: ``dns``, ``http.request``, ``tcp.options.mss_val``;
* comparisons ``==  !=  <  <=  >  >=`` (and ``eq ne lt le gt ge``), ``===`` (all equal),
  ``~=`` / ``!==`` (any not equal), ``contains``, ``matches`` / ``~`` (a regular expression,
  case-insensitive as in Wireshark), ``in {80, 443, 8000..8080}`` and ``not in``;
* ``and or not`` / ``&& || !`` and parentheses (``not`` binds tightest, then ``and``, then ``or``);
* values: numbers (``80``, ``0x50``, ``0120`` octal), strings (``"GET"`` or bare ``GET``),
  IPv4/IPv6 addresses and CIDR blocks (``ip.addr == 192.0.2.0/24``), hardware addresses
  (``ff:ff:ff:ff:ff:ff``, ``ff-ff-...``, ``ffff.ffff.ffff``), booleans (``1 0 True False``).

**Several occurrences.** A field is present once per layer that has it: in a tunnelled frame
``ip.src`` is there for each IP header, and ``ip.addr`` stands for both ``ip.src`` and
``ip.dst``. A test is true when *any* occurrence passes it, except ``!=``, which since
Wireshark 4.0 means "present, and every occurrence differs" (``!(a == b)`` for a present
field); ``~=`` is the old "some occurrence differs", ``===`` "every occurrence equals".
tshark 4.0 agrees on each of these (tests/capture/test_filter_vs_tshark.py).

**Refused, with the column.** Slices (``eth.src[0:3]``), layer operators (``ip.src#2``),
functions (``len(http.host)``), arithmetic and bitwise operators, ``xor`` (tshark 4.0 has none
either), and comparing two fields: each is a :class:`FilterError` naming its column. An
unknown field lists the names nearest to it (:mod:`difflib`).

The compiled :class:`DisplayFilter` is a tree of frozen test nodes; it is sans-IO: it reads a
:class:`~osilab.capture.packet.Packet`'s layers, never a file. Which packets it sees decides
what it finds: the reader's packets show what each frame holds alone, the pipeline's
(:func:`osilab.pipeline.annotate`) show a reassembled message on the frame that completes it,
as Wireshark does.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from osilab.capture.fields import FIELDS, PROTOCOL_NAMES, FieldSpec, field_values
from osilab.errors import UsageError

if TYPE_CHECKING:
    from osilab.capture.packet import Packet

__all__ = ["DisplayFilter", "FilterError", "compile_filter", "RELATIONS"]


class FilterError(UsageError):
    """A display filter osilab cannot read; ``column`` (1-based) is where the problem starts.

    Attributes:
        expression: the whole filter.
        column: the 1-based column of the problem.
    """

    def __init__(self, reason: str, *, expression: str, column: int) -> None:
        self.expression = expression
        self.column = column
        super().__init__(reason)

    def _message(self) -> str:
        return f"display filter {self.expression!r}, column {self.column}: {self.reason}"


# ---------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "string", "op", "end"
    text: str
    column: int


_OPERATORS = ("===", "!==", "==", "!=", "~=", "<=", ">=", "&&", "||", "^^", "..", "<", ">", "!",
              "~", "(", ")", "{", "}", ",", "[", "]", "#", "&", "|", "+", "*", "/", "%", "@",
              "$", "-", ":", ".")
_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/\-]*|:[A-Za-z0-9_.:/\-]+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            value, after = _string(text, i)
            out.append(_Token("string", value, i + 1))
            i = after
            continue
        word = _WORD.match(text, i)
        if word is not None:
            out.append(_Token("word", word.group(), i + 1))
            i = word.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                out.append(_Token("op", op, i + 1))
                i += len(op)
                break
        else:
            raise FilterError(f"unexpected character {ch!r}", expression=text, column=i + 1)
    out.append(_Token("end", "", len(text) + 1))
    return out


def _string(text: str, start: int) -> tuple[str, int]:
    """A double-quoted string from ``start`` (its quote); returns (value, index after it)."""
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(chars), i + 1
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                chars.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            chars.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        chars.append(ch)
        i += 1
    raise FilterError("the string is never closed (a '\"' is missing)", expression=text,
                      column=start + 1)


# ---------------------------------------------------------------------------------------
# The test nodes
# ---------------------------------------------------------------------------------------

Test = Callable[["Packet"], bool]


def _equal(value: Any, literal: Any) -> bool:
    if isinstance(literal, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value in literal
    return bool(value == literal)


def _any_equal(values: list[Any], literal: Any) -> bool:
    return any(_equal(v, literal) for v in values)


#: Relation -> (values, literal) -> bool, Wireshark 4.0's meaning of each.
RELATIONS: MappingProxyType[str, Callable[[list[Any], Any], bool]] = MappingProxyType({
    "==": _any_equal,
    "!=": lambda vs, lit: bool(vs) and not _any_equal(vs, lit),   # all not equal
    "~=": lambda vs, lit: any(not _equal(v, lit) for v in vs),    # any not equal
    "===": lambda vs, lit: bool(vs) and all(_equal(v, lit) for v in vs),
    "<": lambda vs, lit: any(v < lit for v in vs),
    "<=": lambda vs, lit: any(v <= lit for v in vs),
    ">": lambda vs, lit: any(v > lit for v in vs),
    ">=": lambda vs, lit: any(v >= lit for v in vs),
})

#: Word and symbol spellings of the relations.
_RELATION_NAMES = MappingProxyType({
    "==": "==", "eq": "==", "any_eq": "==", "!=": "!=", "ne": "!=", "all_ne": "!=",
    "~=": "~=", "!==": "~=", "any_ne": "~=", "===": "===", "all_eq": "===",
    "<": "<", "lt": "<", "<=": "<=", "le": "<=", ">": ">", "gt": ">", ">=": ">=", "ge": ">=",
})
_KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "matches", *_RELATION_NAMES})


def _protocol_bytes(pkt: Packet, name: str) -> list[bytes]:
    """The bytes of each ``name`` layer as Wireshark's protocol field holds them: from the
    header's start to the end of what it carries (IP's total length bounds IP and above)."""
    data = pkt.data
    if name == "frame":
        return [data]
    out = []
    end = len(data)
    for layer in pkt.layers:
        if layer.name == "ip" and "len" in layer.fields:
            end = min(end, layer.offset + layer.fields["len"])
        elif layer.name == "ipv6" and "plen" in layer.fields:
            end = min(end, layer.offset + 40 + layer.fields["plen"])
        if layer.name == name:
            if layer.tcpip == "application":
                out.append(data[layer.offset:layer.offset + layer.length])
            else:
                out.append(data[layer.offset:end])
    return out


@dataclass(frozen=True, slots=True)
class _Presence:
    name: str
    spec: FieldSpec | None

    def __call__(self, pkt: Packet) -> bool:
        if self.spec is not None:
            return bool(field_values(pkt, self.spec))
        return self.name == "frame" or any(layer.name == self.name for layer in pkt.layers)


@dataclass(frozen=True, slots=True)
class _Compare:
    spec: FieldSpec
    relation: str
    literal: Any

    def __call__(self, pkt: Packet) -> bool:
        return RELATIONS[self.relation](field_values(pkt, self.spec), self.literal)


@dataclass(frozen=True, slots=True)
class _Member:
    spec: FieldSpec
    members: tuple[Any, ...]
    ranges: tuple[tuple[Any, Any], ...]

    def __call__(self, pkt: Packet) -> bool:
        for value in field_values(pkt, self.spec):
            if any(_equal(value, m) for m in self.members):
                return True
            if any(low <= value <= high for low, high in self.ranges):
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Search:
    """``contains`` (a substring) or ``matches`` (a regular expression), on a field or the
    bytes of a protocol."""

    name: str
    spec: FieldSpec | None
    needle: Any  # str or bytes for contains; a compiled pattern for matches

    def __call__(self, pkt: Packet) -> bool:
        haystacks = (_protocol_bytes(pkt, self.name) if self.spec is None
                     else field_values(pkt, self.spec))
        if isinstance(self.needle, re.Pattern):
            return any(self.needle.search(h) is not None for h in haystacks
                       if isinstance(h, type(self.needle.pattern)))
        return any(self.needle in h for h in haystacks if isinstance(h, type(self.needle)))


@dataclass(frozen=True, slots=True)
class _Not:
    inner: Test

    def __call__(self, pkt: Packet) -> bool:
        return not self.inner(pkt)


@dataclass(frozen=True, slots=True)
class _All:
    parts: tuple[Test, ...]

    def __call__(self, pkt: Packet) -> bool:
        return all(part(pkt) for part in self.parts)


@dataclass(frozen=True, slots=True)
class _Any:
    parts: tuple[Test, ...]

    def __call__(self, pkt: Packet) -> bool:
        return any(part(pkt) for part in self.parts)


# ---------------------------------------------------------------------------------------
# Values, by field type
# ---------------------------------------------------------------------------------------

_TRUE, _FALSE = frozenset({"1", "true", "True", "TRUE"}), frozenset({"0", "false", "False", "FALSE"})


def _number(text: str) -> int:
    if re.fullmatch(r"-?0[0-7]+", text):
        return int(text, 8)
    return int(text, 0)


def _literal(spec: FieldSpec, text: str) -> Any:
    """The value ``text`` means for a field of ``spec``'s type; ValueError when it cannot."""
    kind = spec.kind
    if kind == "string":
        return text
    if kind == "uint":
        return _number(text)
    if kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("a boolean is 1, 0, True or False")
    if kind in ("ipv4", "ipv6"):
        value: Any = (ipaddress.ip_network(text, strict=False) if "/" in text
                      else ipaddress.ip_address(text))
        if value.version != (4 if kind == "ipv4" else 6):
            raise ValueError(f"an IPv{value.version} address, and this field holds IPv{kind[-1]}")
        return value
    return _hex_bytes(text, 6 if kind == "ether" else None)


def _hex_bytes(text: str, size: int | None) -> bytes:
    parts = re.split(r"[:\-.]", text)
    if len(parts) == 3 and all(len(p) == 4 for p in parts):  # Cisco style ffff.ffff.ffff
        parts = [p[i:i + 2] for p in parts for i in (0, 2)]
    if not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", p) for p in parts):
        raise ValueError("bytes are written as hex pairs: 00:1a:2b")
    value = bytes(int(p, 16) for p in parts)
    if size is not None and len(value) != size:
        raise ValueError(f"a hardware address has {size} bytes, this has {len(value)}")
    return value


_TYPE_NAMES = {"uint": "a number", "bool": "a boolean", "string": "a string",
               "ipv4": "an IPv4 address", "ipv6": "an IPv6 address", "ether": "a hardware address",
               "bytes": "bytes"}


# ---------------------------------------------------------------------------------------
# The parser: recursive descent, one function per precedence level
# ---------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.fields: list[str] = []

    def error(self, reason: str, token: _Token) -> FilterError:
        return FilterError(reason, expression=self.text, column=token.column)

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def is_op(self, *texts: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "word") and token.text in texts

    def parse(self) -> Test:
        if self.peek().kind == "end":
            raise self.error("the filter is empty", self.peek())
        tree = self.or_()
        token = self.peek()
        if token.kind != "end":
            if token.text in ("xor", "^^"):
                raise self.error("'xor' is not supported (tshark 4.0 has none either): "
                                 "write (a and not b) or (b and not a)", token)
            raise self.error(f"{token.text!r} was not expected here", token)
        return tree

    def _chain(self, operand: Callable[[], Test], words: tuple[str, str],
               group: Callable[[tuple[Test, ...]], Test]) -> Test:
        """``operand (word operand)*``: one operand alone, else ``group`` of them all."""
        parts = [operand()]
        while self.is_op(*words):
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else group(tuple(parts))

    def or_(self) -> Test:
        return self._chain(self.and_, ("or", "||"), _Any)

    def and_(self) -> Test:
        return self._chain(self.not_, ("and", "&&"), _All)

    def not_(self) -> Test:
        if self.is_op("not", "!"):
            self.take()
            return _Not(self.not_())
        return self.primary()

    def primary(self) -> Test:
        token = self.take()
        if token.kind == "op" and token.text == "(":
            inner = self.or_()
            close = self.take()
            if close.text != ")":
                raise self.error("a ')' is missing", close)
            return inner
        if token.kind != "word" or token.text in _KEYWORDS:
            what = "the end of the filter" if token.kind == "end" else repr(token.text)
            raise self.error(f"a field or protocol name was expected, not {what}", token)
        if self.is_op("("):
            raise self.error(f"functions ({token.text}(...)) are not supported", token)
        name = token.text
        spec = FIELDS.get(name)
        if spec is None and name not in PROTOCOL_NAMES:
            raise self.error(self._unknown(name), token)
        self.fields.append(name)
        self._refuse_operators()
        nxt = self.peek()
        relation = _RELATION_NAMES.get(nxt.text) if nxt.kind in ("op", "word") else None
        if relation is not None:
            self.take()
            return self._compare(name, spec, relation, nxt)
        if nxt.text == "contains":
            self.take()
            return _Search(name, spec, self._needle(name, spec))
        if nxt.text in ("matches", "~"):
            self.take()
            return _Search(name, spec, self._pattern(name, spec))
        if nxt.text == "in" or (nxt.text == "not" and self.tokens[self.at + 1].text == "in"):
            negate = self.take().text == "not"
            if negate:
                self.take()
            member = self._set(name, spec, nxt)
            return _Not(member) if negate else member
        return _Presence(name, spec)

    def _refuse_operators(self) -> None:
        token = self.peek()
        refused = {"[": "slices ([i:j]) are not supported",
                   "#": "layer operators (#n) are not supported",
                   "&": "the bitwise operator & is not supported: test the bit's own field "
                        "(tcp.flags.syn == 1)",
                   "|": "'|' is not an operator here (or is '||')",
                   "+": "arithmetic is not supported", "-": "arithmetic is not supported",
                   "*": "arithmetic is not supported", "/": "arithmetic is not supported",
                   "%": "arithmetic is not supported"}
        if token.kind == "op" and token.text in refused:
            raise self.error(refused[token.text], token)

    def _unknown(self, name: str) -> str:
        near = difflib.get_close_matches(name, [*FIELDS, *PROTOCOL_NAMES], n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(near)}?" if near else \
            "; docs/filters.md lists the fields osilab decodes"
        return f"osilab knows no field or protocol {name!r}{hint}"

    def _value(self, what: str) -> _Token:
        token = self.take()
        if token.kind == "op" and token.text == "-":
            token = _Token("word", "-" + self.take().text, token.column)
        if token.kind not in ("word", "string") or (token.kind == "word" and token.text in _KEYWORDS):
            shown = "the end of the filter" if token.kind == "end" else repr(token.text)
            raise self.error(f"{what} was expected, not {shown}", token)
        self._refuse_operators()
        return token

    def _typed(self, spec: FieldSpec, token: _Token) -> Any:
        if token.kind == "word" and token.text in FIELDS:
            raise self.error(f"comparing two fields ({spec.name} and {token.text}) is not supported",
                             token)
        try:
            return _literal(spec, token.text)
        except ValueError as exc:
            raise self.error(f"{token.text!r} is not {_TYPE_NAMES[spec.kind]}, which {spec.name} "
                             f"holds ({exc})", token) from None

    def _compare(self, name: str, spec: FieldSpec | None, relation: str, op: _Token) -> Test:
        if spec is None:
            raise self.error(f"{name} is a protocol: test it alone, or with contains/matches",
                             op)
        token = self._value(f"a value to compare {name} with")
        literal = self._typed(spec, token)
        if relation in ("<", "<=", ">", ">=") and (
                isinstance(literal, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                or spec.kind == "bool"):
            raise self.error(f"{op.text} cannot order {_TYPE_NAMES[spec.kind]} "
                             "against a block or a boolean", op)
        return _Compare(spec, relation, literal)

    def _needle(self, name: str, spec: FieldSpec | None) -> str | bytes:
        token = self._value(f"what {name} should contain")
        if spec is not None and spec.kind == "string":
            return token.text
        if spec is not None and spec.kind not in ("ether", "bytes"):
            raise self.error(f"contains needs a string or bytes field; {name} holds "
                             f"{_TYPE_NAMES[spec.kind]}", token)
        if token.kind == "word" and ":" in token.text:
            try:
                return _hex_bytes(token.text, None)
            except ValueError as exc:
                raise self.error(str(exc), token) from None
        return token.text.encode("utf-8", "surrogateescape")

    def _pattern(self, name: str, spec: FieldSpec | None) -> re.Pattern[Any]:
        token = self._value(f"a regular expression for {name}")
        if token.kind != "string":
            raise self.error("matches needs a quoted regular expression", token)
        if spec is not None and spec.kind != "string":
            raise self.error(f"matches needs a string field; {name} holds "
                             f"{_TYPE_NAMES[spec.kind]}", token)
        try:
            if spec is None:
                return re.compile(token.text.encode("utf-8"), re.IGNORECASE | re.DOTALL)
            return re.compile(token.text, re.IGNORECASE)
        except re.error as exc:
            raise self.error(f"not a regular expression Python can read: {exc}", token) from None

    def _set(self, name: str, spec: FieldSpec | None, where: _Token) -> Test:
        if spec is None:
            raise self.error(f"{name} is a protocol; 'in' needs a field", where)
        brace = self.take()
        if brace.text != "{":
            raise self.error("'in' needs a set: {80, 443, 8000..8080}", brace)
        members: list[Any] = []
        ranges: list[tuple[Any, Any]] = []
        while not self.is_op("}"):
            token = self._value(f"a member of the set for {name}")
            low_text, dots, high_text = token.text.partition("..")
            if token.kind == "word" and dots:
                if not high_text and self.peek().kind == "word":
                    high_text = self.take().text
                high = _Token("word", high_text, token.column)
                ranges.append((self._typed(spec, _Token("word", low_text, token.column)),
                               self._typed(spec, high)))
            elif self.is_op(".."):
                self.take()
                ranges.append((self._typed(spec, token), self._typed(spec, self._value("a range end"))))
            else:
                members.append(self._typed(spec, token))
            if self.is_op(","):
                self.take()
        self.take()
        if not members and not ranges:
            raise self.error("the set is empty", brace)
        return _Member(spec, tuple(members), tuple(ranges))


# ---------------------------------------------------------------------------------------
# The compiled filter
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DisplayFilter:
    """A compiled display filter: ``flt(pkt)`` or ``flt.matches(pkt)`` says whether a packet
    passes it.

    Attributes:
        expression: the filter as written.
        fields: the field and protocol names it reads, in the order written.
    """

    expression: str
    fields: tuple[str, ...]
    _test: Test

    def matches(self, pkt: Packet) -> bool:
        """Whether the packet passes the filter."""
        return self._test(pkt)

    __call__ = matches

    def select(self, packets: Iterable[Packet]) -> Iterator[Packet]:
        """The packets that pass, in order (lazily)."""
        test = self._test
        return (pkt for pkt in packets if test(pkt))

    def __repr__(self) -> str:
        return f"DisplayFilter({self.expression!r})"


@lru_cache(maxsize=256)
def compile_filter(expression: str) -> DisplayFilter:
    """Read a Wireshark display filter; raises :class:`FilterError` naming the column.

    >>> from osilab.capture.filter import compile_filter
    >>> compile_filter("tcp.port in {80, 443} && !(ip.src == 192.0.2.0/24)").fields
    ('tcp.port', 'ip.src')
    >>> compile_filter("tcp.prot == 80")
    Traceback (most recent call last):
    ...
    osilab.capture.filter.FilterError: display filter 'tcp.prot == 80', column 1: osilab knows no field or protocol 'tcp.prot'; did you mean tcp.port, ip.proto, tcp.srcport, udp.port?
    """
    parser = _Parser(expression)
    test = parser.parse()
    return DisplayFilter(expression, tuple(parser.fields), test)

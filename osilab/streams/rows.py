"""The flow table's compact store: a live flow as a row of numbers under a packed key.

A SYN flood holds a million half-open flows inside every timeout, so what one flow costs
is what the table costs. As Python objects (a tuple of strings for its key, an object with
its counters as integers and floats, a TCP tracker) a flow takes about 630 bytes; as a row
it takes about 200: its key is one ``int`` (:class:`FlowKeys`), its numbers one slot in
each of a few ``array`` columns (:class:`_Rows`), its TCP state one byte (a code into
:data:`~osilab.streams.tcp.TRANSITIONS`, the one state machine). The flow table
(:mod:`osilab.streams.flows`) promotes a row to a :class:`~osilab.streams.flows.Flow`
object only when a flow needs one (its first payload in the pipeline, a TCP anomaly).

What this module must not know: packets, payloads, protocols.
"""

from __future__ import annotations

import socket
from array import array
from typing import TYPE_CHECKING

from osilab.capture.layer import ip_text
from osilab.streams.keys import Endpoint, FlowKey
from osilab.streams.tcp import TRANSITIONS, TcpInput, TcpState, tcp_input

if TYPE_CHECKING:
    from osilab.streams.flows import FlowTable

__all__ = ["FlowKeys", "FlowRow"]


class FlowKeys:
    """Flow identities packed into one ``int``: a dictionary key of about 40 bytes for an
    IPv4 flow, where the tuple ``(proto, ip, port, ip, port, interface, tunnel)`` and its
    strings take over 200 (a SYN flood keeps a million of them).

    Layout, lowest bits first: client port (16), server port (16), one bit "wide", client
    address, server address (34 bits each, 130 when wide), then the *context* (one small
    number per ``(proto, interface, tunnel)``, in the order first met). An address is its
    32 or 128 bits over a 2-bit tag (0 IPv4, 1 IPv6, 2 a text that is not an address's
    usual form, numbered in the order met), so it unpacks to the very text it was packed
    from.

    >>> keys = FlowKeys()
    >>> key = keys.pack("tcp", "198.51.100.7", 51514, "203.0.113.10", 80, 0, "")
    >>> keys.unpack(key)
    ('tcp', '198.51.100.7', 51514, '203.0.113.10', 80, 0, '')
    """

    __slots__ = ("_addresses", "_odd", "_odd_codes", "_contexts", "_context_list", "pairs")

    def __init__(self) -> None:
        #: (proto, src, sport, dst, dport, interface, tunnel) -> :meth:`pair`'s answer, for
        #: the flows of the last few thousand packets: a packet of a flow already seen costs
        #: one dictionary lookup instead of three lookups and two joins of big integers.
        #: A hot loop may read it directly and call :meth:`pair` on a miss.
        self.pairs: dict[tuple[str, str, int, str, int, int, str], tuple[int, int]] = {}
        self._addresses: dict[str, int] = {}  # address text -> its code (a bounded cache)
        self._odd: list[str] = []  # texts that are not an address's usual form, by number
        self._odd_codes: dict[str, int] = {}
        self._contexts: dict[tuple[str, int, str], int] = {}
        self._context_list: list[tuple[str, int, str]] = []

    def address(self, text: str) -> int:
        """The code of an address text (its bits over a 2-bit tag)."""
        code = self._addresses.get(text)
        if code is None:
            code = _address_code(text)
            if code is None:  # not a canonical IPv4/IPv6 text: numbered, kept as it is
                code = self._odd_codes.get(text)
                if code is None:
                    code = self._odd_codes[text] = len(self._odd) << 2 | 2
                    self._odd.append(text)
                return code
            if len(self._addresses) >= _ADDRESS_CACHE:
                self._addresses.clear()  # a spoofed flood must not grow this cache
            self._addresses[text] = code
        return code

    def context(self, proto: str, interface: int, tunnel: str) -> int:
        found = self._contexts.get((proto, interface, tunnel))
        if found is None:
            found = self._contexts[(proto, interface, tunnel)] = len(self._context_list)
            self._context_list.append((proto, interface, tunnel))
        return found

    def pack(self, proto: str, client: str, client_port: int, server: str, server_port: int,
             interface: int, tunnel: str) -> int:  # fmt: skip
        """One flow's key, client -> server as given."""
        return self.join(self.context(proto, interface, tunnel), self.address(client),
                         client_port, self.address(server), server_port)  # fmt: skip

    def pair(self, proto: str, src: str, sport: int, dst: str, dport: int, interface: int,
             tunnel: str) -> tuple[int, int]:  # fmt: skip
        """``(the key src -> dst, the key dst -> src)``: a packet's flow, looked up both ways.

        >>> keys = FlowKeys()
        >>> there, back = keys.pair("udp", "192.0.2.1", 53, "192.0.2.2", 5353, 0, "")
        >>> keys.unpack(back)[1:5]
        ('192.0.2.2', 5353, '192.0.2.1', 53)
        """
        ident = (proto, src, sport, dst, dport, interface, tunnel)
        found = self.pairs.get(ident)
        if found is None:
            context = self.context(proto, interface, tunnel)
            src_code, dst_code = self.address(src), self.address(dst)
            found = (self.join(context, src_code, sport, dst_code, dport),
                     self.join(context, dst_code, dport, src_code, sport))  # fmt: skip
            if len(self.pairs) >= _PAIR_CACHE:
                self.pairs.clear()  # a flood of new flows must not grow it
            self.pairs[ident] = found
        return found

    @staticmethod
    def join(context: int, client: int, client_port: int, server: int, server_port: int) -> int:
        """A key from the codes of :meth:`context` and :meth:`address`."""
        if client >> 34 or server >> 34:  # IPv6
            return (
                ((context << 130 | server) << 130 | client) << 33
                | 1 << 32
                | server_port << 16
                | client_port
            )
        return ((context << 34 | server) << 34 | client) << 33 | server_port << 16 | client_port

    def unpack(self, key: int) -> tuple[str, str, int, str, int, int, str]:
        """``(proto, client ip, client port, server ip, server port, interface, tunnel)``."""
        width = 130 if key >> 32 & 1 else 34
        mask = (1 << width) - 1
        proto, interface, tunnel = self._context_list[key >> (33 + 2 * width)]
        client, server = self._text(key >> 33 & mask), self._text(key >> (33 + width) & mask)
        return proto, client, key & 0xFFFF, server, key >> 16 & 0xFFFF, interface, tunnel

    def _text(self, code: int) -> str:
        tag, bits = code & 3, code >> 2
        if tag == 2:
            return self._odd[bits]
        return ip_text(bits.to_bytes(16 if tag else 4, "big"))


_ADDRESS_CACHE = 1 << 16
_PAIR_CACHE = 1 << 12


def _address_code(text: str) -> int | None:
    for family, tag, size in ((socket.AF_INET, 0, 4), (socket.AF_INET6, 1, 16)):
        try:
            raw = socket.inet_pton(family, text)
        except (OSError, ValueError, TypeError):
            continue
        if len(raw) == size and ip_text(raw) == text:  # unpacks to the same text
            return int.from_bytes(raw, "big") << 2 | tag
    return None


#: TCP states by number (a row keeps a state as one byte), and the flag bits that decide an input.
_STATES: tuple[TcpState, ...] = tuple(TcpState)
_STATE_CODE = {state: code for code, state in enumerate(_STATES)}
_FINAL_CODES = frozenset(_STATE_CODE[s] for s in (TcpState.CLOSED, TcpState.RESET))
_UDP = 0x0F  # the state code of a flow that is not TCP
_MIDSTREAM, _HANDSHAKE = 0x10, 0x20  # the other bits of a row's state byte
_SYN_TO_SERVER, _SYN_TO_CLIENT = 0x40, 0x80


def _next_code(code: int, flags: int, from_client: bool, reset_acceptable: bool) -> int:
    """The row's next state code, or -1 when the segment needs the full
    :class:`TcpTracker` (an impossible pair to record, an ignored RST to count)."""
    event = tcp_input(flags, from_client, reset_acceptable)
    following = TRANSITIONS.get((_STATES[code], event))
    if following is None or event is TcpInput.IGNORED_RST:
        return -1
    return _STATE_CODE[following]


class _Rows:
    """The columns of the flow table: one ``array`` per number, indexed by row.

    A row holds a live flow's numbers in about 110 bytes, where a :class:`Flow` object
    and its integers, floats and TCP tracker take about 400. Rows of ended flows are
    reused (``free``).
    """

    __slots__ = (
        "index", "first", "last", "packets_to_server", "packets_to_client", "bytes_to_server",
        "bytes_to_client", "payload_to_server", "payload_to_client", "syn_to_server",
        "syn_to_client", "position", "first_time", "last_time", "bits", "keys", "free", "_ints",
    )  # fmt: skip

    def __init__(self) -> None:
        # 32 bits where a capture cannot hold more (packets, flows: 4 billion), 64 for bytes
        self.index, self.first, self.last = array("I"), array("I"), array("I")
        self.packets_to_server, self.packets_to_client = array("I"), array("I")
        self.bytes_to_server, self.bytes_to_client = array("q"), array("q")
        self.payload_to_server, self.payload_to_client = array("q"), array("q")
        #: The first SYN's sequence number each way (``_SYN_TO_SERVER`` and
        #: ``_SYN_TO_CLIENT`` in ``bits`` say it was seen), kept for the streams stage.
        self.syn_to_server, self.syn_to_client = array("I"), array("I")
        #: Where the row's newest entry is in the table's activity log (-1: none).
        self.position = array("i")
        self.first_time, self.last_time = array("d"), array("d")
        #: The TCP state code (low 4 bits) and the ``_MIDSTREAM``, ``_HANDSHAKE``,
        #: ``_SYN_TO_SERVER``, ``_SYN_TO_CLIENT`` bits.
        self.bits = bytearray()
        self.keys: list[int | None] = []  # row -> its key in the table (None: free)
        self.free = array("i")
        self._ints = (self.index, self.first, self.last, self.packets_to_server,
                      self.packets_to_client, self.bytes_to_server, self.bytes_to_client,
                      self.payload_to_server, self.payload_to_client, self.syn_to_server,
                      self.syn_to_client, self.position)  # fmt: skip

    def new(self, key: int, index: int, packet_no: int, time: float, bits: int) -> int:
        values = (index, packet_no, packet_no, 0, 0, 0, 0, 0, 0, 0, 0, -1)
        if self.free:
            row = self.free.pop()
            for column, value in zip(self._ints, values, strict=True):
                column[row] = value
            self.first_time[row] = self.last_time[row] = time
            self.bits[row] = bits
            self.keys[row] = key
            return row
        for column, value in zip(self._ints, values, strict=True):
            column.append(value)
        self.first_time.append(time)
        self.last_time.append(time)
        self.bits.append(bits)
        self.keys.append(key)
        return len(self.keys) - 1


class FlowRow:
    """A live flow still held as a row of its :class:`FlowTable` (it has carried nothing
    that needs an object): its key and index, read from the table when asked for, while
    the flow is live."""

    __slots__ = ("table", "row")

    def __init__(self, table: FlowTable, row: int) -> None:
        self.table, self.row = table, row

    @property
    def key(self) -> FlowKey:
        return self.table.key_of(self.row)

    @property
    def index(self) -> int:
        return self.table.index_of(self.row)


def _key_of(ident: tuple[str, str, int, str, int, int, str]) -> FlowKey:
    proto, client_ip, client_port, server_ip, server_port, interface, tunnel = ident
    return FlowKey(
        proto, Endpoint(client_ip, client_port), Endpoint(server_ip, server_port), interface, tunnel
    )

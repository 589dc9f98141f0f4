"""The TCP connection state, as an observer on the wire sees it: a state machine as data.

RFC 9293 §3.3.2 describes the states of *one endpoint*. A capture sees *both* endpoints
from the outside, so osilab follows the connection as a whole: which of the handshake's
three segments have been seen, whether each side has sent its FIN, or whether a RST ended
everything. The states below are the endpoint states of the RFC diagram merged into one
connection view; the table :data:`TRANSITIONS` says, for each ``(state, input)`` pair, the
next state. Nothing else decides a transition, so the table can be printed, tested
exhaustively and drawn in a notebook.

An *impossible pair* (a SYN in the middle of an established connection, data before any
handshake when the handshake was seen...) does not crash anything: the capture is what it
is. :meth:`TcpTracker.feed` records it as an :class:`Anomaly` naming the state and the
input, and the state does not change.

A capture that starts after the handshake starts in :attr:`TcpState.NEW`; the first
segment that is not a SYN moves it to :attr:`TcpState.ESTABLISHED` (and the flow is marked
as started mid-stream by the flow table).

What this module must not know: packets, files, addresses or payloads. It sees inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = ["TcpState", "TcpInput", "TRANSITIONS", "Anomaly", "TcpTracker", "tcp_input", "MAX_ANOMALIES"]


class TcpState(StrEnum):
    """The connection as seen from the wire (values are what ``osilab flows`` prints)."""

    NEW = "new"  # nothing seen yet
    SYN_SENT = "syn_sent"  # the client's SYN: half-open until the server answers
    SYN_RECEIVED = "syn_received"  # the server's SYN+ACK: half-open until the client's ACK
    ESTABLISHED = "established"  # handshake done (or data seen mid-stream)
    CLIENT_CLOSED = "client_fin"  # the client sent FIN; the server may still send (half-closed)
    SERVER_CLOSED = "server_fin"  # the server sent FIN; the client may still send (half-closed)
    CLOSED = "closed"  # both FINs seen: an orderly close
    RESET = "reset"  # a RST ended the connection


class TcpInput(StrEnum):
    """What a segment means for the connection state (see :func:`tcp_input`)."""

    SYN = "syn"  # client -> server, SYN without ACK
    SYN_ACK = "syn_ack"  # server -> client, SYN with ACK
    ACK = "ack"  # any segment without SYN, FIN or RST (pure ACK or data)
    CLIENT_FIN = "client_fin"
    SERVER_FIN = "server_fin"
    RST = "rst"
    #: A RST whose sequence number is not acceptable (RFC 9293 §3.10.7.3): the receiver
    #: drops it (or answers with a challenge ACK), and the connection goes on.
    IGNORED_RST = "ignored_rst"


S, I = TcpState, TcpInput  # noqa: E741 - short names make the table below readable

# RFC 9293 §3.3.2, Figure 5: TCP connection state diagram (one endpoint's view).
#
#                             +---------+ ---------\      active OPEN
#                             |  CLOSED |            \    -----------
#                             +---------+<---------\   \   create TCB
#                               |     ^              \   \  snd SYN
#                  passive OPEN |     |   CLOSE        \   \
#                  ------------ |     | ----------       \   \
#                   create TCB  |     | delete TCB         \   \
#                               V     |                      \   \
#           rcv RST (note 1)  +---------+            CLOSE    |    \
#        -------------------->|  LISTEN |          ---------- |     |
#       /                     +---------+          delete TCB |     |
#      /           rcv SYN      |     |     SEND              |     |
#     /           -----------   |     |    -------            |     V
# +--------+      snd SYN,ACK  /       \   snd SYN          +--------+
# |        |<-----------------           ------------------>|        |
# |  SYN   |                    rcv SYN                     |  SYN   |
# |  RCVD  |<-----------------------------------------------|  SENT  |
# |        |                  snd SYN,ACK                   |        |
# |        |------------------           -------------------|        |
# +--------+   rcv ACK of SYN  \       /  rcv SYN,ACK       +--------+
#    |         --------------   |     |   -----------
#    |                x         |     |     snd ACK
#    |                          V     V
#    |  CLOSE                 +---------+
#    | -------                |  ESTAB  |
#    | snd FIN                +---------+
#    |                 CLOSE    |     |    rcv FIN
#    V                -------   |     |    -------
# +---------+         snd FIN  /       \   snd ACK         +---------+
# |  FIN    |<----------------          ------------------>|  CLOSE  |
# | WAIT-1  |------------------                            |   WAIT  |
# +---------+          rcv FIN  \                          +---------+
#   | rcv ACK of FIN   -------   |                          CLOSE  |
#   | --------------   snd ACK   |                         ------- |
#   V        x                   V                         snd FIN V
# +---------+               +---------+                    +---------+
# |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
# +---------+               +---------+                    +---------+
#   |              rcv ACK of FIN |                 rcv ACK of FIN |
#   |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
#   |  -------            x       V    ------------        x       V
#    \ snd ACK              +---------+delete TCB          +---------+
#     -------------------->|TIME-WAIT|------------------->| CLOSED  |
#                           +---------+                    +---------+
#
# The observer's merge: SYN_SENT is the client in SYN-SENT and the server in LISTEN;
# SYN_RECEIVED is the server in SYN-RCVD; CLIENT_CLOSED / SERVER_CLOSED are one side in
# FIN-WAIT and the other in CLOSE-WAIT (the connection is half-closed); CLOSED covers
# CLOSING, LAST-ACK and TIME-WAIT, which differ only in which final ACKs have passed.
# RST is accepted in every state (RFC 9293 §3.10.7.x, "If the RST bit is set..."), when
# its sequence number is acceptable; one that is not (IGNORED_RST, decided by whoever
# knows the sequence space: the streams stage's reassembly) changes no state at all.

#: (state, input) -> next state. A pair that is absent is impossible: recorded, not obeyed.
TRANSITIONS: MappingProxyType[tuple[TcpState, TcpInput], TcpState] = MappingProxyType(
    {
        # the handshake
        (S.NEW, I.SYN): S.SYN_SENT,
        (S.NEW, I.SYN_ACK): S.SYN_RECEIVED,  # the client's SYN was not captured
        (S.NEW, I.ACK): S.ESTABLISHED,  # capture started mid-stream
        (S.NEW, I.CLIENT_FIN): S.CLIENT_CLOSED,
        (S.NEW, I.SERVER_FIN): S.SERVER_CLOSED,
        (S.NEW, I.RST): S.RESET,
        (S.SYN_SENT, I.SYN): S.SYN_SENT,  # SYN retransmitted
        (S.SYN_SENT, I.SYN_ACK): S.SYN_RECEIVED,
        (S.SYN_SENT, I.ACK): S.ESTABLISHED,  # the SYN+ACK was not captured
        (S.SYN_SENT, I.RST): S.RESET,  # connection refused
        (S.SYN_RECEIVED, I.SYN): S.SYN_RECEIVED,  # a late retransmitted SYN
        (S.SYN_RECEIVED, I.SYN_ACK): S.SYN_RECEIVED,  # SYN+ACK retransmitted
        (S.SYN_RECEIVED, I.ACK): S.ESTABLISHED,  # the third segment of the handshake
        (S.SYN_RECEIVED, I.CLIENT_FIN): S.CLIENT_CLOSED,
        (S.SYN_RECEIVED, I.RST): S.RESET,
        # data transfer
        (S.ESTABLISHED, I.SYN_ACK): S.ESTABLISHED,  # a retransmitted SYN+ACK (its ACK was lost)
        (S.ESTABLISHED, I.ACK): S.ESTABLISHED,
        (S.ESTABLISHED, I.CLIENT_FIN): S.CLIENT_CLOSED,
        (S.ESTABLISHED, I.SERVER_FIN): S.SERVER_CLOSED,
        (S.ESTABLISHED, I.RST): S.RESET,
        # closing: one side has finished sending, the other may go on (half-closed)
        (S.CLIENT_CLOSED, I.ACK): S.CLIENT_CLOSED,
        (S.CLIENT_CLOSED, I.CLIENT_FIN): S.CLIENT_CLOSED,  # FIN retransmitted
        (S.CLIENT_CLOSED, I.SERVER_FIN): S.CLOSED,
        (S.CLIENT_CLOSED, I.RST): S.RESET,
        (S.SERVER_CLOSED, I.ACK): S.SERVER_CLOSED,
        (S.SERVER_CLOSED, I.SERVER_FIN): S.SERVER_CLOSED,
        (S.SERVER_CLOSED, I.CLIENT_FIN): S.CLOSED,
        (S.SERVER_CLOSED, I.RST): S.RESET,
        # closed: the last ACKs and retransmitted FINs still pass
        (S.CLOSED, I.ACK): S.CLOSED,
        (S.CLOSED, I.CLIENT_FIN): S.CLOSED,
        (S.CLOSED, I.SERVER_FIN): S.CLOSED,
        (S.CLOSED, I.RST): S.RESET,  # e.g. a RST answering a late segment
        (S.RESET, I.RST): S.RESET,
        (S.RESET, I.ACK): S.RESET,  # stragglers already in flight
        (S.RESET, I.CLIENT_FIN): S.RESET,
        (S.RESET, I.SERVER_FIN): S.RESET,
        # a RST out of the window, or inexact (RFC 9293 §3.10.7.3): nothing changes
        **{(state, I.IGNORED_RST): state for state in S},
    }
)

del S, I

#: States in which the connection is over (the flow table may emit and drop it).
FINAL_STATES = frozenset({TcpState.CLOSED, TcpState.RESET})


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A segment the state machine did not expect: ``input`` arrived in ``state``."""

    packet_no: int
    state: TcpState
    input: TcpInput

    def __str__(self) -> str:
        return f"packet {self.packet_no}: {self.input.value} in state {self.state.value}"


def tcp_input(flags: int, from_client: bool, reset_acceptable: bool = True) -> TcpInput:
    """What a segment with these flag bits means, given its direction.

    RST outranks everything (``IGNORED_RST`` when its sequence number is not acceptable);
    a SYN is the client's SYN or the server's SYN+ACK; a FIN is attributed to its sender;
    anything else (data or a bare ACK) is ``ACK``.

    >>> tcp_input(0x12, from_client=False).value, tcp_input(0x14, True, False).value
    ('syn_ack', 'ignored_rst')
    """
    if flags & 0x04:
        return TcpInput.RST if reset_acceptable else TcpInput.IGNORED_RST
    if flags & 0x02:
        return TcpInput.SYN_ACK if flags & 0x10 else TcpInput.SYN
    if flags & 0x01:
        return TcpInput.CLIENT_FIN if from_client else TcpInput.SERVER_FIN
    return TcpInput.ACK


#: Anomalies kept per connection; a long-lived flow full of odd segments keeps only these
#: and counts the rest (``TcpTracker.anomalies_dropped``).
MAX_ANOMALIES = 100


class TcpTracker:
    """Follows one connection's state through :data:`TRANSITIONS`.

    >>> t = TcpTracker()
    >>> for flags, from_client in [(0x02, True), (0x12, False), (0x10, True)]:
    ...     _ = t.feed(flags, from_client, 0)
    >>> t.state.value
    'established'
    """

    __slots__ = ("state", "_anomalies", "anomalies_dropped", "handshake_seen", "resets_ignored")

    def __init__(self) -> None:
        self.state = TcpState.NEW
        # The list is made at the first anomaly: a million half-open flows keep none.
        self._anomalies: list[Anomaly] | None = None
        #: Anomalies beyond :data:`MAX_ANOMALIES`, counted only (the cap's marker).
        self.anomalies_dropped = 0
        #: True when the client's SYN was captured (the connection's start is known).
        self.handshake_seen = False
        #: RSTs whose sequence number was not acceptable, so they ended nothing.
        self.resets_ignored = 0

    def feed(
        self, flags: int, from_client: bool, packet_no: int, reset_acceptable: bool = True
    ) -> TcpState:
        """One segment: move along the table (or record the impossible pair)."""
        event = tcp_input(flags, from_client, reset_acceptable)
        if event is TcpInput.IGNORED_RST:
            self.resets_ignored += 1
        if event is TcpInput.SYN:
            self.handshake_seen = True
        following = TRANSITIONS.get((self.state, event))
        if following is None:
            if self._anomalies is None:
                self._anomalies = []
            if len(self._anomalies) < MAX_ANOMALIES:
                self._anomalies.append(Anomaly(packet_no, self.state, event))
            else:  # a long, odd flow must not grow memory: count the rest
                self.anomalies_dropped += 1
        else:
            self.state = following
        return self.state

    @property
    def anomalies(self) -> list[Anomaly]:
        """The first :data:`MAX_ANOMALIES` impossible (state, input) pairs met (read only)."""
        return self._anomalies if self._anomalies is not None else []

    @property
    def over(self) -> bool:
        """Whether the connection has ended (both FINs, or a RST)."""
        return self.state in FINAL_STATES

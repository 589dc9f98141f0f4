"""The NLB's QUIC listeners: routing a QUIC connection by the server ID in its connection ID.

Theory of operation
-------------------
A UDP listener routes each datagram by its 5-tuple (:mod:`osilab.balancers.nlb`). QUIC
breaks that: a QUIC connection survives a change of the client's address or port
(*connection migration*, RFC 9000 §9; a NAT rebinding does the same), and the packets
that follow carry a new 5-tuple. What stays is the **Destination Connection ID** (DCID),
which the *server* chose.

So a QUIC-aware balancer lets each server put its identity in the connection IDs it
issues. QUIC-LB (draft-ietf-quic-load-balancers, §3 and §5.1, the *plaintext* algorithm)
lays such an ID out as::

    +-----------------+-------------------+--------------+
    | first octet     | server ID         | nonce        |
    | (3 bits config  | (fixed length,    | (the rest:   |
    |  rotation, 5    |  here 8 bytes)    |  anything)   |
    |  free bits)     |                   |              |
    +-----------------+-------------------+--------------+

A config rotation of ``0b111`` marks an ID that carries no routing information. An AWS
NLB ``QUIC`` or ``TCP_QUIC`` listener (NLB-UG load-balancer-listeners, 2025) works this
way with targets registered with a ``QuicServerId`` (``0x`` and 16 lowercase hex digits:
8 bytes; unique on the listener; API TargetDescription). A packet whose DCID carries a
registered server ID goes to that target whatever its 5-tuple; the client's first
Initial packets carry a DCID the *client* chose at random, so they are hashed like any
flow, and the target that answers issues IDs with its own server ID from then on.

What AWS's QUIC listeners refuse (NLB-UG create-listener) is checked by
:func:`check_config`, with AWS's wording: one QUIC or TCP_QUIC listener per NLB, none
beside UDP or TCP_UDP listeners, target groups of the listener's own protocol, and a
``QuicServerId`` on every target of such a group (and on no other). QUIC v1 is the only
version AWS's listeners support (no version negotiation).

What this module must not know: the QUIC payload beyond its connection ID, packets,
files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from osilab.errors import ConfigError

__all__ = [
    "QUIC_LISTENER_PROTOCOLS",
    "SERVER_ID_LENGTH",
    "QuicServerId",
    "parse_server_ids",
    "destination_connection_id",
    "server_id_of",
    "QuicRoute",
    "quic_route",
    "check_config",
]

#: The NLB listener (and target group) protocols that route by connection ID.
QUIC_LISTENER_PROTOCOLS = ("QUIC", "TCP_QUIC")
#: Bytes of a server ID: AWS's QuicServerId is 16 hex digits.
SERVER_ID_LENGTH = 8
#: QUIC-LB's config rotation bits that mean "this ID carries no server ID".
UNROUTABLE_ROTATION = 0b111

_SERVER_ID_TEXT = re.compile(r"0x[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class QuicServerId:
    """A target's server ID, as AWS registers it (``"0x1122334455667788"``)."""

    value: bytes

    @classmethod
    def parse(cls, text: Any, where: str = "target") -> QuicServerId:
        """Read AWS's form, with AWS's rule in the error: ``0x`` and 16 lowercase hex digits.

        >>> QuicServerId.parse("0x00000000000000a1").value.hex()
        '00000000000000a1'
        """
        if not isinstance(text, str) or not _SERVER_ID_TEXT.fullmatch(text):
            raise ConfigError(
                f"{where}: QuicServerId {text!r} is not valid: the ID consists of the 0x "
                "prefix followed by 16 hexadecimal characters, and any letters must be lowercase"
            )
        return cls(bytes.fromhex(text[2:]))

    def __str__(self) -> str:
        return "0x" + self.value.hex()


def parse_server_ids(raw_targets: Any, port: int, where: str) -> tuple[tuple[str, str], ...]:
    """``(target "ip:port", QuicServerId text)`` for each ``Targets`` entry that has one.

    Entries are the ``{"Id", "Port", "QuicServerId"}`` shape of ``register-targets``;
    each ID is checked here (:meth:`QuicServerId.parse`).
    """
    found = []
    for item in raw_targets if isinstance(raw_targets, list) else ():
        if isinstance(item, Mapping) and "QuicServerId" in item:
            text = str(QuicServerId.parse(item["QuicServerId"], where))
            found.append((f"{item.get('Id')}:{item.get('Port', port)}", text))
    return tuple(found)


def destination_connection_id(datagram: bytes, short_length: int = 1 + SERVER_ID_LENGTH) -> bytes | None:
    """The DCID of a datagram's first QUIC packet, or None when it is not QUIC.

    A long header (first bit 1) gives the DCID's length (RFC 9000 §17.2); a short header
    does not (§17.3), so a balancer reads as many bytes as its own IDs have:
    ``short_length``, the first octet and the server ID.
    """
    if len(datagram) < 1 + short_length or datagram[0] & 0x40 == 0:  # the fixed bit (§17.2)
        return None
    if datagram[0] & 0x80:
        if len(datagram) < 6 or len(datagram) < 6 + datagram[5]:
            return None
        return datagram[6 : 6 + datagram[5]]
    return datagram[1 : 1 + short_length]


def server_id_of(dcid: bytes, length: int = SERVER_ID_LENGTH) -> bytes | None:
    """The server ID in a QUIC-LB plaintext connection ID, or None when it carries none.

    >>> server_id_of(bytes.fromhex("40" "00000000000000a1" "ffee")).hex()
    '00000000000000a1'
    >>> server_id_of(bytes.fromhex("e0" "00000000000000a1")) is None  # config rotation 0b111
    True
    """
    if len(dcid) < 1 + length or dcid[0] >> 5 == UNROUTABLE_ROTATION:
        return None
    return dcid[1 : 1 + length]


@dataclass(frozen=True, slots=True)
class QuicRoute:
    """What a QUIC listener read in one datagram: the DCID, its server ID, the target."""

    dcid: bytes | None
    server_id: bytes | None
    target: str | None

    @property
    def by_connection_id(self) -> bool:
        """Whether the server ID named a registered target (else the 5-tuple decides)."""
        return self.target is not None


def quic_route(datagram: bytes, server_ids: Iterable[tuple[str, str]], live: Iterable[str]) -> QuicRoute:
    """Which target a QUIC listener sends ``datagram`` to by its connection ID, if any.

    ``server_ids`` are the group's ``(target, QuicServerId)`` pairs; ``live`` the targets
    that may receive traffic. A DCID without a known server ID (a client's first Initial,
    whose DCID the client drew at random) leaves ``target`` None: the 5-tuple hash decides.
    """
    dcid = destination_connection_id(datagram)
    server_id = server_id_of(dcid) if dcid is not None else None
    target = None
    if server_id is not None:
        wanted = "0x" + server_id.hex()
        alive = set(live)
        target = next((t for t, sid in server_ids if sid == wanted and t in alive), None)
    return QuicRoute(dcid, server_id, target)


def check_config(config: Any) -> None:
    """AWS's rules for QUIC listeners (NLB-UG create-listener; API TargetDescription).

    ``config`` is a :class:`~osilab.balancers.config.BalancerConfig`. Raises
    :class:`~osilab.errors.ConfigError` in AWS's words.
    """
    quic = [li for li in config.listeners if li.protocol in QUIC_LISTENER_PROTOCOLS]
    if len(quic) > 1:
        raise ConfigError("only one QUIC or TCP_QUIC listener is allowed on a Network Load "
                          "Balancer at any given time")  # fmt: skip
    udp = [li for li in config.listeners if li.protocol in ("UDP", "TCP_UDP")]
    if quic and udp:
        raise ConfigError(f"listener {quic[0].protocol}:{quic[0].port}: QUIC and TCP_QUIC listeners "
                          "are not allowed on a Network Load Balancer that has UDP or TCP_UDP "
                          f"listeners ({udp[0].protocol}:{udp[0].port})")  # fmt: skip
    for listener in quic:
        seen: dict[str, str] = {}
        for action in listener.default_actions:
            for entry in action.target_groups:
                group = config.group(entry.name)
                if group.protocol != listener.protocol:
                    raise ConfigError(f"listener {listener.protocol}:{listener.port}: the target "
                                      f"groups for a {listener.protocol} listener must use the "
                                      f"{listener.protocol} protocol ({group.name!r} uses "
                                      f"{group.protocol})")  # fmt: skip
                ids = dict(group.quic_server_ids)
                for target in group.targets:
                    if target not in ids:
                        raise ConfigError(f"target group {group.name!r}: target {target} needs a "
                                          "QuicServerId: it is required if the protocol is QUIC "
                                          "or TCP_QUIC")  # fmt: skip
                    if ids[target] in seen and seen[ids[target]] != target:
                        raise ConfigError(f"target group {group.name!r}: QuicServerId {ids[target]} "
                                          f"of {target} is already used by {seen[ids[target]]}: "
                                          "the value must be unique at the listener level")  # fmt: skip
                    seen[ids[target]] = target
    for group in config.target_groups:
        if group.quic_server_ids and group.protocol not in QUIC_LISTENER_PROTOCOLS:
            raise ConfigError(f"target group {group.name!r}: a QuicServerId can't be used with "
                              f"the {group.protocol} protocol, only with QUIC or TCP_QUIC")  # fmt: skip

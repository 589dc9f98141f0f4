"""Flow hashes and Maglev consistent hashing: how an L4 balancer picks a target.

Theory of operation
-------------------
An L4 balancer sees addresses and ports, nothing else. It turns a flow's identifying
fields into a number (a *flow hash*) and the number into a target. Two questions:

1. **Which fields?** (:data:`FLOW_HASHES`)

   - ``"5-tuple"``: protocol, source IP, source port, destination IP, destination port.
     Every TCP connection (new source port) may land on a different target; every packet
     of one connection lands on the same one.
   - ``"5-tuple+seq"``: AWS's own words for the NLB's TCP hash are "protocol, source IP
     address, source port, destination IP address, destination port, and TCP sequence
     number" [NLB-UG introduction.md]. Only the SYN's *initial* sequence number can be
     meant (later packets carry other numbers, yet follow the flow), so this option adds
     the client's ISN to the 5-tuple: a reused 4-tuple with a fresh ISN (a new
     connection) is hashed again. It changes nothing for the packets of one connection,
     because the balancer remembers the flow in its table after the first packet.
   - ``"source-ip"`` (2-tuple: source IP, destination IP) and ``"source-ip-proto"``
     (3-tuple: plus protocol): *source IP affinity*. Every connection from one client
     (or from one NAT) goes to the same target; this is what NLB ``source_ip``
     stickiness gives.

2. **Which target for a hash?** (:class:`MaglevTable`, :func:`modulo_pick`, or
   :func:`nft_jhash_index`, the lab's nftables balancer)

   ``hash mod N`` is the obvious answer and the worst one: when N changes, almost every
   flow moves. Maglev (Eisenbud et al., *Maglev: A Fast and Reliable Software Network
   Load Balancer*, NSDI 2016, §3.4) builds a lookup table of M slots (M prime, 65537 by
   default) in which every backend owns about M/N slots, and removing a backend moves
   little more than that backend's own slots.

The hash is stable: keyed BLAKE2b over the fields' bytes with a fixed seed. Python's
``hash()`` is randomised per process (PYTHONHASHSEED) and would make every replay
different; it is never used here.

This module knows nothing of packets, configurations or HTTP: it hashes values.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from osilab.errors import ConfigError

__all__ = [
    "FLOW_HASHES",
    "stable_hash",
    "flow_hash",
    "flow_hash_fields",
    "MaglevTable",
    "modulo_pick",
    "maglev_disruption",
    "linux_jhash",
    "nft_jhash_index",
]

#: The flow-hash field sets this module knows.
FLOW_HASHES = ("5-tuple", "5-tuple+seq", "source-ip", "source-ip-proto")

_PROTO_NUMBERS = {"tcp": 6, "udp": 17}


def stable_hash(data: bytes, seed: int = 0, *, purpose: bytes = b"osilab") -> int:
    """A 64-bit hash of ``data`` that is the same in every process and on every machine.

    Keyed BLAKE2b (RFC 7693) with the seed as key and ``purpose`` as personalisation,
    so hashes for different jobs (a flow, a Maglev offset, a skip) are independent.

    >>> stable_hash(b"192.0.2.11:80") == stable_hash(b"192.0.2.11:80")
    True
    """
    digest = hashlib.blake2b(
        data,
        digest_size=8,
        key=seed.to_bytes(8, "big", signed=False),
        person=purpose[:16],
    ).digest()
    return int.from_bytes(digest, "big")


@lru_cache(maxsize=4096)
def _ip_bytes(ip: str) -> bytes:
    """An address's packed bytes (4 for IPv4, 16 for IPv6), as a hash reads them.

    ``inet_pton`` (C) reads the addresses osilab writes, ten times faster than
    :mod:`ipaddress`; a text it refuses goes to :mod:`ipaddress`, which gives the same
    bytes for what it accepts and says why it refuses the rest. Clients come back (a
    keep-alive client opens many connections), so the last few thousand are remembered.
    """
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except (OSError, TypeError):  # (TypeError: not a text, which ipaddress may still read)
        return ipaddress.ip_address(ip).packed


def flow_hash(
    kind: str,
    proto: str,
    src_ip: str,
    src_port: int,
    dst_ip: str,
    dst_port: int,
    *,
    seq: int | None = None,
    seed: int = 0,
) -> int:
    """The flow hash of a packet's fields, for one of :data:`FLOW_HASHES`.

    >>> a = flow_hash("5-tuple", "tcp", "198.51.100.7", 51514, "203.0.113.20", 80)
    >>> b = flow_hash("5-tuple", "tcp", "198.51.100.7", 51515, "203.0.113.20", 80)
    >>> a != b   # another source port, another connection, another hash
    True
    >>> flow_hash("source-ip", "tcp", "198.51.100.7", 1, "203.0.113.20", 80) == \\
    ...     flow_hash("source-ip", "tcp", "198.51.100.7", 2, "203.0.113.20", 80)
    True
    """
    number = _PROTO_NUMBERS.get(proto, 0).to_bytes(1, "big")
    if kind == "5-tuple" or kind == "5-tuple+seq":
        data = (
            number
            + _ip_bytes(src_ip)
            + src_port.to_bytes(2, "big")
            + _ip_bytes(dst_ip)
            + dst_port.to_bytes(2, "big")
        )
        if kind == "5-tuple+seq":
            data += (seq or 0).to_bytes(4, "big")
    elif kind == "source-ip":
        data = _ip_bytes(src_ip) + _ip_bytes(dst_ip)
    elif kind == "source-ip-proto":
        data = number + _ip_bytes(src_ip) + _ip_bytes(dst_ip)
    else:
        raise ConfigError(f"unknown flow hash {kind!r} (one of {', '.join(FLOW_HASHES)})")
    return stable_hash(data, seed, purpose=b"flow")


def flow_hash_fields(kind: str, proto: str = "tcp", *, ipv6: bool = False) -> tuple[str, ...]:
    """The packet fields a flow hash reads, as Wireshark names them (a decision's ``seen``).

    >>> flow_hash_fields("5-tuple", "tcp")
    ('ip.src', 'tcp.srcport', 'ip.dst', 'tcp.dstport')
    """
    ip = "ipv6" if ipv6 else "ip"
    transport = "udp" if proto == "udp" else "tcp"
    if kind == "5-tuple":
        return (f"{ip}.src", f"{transport}.srcport", f"{ip}.dst", f"{transport}.dstport")
    if kind == "5-tuple+seq":
        fields = (f"{ip}.src", f"{transport}.srcport", f"{ip}.dst", f"{transport}.dstport")
        return fields + ("tcp.seq",) if transport == "tcp" else fields
    if kind == "source-ip":
        return (f"{ip}.src", f"{ip}.dst")
    if kind == "source-ip-proto":
        return (f"{ip}.src", f"{ip}.dst", "ipv6.nxt" if ipv6 else "ip.proto")
    raise ConfigError(f"unknown flow hash {kind!r} (one of {', '.join(FLOW_HASHES)})")


def modulo_pick(value: int, backends: Sequence[str]) -> str:
    """``backends[hash mod N]``: simple, even, and it reshuffles almost everything when N changes."""
    if not backends:
        raise ConfigError("no backend to pick from")
    return backends[value % len(backends)]


@dataclass(frozen=True, slots=True)
class MaglevTable:
    """A Maglev lookup table: ``table[slot]`` is the backend that owns hash slot ``slot``.

    Built exactly as in the Maglev paper §3.4 (Figure/Pseudocode 1):

    - every backend *i* gets a permutation of the slots from two hashes of its name,
      ``offset = h1(name) mod M`` and ``skip = h2(name) mod (M - 1) + 1``, and
      ``permutation[i][j] = (offset + j * skip) mod M`` (M prime, so every skip visits
      every slot);
    - backends take turns; on its turn a backend walks its permutation to its next
      slot that is still free and claims it; until all M slots are taken.

    With weights (Katran's "modified Maglev", ``katran/lib/MaglevBase.cpp``) a backend of
    weight *w* claims *w* slots per turn, so weights 1:2 in a 65537 table give 21,846 and
    43,691 slots (the figure Envoy documents).

    Lookup is ``table[flow_hash mod M]``: one array index per new flow.

    Attributes:
        backends: backend names, in the order they take turns.
        size: M, the number of slots (prime).
        table: backend index per slot.
        permutations: ``(offset, skip)`` per backend.
    """

    backends: tuple[str, ...]
    size: int
    table: tuple[int, ...]
    permutations: tuple[tuple[int, int], ...]

    @classmethod
    def build(
        cls,
        backends: Sequence[str],
        size: int = 65537,
        *,
        weights: Sequence[int] | None = None,
        seed: int = 0,
    ) -> MaglevTable:
        """Build the table for ``backends`` (names such as ``"192.0.2.11:80"``).

        Tables are immutable, so identical requests share one cached table (a health
        change that brings a target back finds its old table again).
        """
        return _build_cached(
            tuple(backends), size, None if weights is None else tuple(weights), seed
        )

    @classmethod
    def _build(
        cls,
        backends: tuple[str, ...],
        size: int,
        weights: tuple[int, ...] | None,
        seed: int,
    ) -> MaglevTable:
        if size < 2 or any(size % d == 0 for d in range(2, int(size**0.5) + 1)):
            raise ConfigError(f"the Maglev table size must be a prime number, not {size}")
        permutations = []
        for name in backends:
            data = name.encode()
            offset = stable_hash(data, seed, purpose=b"maglev-offset") % size
            skip = stable_hash(data, seed, purpose=b"maglev-skip") % (size - 1) + 1
            permutations.append((offset, skip))
        return cls.from_permutations(backends, permutations, size, weights=weights)

    @classmethod
    def from_permutations(
        cls,
        backends: Sequence[str],
        permutations: Sequence[tuple[int, int]],
        size: int,
        *,
        weights: Sequence[int] | None = None,
    ) -> MaglevTable:
        """Build from given ``(offset, skip)`` pairs (the paper's worked examples)."""
        count = len(backends)
        if count == 0:
            raise ConfigError("a Maglev table needs at least one backend")
        if len(permutations) != count:
            raise ConfigError("one (offset, skip) pair per backend")
        if weights is None:
            weights = [1] * count
        if len(weights) != count or any(w < 0 for w in weights) or sum(weights) == 0:
            raise ConfigError("one non-negative weight per backend, not all zero")
        entry = [-1] * size
        next_index = [0] * count
        filled = 0
        while True:
            for i, (offset, skip) in enumerate(permutations):
                for _ in range(weights[i]):
                    slot = (offset + next_index[i] * skip) % size
                    while entry[slot] >= 0:
                        next_index[i] += 1
                        slot = (offset + next_index[i] * skip) % size
                    entry[slot] = i
                    next_index[i] += 1
                    filled += 1
                    if filled == size:
                        return cls(tuple(backends), size, tuple(entry), tuple(permutations))

    def slot(self, value: int) -> int:
        """The slot a hash value falls into: ``value mod M``."""
        return value % self.size

    def lookup(self, value: int) -> str:
        """The backend for a flow hash."""
        return self.backends[self.table[value % self.size]]

    def owners(self) -> tuple[str, ...]:
        """The backend name of every slot, slot 0 first."""
        return tuple(self.backends[i] for i in self.table)

    def counts(self) -> dict[str, int]:
        """How many slots each backend owns."""
        counter = Counter(self.table)
        return {name: counter.get(i, 0) for i, name in enumerate(self.backends)}


@lru_cache(maxsize=32)
def _build_cached(
    backends: tuple[str, ...], size: int, weights: tuple[int, ...] | None, seed: int
) -> MaglevTable:
    return MaglevTable._build(backends, size, weights, seed)


# --------------------------------------------------------------------------- Linux jhash

_MASK = 0xFFFFFFFF


def _rol(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


#: The rotations of ``__jhash_mix``'s six steps (``include/linux/jhash.h``).
_MIX_ROTATIONS = (4, 6, 8, 16, 19, 4)


def _jhash_mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """``__jhash_mix``: six steps of ``x -= z; x ^= rol32(z, r); z += y``.

    Each step moves the roles on by one, ``(x, y, z)`` = ``(a, b, c)``, then
    ``(b, c, a)``, then ``(c, a, b)``; after six steps they are back where they started.
    """
    x, y, z = a, b, c
    for rotation in _MIX_ROTATIONS:
        x = (x - z) & _MASK ^ _rol(z, rotation)
        z = (z + y) & _MASK
        x, y, z = y, z, x
    return x, y, z


def _jhash_final(a: int, b: int, c: int) -> int:
    c = (c ^ b) - _rol(b, 14) & _MASK
    a = (a ^ c) - _rol(c, 11) & _MASK
    b = (b ^ a) - _rol(a, 25) & _MASK
    c = (c ^ b) - _rol(b, 16) & _MASK
    a = (a ^ c) - _rol(c, 4) & _MASK
    b = (b ^ a) - _rol(a, 14) & _MASK
    c = (c ^ b) - _rol(b, 24) & _MASK
    return c


def linux_jhash(data: bytes, initval: int) -> int:
    """The Linux kernel's ``jhash()`` (Bob Jenkins' lookup3, ``include/linux/jhash.h``).

    Words are read little-endian (as on x86, where the lab runs); the tail of 1-12 bytes
    goes through the final mix, an empty tail does not.
    """
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    offset = 0
    while length > 12:
        a = (a + int.from_bytes(data[offset : offset + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[offset + 4 : offset + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[offset + 8 : offset + 12], "little")) & _MASK
        a, b, c = _jhash_mix(a, b, c)
        length -= 12
        offset += 12
    if length == 0:
        return c
    tail = data[offset:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    return _jhash_final(a, b, c)


def nft_jhash_index(
    src_ip: str, src_port: int, dst_ip: str, dst_port: int, modulus: int, seed: int
) -> int:
    """What ``jhash ip saddr . tcp sport . ip daddr . tcp dport mod N seed S`` gives in nftables.

    This is the hash of the osilab lab's own L4 balancer (``../shared/docs/design.md``, "The lab"),
    so the NLB model can be checked packet for packet against a real kernel balancer.
    nftables lays a concatenation out in 32-bit registers, so each 2-byte port is
    followed by two zero bytes (16 bytes for IPv4); the kernel computes
    ``jhash(data, 16, seed)`` and scales it into ``[0, N)`` as
    ``reciprocal_scale``: ``(hash * N) >> 32`` (``net/netfilter/nft_hash.c``).
    """
    data = b"".join(
        (
            ipaddress.ip_address(src_ip).packed,
            src_port.to_bytes(2, "big"),
            b"\0\0",
            ipaddress.ip_address(dst_ip).packed,
            dst_port.to_bytes(2, "big"),
            b"\0\0",
        )
    )
    return (linux_jhash(data, seed) * modulus) >> 32


def maglev_disruption(before: MaglevTable, after: MaglevTable) -> float:
    """The fraction of slots whose backend differs between two tables of the same size.

    When one of N backends is removed, at least its own ~1/N of the slots must move;
    anything above that is Maglev's price for building the table so fast.
    """
    if before.size != after.size:
        raise ConfigError("compare tables of the same size")
    old, new = before.owners(), after.owners()
    return sum(1 for a, b in zip(old, new, strict=True) if a != b) / before.size

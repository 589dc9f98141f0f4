"""Maglev consistent hashing (NSDI 2016 §3.4) and the stable flow hashes.

The evenness and disruption figures are measured and printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from osilab.balancers.hashing import (
    MaglevTable,
    flow_hash,
    flow_hash_fields,
    maglev_disruption,
    modulo_pick,
    stable_hash,
)
from osilab.errors import ConfigError


def test_paper_style_vector_m7() -> None:
    """lb-reference.md §3.4: M=7, (offset, skip) B0=(3,4), B1=(0,2), B2=(3,1)."""
    table = MaglevTable.from_permutations(["B0", "B1", "B2"], [(3, 4), (0, 2), (3, 1)], 7)
    assert table.owners() == ("B1", "B0", "B1", "B0", "B2", "B2", "B0")
    removed = MaglevTable.from_permutations(["B0", "B2"], [(3, 4), (3, 1)], 7)
    assert removed.owners() == ("B0", "B0", "B0", "B0", "B2", "B2", "B2")
    # slot 6 moved B0 -> B2 although B0 survived: disruption beyond B1's own 2 slots
    assert maglev_disruption(table, removed) == pytest.approx(3 / 7)


@pytest.mark.parametrize("backends", [3, 10, 100, 500])
def test_evenness_65537(backends: int) -> None:
    names = [f"10.0.{i // 250}.{i % 250}:80" for i in range(backends)]
    counts = MaglevTable.build(names, 65537).counts()
    spread = max(counts.values()) - min(counts.values())
    relative = spread / min(counts.values())
    print(
        f"\nMaglev M=65537 N={backends}: slots min {min(counts.values())} max {max(counts.values())} "
        f"(difference {spread} slot(s), {relative:.4%})"
    )
    assert sum(counts.values()) == 65537
    assert spread <= 1  # round-robin filling: every backend gets floor or ceil of M/N
    if 65537 > 100 * backends:
        assert relative <= 0.01  # the paper: M > 100 N -> at most ~1% difference


@pytest.mark.parametrize("backends", [5, 10, 20, 100])
def test_disruption_when_one_backend_is_removed(backends: int) -> None:
    names = [f"192.0.2.{10 + i}:80" for i in range(backends)]
    full = MaglevTable.build(names, 65537)
    moved = []
    for victim in range(0, backends, max(1, backends // 10)):  # up to 10 victims, evenly spread
        smaller = MaglevTable.build(names[:victim] + names[victim + 1 :], 65537)
        moved.append(maglev_disruption(full, smaller))
    minimum = 1 / backends
    mean = sum(moved) / len(moved)
    # the same with hash mod N, for contrast
    rng = random.Random(1)
    keys = [rng.getrandbits(64) for _ in range(20000)]
    modulo_moved = sum(modulo_pick(k, names) != modulo_pick(k, names[1:]) for k in keys) / len(keys)
    print(
        f"\nMaglev remove 1 of {backends}: slots moved mean {mean:.4f}, max {max(moved):.4f} "
        f"(minimum 1/N = {minimum:.4f}, ratio {mean / minimum:.2f}x); hash mod N moves {modulo_moved:.3f}"
    )
    assert all(m >= minimum - 1e-9 for m in moved)  # at least the removed backend's own slots
    # measured: 1.01x (N=5) ... 1.59x (N=100); Envoy documents "about 2x" a ring hash's 1/N.
    # (With N close to M/100 it grows: 5.6x at N=500, 6.6x at N=1000, still ~1% of keys.)
    assert mean < 2.0 * minimum
    assert modulo_moved > 0.5  # the reason consistent hashing exists


def test_only_the_removed_backends_flows_must_move_mostly() -> None:
    names = [f"192.0.2.{10 + i}:80" for i in range(8)]
    full = MaglevTable.build(names, 65537)
    smaller = MaglevTable.build(names[1:], 65537)
    rng = random.Random(7)
    flows = [rng.getrandbits(64) for _ in range(20000)]
    on_survivors = [f for f in flows if full.lookup(f) != names[0]]
    kept = sum(full.lookup(f) == smaller.lookup(f) for f in on_survivors) / len(on_survivors)
    print(f"\nmeasured: flows on surviving backends that stay put: {kept:.4f}")
    assert kept > 0.9


def test_weighted_maglev_envoy_figure() -> None:
    """Katran's modified Maglev: weight w claims w slots per turn. Envoy: 1:2 -> 21,846 and 43,691."""
    counts = MaglevTable.build(["a", "b"], 65537, weights=[1, 2]).counts()
    assert counts == {"a": 21846, "b": 43691}


def test_table_size_must_be_prime() -> None:
    with pytest.raises(ConfigError, match="prime"):
        MaglevTable.build(["a"], 65536)


def test_lookup_uses_hash_mod_m() -> None:
    table = MaglevTable.from_permutations(["B0", "B1", "B2"], [(3, 4), (0, 2), (3, 1)], 7)
    assert [table.lookup(v) for v in (0, 7, 8, 13)] == ["B1", "B1", "B0", "B0"]


def test_flow_hash_fields() -> None:
    assert flow_hash_fields("5-tuple", "tcp") == ("ip.src", "tcp.srcport", "ip.dst", "tcp.dstport")
    assert flow_hash_fields("5-tuple", "udp", ipv6=True) == (
        "ipv6.src",
        "udp.srcport",
        "ipv6.dst",
        "udp.dstport",
    )
    assert flow_hash_fields("5-tuple+seq", "tcp")[-1] == "tcp.seq"
    assert flow_hash_fields("source-ip") == ("ip.src", "ip.dst")
    assert flow_hash_fields("source-ip-proto") == ("ip.src", "ip.dst", "ip.proto")


def test_flow_hash_kinds() -> None:
    base = ("tcp", "198.51.100.7", 51514, "203.0.113.20", 80)
    other_port = ("tcp", "198.51.100.7", 51515, "203.0.113.20", 80)
    assert flow_hash("5-tuple", *base) != flow_hash("5-tuple", *other_port)
    assert flow_hash("source-ip", *base) == flow_hash("source-ip", *other_port)
    assert flow_hash("source-ip-proto", *base) != flow_hash("source-ip-proto", "udp", *base[1:])
    assert flow_hash("5-tuple+seq", *base, seq=1) != flow_hash("5-tuple+seq", *base, seq=2)
    assert flow_hash("5-tuple", *base, seed=1) != flow_hash("5-tuple", *base, seed=2)


def test_hash_is_stable_across_processes() -> None:
    """Python's hash() changes per process; ours must not."""
    code = (
        "from osilab.balancers.hashing import flow_hash, MaglevTable;"
        "print(flow_hash('5-tuple','tcp','198.51.100.7',51514,'203.0.113.20',80),"
        "hash(MaglevTable.build(['a:1','b:2','c:3'], 251).table))"
    )
    here = flow_hash("5-tuple", "tcp", "198.51.100.7", 51514, "203.0.113.20", 80)
    table_hash = hash(
        MaglevTable.build(["a:1", "b:2", "c:3"], 251).table
    )  # tuple of ints: not randomised
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.split()
        assert int(out[0]) == here and int(out[1]) == table_hash
    assert stable_hash(b"x") != stable_hash(b"x", purpose=b"other")


def test_linux_jhash_known_values() -> None:
    """lookup3 edge cases: an empty key returns the initial c unmixed; the tail is mixed."""
    from osilab.balancers.hashing import linux_jhash, nft_jhash_index

    assert linux_jhash(b"", 0) == 0xDEADBEEF
    assert linux_jhash(b"", 1) == 0xDEADBEF0
    assert linux_jhash(b"a", 0) != linux_jhash(b"b", 0)
    assert linux_jhash(bytes(16), 0) != linux_jhash(bytes(15), 0)  # the length is hashed too
    # the lab's nftables choice for one recorded connection (captures/nlb/truth.json)
    assert nft_jhash_index("198.51.100.7", 38327, "203.0.113.20", 80, 2, 0x05115EED) == 1

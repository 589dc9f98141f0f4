"""The streams stage's fast path gives exactly the messages of the packet path.

``conversations(osilab.read(path))`` reads TCP payloads straight from the records
(:func:`osilab.pipeline.tracker._fast_facts`); ``conversations(iter(capture))`` builds
every :class:`Packet`. On every bundled and third-party capture (damaged, truncated,
IPv6, VLAN, cooked, fragmented...) the two must yield the same messages in the same
order, and tell ``on_syn`` of the same SYNs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shared_paths import CAPTURES, thirdparty_captures

import osilab
from osilab.capture.facts import flow_facts, missing_bytes
from osilab.pipeline import conversations
from osilab.pipeline.tracker import _stream_facts
from osilab.streams.flows import transport_facts

CAPTURE_FILES = thirdparty_captures() + sorted(CAPTURES.glob("*/*.pcapng"))


def _messages(source) -> tuple[list[str], list[tuple]]:  # type: ignore[no-untyped-def]
    syns: list[tuple] = []
    found = [repr(m) for m in conversations(source, on_syn=lambda *facts: syns.append(facts))]
    return found, syns


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_path_gives_the_same_messages(path: Path) -> None:
    fast, fast_syns = _messages(osilab.read(path))
    full, full_syns = _messages(iter(osilab.read(path)))
    assert fast == full
    assert fast_syns == full_syns


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_facts_are_the_packet_facts(path: Path) -> None:
    """Packet by packet: the same transport facts and snap-length gap as from a Packet."""
    packets = iter(osilab.read(path))
    records = list(osilab.read(path).raw_records())
    fast = list(flow_facts(osilab.read(path)))
    assert len(fast) == len(records)
    for found, pkt in zip(fast, packets, strict=False):
        no = found.no
        expected = transport_facts(pkt)
        assert (no, found.time, found.wire_length) == (pkt.no, pkt.time, pkt.wire_length)
        facts = _stream_facts(found) if found.proto is not None else None
        assert facts == expected, f"packet {no}"
        if expected is not None and expected[0] == "tcp":
            missing = missing_bytes(pkt.layers, pkt.data, pkt.wire_length, len(expected[8]))
            assert found.missing == missing, f"packet {no}"

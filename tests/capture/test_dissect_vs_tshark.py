"""Per-packet dissection against tshark: the link, network and transport layers of every frame.

This is the part of the stack one packet decides on its own. The application layers, which
Wireshark places after TCP reassembly, are compared by tests/test_layers_vs_tshark.py.
"""

from __future__ import annotations

import pytest
from shared_paths import thirdparty_captures
from tshark_oracle import frame_protocols, to_osilab_names

import osilab

LOWER = {"eth", "vlan", "sll", "null", "arp", "ip", "ipv6", "icmp", "icmpv6", "tcp", "udp"}


def _lower(names: list[str]) -> list[str]:
    out = []
    for name in names:
        if name not in LOWER:
            break
        out.append(name)
    return out


def _explain(pkt, got: list[str], expected: list[str]) -> str | None:
    """Why osilab and tshark may rightly differ on this frame's lower stack, or None."""
    net = pkt.layer("ip") or pkt.layer("ipv6")
    if net is not None and (net.get("frag_offset") or net.get("fragment.offset")) and expected[: len(got)] == got:
        return ("last fragment: tshark reassembles the IP datagram and shows its transport header "
                "here; alone, this packet holds only a fragment")
    if net is not None and net.name == "ip" and net.damaged and "version 6" in net.damaged:
        return "ethertype says IPv4 but the version nibble is 6: tshark re-dissects as IPv6, osilab marks it damaged"
    if got == ["eth", "ip", "tcp"] and expected == ["eth"] and pkt.damaged:
        return "fuzzed frame: tshark stops after the ethertype, osilab decodes IPv4 and marks TCP damaged"
    return None


def test_lower_stack_matches_tshark_on_every_thirdparty_frame(tshark, thirdparty):
    compared = matched = 0
    explained = []
    for path in thirdparty_captures():
        ours = {p.no: p for p in osilab.read(path) if p.read_error is None}
        theirs = frame_protocols(str(path))
        key = f"{path.parent.name}/{path.name}"
        for no, pkt in ours.items():
            if no not in theirs:
                continue
            compared += 1
            expected = _lower(to_osilab_names(theirs[no]))
            got = _lower(pkt.names())
            if got == expected:
                matched += 1
            elif (reason := _explain(pkt, got, expected)) is not None:
                explained.append((key, no, reason))
            else:
                pytest.fail(f"{key} frame {no}: osilab {got} vs tshark {expected} ({theirs[no]})")
    print(f"\nmeasured: lower stack: {matched}/{compared} frames match tshark; the other {len(explained)} are explained one by one (run with -s to list them)")
    for row in explained:
        print("   ", *row)
    assert compared > 2000
    assert matched + len(explained) == compared

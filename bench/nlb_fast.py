"""A proposed fast path for ``NetworkLoadBalancer``: follow known flows without a PacketFate.

``NetworkLoadBalancer.feed`` (osilab/balancers/nlb.py, not ours to edit) is the teaching
core: keyword arguments, a health check, two key tuples and a :class:`PacketFate` per
packet. A replay that only wants the decisions and the accounting can skip all of that
for the common packet -- one of a flow the table already knows -- and call ``feed`` only
for the rest (SYNs, new flows, damage, idle timeouts, pending health changes).

:func:`replay_flow_tuples` is that loop, written against the balancer's current
attributes so that its gain can be measured; ``run.py`` checks that it gives the same
decisions and the same accounting as ``feed`` for every packet. The proposal is to move
it into ``nlb.py`` as ``NetworkLoadBalancer.feed_flows(tuples) -> int``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osilab.balancers import nlb as nlb_module

__all__ = ["replay_flow_tuples"]

_SYN, _ACK, _FIN_RST = 0x02, 0x10, 0x05


def replay_flow_tuples(nlb: Any, tuples: Iterable[tuple]) -> int:
    """Feed :func:`osilab.capture.fast.flow_tuples` items to ``nlb``; returns the packet count."""
    flows = nlb._flows
    feed = nlb.feed
    sweep_every = nlb_module.SWEEP_EVERY
    pending = any(state.pending for state in nlb._groups.values())
    routed = 0
    count = 0
    for no, time, proto, src, sport, dst, dport, flags, seq, damaged in tuples:
        count += 1
        state = None
        if not pending and damaged is None and sport is not None and nlb._first_time is not None:
            if proto == "tcp" and flags & _SYN and not flags & _ACK:
                state = None  # a SYN may open a new flow: the full path decides
            else:
                state = flows.get((proto, dst, dport, src, sport))  # a reply from the target side
                if state is None:
                    state = flows.get((proto, src, sport, dst, dport))
                if state is not None and (
                    state.expired or time - state.last_seen > state.idle_timeout
                ):
                    state = None  # idle timeout: the full path says what happens
        if state is None:
            feed(no=no, time=time, proto=proto, src_ip=src, src_port=sport, dst_ip=dst, dst_port=dport,
                 tcp_flags=flags or 0, tcp_seq=seq, damaged=damaged)  # fmt: skip
            pending = pending and any(s.pending for s in nlb._groups.values())
            continue
        nlb._fed += 1
        if nlb._fed % sweep_every == 0:
            nlb._sweep(time)
            if id(state) not in {id(s) for s in flows.values()}:  # swept away just now
                nlb._fed -= 1
                feed(no=no, time=time, proto=proto, src_ip=src, src_port=sport, dst_ip=dst,
                     dst_port=dport, tcp_flags=flags or 0, tcp_seq=seq, damaged=damaged)  # fmt: skip
                continue
        state.last_seen = time
        state.packets += 1
        if flags and flags & _FIN_RST:
            state.closed = True
        routed += 1
    nlb.accounting["routed"] += routed
    return count

"""One flow's bytes, both directions, as Wireshark's "Follow TCP Stream" shows them.

:func:`follow` needs only the flow table and two reassemblers: it puts every packet in its
flow (:class:`~osilab.streams.flows.FlowTable`), and reassembles the one flow asked for,
in the order its bytes became readable. Bytes never captured come out as a
:class:`~osilab.streams.reassembly.Gap`, never glued over. No protocol parser runs.

A flow is named by its index (as ``osilab flows`` numbers them), its ``client-server``
form or a :class:`~osilab.streams.keys.FlowKey` (:func:`find_flow`). The endpoints name
it on any hop: in a capture of several interfaces, the first flow with those endpoints
is followed.

What this module must not know: files, printing, or any protocol's syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from osilab.capture.facts import missing_bytes
from osilab.capture.packet import Packet
from osilab.streams.flows import FlowTable
from osilab.streams.keys import Direction, FlowKey
from osilab.streams.reassembly import Chunk, Gap, StreamReassembler

__all__ = ["FollowItem", "find_flow", "follow"]


@dataclass(frozen=True, slots=True)
class FollowItem:
    """One piece of a followed flow: a chunk of bytes or a gap, and its direction."""

    direction: Direction
    item: Chunk | Gap


def find_flow(flow: str | int | FlowKey, key: FlowKey, index: int) -> bool:
    """Whether ``flow`` (a FlowKey, a ``client-server`` string or an index) names this flow."""
    if isinstance(flow, int):
        return flow == index
    if isinstance(flow, str):
        if flow.isdigit():
            return int(flow) == index
        try:
            flow = FlowKey.parse(flow, key.proto)
        except ValueError:
            return False
    return {flow.client, flow.server} == {key.client, key.server} and flow.proto == key.proto


def follow(packets: Iterable[Packet], flow: str | int | FlowKey) -> Iterator[FollowItem]:
    """One TCP flow's conversation, both directions, in the order the bytes became readable.

    ``flow`` is a flow index (as ``osilab flows`` numbers them), a ``client-server`` string
    or a :class:`FlowKey`. UDP flows yield one chunk per datagram.
    """
    table = FlowTable()
    chosen: int | None = None
    streams: tuple[StreamReassembler, StreamReassembler] | None = None
    for pkt in packets:
        accounted = table.account(pkt)
        if accounted is None:
            continue
        (proto, _, _, _, _, flags, _, seq, payload), found, direction, _ = accounted
        if chosen is None and find_flow(flow, found.key, found.index):
            chosen = found.index
            streams = (StreamReassembler(), StreamReassembler())
        if found.index != chosen or streams is None:
            continue
        if proto == "udp":
            if payload:
                yield FollowItem(direction, Chunk(payload, 0, pkt.no, pkt.time, pkt.no))
            continue
        side = 0 if direction is Direction.TO_SERVER else 1
        items = streams[side].segment(
            seq, flags or 0, payload, pkt.no, pkt.time,
            missing_bytes(pkt.layers, pkt.data, pkt.wire_length, len(payload)),
        )  # fmt: skip
        for item in items:
            yield FollowItem(direction, item)
    if streams is not None:
        for side, direction in ((0, Direction.TO_SERVER), (1, Direction.TO_CLIENT)):
            for item in streams[side].finish():
                yield FollowItem(direction, item)

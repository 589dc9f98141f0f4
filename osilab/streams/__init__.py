"""Streams: flows, TCP state and reassembly -- knowing no application protocol.

The stage between single packets (:mod:`osilab.capture`) and application protocols
(:mod:`osilab.protocols`):

* :mod:`~osilab.streams.keys` -- flow identity (:class:`Endpoint`, :class:`FlowKey`,
  :class:`Direction`);
* :mod:`~osilab.streams.tcp` -- the TCP connection state machine, written as a table;
* :mod:`~osilab.streams.flows` -- the flow table (bounded: finished flows leave it);
* :mod:`~osilab.streams.reassembly` -- one direction's segments back into ordered bytes.

Nothing here imports a protocol parser: :mod:`osilab.pipeline` joins the two.
"""

from osilab.streams.flows import FlowRecord, FlowTable
from osilab.streams.flows import flow_records as flows
from osilab.streams.keys import Direction, Endpoint, FlowKey
from osilab.streams.reassembly import Chunk, Gap, StreamReassembler
from osilab.streams.tcp import TcpState

__all__ = [
    "Direction",
    "Endpoint",
    "FlowKey",
    "FlowRecord",
    "FlowTable",
    "TcpState",
    "StreamReassembler",
    "Chunk",
    "Gap",
    "flows",
]

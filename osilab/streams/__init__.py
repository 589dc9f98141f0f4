"""Streams: flows, TCP state, reassembly, and the application messages they carry.

The stage between single packets (:mod:`osilab.capture`) and application protocols
(:mod:`osilab.protocols`):

* :mod:`~osilab.streams.keys` -- flow identity (:class:`Endpoint`, :class:`FlowKey`);
* :mod:`~osilab.streams.tcp` -- the TCP connection state machine, written as a table;
* :mod:`~osilab.streams.flows` -- the flow table (bounded: finished flows leave it);
* :mod:`~osilab.streams.reassembly` -- one direction's segments back into ordered bytes;
* :mod:`~osilab.streams.dispatch` -- which protocol a flow speaks (content, then port);
* :mod:`~osilab.streams.pipeline` -- all of it over a capture: :func:`track`,
  :func:`conversations`, :func:`annotate`, :func:`follow`, :func:`flows`.

The protocol parsers are looked up by name (a later stage of the pipeline), so this
package imports only their shared contract, :mod:`osilab.protocols.base`.
"""

from osilab.streams.flows import FlowRecord, FlowTable
from osilab.streams.flows import flow_records as flows
from osilab.streams.keys import Endpoint, FlowKey
from osilab.streams.pipeline import (
    FlowMessage,
    FollowItem,
    Step,
    annotate,
    conversations,
    follow,
    track,
)
from osilab.streams.reassembly import Chunk, Gap, StreamReassembler
from osilab.streams.tcp import TcpState

__all__ = [
    "Endpoint",
    "FlowKey",
    "FlowRecord",
    "FlowTable",
    "TcpState",
    "StreamReassembler",
    "Chunk",
    "Gap",
    "Step",
    "FlowMessage",
    "FollowItem",
    "track",
    "conversations",
    "annotate",
    "follow",
    "flows",
]

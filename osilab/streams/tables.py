"""The flow table: one row per flow, exactly the objects of ``osilab flows --json``.

A flow (:class:`~osilab.streams.flows.FlowRecord`) becomes a row when it ends, as the
command prints it; the row is :meth:`FlowRecord.to_json` plus the ``hop`` it was seen on
(the capture interface's name). The columns are typed as declared in :data:`FLOW_COLUMNS`
(see :mod:`osilab.capture.tables` for the shared machinery).

>>> import osilab
>>> from osilab.streams.tables import flow_rows
>>> flow_rows(osilab.read("captures/alb/alb.pcapng")).to_pandas()   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from osilab.capture import Capture
from osilab.capture.tables import Rows
from osilab.streams.flows import FlowRecord, flow_records

__all__ = ["FLOW_COLUMNS", "flow_row", "flow_rows"]

#: design.md's ``flows`` keys, then the extras, then ``hop``.
FLOW_COLUMNS: Mapping[str, str] = MappingProxyType({
    "proto": "str", "client": "str", "server": "str", "packets": "int", "bytes": "int",
    "first": "int", "last": "int", "state": "str", "index": "int",
    "packets_to_server": "int", "packets_to_client": "int", "bytes_to_server": "int",
    "bytes_to_client": "int", "payload_to_server": "int", "payload_to_client": "int",
    "first_time": "float", "last_time": "float", "midstream": "bool", "application": "str",
    "end_reason": "str", "anomalies": "list[str]", "interface": "int", "hop": "str",
})  # fmt: skip


def flow_row(record: FlowRecord, capture: Capture) -> dict[str, Any]:
    """One ``osilab flows --json`` object: the flow's keys and the ``hop`` it was seen on."""
    return {**record.to_json(), "hop": capture.hop_name(record.interface, record.key.tunnel)}


def flow_rows(capture: Capture, records: Callable[[], Iterable[FlowRecord]] | None = None) -> Rows:
    """The capture's flows as a table (:class:`~osilab.capture.tables.Rows`), in the order
    they end, as ``osilab flows --json`` writes them; ``records()`` (called afresh on each
    read) chooses other flow records, e.g. those a display filter kept."""
    source = records or (lambda: flow_records(capture))
    return Rows("flows", lambda: (flow_row(r, capture) for r in source()), FLOW_COLUMNS)

"""Tables: the rows osilab's JSON Lines give, as Arrow tables, pandas frames and Parquet files.

Theory of operation
-------------------
Every listing command writes JSON Lines: ``layers`` one object per packet, ``flows`` one
per flow, ``http`` one per request, ``route`` one per decision. A table is the same
objects as rows: one column per key, in the order the keys first appear, a missing key a
null. Nothing new is computed here, so a table and the JSON Lines cannot disagree.

What a table adds is *types*. JSON has numbers and strings; Arrow (and Parquet, which
DuckDB, Spark and polars read) has int64, float64, bool, lists and structs. Each table
declares the types of its contract keys as data (``COLUMNS``-style mappings of key ->
type name, see :data:`PACKET_COLUMNS`); a key a table does not declare gets the type
Arrow infers from its values.

:class:`Rows` is the one shared helper: a re-iterable source of row dicts plus its
declared columns, with :meth:`Rows.to_arrow`, :meth:`Rows.to_pandas` and
:meth:`Rows.write`. The packet table lives here (:func:`packet_rows`); flows
(:mod:`osilab.streams.tables`), requests (:mod:`osilab.pipeline.tables`) and decisions
(:mod:`osilab.balancers.tables`) build :class:`Rows` in their own stage.

pyarrow is optional (``pip install 'osilab[tables]'``); only asking for a table imports it.
A Parquet file is written in batches of rows, so a capture of any size exports in bounded
memory when its columns are all declared.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from osilab.errors import UsageError

if TYPE_CHECKING:
    from osilab.capture.packet import Packet

__all__ = ["Rows", "PACKET_COLUMNS", "packet_row", "packet_rows", "arrow", "FORMATS"]

#: Rows per Arrow record batch when a file is written.
BATCH_ROWS = 65_536

#: The packet table's columns: ``osilab layers --json`` (design.md), in its key order.
PACKET_COLUMNS: Mapping[str, str] = MappingProxyType({
    "no": "int", "time": "float", "length": "int", "layers": "layers",
    "interface": "str", "damaged": "str",
})  # fmt: skip

#: Output formats by file extension: Parquet (columnar, compressed) or Arrow IPC (Feather).
FORMATS: Mapping[str, str] = MappingProxyType({
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
})  # fmt: skip


def arrow() -> Any:
    """The ``pyarrow`` module, or a :class:`UsageError` that says how to install it."""
    try:
        import pyarrow
    except ImportError:
        raise UsageError(
            "tables need pyarrow: pip install 'osilab[tables]' (or pip install pyarrow)"
        ) from None
    return pyarrow


def _arrow_type(name: str) -> Any:
    """A declared type name -> its Arrow type (a table of names, built on first use)."""
    pa = arrow()
    layer = pa.struct([("name", pa.string()), ("osi", pa.int64()), ("tcpip", pa.string()),
                       ("offset", pa.int64()), ("length", pa.int64())])  # fmt: skip
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.string(),
        "bool": pa.bool_(),
        "list[str]": pa.list_(pa.string()),
        "list[list[str]]": pa.list_(pa.list_(pa.string())),
        "layers": pa.list_(layer),
        "desync": pa.struct([("class", pa.string()), ("reason", pa.string())]),
    }
    return types[name]


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows of one table: ``source()`` gives the row dicts (afresh each time: iterating
    twice reads the capture twice), ``columns`` declares the types of the known keys.

    Iterate it for the dicts (exactly the JSON Lines objects), or ask for a table.
    """

    name: str
    source: Callable[[], Iterator[dict[str, Any]]] = field(repr=False)
    columns: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.source()

    def _batch(self, rows: list[dict[str, Any]], schema: Any = None) -> Any:
        """One Arrow record batch: a column per key, in first-seen order, nulls where absent."""
        pa = arrow()
        if schema is not None:
            unknown = {key for row in rows for key in row} - set(schema.names)
            if unknown:
                raise UsageError(f"the {self.name} table met keys its first rows did not have "
                                 f"({', '.join(sorted(unknown))}): declare them in its columns")  # fmt: skip
            names = schema.names
        else:
            names = list(dict.fromkeys(key for row in rows for key in row))
        arrays = []
        for i, key in enumerate(names):
            values = [row.get(key) for row in rows]
            kind = schema.field(i).type if schema is not None else (
                _arrow_type(self.columns[key]) if key in self.columns else None
            )
            try:
                arrays.append(pa.array(values, type=kind))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(f"the {self.name} table's column {key!r} has values of "
                                 f"more than one type ({exc})") from None  # fmt: skip
        return pa.RecordBatch.from_arrays(arrays, names=names) if schema is None else \
            pa.RecordBatch.from_arrays(arrays, schema=schema)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table``: one row per object, one typed column per key."""
        pa = arrow()
        rows = list(self)
        if not rows:
            names = list(self.columns)
            return pa.table({key: pa.array([], type=_arrow_type(self.columns[key]))
                             for key in names})  # fmt: skip
        return pa.Table.from_batches([self._batch(rows)])

    def to_pandas(self) -> Any:
        """A pandas DataFrame with nullable typed columns (``Int64``, ``Float64``, ``string``,
        ``boolean``); lists and structs stay Python lists and dicts."""
        try:
            import pandas as pd
        except ImportError:
            raise UsageError("to_pandas() needs pandas: pip install pandas") from None
        pa = arrow()
        mapping = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(),
                   pa.string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype()}  # fmt: skip
        return self.to_arrow().to_pandas(types_mapper=mapping.get)

    def write(self, path: str | os.PathLike[str]) -> int:
        """Write the rows to ``path`` (Parquet for ``.parquet``/``.pq``, Arrow IPC for
        ``.arrow``/``.feather``); returns the row count.

        Rows are written in batches of :data:`BATCH_ROWS`: the first batch fixes the
        schema (declared columns typed as declared, the others as their values say).
        """
        target = os.fspath(path)
        kind = FORMATS.get(os.path.splitext(target)[1].lower())
        if kind is None:
            raise UsageError(f"{target}: say the format by the extension: "
                             f"{', '.join(FORMATS)}")  # fmt: skip
        pa = arrow()
        rows = iter(self)
        first = list(islice(rows, BATCH_ROWS))
        table = self.to_arrow() if not first else None
        schema = table.schema if table is not None else self._batch(first).schema
        count = 0
        if kind == "parquet":
            import pyarrow.parquet as pq

            writer: Any = pq.ParquetWriter(target, schema)
        else:
            writer = pa.ipc.new_file(target, schema)
        with writer:
            batch = first
            while batch:
                writer.write_batch(self._batch(batch, schema))
                count += len(batch)
                batch = list(islice(rows, BATCH_ROWS))
            if table is not None:
                writer.write_table(table)
        return count


def packet_row(pkt: Packet) -> dict[str, Any]:
    """One packet as ``osilab layers --json`` has it (design.md's keys)."""
    row: dict[str, Any] = {
        "no": pkt.no,
        "time": round(pkt.time, 9),
        "length": len(pkt.data),
        "layers": [
            {"name": lay.name, "osi": lay.osi, "tcpip": lay.tcpip, "offset": lay.offset,
             "length": lay.length}
            for lay in pkt.layers
        ],
    }  # fmt: skip
    if pkt.interface_name is not None:
        row["interface"] = pkt.interface_name
    damaged = pkt.damaged
    if damaged:
        row["damaged"] = damaged
    return row


def packet_rows(packets: Callable[[], Iterable[Packet]]) -> Rows:
    """The packet table of ``packets()`` (called afresh on each read): a
    :class:`Capture` gives each packet dissected alone; pass
    ``lambda: osilab.pipeline.annotate(cap)`` for the stream-aware layers ``osilab
    layers`` shows."""
    return Rows("packets", lambda: (packet_row(pkt) for pkt in packets()), PACKET_COLUMNS)

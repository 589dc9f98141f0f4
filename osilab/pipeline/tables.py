"""The request table: one row per HTTP request, exactly the objects of ``osilab http --json``.

A request becomes a row once its response has ended (or the capture did), so ``status``
can be filled: :func:`osilab.pipeline.http.paired` pairs them. :func:`request_json` is the
one place the row (the JSON contract's object) is built; the ``http`` command writes the
same dicts, plus the ``hop`` :func:`request_rows` adds. Typed as :data:`REQUEST_COLUMNS`
declares (see :mod:`osilab.capture.tables`).

>>> import osilab
>>> from osilab.pipeline.tables import request_rows
>>> request_rows(osilab.read("captures/alb/alb.pcapng"),
...              keylog="captures/alb/keylog.txt").to_pandas()   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from osilab.capture import Capture
from osilab.capture.tables import Rows
from osilab.pipeline.http import iter_http, paired
from osilab.protocols.messages import HttpRequest, HttpResponse

__all__ = ["REQUEST_COLUMNS", "request_json", "request_rows"]

#: design.md's ``http`` keys, then the extras, then ``hop``.
REQUEST_COLUMNS: Mapping[str, str] = MappingProxyType({
    "flow": "str", "method": "str", "host": "str", "target": "str", "version": "str",
    "first_packet": "int", "headers_complete_packet": "int", "status": "int",
    "desync": "desync", "index": "int", "stream_id": "int", "time": "float",
    "response_first_packet": "int", "response_time": "float", "reading": "str", "hop": "str",
})  # fmt: skip


def request_json(request: HttpRequest, response: HttpResponse | None) -> dict[str, Any]:
    """One request as design.md's ``osilab http --json`` contract has it (plus extras)."""
    obj: dict[str, Any] = {
        "flow": str(request.flow),
        "method": request.method,
        "host": request.host,
        "target": request.target,
        "version": request.version,
        "first_packet": request.first_packet,
        "headers_complete_packet": request.headers_complete_packet,
        "status": response.status if response is not None else None,
        "desync": (
            # the guardian names a compliant request's reason "Compliant" (issue 14)
            {"class": request.desync.klass, "reason": request.desync.reason or "Compliant"}
            if request.desync is not None
            else None
        ),
        "index": request.index,
        "stream_id": request.stream_id,
        "time": request.time,
    }
    if request.reading != "alb":  # design.md: absent for the ALB's own reading
        obj["reading"] = request.reading
    if response is not None:
        obj["response_first_packet"] = response.first_packet
        obj["response_time"] = response.time
    return obj


def request_rows(capture: Capture, *, keylog: str | None = None,
                 keep: Callable[[HttpRequest], bool] | None = None) -> Rows:  # fmt: skip
    """The capture's HTTP requests as a table (:class:`~osilab.capture.tables.Rows`), in
    the order ``osilab http --json`` writes them; ``keylog`` decrypts HTTPS; ``keep``
    chooses requests (e.g. a display filter's :meth:`Selection.request`)."""

    def rows() -> Any:
        for request, response in paired(iter_http(capture, keylog=keylog)):
            if keep is not None and not keep(request):
                continue
            yield {**request_json(request, response), "hop": capture.hop_name(request.flow.interface, request.flow.tunnel)}

    return Rows("requests", rows, REQUEST_COLUMNS)

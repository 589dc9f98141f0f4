"""Simulation mode on real traffic: one request's journey, hop by hop, layer by layer.

>>> import osilab
>>> trip = osilab.journey("captures/alb/alb.pcapng", request="r0001")   # doctest: +SKIP
>>> trip.hops()                                                          # doctest: +SKIP
['client', 'alb', 'web1', 'api1', 'data', 'cache', ...]
>>> trip                    # in a notebook: the interactive view        # doctest: +SKIP

* :func:`journey` reads a multi-hop lab capture and its ``topology.json`` and returns a
  :class:`Journey`: the events, device by device, with the layers each device read on
  the way in (and where it stopped) and what it rewrote or created on the way out.
* :func:`compare` puts two journeys side by side (the same request through the ALB and
  through the NLB) as one HTML document; it is also reachable as ``journey.compare``.
* :func:`save_html` writes a journey (or a comparison) as a standalone HTML file.

This module is the edge that reads files; :mod:`osilab.journey.events` is the sans-IO
core and :mod:`osilab.journey.view` the HTML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from osilab.errors import CaptureError, UsageError
from osilab.journey._index import CaptureIndex
from osilab.journey.events import Journey, JourneyEvent, LayerStep, PacketView, build_journey
from osilab.journey.network import Device, Network
from osilab.journey.view import compare_html, journey_html

__all__ = [
    "journey",
    "compare",
    "save_html",
    "request_ids",
    "load_topology",
    "Journey",
    "JourneyEvent",
    "LayerStep",
    "PacketView",
    "Device",
    "journey_html",
    "compare_html",
]

#: The file the lab writes beside every capture.
TOPOLOGY_FILE = "topology.json"


def load_topology(
    source: str | os.PathLike[str] | Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """A parsed ``topology.json``: from a path, an already-parsed mapping, or ``None``."""
    if source is None or isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read the topology {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None


def _open(capture: Any) -> tuple[Iterable[Any], str, Path | None]:
    """Packets, a display name and the capture's folder (where topology.json lives)."""
    if isinstance(capture, str | os.PathLike):
        from osilab.capture import read

        path = Path(capture)
        if not path.exists():
            raise CaptureError(f"no such capture file: {path}")
        return read(path), path.name, path.parent
    path_attr = getattr(capture, "path", None)
    if path_attr is not None:
        path = Path(path_attr)
        return capture, path.name, path.parent
    return capture, "packets", None


def _index_and_network(capture: Any, topology: Any) -> tuple[CaptureIndex, Network, str]:
    packets, name, folder = _open(capture)
    if topology is None and folder is not None and (folder / TOPOLOGY_FILE).exists():
        topology = folder / TOPOLOGY_FILE
    return CaptureIndex(packets), Network(load_topology(topology)), name


def request_ids(capture: Any) -> list[str]:
    """Every request id (``X-Request-Id`` / ``?rid=``) in a capture, in order of appearance."""
    return CaptureIndex(_open(capture)[0]).request_ids()


def journey(
    capture: Any,
    request: str | None = None,
    *,
    topology: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    use_models: bool = True,
) -> Journey:
    """Follow one request across every hop of a multi-hop lab capture.

    Args:
        capture: a capture path, an :func:`osilab.read` capture, or packets.
        request: the request id (``X-Request-Id`` header or ``rid`` query parameter).
            ``None`` picks the request that crosses the most hops (the first such).
        topology: ``topology.json`` (path or parsed); by default the one next to the
            capture file. Without one, devices are named by IP address.
        use_models: explain balancers with :mod:`osilab.balancers` (else from the capture).

    Returns:
        a :class:`Journey`; ``journey.hops()`` lists the devices in order.
    """
    index, network, name = _index_and_network(capture, topology)
    if request is None:
        ids = index.request_ids()
        if not ids:
            raise UsageError("this capture has no HTTP request with an id (X-Request-Id or ?rid=)")
        legs = {rid: sum(1 for ex in index.exchanges if ex.matches(rid)) for rid in ids}
        request = max(ids, key=lambda rid: legs[rid])
    return build_journey(index, network, request, capture=name, use_models=use_models)


def compare(first: Journey, second: Journey, *, standalone: bool = True) -> str:
    """Two journeys side by side (e.g. the ALB path and the NLB path) as one HTML document."""
    return compare_html(first, second, standalone=standalone)


def save_html(view: Journey | str, path: str | os.PathLike[str]) -> Path:
    """Write a journey (or the HTML of :func:`compare`) as a standalone file; returns the path."""
    text = view.to_html(standalone=True) if isinstance(view, Journey) else view
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out


# ``osilab.journey`` is this function once the top level re-exports it; keep
# ``osilab.journey.compare(...)`` working there too.
journey.compare = compare  # type: ignore[attr-defined]
journey.save_html = save_html  # type: ignore[attr-defined]
journey.request_ids = request_ids  # type: ignore[attr-defined]

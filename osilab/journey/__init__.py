"""Simulation mode on real traffic: one request's journey, hop by hop, layer by layer.

>>> from osilab.journey import journey
>>> trip = journey("captures/alb/alb.pcapng", request="r0001")          # doctest: +SKIP
>>> trip.hops()                                                          # doctest: +SKIP
['client', 'alb', 'web1', 'api1', 'data', 'cache', ...]
>>> trip                    # in a notebook: the interactive view        # doctest: +SKIP

* :func:`journey` reads a multi-hop lab capture and its ``topology.json`` and returns a
  :class:`Journey`: the events, device by device, with the layers each device read on
  the way in (and where it stopped) and what it rewrote or created on the way out.
* :func:`compare` puts two journeys side by side (the same request through the ALB and
  through the NLB) as one HTML document.
* :func:`save_html` writes a journey (or a comparison) as a standalone HTML file.

This module is the edge that reads files (the capture, ``topology.json`` and the balancer
configs the lab wrote beside it); :mod:`osilab.journey.trip` is the sans-IO core that
builds the journey, on :mod:`osilab.journey._index` (the capture on the one pipeline),
and :mod:`osilab.journey.view` the HTML.

``osilab.journey`` is this package (so ``import osilab.journey.events`` works); the
function is ``osilab.journey.journey`` and, at the top level, ``osilab.follow_request``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from osilab.balancers import BalancerConfig, load_config
from osilab.balancers.config.beside import (
    TOPOLOGY_FILE,
    config_beside,
    load_topology,
    topology_beside,
)
from osilab.capture import Capture, read
from osilab.errors import CaptureError, UsageError
from osilab.journey._index import CaptureIndex
from osilab.journey._models import CONFIG_KINDS
from osilab.journey.events import JourneyEvent, LayerStep, PacketView
from osilab.journey.network import Device, Network
from osilab.journey.quic import QuicConnection, find_connection, quic_connections
from osilab.journey.quic_trip import PathRoute, connection_journey, connection_of, connection_routes
from osilab.journey.trip import Journey, build_journey
from osilab.journey.view import compare_html, journey_html

__all__ = [
    "journey",
    "compare",
    "save_html",
    "request_ids",
    "connections",
    "quic_routes",
    "QuicConnection",
    "PathRoute",
    "load_topology",
    "TOPOLOGY_FILE",
    "balancer_configs",
    "Journey",
    "JourneyEvent",
    "LayerStep",
    "PacketView",
    "Device",
    "journey_html",
    "compare_html",
]

def _open(capture: Any) -> tuple[Iterable[Any], str, Path | None]:
    """Packets (iterable more than once), a display name and the capture file, when there is one."""
    if isinstance(capture, str | os.PathLike):
        path = Path(capture)
        if not path.exists():
            raise CaptureError(f"no such capture file: {path}")
        return read(path), path.name, path
    if isinstance(capture, Capture):
        path = Path(capture.path)
        return capture, path.name, path
    packets = capture if isinstance(capture, Sequence) else list(capture)
    return packets, "packets", None


def _index_and_network(
    capture: Any, topology: Any, keylog: str | None = None
) -> tuple[CaptureIndex, Network, str, Path | None]:
    packets, name, path = _open(capture)
    if topology is None and path is not None:
        topology = topology_beside(path)
    return CaptureIndex(packets, keylog=keylog), Network(load_topology(topology)), name, path


def balancer_configs(capture: str | os.PathLike[str] | None) -> dict[str, BalancerConfig]:
    """The balancer configs the lab wrote beside ``capture``, by kind (``"alb"``, ``"nlb"``,
    ``"nlb-quic"``)."""
    if capture is None:
        return {}
    found = {kind: config_beside(capture, kind) for kind in CONFIG_KINDS}
    return {kind: load_config(path) for kind, path in found.items() if path is not None}


def request_ids(capture: Any) -> list[str]:
    """Every request id (``X-Request-Id`` / ``?rid=``) in a capture, in order of appearance."""
    return CaptureIndex(_open(capture)[0]).request_ids()


def connections(capture: Any, *, keylog: str | None = None) -> list[QuicConnection]:
    """Every QUIC connection in a capture whose handshake it shows, each with every UDP flow
    (5-tuple, hop) it used: more than one client address means it migrated."""
    return quic_connections(CaptureIndex(_open(capture)[0], keylog=keylog))


def quic_routes(
    capture: str | os.PathLike[str], *, keylog: str | None = None
) -> list[tuple[QuicConnection, list[PathRoute]]]:
    """Each QUIC connection with, per client address it used, where the real balancer sent it
    (the back side of the capture) and where the balancer model sent it, and why (the model
    run with the config beside the capture whose listener took the connection's port)."""
    index = CaptureIndex(_open(capture)[0], keylog=keylog)
    configs = balancer_configs(capture)
    return [(c, connection_routes(index, c, configs)) for c in quic_connections(index)]


def journey(
    capture: Any,
    request: str | None = None,
    *,
    topology: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    use_models: bool = True,
    keylog: str | None = None,
    connection: str | None = None,
) -> Journey:
    """Follow one request (or one QUIC connection) across every hop of a multi-hop lab capture.

    Args:
        capture: a capture path, an :func:`osilab.read` capture, or packets.
        request: the request id (``X-Request-Id`` header or ``rid`` query parameter).
            ``None`` picks the request that crosses the most hops (the first such).
        topology: ``topology.json`` (path or parsed); by default the one next to the
            capture file. Without one, devices are named by IP address.
        use_models: explain balancers with the models of :mod:`osilab.balancers`, run with
            the configs the lab wrote beside the capture (``alb.config.json``,
            ``nlb.config.json``); else, and without them, from the capture.
        keylog: an NSS key log (the lab's ``keylog.txt``), so that TLS legs are read: the
            viewer's leg to the CloudFront edge, where a cache hit stops; QUIC's key log
            labels too, so HTTP/3 requests and the connection IDs a server issued are read.
        connection: a QUIC connection, named by one of its connection IDs (hex) or a
            client ``ip:port``: the journey follows its datagrams instead of one request,
            through each client address it used (connection migration). An HTTP/3
            ``request`` gets the same journey, with its request and response in it.

    Returns:
        a :class:`Journey`; ``journey.hops()`` lists the devices in order.
    """
    index, network, name, path = _index_and_network(capture, topology, keylog)
    configs = balancer_configs(path) if use_models else {}
    if connection is not None:
        found = find_connection(quic_connections(index), connection)
        return connection_journey(index, network, found, configs, capture=name,
                                  use_models=use_models)  # fmt: skip
    if request is None:
        ids = index.request_ids()
        if not ids:
            raise UsageError("this capture has no HTTP request with an id (X-Request-Id or ?rid=)")
        legs = {rid: sum(1 for ex in index.exchanges if ex.matches(rid)) for rid in ids}
        request = max(ids, key=lambda rid: legs[rid])
    request_legs = [exchange for exchange in index.exchanges if exchange.matches(request)]
    carried = connection_of(quic_connections(index), request_legs) if request_legs else None
    if carried is not None:  # HTTP/3: the journey of its QUIC connection, with the request
        return connection_journey(index, network, carried, configs, capture=name,
                                  request_id=request, legs=request_legs, use_models=use_models)  # fmt: skip
    return build_journey(
        index, network, request, capture=name, use_models=use_models, configs=configs
    )


def compare(first: Journey, second: Journey, *, standalone: bool = True) -> str:
    """Two journeys side by side (e.g. the ALB path and the NLB path) as one HTML document."""
    return compare_html(first, second, standalone=standalone)


def save_html(view: Journey | str, path: str | os.PathLike[str]) -> Path:
    """Write a journey (or the HTML of :func:`compare`) as a standalone file; returns the path."""
    text = view.to_html(standalone=True) if isinstance(view, Journey) else view
    out = Path(path)
    out.write_text(text, encoding="utf-8")
    return out

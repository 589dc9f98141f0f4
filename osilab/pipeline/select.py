"""What a display filter selects in a whole capture: frames, flows, messages and decisions.

A display filter (:mod:`osilab.capture.filter`) tests one frame. Wireshark shows a message
split over several TCP segments on the frame that *completes* it, so the filter must see the
stream-aware packets of :func:`~osilab.pipeline.annotate.annotate`, never the frames alone:
``http.request.method == "POST"`` is true of the segment that ends the request.

The views above frames are selected from the frames, never by removing packets before
reassembly (a stream with frames missing would reassemble into something else):

* a **flow** is selected when at least one of its frames matches (:func:`matching_flows`);
* an **HTTP request** when the frame that completes it matches (the frame where Wireshark and
  ``osilab layers`` show its ``http`` layer; :meth:`Selection.request`);
* a **TLS hello**, or any message, when its completing frame matches (:meth:`Selection.frame`);
* a balancer **decision** when its request is selected, or for a decision on a connection
  (the NLB's), when the frame it was decided at matches (:meth:`Selection.decision`).

So :func:`selection` reads the capture once through :func:`annotate` and keeps the numbers
of the matching frames (and, for HTTP/1.x requests, the frame that completed each one); the
command then reads the capture again as it always does and keeps what was selected.

What this module must not know: files, printing, or any protocol's syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from osilab.capture.filter import DisplayFilter, compile_filter
from osilab.capture.packet import Packet
from osilab.pipeline.annotate import annotate
from osilab.pipeline.tracker import track
from osilab.protocols.messages import HttpRequest
from osilab.streams.flows import FlowRecord

__all__ = ["Selection", "select_packets", "selection", "matching_flows"]

#: (interface, first packet, request index) -> the frame that completed that HTTP/1.x request.
_RequestKey = tuple[int, int, int]


def _compiled(flt: str | DisplayFilter) -> DisplayFilter:
    return compile_filter(flt) if isinstance(flt, str) else flt


def select_packets(
    packets: Iterable[Packet], flt: str | DisplayFilter, *, keylog: str | None = None,
    streams: bool = True,
) -> Iterator[Packet]:
    """The stream-aware packets (as ``osilab layers`` and tshark show them) that pass ``flt``.

    ``streams=False`` tests each frame dissected alone (``Capture.filter``'s view).

    >>> import osilab
    >>> cap = osilab.read("../shared/captures/thirdparty/zeek/http-get.pcap")   # doctest: +SKIP
    >>> [p.no for p in select_packets(cap, "http.request")]                       # doctest: +SKIP
    [4]
    """
    test = _compiled(flt)  # read the filter now: a bad one raises before any packet is read
    return test.select(annotate(packets, keylog=keylog) if streams else iter(packets))


@dataclass(frozen=True, slots=True)
class Selection:
    """The frames a filter selected in one capture, and what follows from them.

    Attributes:
        filter: the compiled filter.
        frames: the numbers of the matching frames.
        completed: for each HTTP/1.x request, the frame that completed it (where its
            ``http`` layer is shown), keyed by (interface, first packet, request index).
    """

    filter: DisplayFilter
    frames: frozenset[int]
    completed: Mapping[_RequestKey, int]

    def frame(self, no: int) -> bool:
        """Whether frame ``no`` matched: a message completed there is selected."""
        return no in self.frames

    def request(self, request: HttpRequest) -> bool:
        """Whether the frame that completed ``request`` matched (for an HTTP/2 request, or one
        never completed, the frame that completed its head)."""
        key = (request.flow.interface, request.first_packet, request.index)
        return self.completed.get(key, request.headers_complete_packet) in self.frames

    def decision(self, decision: Any) -> bool:
        """Whether a balancer decision (:class:`osilab.balancers.decision.Decision`, a later
        stage) is selected: by its ``request`` when it has one, else by ``decided_at``."""
        if decision.request is not None:
            return self.request(decision.request)
        return decision.decided_at in self.frames


def selection(packets: Iterable[Packet], flt: str | DisplayFilter, *,
              keylog: str | None = None) -> Selection:
    """Read the packets once (stream-aware) and keep what ``flt`` selected in them."""
    test = _compiled(flt)
    frames: set[int] = set()
    completed: dict[_RequestKey, int] = {}
    for pkt in annotate(packets, keylog=keylog):
        for layer in pkt.layers:
            if layer.name == "http" and layer.fields.get("request") and "request_index" in layer.fields:
                key = (pkt.interface, layer.fields["first_packet"], layer.fields["request_index"])
                completed[key] = pkt.no
        if test(pkt):
            frames.add(pkt.no)
    return Selection(test, frozenset(frames), completed)


def matching_flows(packets: Iterable[Packet], chosen: Selection, *,
                   keylog: str | None = None) -> Iterator[FlowRecord]:
    """The flows with at least one matching frame, each as it ends (streaming)."""
    hit: set[int] = set()
    for step in track(packets, keylog=keylog):
        if step.packet is not None and step.flow_index >= 0 and step.packet.no in chosen.frames:
            hit.add(step.flow_index)
        for record in step.ended:
            if record.index in hit:
                hit.discard(record.index)
                yield record

"""The pipeline: a capture's packets -> flows -> reassembled streams -> application messages.

The one place where the stages below meet:

* :mod:`~osilab.pipeline.dispatch` -- which protocol a flow speaks (content, then port),
  and a table of the parsers of :mod:`osilab.protocols`;
* :mod:`~osilab.pipeline.tracker` -- the stream tracker over a capture: :func:`track`
  (one step per packet) and :func:`conversations` (the application messages);
* :mod:`~osilab.pipeline.annotate` -- :func:`annotate`, the packets with the application
  layers reassembly found (as tshark shows them), and IP fragment reassembly;
* :mod:`~osilab.pipeline.follow` -- :func:`follow`, one flow's bytes in both directions;
* :mod:`~osilab.pipeline.http` -- :func:`iter_http`, the HTTP requests and responses a
  balancer sees;
* :mod:`~osilab.pipeline.select` -- what a display filter selects: :func:`select_packets`,
  :func:`selection` (frames, requests, decisions), :func:`matching_flows`.

Every view (``layers``, ``flows``, ``http``, ``tls``, ``route``, ``compare``, the journey,
the notebooks) takes its packets, flows and messages from here.
"""

from osilab.pipeline.annotate import annotate
from osilab.pipeline.follow import FollowItem, follow
from osilab.pipeline.http import iter_http
from osilab.pipeline.select import Selection, matching_flows, select_packets, selection
from osilab.pipeline.tracker import FlowMessage, Step, conversations, track

__all__ = [
    "Step",
    "FlowMessage",
    "FollowItem",
    "track",
    "conversations",
    "annotate",
    "follow",
    "iter_http",
    "Selection",
    "select_packets",
    "selection",
    "matching_flows",
]

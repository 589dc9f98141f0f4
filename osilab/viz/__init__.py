"""Figures and notebook views, all in the one layer palette (:mod:`osilab.layers.palette`).

The notebooks and the tour draw with these functions instead of inline plotting code,
so every figure looks the same: projector-sized, titled, labelled, with a legend.
This package holds figures only; finding captures, the lab scenarios' files and the
exercises are :mod:`osilab.lessons`.

* :mod:`osilab.viz.conversation` - one TCP connection, the HTTP requests of a capture;
* :mod:`osilab.viz.layers` - frames by layer, header overhead, segmentation, goodput,
  ladder diagrams, reassembly;
* :mod:`osilab.viz.balancing` - what an L4 and an L7 balancer read, per-target counts,
  timelines;
* :mod:`osilab.viz.balancers` - the balancer models' own plots (the balancer work).

Matplotlib is imported only when a figure is drawn.
"""

from osilab.viz.balancing import (
    Interval,
    grouped_counts_chart,
    timeline_chart,
    visibility_figure,
    visible_bytes,
)
from osilab.viz.conversation import Conversation, http_requests, tcp_conversation, tcp_flows
from osilab.viz.layers import (
    frame_figure,
    frame_layout,
    goodput,
    goodput_plot,
    ladder_diagram,
    overhead_chart,
    reassembly_figure,
    segmentation_figure,
    segments,
)

__all__ = [
    "Conversation",
    "tcp_conversation",
    "tcp_flows",
    "http_requests",
    "frame_layout",
    "frame_figure",
    "overhead_chart",
    "segments",
    "segmentation_figure",
    "goodput",
    "goodput_plot",
    "ladder_diagram",
    "reassembly_figure",
    "visible_bytes",
    "visibility_figure",
    "grouped_counts_chart",
    "Interval",
    "timeline_chart",
]

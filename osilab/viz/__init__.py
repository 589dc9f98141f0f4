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

from osilab.viz import balancing as _balancing
from osilab.viz import conversation as _conversation
from osilab.viz import layers as _layers
from osilab.viz.balancing import *  # noqa: F403
from osilab.viz.conversation import *  # noqa: F403
from osilab.viz.layers import *  # noqa: F403

#: Every public name of the three figure modules, so ``from osilab.viz import x`` works
#: for each of them (each module's ``__all__`` is the one list of its names).
__all__ = [*_conversation.__all__, *_layers.__all__, *_balancing.__all__]

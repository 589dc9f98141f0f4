"""Lessons: what the notebooks, the tour and the exercises share about the lab captures.

The figures live in :mod:`osilab.viz`; this package holds the teaching material around
them, and reads only files (captures and the JSON the lab wrote beside them):

* :mod:`osilab.lessons.samples` - finding the bundled lab recordings and the
  third-party captures, with an error that says where it looked;
* :mod:`osilab.lessons.scenarios` - one lab scenario at a time: its capture hop by hop,
  the balancer configs the lab wrote beside it (``alb.config.json``,
  ``nlb.config.json``), the recorded truth, journey breakdowns;
* :mod:`osilab.lessons.exercises` - questions about the captures with checkers that
  say *why* an answer is wrong (notebook 10).
* :mod:`osilab.lessons.rule_edit` - notebook 5's lesson: the same request through both
  balancers, the rules and the fields each read, and which requests an edited rule moves
  (the logic, and a thin ipywidgets wrapper).

Like every analysis stage, the lessons never import :mod:`osilab.lab`: the lab writes
the files beside each capture, the lessons read them (``docs/architecture.md``).
"""

from osilab.lessons import exercises, rule_edit, samples, scenarios

__all__ = ["samples", "scenarios", "exercises", "rule_edit"]

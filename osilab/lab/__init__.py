"""The recording lab: real servers in Linux network namespaces, captured on every hop.

``osilab lab record`` (:func:`osilab.lab.record.record`) builds the network declared in
:mod:`osilab.lab.topology`, starts the servers configured by :mod:`osilab.lab.configs`
(HAProxy as the ALB role and as an L4 proxy, nftables as the NLB role, nginx on two
instances, a small app, Redis, PostgreSQL), runs the scripted client of
:mod:`osilab.lab.client`, and writes merged pcapng captures plus the ground truth
(:mod:`osilab.lab.truth`). It sits at the edge of osilab: nothing in the library
imports it, and it imports nothing from the analysis stages.
"""

from osilab.lab.doctor import DEBIAN_PACKAGES, PYTHON_PACKAGES
from osilab.lab.topology import LAB, PREFIX

__all__ = ["LAB", "PREFIX", "DEBIAN_PACKAGES", "PYTHON_PACKAGES"]

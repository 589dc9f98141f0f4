"""Reading captures and seeing each packet as its layers.

* :func:`read` opens a pcap/pcapng file (plain or gzip) as a streaming :class:`Capture`;
  :mod:`osilab.capture.files` is the one record walk under it.
* :class:`Packet` is one frame; :class:`Layer` one protocol header inside it;
  :mod:`osilab.capture.dissect` turns a frame's bytes into layers.
* :class:`FlowFacts` is what layer 4 needs of a frame, read fast
  (:func:`~osilab.capture.facts.flow_facts`): the NLB and the stream tracker use it.
* :func:`write` writes packets back (pcapng, or pcap by extension); :func:`write_pcapng`
  and :class:`CaptureWriter` are its parts (:mod:`osilab.capture.pcapng`, the one codec,
  reads and writes). :mod:`osilab.capture.tables` gives packets as table rows, and
  :mod:`osilab.capture.scapy_bridge` crosses to and from scapy.
* :func:`hop_name` names a capture interface (a hop): its pcapng name, else ``if<N>``.
"""

from osilab.capture.facts import FlowFacts, flow_facts
from osilab.capture.files import Interface, Record, hop_name
from osilab.capture.layer import Layer
from osilab.capture.packet import Packet
from osilab.capture.pcapng import CaptureWriter, write, write_pcapng
from osilab.capture.reader import Capture, read

__all__ = [
    "Capture",
    "CaptureWriter",
    "FlowFacts",
    "Interface",
    "Layer",
    "Packet",
    "Record",
    "flow_facts",
    "hop_name",
    "read",
    "write",
    "write_pcapng",
]

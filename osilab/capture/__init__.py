"""Reading captures and seeing each packet as its layers.

* :func:`read` opens a pcap/pcapng file (plain or gzip) as a streaming :class:`Capture`.
* :class:`Packet` is one frame; :class:`Layer` one protocol header inside it.
* :mod:`osilab.capture.dissect` turns a frame's bytes into layers.
"""

from osilab.capture.packet import Layer, Packet
from osilab.capture.reader import Capture, Interface, read

__all__ = ["Capture", "Interface", "Layer", "Packet", "read"]

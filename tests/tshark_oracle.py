"""tshark as the test oracle: run it once per capture and map its names onto osilab's.

``tshark -T fields -e frame.protocols`` names every protocol Wireshark found in a frame,
like ``eth:ethertype:ip:tcp:http:data-text-lines``. To compare with osilab the names are
mapped once, here:

* pseudo-layers that are no protocol header are dropped (``frame``, ``ethertype``, ``data``
  and media types such as ``data-text-lines``, ``json``, certificate internals...);
* IPv6 extension headers (``ipv6.hopopts``, ``ipv6.fraghdr``...) are part of osilab's ipv6 layer;
* the list stops at the first protocol outside osilab's vocabulary, since osilab reports
  such payload as ``data`` (dropped here too);
* consecutive duplicates collapse (two TLS records in a frame are one ``tls`` layer).
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from osilab.layers import PROTOCOLS

__all__ = ["tshark_fields", "frame_protocols", "to_osilab_names", "PSEUDO"]

#: tshark names that are not protocol headers of their own.
PSEUDO = frozenset({
    "frame", "ethertype", "data", "data-text-lines", "media", "json", "xml", "urlencoded-form",
    "mime_multipart", "png", "image-jfif", "image-gif", "x509sat", "x509ce", "x509af", "pkix1implicit",
    "pkix1explicit", "pkcs-1", "ocsp", "cms", "pkixqualified", "ns_cert_exts", "pkcs-12",
    "ipv6.hopopts", "ipv6.fraghdr", "ipv6.routing", "ipv6.dstopts",
})

#: tshark name -> osilab name where they differ.
RENAME = {"sll2": "sll", "raw": None}
#: tshark names that mean something else as a capture's link type: "loop" is OpenBSD's
#: loopback header (osilab's null) first in a frame, and Ethernet's loopback test frame
#: (EtherType 0x9000, osilab's loop) after an Ethernet header.
LINK_ONLY = {"loop": "null"}


def tshark_fields(path: Path | str, *fields: str, options: tuple[str, ...] = ()) -> list[list[str]]:
    """Run tshark on ``path`` and return one row of field values per frame."""
    cmd = ["tshark", "-n", "-r", str(path), *options, "-T", "fields", "-E", "separator=/t"]
    for field in fields:
        cmd += ["-e", field]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    return [line.split("\t") for line in out.splitlines()]


@cache
def frame_protocols(path: str, options: tuple[str, ...] = ()) -> dict[int, str]:
    """frame number -> tshark's frame.protocols string."""
    rows = tshark_fields(path, "frame.number", "frame.protocols", options=options)
    return {int(row[0]): row[1] for row in rows if row and row[0].isdigit()}


def to_osilab_names(protocols: str) -> list[str]:
    """Map one frame.protocols string onto osilab layer names (see the module docstring)."""
    names: list[str] = []
    for raw in protocols.split(":"):
        if raw in PSEUDO:
            continue
        name = RENAME.get(raw, raw) if names or raw not in LINK_ONLY else LINK_ONLY[raw]
        if name is None:
            continue
        if name not in PROTOCOLS:
            break
        if names and names[-1] == name:
            continue
        names.append(name)
    return names


# -- one hop at a time, and QUIC stream retransmissions (tests/protocols/test_quic.py) ---------


@cache
def hop_files(path: str) -> tuple[tuple[int, str, tuple[int, ...]], ...]:
    """``(interface id, a pcapng of that interface's frames alone, their frame numbers in
    the whole file)`` per capture interface.

    tshark 4.0 finds a QUIC connection by its connection IDs anywhere in a file, whatever
    interface a packet came on (packet-quic.c keys its connection tables by CID only). A
    lab capture sees each connection once per hop it crosses, with the same connection
    IDs; tshark merges those sightings into one connection whose second copy of each
    packet is a retransmission, and whose TLS handshake is split between two UDP
    conversations (the ClientHello read on one, the ServerHello on the other), so it never
    derives the 1-RTT keys ("Missing TLS handshake"). osilab keeps hops apart
    (``FlowKey.interface``). To compare like with like, tshark reads each hop's frames as a
    file of its own.
    """
    import tempfile

    interfaces = [int(row[0] or 0) for row in tshark_fields(path, "frame.interface_id")]
    if len(set(interfaces)) <= 1:  # one hop (every pcap): the file itself
        return ((interfaces[0] if interfaces else 0, str(path), tuple(range(1, len(interfaces) + 1))),)
    folder = Path(tempfile.mkdtemp(prefix="osilab-hops-"))
    out = []
    for interface in sorted(set(interfaces)):
        target = folder / f"hop{interface}.pcapng"
        subprocess.run(["tshark", "-n", "-r", str(path), "-Y", f"frame.interface_id == {interface}",
                        "-w", str(target)], capture_output=True, timeout=120, check=True)  # fmt: skip
        numbers = tuple(no for no, seen in enumerate(interfaces, 1) if seen == interface)
        out.append((interface, str(target), numbers))
    return tuple(out)


def frame_protocols_per_hop(path: str, options: tuple[str, ...] = ()) -> dict[int, str]:
    """frame number (in the whole file) -> frame.protocols, tshark reading one hop at a time
    (:func:`hop_files` says why)."""
    found: dict[int, str] = {}
    for _interface, hop, numbers in hop_files(path):
        for no, protocols in frame_protocols(hop, options).items():
            found[numbers[no - 1]] = protocols
    return found


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


@cache
def quic_stream_repeats(path: str, options: tuple[str, ...] = ()) -> frozenset[int]:
    """Frames (numbers in the whole file) whose QUIC STREAM frames, as tshark reads them
    one hop at a time, all repeat stream bytes tshark had already read: retransmissions
    (RFC 9000 §13.3 resends lost data at its offset). Told from tshark's own
    ``quic.stream.offset`` and ``quic.stream.length``, per hop, connection
    (``quic.connection.number``), sender and stream ID; a frame quoted in an ICMP error is
    left out (it is no part of the connection's delivery)."""
    import json

    repeats: set[int] = set()
    for _interface, hop, numbers in hop_files(path):
        done = subprocess.run(
            ["tshark", "-n", "-r", hop, *options, "-T", "json", "--no-duplicate-keys",
             "-J", "frame ip ipv6 udp quic", "-Y", "quic && !icmp && !icmpv6"],
            capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
        server: dict[object, str] = {}  # connection -> the server's address (its first packet's dst)
        delivered: dict[tuple, int] = {}  # (connection, sender, stream) -> bytes read so far
        for packet in json.loads(done.stdout or "[]"):
            layers = packet["_source"]["layers"]
            ip = layers.get("ip") or layers.get("ipv6") or {}
            src = f"{ip.get('ip.src') or ip.get('ipv6.src')}:{layers['udp']['udp.srcport']}"
            dst = f"{ip.get('ip.dst') or ip.get('ipv6.dst')}:{layers['udp']['udp.dstport']}"
            new = streams = 0
            connection = None
            for quic in _as_list(layers.get("quic")):  # coalesced packets: the first names it
                info = quic.get("QUIC Connection information") or {}
                connection = info.get("quic.connection.number", connection)
                server.setdefault(connection, dst)
                sender = "server" if src == server[connection] else "client"
                for frame in _as_list(quic.get("quic.frame")):
                    if "quic.stream.stream_id" not in frame:
                        continue
                    streams += 1
                    key = (connection, sender, frame["quic.stream.stream_id"])
                    end = int(frame.get("quic.stream.offset", 0)) + int(frame.get("quic.stream.length", 0))
                    if end > delivered.get(key, 0):
                        new += 1
                        delivered[key] = end
            if streams and not new:
                repeats.add(numbers[int(layers["frame"]["frame.number"]) - 1])
    return frozenset(repeats)

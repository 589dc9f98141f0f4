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

"""Layer taxonomies: where each protocol sits in the OSI, TCP/IP and 5-layer models.

Three models describe the same packets:

* **OSI** (ISO/IEC 7498-1): seven layers, from Physical (1) to Application (7).
* **TCP/IP** (RFC 1122 §1.1.3): four layers: Link, Internet, Transport, Application.
  RFC 1122 has no physical layer and folds OSI 5-7 into Application.
* **The 5-layer textbook model** (Kurose & Ross; Tanenbaum): Physical, Link, Network,
  Transport, Application.

Each layer has a *PDU name*, the word for "one unit of data at this layer": a *frame* at
the link layer, a *packet* at the network layer, a *segment* (TCP) or *datagram* (UDP) at
the transport layer and a *message* at the application layer.

The models are idealisations and real protocols do not always fit. This module says so
where it happens, in :attr:`ProtocolPlace.note`:

* **ARP** resolves layer-3 addresses into layer-2 addresses. It rides directly in an
  Ethernet frame (no IP header), so it is usually drawn at layer 2 and a half.
* **TLS** is above TCP and below HTTP. OSI would call its record layer *presentation*
  (6) and its handshake *session* (5); TCP/IP simply calls it application.
* **ICMP** is carried inside IP but is part of the network layer's own machinery (3).

The table of protocols is data, so it is kept as data: ``protocols.json``, beside this
module, holds one object per protocol (``name``, ``title``, ``osi``, ``tcpip``, ``pdu`` and,
where the protocol fits no single layer, ``note``), in the order osilab lists them. The
dissector's views (every :class:`~osilab.capture.Layer` takes its ``osi`` and ``tcpip``
from it, and so do the packet tables and the pipeline's messages) and the notebooks read
it through :data:`PROTOCOLS` and :func:`place`; teaching osilab a new protocol's place
is adding a row there. The file is read once, at import, and every row is checked:
a damaged row stops the import with a :class:`~osilab.errors.ConfigError` that names the
file and the row. Apart from that one file, this module knows nothing of bytes or files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from osilab.errors import ConfigError

__all__ = [
    "LayerName",
    "OSI",
    "TCPIP",
    "FIVE_LAYER",
    "ProtocolPlace",
    "PROTOCOLS",
    "place",
    "osi_name",
    "tcpip_to_osi",
]


@dataclass(frozen=True, slots=True)
class LayerName:
    """One layer of a model: its number, its name and the name of its PDU."""

    number: int
    name: str
    pdu: str


#: The seven OSI layers (ISO/IEC 7498-1), bottom to top.
OSI: tuple[LayerName, ...] = (
    LayerName(1, "Physical", "bit"),
    LayerName(2, "Data link", "frame"),
    LayerName(3, "Network", "packet"),
    LayerName(4, "Transport", "segment / datagram"),
    LayerName(5, "Session", "data"),
    LayerName(6, "Presentation", "data"),
    LayerName(7, "Application", "message"),
)

#: The four TCP/IP layers of RFC 1122, bottom to top, with the OSI layers each covers.
TCPIP: tuple[LayerName, ...] = (
    LayerName(1, "Link", "frame"),
    LayerName(2, "Internet", "packet"),
    LayerName(3, "Transport", "segment / datagram"),
    LayerName(4, "Application", "message"),
)

#: The textbook five-layer model, bottom to top: OSI's lower four (its data link called
#: just "link"), with session and presentation folded into the application layer above.
FIVE_LAYER: tuple[LayerName, ...] = (
    OSI[0],
    LayerName(2, "Link", OSI[1].pdu),
    *OSI[2:4],
    LayerName(5, OSI[6].name, OSI[6].pdu),
)

#: Which OSI layers each TCP/IP layer covers (RFC 1122 has no physical layer).
tcpip_to_osi: MappingProxyType[str, tuple[int, ...]] = MappingProxyType(
    {
        "link": (1, 2),
        "internet": (3,),
        "transport": (4,),
        "application": (5, 6, 7),
    }
)


@dataclass(frozen=True, slots=True)
class ProtocolPlace:
    """Where one protocol sits.

    Attributes:
        name: osilab's layer name (Wireshark's short name where there is one).
        title: the protocol's full name.
        osi: the OSI layer number osilab files it under.
        tcpip: the TCP/IP layer, ``"link"``, ``"internet"``, ``"transport"`` or ``"application"``.
        pdu: what one unit of this protocol is called.
        note: where the protocol fits no single layer, the honest explanation.
    """

    name: str
    title: str
    osi: int
    tcpip: str
    pdu: str
    note: str = ""


#: The keys a row of ``protocols.json`` may have; all but ``note`` are required.
_KEYS = ("name", "title", "osi", "tcpip", "pdu", "note")

#: The data file the table is read from, beside this module (in a wheel too).
_PROTOCOLS_FILE = Path(__file__).with_name("protocols.json")


def _row_place(row: object, number: int, names: set[str], file: str) -> ProtocolPlace:
    """Check row ``number`` (1-based) of ``protocols.json`` and build its place.

    Raises :class:`~osilab.errors.ConfigError` naming the file and the row (its number,
    and its name when it has one) for an unknown or missing key, a value of the wrong
    type, an OSI layer outside 1-7 or outside its TCP/IP layer, or a name seen before.
    """
    name = row.get("name") if isinstance(row, dict) else None
    where = f"row {number}" + (f" ({name!r})" if isinstance(name, str) else "")

    def refuse(reason: str) -> ConfigError:
        return ConfigError(f"{where}: {reason}", file=file)

    if not isinstance(row, dict):
        raise refuse(f"a row is a JSON object, not {type(row).__name__}")
    unknown = [key for key in row if key not in _KEYS]
    if unknown:
        raise refuse(f"unknown key {unknown[0]!r}; the keys are {', '.join(_KEYS)}")
    missing = [key for key in _KEYS[:-1] if key not in row]
    if missing:
        raise refuse(f"missing key {missing[0]!r}")
    for key in ("name", "title", "tcpip", "pdu", "note"):
        if not isinstance(row.get(key, ""), str):
            raise refuse(f"{key} is a string, not {row[key]!r}")
        if key != "note" and not row[key]:
            raise refuse(f"{key} is empty")
    osi, tcpip = row["osi"], row["tcpip"]
    if type(osi) is not int or not 1 <= osi <= 7:
        raise refuse(f"osi is an OSI layer number 1-7, not {osi!r}")
    if tcpip not in tcpip_to_osi:
        raise refuse(f"tcpip is one of {', '.join(tcpip_to_osi)}, not {tcpip!r}")
    if osi not in tcpip_to_osi[tcpip]:
        raise refuse(f"OSI layer {osi} is not inside the TCP/IP {tcpip} layer")
    if row["name"] in names:
        raise refuse("the name is already in an earlier row")
    names.add(row["name"])
    return ProtocolPlace(**row)


def _once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are all different (``json`` would keep the last silently)."""
    row: dict[str, object] = {}
    for key, value in pairs:
        if key in row:
            raise ValueError(f"the key {key!r} is given twice in one object")
        row[key] = value
    return row


def _read_protocols(path: Path) -> MappingProxyType[str, ProtocolPlace]:
    """Read and check the protocol table in ``path`` (a JSON list, one object per protocol)."""
    file = str(path)
    try:
        rows = json.loads(path.read_bytes(), object_pairs_hook=_once_each)
    except ValueError as e:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError(f"not valid JSON: {e}", file=file) from e
    if not isinstance(rows, list) or not rows:
        raise ConfigError("the table is a JSON list of protocols, and not empty", file=file)
    names: set[str] = set()
    places = [_row_place(row, number, names, file) for number, row in enumerate(rows, 1)]
    return MappingProxyType({p.name: p for p in places})


#: Every protocol osilab dissects, by layer name, in the order of ``protocols.json``.
PROTOCOLS: MappingProxyType[str, ProtocolPlace] = _read_protocols(_PROTOCOLS_FILE)


def place(name: str) -> ProtocolPlace:
    """Where the protocol ``name`` sits; unknown names are filed as application data."""
    found = PROTOCOLS.get(name)
    if found is None:
        return ProtocolPlace(name, name, 7, "application", "data", "Not in osilab's vocabulary.")
    return found


def osi_name(number: int) -> str:
    """The name of OSI layer ``number`` (1-7)."""
    return OSI[number - 1].name

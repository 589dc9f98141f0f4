"""One colour per OSI layer, shared by every HTML view and every plot.

Colours come from the Okabe-Ito palette, chosen to stay distinguishable for the common
forms of colour blindness and on a washed-out projector. Text on them stays black.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["OSI_COLOURS", "colour_for", "TCPIP_COLOURS", "inner_style"]

#: OSI layer number -> colour (hex). Layer 1 is never in a capture; it is drawn as grey.
OSI_COLOURS: MappingProxyType[int, str] = MappingProxyType({
    1: "#BBBBBB",  # physical: never captured
    2: "#56B4E9",  # data link: sky blue
    3: "#009E73",  # network: bluish green
    4: "#E69F00",  # transport: orange
    5: "#F0E442",  # session: yellow
    6: "#CC79A7",  # presentation: reddish purple
    7: "#D55E00",  # application: vermillion
})

#: TCP/IP layer -> the colour of the OSI layer it mostly corresponds to.
TCPIP_COLOURS: MappingProxyType[str, str] = MappingProxyType({
    "link": OSI_COLOURS[2],
    "internet": OSI_COLOURS[3],
    "transport": OSI_COLOURS[4],
    "application": OSI_COLOURS[7],
})


def colour_for(osi: int) -> str:
    """The colour of OSI layer ``osi`` (grey for anything unknown)."""
    return OSI_COLOURS.get(osi, "#BBBBBB")


def inner_style(depth: int) -> str:
    """The CSS that marks a layer inside ``depth`` tunnels: the same layer colour (an inner
    IP header is still layer 3) with a dashed border, one more dash width per tunnel."""
    if depth <= 0:
        return ""
    return f"outline:{depth}px dashed #000;outline-offset:-{depth}px"

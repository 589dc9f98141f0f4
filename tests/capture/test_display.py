"""The three views of a packet a learner meets: ``show()``, the notebook HTML, the capture table.

The hexdump must colour every byte with the colour of the layer that owns it, from the one
palette (``osilab.layers.palette``) that every plot uses too.
"""

from __future__ import annotations

import io
import re

from shared_paths import CAPTURES

import osilab
from osilab.capture.display import byte_owners
from osilab.layers import palette

ALB = CAPTURES / "alb" / "alb.pcapng"


def _first_http_packet() -> osilab.Packet:
    return next(p for p in osilab.read(ALB) if "http" in p)


def test_show_prints_every_layer_with_both_models_and_aligned_fields() -> None:
    pkt = _first_http_packet()
    out = io.StringIO()
    pkt.show(file=out)
    text = out.getvalue()
    assert text.startswith(f"Packet #{pkt.no}")
    for layer in pkt.layers:
        assert f"###[ {layer.name} ]###  OSI {layer.osi}" in text
    assert "OSI 7 Application | TCP/IP Application" in text
    # every "name = value" line puts its "=" in the same column
    columns = {line.index(" = ") for line in text.splitlines() if re.match(r"  \w+\.\S+ +=", line)}
    assert len(columns) == 1, columns


def test_packet_html_colours_each_byte_by_its_layer() -> None:
    pkt = _first_http_packet()
    page = pkt._repr_html_()
    for layer in pkt.layers:
        assert f"<b>{layer.name}</b>" in page
    owners = byte_owners(pkt)
    cells = re.findall(r'<span style="background:([^"]+)" title="([^"]+)">([0-9a-f]{2})</span>', page)
    assert len(cells) == len(pkt.data)
    for index, (colour, title, byte) in enumerate(cells):
        assert int(byte, 16) == pkt.data[index]
        layer = pkt.layers[owners[index]]
        assert (colour, title) == (palette.colour_for(layer.osi), layer.name), index


def test_capture_html_shows_the_first_packets_and_counts_the_rest() -> None:
    total = sum(1 for _ in osilab.read(ALB))
    page = osilab.read(ALB)._repr_html_()
    assert f"{total} packets" in page
    assert page.count("<tr><td>") == 20
    assert f"... and {total - 20} more packets" in page

"""Property tests: arbitrary bytes never raise anything but OsilabError."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import osilab
from osilab.capture.dissect import LINKTYPES, dissect
from osilab.errors import OsilabError

LINKTYPE_VALUES = sorted(LINKTYPES) + [4242]


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), linktype=st.sampled_from(LINKTYPE_VALUES))
def test_dissect_never_raises(data, linktype):
    layers = dissect(data, linktype)
    for layer in layers:
        assert 0 <= layer.offset <= len(data)
        assert layer.length >= 0
        assert 1 <= layer.osi <= 7


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400), header=st.sampled_from([
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 113),
    b"\x0a\x0d\x0d\x0a" + struct.pack("<II", 28, 0x1A2B3C4D) + struct.pack("<HHqI", 1, 0, -1, 28),
    b"",
]))
def test_reader_never_raises_anything_but_osilab_errors(tmp_path, body, header):
    path = tmp_path / "h.pcap"
    path.write_bytes(header + body)
    try:
        for pkt in osilab.read(path):
            pkt.layers  # noqa: B018
            pkt.damaged  # noqa: B018
    except OsilabError:
        pass

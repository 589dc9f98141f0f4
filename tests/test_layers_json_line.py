"""The fast JSON writer of ``osilab layers --json`` gives exactly the objects of packet_json."""

from __future__ import annotations

import json

from shared_paths import thirdparty_captures

import osilab
from osilab.commands.layers import packet_json, packet_json_line


def test_fast_json_line_equals_the_plain_object(thirdparty):
    checked = 0
    for path in thirdparty_captures():
        for pkt in osilab.read(path):
            assert json.loads(packet_json_line(pkt)) == packet_json(pkt)
            checked += 1
    assert checked > 2000

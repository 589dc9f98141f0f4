"""The layer-to-OSI and layer-to-TCP/IP mapping, checked for every protocol osilab knows."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from osilab.capture.dissect import _DISSECTORS
from osilab.errors import ConfigError
from osilab.layers import (
    _PROTOCOLS_FILE,
    FIVE_LAYER,
    OSI,
    PROTOCOLS,
    TCPIP,
    _read_protocols,
    place,
    tcpip_to_osi,
)

# The expected places, written out independently of the table under test.
EXPECTED = {
    "eth": (2, "link"), "vlan": (2, "link"), "sll": (2, "link"), "null": (2, "link"),
    "arp": (2, "link"), "ip": (3, "internet"), "ipv6": (3, "internet"), "icmp": (3, "internet"),
    "icmpv6": (3, "internet"), "tcp": (4, "transport"), "udp": (4, "transport"),
    "dns": (7, "application"), "tls": (6, "application"), "http": (7, "application"),
    "http2": (7, "application"), "resp": (7, "application"), "pgsql": (7, "application"),
    "proxy": (5, "application"), "data": (7, "application"),
    # tunnels and the link layers real networks add (issue 15)
    "ieee8021ad": (2, "link"), "llc": (2, "link"), "stp": (2, "link"), "loop": (2, "link"),
    "cmd": (2, "link"), "pppoed": (2, "link"), "pppoes": (2, "link"), "ppp": (2, "link"),
    "lcp": (2, "link"), "mpls": (2, "link"), "nflog": (2, "link"), "vxlan": (2, "link"),
    "geneve": (2, "link"), "erspan": (2, "link"), "gre": (3, "internet"), "gtp": (3, "internet"),
    "teredo": (3, "internet"), "ayiya": (3, "internet"), "socks": (5, "application"),
    "dtls": (6, "application"),
    "websocket": (7, "application"),  # issue 19
    "quic": (4, "transport"), "http3": (7, "application"),  # issue 20
}


def test_every_protocol_has_its_expected_place():
    assert set(PROTOCOLS) == set(EXPECTED)
    for name, (osi, tcpip) in EXPECTED.items():
        assert (PROTOCOLS[name].osi, PROTOCOLS[name].tcpip) == (osi, tcpip), name


def test_osi_layer_is_within_its_tcpip_layer():
    for p in PROTOCOLS.values():
        assert p.osi in tcpip_to_osi[p.tcpip], p.name


def test_honest_misfits_say_so():
    for name in ("tls", "arp", "icmp", "proxy", "http2"):
        assert PROTOCOLS[name].note, f"{name} fits no single layer and must say why"
    assert "2.5" in PROTOCOLS["arp"].note
    assert "presentation" in PROTOCOLS["tls"].note and "session" in PROTOCOLS["tls"].note


def test_models_and_pdu_names():
    assert [layer.name for layer in OSI] == [
        "Physical", "Data link", "Network", "Transport", "Session", "Presentation", "Application"]
    assert [layer.name for layer in TCPIP] == ["Link", "Internet", "Transport", "Application"]
    assert len(FIVE_LAYER) == 5
    assert (OSI[1].pdu, OSI[2].pdu, OSI[6].pdu) == ("frame", "packet", "message")
    assert "segment" in OSI[3].pdu and "datagram" in OSI[3].pdu
    assert place("quic").note  # unknown names are filed as application data, and say so


def test_every_layer_name_a_dissector_can_produce_is_in_the_taxonomy():
    produced = {"sll2": "sll", "loop": "null", "raw": None, "dns_tcp": "dns", "erspan1": "erspan",
                "cmd_gre": "cmd", "ctp": "loop", "echo_data": "data"}
    for key in _DISSECTORS:
        name = produced.get(key, key)
        assert name is None or name in PROTOCOLS, key


def test_the_table_is_read_from_protocols_json_in_its_order():
    rows = json.loads(_PROTOCOLS_FILE.read_text(encoding="utf-8"))
    assert [row["name"] for row in rows] == list(PROTOCOLS)
    for row in rows:
        assert asdict(PROTOCOLS[row["name"]]) == {"note": "", **row}
    assert _read_protocols(_PROTOCOLS_FILE) == PROTOCOLS


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ({"osi": 8}, "osi is an OSI layer number 1-7, not 8"),
        ({"osi": "4"}, "osi is an OSI layer number 1-7, not '4'"),
        ({"tcpip": "network"}, "tcpip is one of link, internet, transport, application"),
        ({"osi": 7}, "OSI layer 7 is not inside the TCP/IP transport layer"),
        ({"layer": 4}, "unknown key 'layer'"),
        ({"title": None}, "title is a string, not None"),
        ({"name": "tcp"}, "the name is already in an earlier row"),
    ],
)
def test_a_damaged_row_is_refused_naming_the_file_and_the_row(tmp_path, damage, says):
    rows = json.loads(_PROTOCOLS_FILE.read_text(encoding="utf-8"))
    number = [row["name"] for row in rows].index("udp") + 1
    rows[number - 1].update(damage)
    path = tmp_path / "protocols.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        _read_protocols(path)
    name = rows[number - 1]["name"]
    assert str(refused.value).startswith(f"{path}: row {number} ({name!r}): ")
    assert says in str(refused.value)
    assert refused.value.file == str(path)


def test_a_row_without_a_required_key_or_not_an_object_is_refused(tmp_path):
    path = tmp_path / "protocols.json"
    path.write_text(json.dumps([{"name": "x", "title": "X", "osi": 7, "tcpip": "application"}]))
    with pytest.raises(ConfigError, match=r"protocols.json: row 1 \('x'\): missing key 'pdu'"):
        _read_protocols(path)
    path.write_text(json.dumps([["eth", "Ethernet II", 2, "link", "frame"]]))
    with pytest.raises(ConfigError, match="row 1: a row is a JSON object, not list"):
        _read_protocols(path)
    path.write_text("[{")
    with pytest.raises(ConfigError, match="protocols.json: not valid JSON"):
        _read_protocols(path)


def test_an_empty_table_an_empty_text_or_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "protocols.json"
    path.write_text("[]")
    with pytest.raises(ConfigError, match="a JSON list of protocols, and not empty"):
        _read_protocols(path)
    row = '{"name": "x", "title": "X", "osi": 7, "tcpip": "application", "pdu": "message"}'
    path.write_text("[" + row.replace('"title": "X"', '"title": ""') + "]")
    with pytest.raises(ConfigError, match=r"row 1 \('x'\): title is empty"):
        _read_protocols(path)
    path.write_text("[" + row.replace('"osi": 7', '"osi": 7, "osi": 4') + "]")  # json keeps the last
    with pytest.raises(ConfigError, match="the key 'osi' is given twice in one object"):
        _read_protocols(path)

"""The layer-to-OSI and layer-to-TCP/IP mapping, checked for every protocol osilab knows."""

from __future__ import annotations

from osilab.capture.dissect import _DISSECTORS
from osilab.layers import FIVE_LAYER, OSI, PROTOCOLS, TCPIP, place, tcpip_to_osi

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

"""The lab's pure parts, without root: topology, configurations, pcapng naming, truth parsing."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from osilab.capture.pcapng import pcap_to_pcapng
from osilab.errors import CaptureError, LabError
from osilab.lab import configs, doctor, truth
from osilab.lab.app import request_id
from osilab.lab.record import alb_targets
from osilab.lab.topology import LAB, OFFLOADS_OFF, PREFIX, build_commands

DOCUMENTATION = [
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


# -- topology ---------------------------------------------------------------------------------


def test_every_address_is_a_documentation_address() -> None:
    for interface in LAB.interfaces():
        for cidr in interface.addresses:
            network = ipaddress.ip_interface(cidr).network
            assert any(network.subnet_of(doc) for doc in DOCUMENTATION), (interface.name, cidr)


@pytest.mark.parametrize(
    ("role", "network"),
    [("client", "198.51.100.0/24"), ("instance", "192.0.2.0/24"), ("redis", "192.0.2.0/24"),
     ("postgresql", "192.0.2.0/24")],
)  # fmt: skip
def test_roles_live_in_their_range(role: str, network: str) -> None:
    hosts = [h.name for h in LAB.hosts if h.role == role]
    assert hosts
    for host in hosts:
        for interface in LAB.interfaces(host):
            for cidr in interface.addresses:
                assert ipaddress.ip_interface(cidr).ip in ipaddress.ip_network(network)


def test_virtual_ips_are_in_203_0_113() -> None:
    for name in ("alb", "nlb", "l4p"):
        assert ipaddress.ip_address(LAB.services[name]) in ipaddress.ip_network("203.0.113.0/24")


def test_hops_are_unique_named_and_macs_are_real() -> None:
    hops = [link.hop for link in LAB.links if link.captured]
    assert len(hops) == len(set(hops))
    assert {"client-alb", "alb-web1", "alb-web2", "web1-api", "api-redis", "api-db"} <= set(hops)
    macs = [i.mac for i in LAB.interfaces()]
    assert len(macs) == len(set(macs))
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert mac != "00:00:00:00:00:00" and first & 0x02 and not first & 0x01  # local unicast
    assert all(len(i.name) <= 15 for i in LAB.interfaces())  # Linux IFNAMSIZ


def test_commands_stay_in_the_lab() -> None:
    commands = build_commands(LAB)
    namespaces = {ns for ns, _ in commands if ns}
    assert all(ns.startswith(PREFIX) for ns in namespaces)
    # Commands in the host's own namespace only create namespaces and veths into them.
    for ns, argv in commands:
        if ns is None:
            assert argv[:3] in (("ip", "netns", "add"), ("ip", "link", "add")), argv
            if argv[:3] == ("ip", "link", "add"):
                assert argv.count("netns") == 2
    forwarding = {ns for ns, argv in commands if argv[-1] == "net.ipv4.ip_forward=1"}
    assert forwarding == {"osl-nlb"}
    ethtool = [argv for _, argv in commands if argv[0] == "ethtool"]
    assert len(ethtool) == len(LAB.interfaces())
    assert all(argv[3:] == OFFLOADS_OFF for argv in ethtool)
    defaults = [
        (ns, argv) for ns, argv in commands if argv[:4] == ("ip", "route", "add", "default")
    ]
    assert {ns for ns, _ in defaults} == {"osl-web1", "osl-web2"}
    assert all("192.0.2.3" in argv for _, argv in defaults)  # back through the NLB


def test_topology_json_describes_hops() -> None:
    document = LAB.to_json(("client-alb", "alb-web1"))
    assert [h["interface"] for h in document["hops"]] == ["client-alb", "alb-web1"]
    alb = next(h for h in document["hosts"] if h["name"] == "alb")
    # alb-edge: the CloudFront edge reaches the ALB role's public address (issue 21)
    names = {i["name"] for i in alb["interfaces"]}
    assert names == {"alb-client", "alb-web1", "alb-web2", "alb-edge"}
    assert all(i["mac"] for h in document["hosts"] for i in h["interfaces"])


# -- configurations ---------------------------------------------------------------------------


def _alb_config(tmp_path: Path) -> str:
    return configs.haproxy_alb(
        vip="203.0.113.10", targets=alb_targets(), certificate=str(tmp_path / "alb.pem"),
    )  # fmt: skip


def test_alb_target_groups_share_no_target(tmp_path: Path) -> None:
    """Each rule's group has targets of its own: the instances' secondary addresses, on the
    ALB's link, each with its /32 route there; HAProxy names the server after the instance."""
    text = _alb_config(tmp_path)
    backends = {block.split("\n")[0]: block for block in text.split("backend ")[1:]}
    addresses = [alb_targets()[t] for group in configs.ALB_TARGET_GROUPS.values() for t in group]
    assert len(addresses) == len(set(addresses))
    routes = {r.destination: r.device for r in LAB.routes if r.host == "alb"}
    for group, targets in configs.ALB_TARGET_GROUPS.items():
        for target in targets:
            web, ip = configs.instance_of(target), alb_targets()[target]
            assert f"    server {web} {ip}:80" in backends[group]
            assert routes[f"{ip}/32"] == f"alb-{web}"
            link = next(i for i in LAB.interfaces(web) if i.name == f"{web}-alb")
            assert f"{ip}/32" in link.addresses
    nginx = configs.nginx_instance(name="web2", address="192.0.2.12", app="192.0.2.22:8080",
                                   root="/r", run_dir="/d", certificate="/c", key="/k",
                                   secondary=("192.0.2.14",))  # fmt: skip
    assert "listen 192.0.2.14:80;" in nginx and "listen 192.0.2.12:443 ssl;" in nginx


def test_alb_rules_are_in_priority_order(tmp_path: Path) -> None:
    text = _alb_config(tmp_path)
    positions = [text.index(f"str({rule.name})") for rule in configs.ALB_RULES]
    assert positions == sorted(positions)
    assert "option forwardfor" in text
    conditions = {rule.condition for rule in configs.ALB_RULES}
    assert conditions == {"host-header", "http-header", "http-request-method", "query-string",
                          "source-ip", "path-pattern"}  # fmt: skip


@pytest.mark.skipif(
    shutil.which("haproxy") is None, reason="haproxy is not installed (Debian package haproxy)"
)
@pytest.mark.parametrize("kind", ["alb", "l4"])
def test_haproxy_accepts_the_configs(tmp_path: Path, kind: str) -> None:
    certificate, key = configs.self_signed(("shop.example.com",))
    (tmp_path / "alb.pem").write_bytes(certificate + key)
    targets = {"web1": "192.0.2.11", "web2": "192.0.2.12"}
    text = (
        _alb_config(tmp_path)
        if kind == "alb"
        else configs.haproxy_l4(vip="203.0.113.30", targets=targets)
    )
    (tmp_path / "h.cfg").write_text(text)
    done = subprocess.run(
        ["haproxy", "-c", "-f", str(tmp_path / "h.cfg")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_nlb_hashes_the_four_tuple() -> None:
    text = configs.nftables_nlb(vip="203.0.113.20", targets=("192.0.2.11", "192.0.2.12"))
    assert "type nat hook prerouting" in text
    assert text.count("jhash ip saddr . tcp sport . ip daddr . tcp dport mod 2") == 2
    assert "map { 0 : 192.0.2.11, 1 : 192.0.2.12 }" in text


def test_l4_proxy_v2_variant_sends_proxy_header() -> None:
    text = configs.haproxy_l4(vip="203.0.113.30", targets={"web1": "192.0.2.11"})
    assert "server web1 192.0.2.11:8081 send-proxy-v2" in text
    assert "server web1 192.0.2.11:80\n" in text


# -- pcapng naming ----------------------------------------------------------------------------


def _pcap(frames: list[bytes], *, cut: int = 0) -> bytes:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for index, frame in enumerate(frames):
        data += struct.pack("<IIII", 1_700_000_000 + index, 250_000, len(frame), len(frame)) + frame
    return data[: len(data) - cut] if cut else data


FRAME = bytes.fromhex("020000000101020000000102") + b"\x08\x00" + b"\x45" + b"\x00" * 45


def test_pcapng_keeps_every_record_and_names_the_interface(tmp_path: Path) -> None:
    out = pcap_to_pcapng(_pcap([FRAME, FRAME[:50]]), "alb-web1", "ALB to web1")
    assert out[:4] == b"\x0a\x0d\x0d\x0a"
    assert out.count(struct.pack("<I", 6)) >= 2
    if shutil.which("tshark"):
        (tmp_path / "x.pcapng").write_bytes(out)
        done = subprocess.run(
            ["tshark", "-r", str(tmp_path / "x.pcapng"), "-T", "fields",
             "-e", "frame.interface_name", "-e", "frame.len", "-e", "frame.time_epoch"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows = [line.split("\t") for line in done.stdout.splitlines()]
        assert [r[:2] for r in rows] == [["alb-web1", "60"], ["alb-web1", "50"]]
        assert rows[1][2].startswith("1700000001.25")


def test_pcapng_drops_a_cut_last_record() -> None:
    whole = pcap_to_pcapng(_pcap([FRAME, FRAME]), "h")
    cut = pcap_to_pcapng(_pcap([FRAME, FRAME], cut=10), "h")
    assert len(cut) < len(whole)
    assert cut == pcap_to_pcapng(_pcap([FRAME]), "h")


def test_pcapng_refuses_what_is_not_pcap() -> None:
    with pytest.raises(CaptureError):
        pcap_to_pcapng(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40, "h")


# -- truth ------------------------------------------------------------------------------------

ALB_LINE = (
    "alb client=198.51.100.8:40001 frontend=alb~ rule=source target_group=tg-office server=web1 "
    "target=192.0.2.11:80 status=200 bytes=272 termination=-- rid=a0042 version=HTTP/2.0 "
    'request="GET /?rid=a0042 HTTP/2.0"'
)
TCP_LINE = (
    "l4 client=198.51.100.7:50000 frontend=l4-8081 target_group=tg-tcp-pp2 server=web2 "
    "target=192.0.2.12:8081 source=192.0.2.4:41000 bytes=900 termination=--"
)


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [(ALB_LINE, "target", "192.0.2.11:80"), (ALB_LINE, "request", "GET /?rid=a0042 HTTP/2.0"),
     (ALB_LINE, "frontend", "alb~"), (TCP_LINE, "source", "192.0.2.4:41000")],
)  # fmt: skip
def test_parse_fields(line: str, key: str, value: str) -> None:
    assert truth.parse_fields(line)[key] == value


def test_alb_truth_from_log_lines() -> None:
    text = (
        "2026 noise\n"
        + ALB_LINE
        + "\n"
        + ALB_LINE.replace("a0042", "a0043").replace("rid=a0043 ", "rid= ", 1)
    )
    decisions = truth.alb_truth(truth.parse_haproxy_http(text))
    assert decisions["a0042"]["target_group"] == "tg-office"
    assert decisions["a0042"]["rule"] == "source"
    assert (
        decisions["a0043"]["target"] == "192.0.2.11:80"
    )  # id taken from the query when not captured


def test_connection_truth_matches_by_source_and_virtual_ip() -> None:
    connections = [{"client": "198.51.100.7:50000", "target": "192.0.2.12:8081"}]
    records = [
        {"rid": "p1", "source": "198.51.100.7:50000", "destination": "203.0.113.30:81"},
        {"rid": "p2", "source": "198.51.100.7:50000", "destination": "203.0.113.10:80"},
        {"rid": "p3", "source": "198.51.100.7:50001", "destination": "203.0.113.30:81"},
    ]
    listed, requests = truth.connection_truth(
        connections, records, source="t", virtual_ip="203.0.113.30"
    )
    assert list(requests) == ["p1"] and requests["p1"]["target"] == "192.0.2.12:8081"
    assert listed[0]["source"] == "t"


@pytest.mark.parametrize(
    ("header", "query", "expected"),
    [("r0001", None, "r0001"), (None, "r0002", "r0002"), ("x */ DROP", "r3", "r3"), ("", "", "-"),
     ("a" * 33, None, "-")],
)  # fmt: skip
def test_request_id_never_lets_sql_through(
    header: str | None, query: str | None, expected: str
) -> None:
    assert request_id(header, query) == expected


def test_require_lists_everything_missing_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        doctor, "which", lambda program: None if program in ("nft", "haproxy") else "/bin/true"
    )
    monkeypatch.setattr(doctor, "_version", lambda path, argv: "1.0")
    monkeypatch.setattr(doctor.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError) as caught:
        doctor.require()
    message = str(caught.value)
    assert "root" in message and "nft" in message and "haproxy" in message
    assert "apt-get install haproxy nftables" in message


def test_connection_truth_tells_a_reused_source_port_apart_by_listener() -> None:
    """The client may use one source port towards :80 and then :81 of the L4 proxy; the
    proxy's log names the listener, so each request joins its own connection."""
    from osilab.lab.truth import connection_truth

    rows = [
        {"client": "198.51.100.7:40000", "target": "192.0.2.11:80", "listen": "203.0.113.30:80"},
        {"client": "198.51.100.7:40000", "target": "192.0.2.12:80", "listen": "203.0.113.30:81"},
    ]
    records = [
        {"rid": "p1", "source": "198.51.100.7:40000", "destination": "203.0.113.30:80"},
        {"rid": "p2", "source": "198.51.100.7:40000", "destination": "203.0.113.30:81"},
    ]
    _, requests = connection_truth(rows, records, source="test", virtual_ip="203.0.113.30")
    assert requests["p1"]["target"] == "192.0.2.11:80"
    assert requests["p2"]["target"] == "192.0.2.12:80"
    # without the listener (the NLB's back-side SYNs) the client alone is the key, as before
    plain = [{k: v for k, v in row.items() if k != "listen"} for row in rows[:1]]
    _, requests = connection_truth(plain, records[:1], source="test", virtual_ip="203.0.113.30")
    assert requests["p1"]["target"] == "192.0.2.11:80"

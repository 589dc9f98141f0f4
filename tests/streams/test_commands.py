"""The flows, http and follow commands: the design.md JSON keys and readable tables."""

from __future__ import annotations

import json

import pytest

from osilab.cli import main

FLOW_KEYS = ["proto", "client", "server", "packets", "bytes", "first", "last", "state"]
HTTP_KEYS = [
    "flow",
    "method",
    "host",
    "target",
    "version",
    "first_packet",
    "headers_complete_packet",
    "status",
]


def _json_lines(capsys, argv):
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_flows_json(thirdparty, capsys):
    [obj] = _json_lines(capsys, ["flows", str(thirdparty / "zeek/http-get.pcap"), "--json"])
    assert list(obj)[:8] == FLOW_KEYS
    assert obj["server"] == "192.150.187.43:80" and obj["state"] == "closed"


def test_http_json(thirdparty, capsys):
    objs = _json_lines(
        capsys,
        [
            "http",
            str(thirdparty / "suricata-verify/http-pipelined-two-requests-one-segment.pcap"),
            "--json",
        ],
    )
    assert [list(o)[:8] for o in objs] == [HTTP_KEYS, HTTP_KEYS]
    # This capture's requests end their lines with a bare LF: h11 accepts them, the ALB's
    # guardian calls them Acceptable (NonCrLfLineTermination).
    assert [
        (o["target"], o["status"], o["desync"]["class"], o["desync"]["reason"]) for o in objs
    ] == [
        ("/bar/", 200, "Acceptable", "NonCrLfLineTermination"),
        ("/foo/", 200, "Acceptable", "NonCrLfLineTermination"),
    ]
    assert objs[0]["flow"] == "10.16.1.11:34786-152.53.82.239:80"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["flows", "zeek/http-get.pcap", "--app"], "http"),
        (["http", "scapy/http2-h2c-upgrade.pcap"], "HTTP/2 s3"),
        (["follow", "zeek/http-post.pcap", "0"], "=== server -> client (packets 6-8) ==="),
        (["follow", "zeek/tcp-snaplen-truncated.pcap", "0"], "[... gap: 84 bytes server -> client"),
    ],
)
def test_tables(thirdparty, capsys, argv, needle):
    argv = [argv[0], str(thirdparty / argv[1]), *argv[2:]]
    assert main(argv) == 0
    assert needle in capsys.readouterr().out


def test_follow_an_unknown_flow_is_a_usage_error(thirdparty, capsys):
    assert main(["follow", str(thirdparty / "zeek/http-get.pcap"), "7"]) == 1
    assert "no flow" in capsys.readouterr().err


def _tshark_follow(tshark: str, path) -> tuple[dict[str, str], bytes, bytes]:
    """tshark's ``-z follow,tcp,raw,0``: its two nodes, and each one's bytes (a line per
    segment in hex; the second node's lines start with a tab)."""
    import subprocess

    # (no check: on a damaged file tshark exits 2 after following what it could read)
    out = subprocess.run([tshark, "-r", str(path), "-q", "-z", "follow,tcp,raw,0"],
                         capture_output=True, text=True).stdout  # fmt: skip
    nodes, first, second = {}, [], []
    for line in out.splitlines():
        if line.startswith("Node "):
            name, endpoint = line.split(": ", 1)
            nodes[name] = endpoint
        elif line.startswith("\t"):
            second.append(line.strip())
        elif line and all(c in "0123456789abcdef" for c in line):
            first.append(line)
    return nodes, bytes.fromhex("".join(first)), bytes.fromhex("".join(second))


def test_follow_json_gives_the_bytes_tshark_follows(thirdparty, tshark, capsys):
    """``follow --json`` against tshark's Follow TCP Stream (raw) on the first TCP stream
    of every third-party capture: the same bytes each way, in the same order."""
    compared, differ = 0, []
    for path in sorted(thirdparty.rglob("*.pcap*")):
        nodes, first, second = _tshark_follow(tshark, path)
        if not (first or second) or "Node 1" not in nodes:
            continue  # no TCP stream with data
        flow = f"{nodes['Node 0']}-{nodes['Node 1']}"
        assert main(["follow", str(path), flow, "--json", "--quiet"]) == 0
        pieces = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert all(p["length"] == len(bytes.fromhex(p["hex"])) for p in pieces if p["kind"] == "data")
        ways = {way: bytes.fromhex("".join(p["hex"] for p in pieces
                                           if p["kind"] == "data" and p["direction"] == way))
                for way in ("to_server", "to_client")}  # fmt: skip
        compared += 1
        if (ways["to_server"], ways["to_client"]) != (first, second):  # Node 0: the client
            differ.append(path.name)
    print(f"measured: follow --json: {compared - len(differ)}/{compared} TCP streams give "
          "tshark's Follow TCP Stream bytes")  # fmt: skip
    assert compared >= 30 and differ == []

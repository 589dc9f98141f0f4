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

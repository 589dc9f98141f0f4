"""``osilab route`` and ``osilab compare`` on real third-party captures."""

from __future__ import annotations

import importlib.util
import json

import pytest

from osilab.cli import main


@pytest.fixture(scope="module")
def http_reader(thirdparty):
    """Skip unless osilab.pipeline.iter_http exists and can read a simple capture."""
    if importlib.util.find_spec("osilab.protocols.http") is None:
        pytest.skip("osilab.protocols.http (iter_http) is not written yet")
    import osilab
    from osilab.pipeline import iter_http

    try:
        list(iter_http(osilab.read(thirdparty / "zeek" / "http-get.pcap")))
    except (ImportError, NotImplementedError) as exc:
        pytest.skip(f"osilab.pipeline.iter_http is not usable yet: {exc}")
    return iter_http


CONTRACT = ("unit", "flow", "request", "decided_at", "target_group", "target", "seen", "why")


def test_route_nlb_json(thirdparty, capsys) -> None:
    capture = thirdparty / "zeek" / "http-get.pcap"
    assert main(["route", str(capture), "--lb", "nlb", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    decision = lines[0]
    assert list(decision)[: len(CONTRACT)] == list(CONTRACT)
    assert decision["unit"] == "flow" and decision["request"] is None
    assert decision["decided_at"] == 1
    assert decision["flow"] == "141.142.228.5:59856-192.150.187.43:80"
    assert decision["seen"] == ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport"]
    # No config: the default holds only the server the capture shows (nothing invented).
    assert decision["target"] == "192.150.187.43:80"


def test_route_nlb_table_and_config(thirdparty, tmp_path, capsys) -> None:
    config = tmp_path / "lb.yaml"
    config.write_text(
        "Type: network\n"
        "TargetGroups: [{Name: blue, Protocol: TCP, Port: 8080, Targets: ['192.0.2.31:8080']}]\n"
        "Listeners: [{Protocol: TCP, Port: 80, DefaultActions: [{Type: forward, TargetGroupName: blue}]}]\n"
    )
    capture = thirdparty / "zeek" / "http-get.pcap"
    assert main(["route", str(capture), "--lb", "nlb", "--config", str(config), "--why"]) == 0
    out = capsys.readouterr().out
    assert "192.0.2.31:8080" in out and "NLB: 14 packets, 14 routed" in out and "the SYN" in out


def test_route_bad_config_is_one_clear_error(thirdparty, tmp_path, capsys) -> None:
    config = tmp_path / "lb.json"
    config.write_text(
        json.dumps(
            {
                "Type": "network",
                "TargetGroups": [
                    {"Name": "t", "Protocol": "TCP", "Port": 80, "Targets": ["192.0.2.11:80"]}
                ],
                "Listeners": [
                    {
                        "Protocol": "TCP",
                        "Port": 80,
                        "DefaultActions": [{"Type": "forward", "TargetGroupName": "t"}],
                        "Rules": [],
                    }
                ],
            }
        )
    )
    assert (
        main(
            [
                "route",
                str(thirdparty / "zeek" / "http-get.pcap"),
                "--lb",
                "nlb",
                "--config",
                str(config),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "osilab: error:" in err and "no Rules" in err and "Traceback" not in err


def test_route_alb_json(thirdparty, http_reader, capsys) -> None:
    capture = thirdparty / "zeek" / "http-get.pcap"
    assert main(["route", str(capture), "--lb", "alb", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and all(d["unit"] == "request" for d in lines)
    assert all(list(d)[: len(CONTRACT)] == list(CONTRACT) for d in lines)
    assert all(d["decided_at"] > 1 for d in lines)  # never at the SYN
    assert lines[0]["request"].startswith("GET ")


def test_compare_keep_alive(thirdparty, http_reader, capsys) -> None:
    capture = thirdparty / "suricata-verify" / "http-keepalive-chunked.pcap"
    if not capture.exists():
        pytest.skip(f"{capture} is not in the shared captures")
    assert main(["compare", str(capture)]) == 0
    out = capsys.readouterr().out
    assert "imbalance" in out and "time to decision" in out


def test_compare_on_a_real_keep_alive_capture(thirdparty) -> None:
    """Three requests on one kept-alive connection (suricata-verify): the NLB pins all three
    to the target chosen at the SYN; the ALB decides each at its own packet."""
    import osilab
    from osilab.balancers import compare
    from osilab.viz.conversation import http_requests

    packets = list(osilab.read(thirdparty / "suricata-verify" / "http-keepalive-chunked.pcap"))
    requests = http_requests(packets)
    three = {"Type": "application", "TargetGroups": [{"Name": "web", "Targets": [
        "192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"]}], "Listeners": [{"Protocol": "HTTP",
        "Port": 80, "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]}
    result = compare(packets, three, messages=requests)
    assert [r.alb_decided_at for r in result.rows] == [r.headers_complete_packet for r in requests]
    assert {r.nlb_decided_at for r in result.rows} == {1}  # the SYN
    assert len({r.nlb_target for r in result.rows}) == 1
    assert len({r.alb_target for r in result.rows}) == len(requests) == 3  # round robin per request
    assert result.imbalance() == {"nlb": 3.0, "alb": 1.0}
    assert all((r.alb_packets_after_syn or 0) >= 3 for r in result.rows)  # at least the handshake
    assert result.nlb.total == len(packets) == result.nlb.routed


def test_route_alb_with_rules_on_a_real_capture(thirdparty, http_reader, tmp_path, capsys) -> None:
    config = tmp_path / "alb.json"
    config.write_text(
        json.dumps(
            {
                "Type": "application",
                "TargetGroups": [
                    {"Name": "web", "Targets": ["192.0.2.11:80", "192.0.2.12:80"]},
                    {"Name": "ajax", "Targets": ["192.0.2.21:80"]},
                ],
                "Listeners": [
                    {
                        "Protocol": "HTTP",
                        "Port": 80,
                        "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                        "Rules": [
                            {
                                "Priority": "10",
                                "Conditions": [
                                    {
                                        "Field": "path-pattern",
                                        "PathPatternConfig": {"Values": ["/ajax/*"]},
                                    }
                                ],
                                "Actions": [{"Type": "forward", "TargetGroupName": "ajax"}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    capture = thirdparty / "suricata-verify" / "http-keepalive-chunked.pcap"
    assert main(["route", str(capture), "--lb", "alb", "--config", str(config), "--json"]) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_path = {d["request"].split(" ", 1)[1].split("?")[0]: d for d in decisions}
    assert by_path["/ajax/Horoscope.aspx"]["target_group"] == "ajax"
    assert by_path["/ajax/Horoscope.aspx"]["rule"] == "10"
    assert by_path["/"]["target_group"] == "web" and by_path["/"]["rule"] == "default"
    assert "http.request.uri.path" in by_path["/"]["seen"]
    assert all(d["decided_at"] > 1 for d in decisions)

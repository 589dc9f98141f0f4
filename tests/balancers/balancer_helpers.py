"""Small builders shared by the balancer tests: requests, responses, configs, packets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osilab.protocols.messages import DesyncVerdict, HttpRequest, HttpResponse
from osilab.streams.keys import Endpoint, FlowKey

CLIENT = "198.51.100.7"
LB = "203.0.113.20"
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


def flow(
    client_ip: str = CLIENT, client_port: int = 51514, server_port: int = 80, server_ip: str = LB
) -> FlowKey:
    return FlowKey("tcp", Endpoint(client_ip, client_port), Endpoint(server_ip, server_port))


def request(
    target: str = "/",
    *,
    method: str = "GET",
    host: str | None = "shop.example",
    headers: tuple[tuple[str, str], ...] = (),
    index: int = 0,
    on: FlowKey | None = None,
    first: int = 4,
    complete: int = 4,
    time: float = 1_700_000_000.0,
    desync: DesyncVerdict | None = None,
) -> HttpRequest:
    all_headers = ((("Host", host),) if host is not None else ()) + headers
    return HttpRequest(
        flow=on or flow(),
        index=index,
        method=method,
        target=target,
        version="HTTP/1.1",
        headers=all_headers,
        first_packet=first,
        headers_complete_packet=complete,
        time=time,
        desync=desync,
    )


def response(req: HttpRequest, status: int = 200, packet: int = 10) -> HttpResponse:
    return HttpResponse(
        req.flow, req.index, status, "OK", "HTTP/1.1", (), packet, packet, req.time + 0.01
    )


def alb_config(
    rules: list[dict[str, Any]] | None = None,
    groups: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An ALB with target groups web (2 targets), api (1), and rules as given."""
    return {
        "Type": "application",
        "TargetGroups": groups
        or [
            {
                "Name": "web",
                "Protocol": "HTTP",
                "Port": 80,
                "Targets": ["192.0.2.11:80", "192.0.2.12:80"],
            },
            {"Name": "api", "Protocol": "HTTP", "Port": 80, "Targets": ["192.0.2.13:80"]},
        ],
        "Listeners": [
            {
                "Protocol": "HTTP",
                "Port": 80,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}],
                **({"Rules": rules} if rules is not None else {}),
            }
        ],
        **extra,
    }


def rule(
    priority: str, conditions: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "Priority": priority,
        "Conditions": conditions,
        "Actions": actions or [{"Type": "forward", "TargetGroupName": "api"}],
    }


def nlb_config(targets: list[str] | None = None, **group: Any) -> dict[str, Any]:
    listener_extra = group.pop("listener", {})
    return {
        "Type": "network",
        "TargetGroups": [
            {
                "Name": "tcp-80",
                "Protocol": "TCP",
                "Port": 80,
                "Targets": targets or ["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"],
                **group,
            }
        ],
        "Listeners": [
            {
                "Protocol": "TCP",
                "Port": 80,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "tcp-80"}],
                **listener_extra,
            }
        ],
    }


@dataclass
class FakePacket:
    """The attributes of an osilab.capture Packet that the balancers read."""

    no: int
    time: float
    proto: str | None
    ip_src: str | None
    ip_dst: str | None
    src_port: int | None
    dst_port: int | None
    tcp_flags: int | None = None
    tcp_seq: int | None = None
    payload: bytes = b""
    read_error: str | None = None
    layers: tuple = ()


def tcp_connection(
    start_no: int,
    client_port: int,
    *,
    t0: float = 1_700_000_000.0,
    client: str = CLIENT,
    server: str = LB,
    port: int = 80,
    payloads: int = 1,
) -> list[FakePacket]:
    """A whole little TCP connection: handshake, request/response pairs, FIN exchange."""
    c2s: dict[str, Any] = dict(
        proto="tcp", ip_src=client, ip_dst=server, src_port=client_port, dst_port=port
    )
    s2c: dict[str, Any] = dict(
        proto="tcp", ip_src=server, ip_dst=client, src_port=port, dst_port=client_port
    )
    seq = 1000 + client_port
    shape = [(c2s, SYN), (s2c, SYN | ACK), (c2s, ACK)]
    for _ in range(payloads):
        shape += [(c2s, PSH | ACK), (s2c, ACK), (s2c, PSH | ACK), (c2s, ACK)]
    shape += [(c2s, FIN | ACK), (s2c, FIN | ACK), (c2s, ACK)]
    return [
        FakePacket(start_no + i, t0 + i * 0.001, tcp_flags=flags, tcp_seq=seq, **side)
        for i, (side, flags) in enumerate(shape)
    ]

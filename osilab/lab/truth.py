"""Ground truth from the real servers' own records: which target each request reached.

The replay models (``osilab.balancers``) are judged against what the *real* balancers
did. This module reads those records — lines of the HAProxy and nginx logs, rows that
tshark extracted from the back-side capture, the client's own list of requests — and
builds the ``truth.json`` document of a scenario. It parses text and returns
dictionaries; it never opens a file or runs a program.

Sources, per balancer:

* **ALB role** (HAProxy ``mode http``): its log line per request names the rule, the
  target group (``%b``) and the target (``%si:%sp``). Decided *per request*.
* **NLB role** (nftables): nftables logs nothing per flow, so the truth is the
  back-side capture: each SYN seen on ``nlb-web1``/``nlb-web2`` says which target that
  client ``ip:port`` was sent to. Decided *per connection*; every request on the
  connection (found by the client's source port) inherits the target.
* **L4 proxy** (HAProxy ``mode tcp``): its log line per connection names the target;
  requests inherit it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "parse_fields",
    "parse_haproxy_http",
    "parse_haproxy_tcp",
    "parse_nginx",
    "alb_truth",
    "connection_truth",
    "websocket_truth",
]

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_fields(line: str) -> dict[str, str]:
    """``key=value`` pairs of one log line (values may be double-quoted).

    >>> parse_fields('alb client=1.2.3.4:5 rid=r1 request="GET / HTTP/1.1"')
    {'client': '1.2.3.4:5', 'rid': 'r1', 'request': 'GET / HTTP/1.1'}
    """
    fields = {}
    for key, value in _FIELD.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        fields[key] = value
    return fields


def _lines(text: str, marker: str) -> Iterable[str]:
    for line in text.splitlines():
        start = line.find(marker + " client=")
        if start >= 0:
            yield line[start:]


def parse_haproxy_http(text: str) -> list[dict[str, str]]:
    """The ALB role's request lines (``alb client=... target_group=... target=...``)."""
    return [parse_fields(line) for line in _lines(text, "alb")]


def parse_haproxy_tcp(text: str) -> list[dict[str, str]]:
    """The L4 proxy's connection lines (``l4 client=... target=...``)."""
    return [parse_fields(line) for line in _lines(text, "l4")]


def parse_nginx(text: str) -> list[dict[str, str]]:
    """The instances' access-log lines (``nginx instance=... client=... rid=...``)."""
    return [parse_fields(line) for line in text.splitlines() if line.startswith("nginx instance=")]


def _rid_of(row: Mapping[str, str]) -> str | None:
    rid = row.get("rid", "")
    if rid and rid != "-":
        return rid
    match = re.search(r"[?&]rid=([A-Za-z0-9_-]+)", row.get("request", ""))
    return match.group(1) if match else None


def alb_truth(haproxy_rows: Iterable[Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Request id -> the ALB role's decision, from its log lines."""
    truth: dict[str, dict[str, Any]] = {}
    for row in haproxy_rows:
        rid = _rid_of(row)
        if rid is None:
            continue
        truth[rid] = {
            "target_group": row.get("target_group"),
            "target": row.get("target"),
            "server": row.get("server"),
            "rule": row.get("rule"),
            "client": row.get("client"),
            "frontend": row.get("frontend"),
            "status": int(row["status"]) if row.get("status", "").lstrip("-").isdigit() else None,
            "http_version": row.get("version"),
            "source": "haproxy log",
        }
    return truth


def connection_truth(
    connections: Iterable[Mapping[str, str]],
    client_records: Iterable[Mapping[str, Any]],
    *,
    source: str,
    virtual_ip: str,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Per-connection decisions, and each request id's target through its connection.

    ``connections`` rows have ``client`` (ip:port as the client sent it), ``target``
    (ip:port the balancer chose) and optionally ``target_group``/``hop``.
    Requests are matched to connections by the client's source ``ip:port``, among the
    client's requests to this balancer's ``virtual_ip`` (the client may reuse a source
    port towards another balancer).
    """
    # A client may reuse one source port towards two listeners of the same balancer (the L4
    # proxy listens on :80 and :81): where a row says which listener (``listen``, ip:port)
    # took the connection, the key is (client, listener), else the client alone.
    by_client: dict[tuple[str, str | None], dict[str, Any]] = {}
    listed: list[dict[str, Any]] = []
    for row in connections:
        entry = {k: v for k, v in row.items() if v not in (None, "")}
        entry["source"] = source
        listed.append(entry)
        by_client[(row["client"], row.get("listen") or None)] = entry
    requests: dict[str, dict[str, Any]] = {}
    for record in client_records:
        destination = str(record.get("destination", ""))
        if not destination.startswith(virtual_ip + ":"):
            continue
        client = record.get("source", "")
        connection = by_client.get((client, destination)) or by_client.get((client, None))
        if connection is None or record.get("rid") is None:
            continue
        requests[record["rid"]] = {
            "target": connection["target"],
            "target_group": connection.get("target_group"),
            "client": record["source"],
            "decided_per": "connection",
            "source": source,
        }
    return listed, requests


def websocket_truth(app_log: str) -> dict[str, dict[str, Any]]:
    """Request id -> what the app's WebSocket handler saw: app, peer, messages, close code.

    Lines are ``ws event=open|message|close rid=... app=... peer=...`` (osilab.lab.app).

    >>> websocket_truth("ws event=open rid=w1 app=api1 peer=192.0.2.11:4\\n"
    ...                 "ws event=message rid=w1 app=api1 peer=192.0.2.11:4 kind=text bytes=5\\n"
    ...                 "ws event=close rid=w1 app=api1 peer=192.0.2.11:4 code=1000\\n")
    {'w1': {'app': 'api1', 'peer': '192.0.2.11:4', 'messages': 1, 'kinds': ['text'], 'close_code': 1000, 'source': 'app log'}}
    """
    found: dict[str, dict[str, Any]] = {}
    for line in app_log.splitlines():
        if not line.startswith("ws event="):
            continue
        row = parse_fields(line)
        rid = row.get("rid", "-")
        if rid == "-":
            continue
        entry = found.setdefault(rid, {"app": row.get("app"), "peer": row.get("peer"), "messages": 0,
                                       "kinds": [], "close_code": None, "source": "app log"})  # fmt: skip
        if row.get("event") == "message":
            entry["messages"] += 1
            entry["kinds"].append(row.get("kind"))
        elif row.get("event") == "close":
            code = row.get("code", "")
            entry["close_code"] = int(code) if code.isdigit() else None
    return found

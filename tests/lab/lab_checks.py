"""The lab's promises, checked on one recorded scenario folder with tshark.

Shared by the fast tests on the committed ``captures/`` and by the root-only test that
records everything afresh. Each ``check_*`` function asserts one promise of the lab
issue and fails with a message that names the request id and hop.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BALANCER_HOST = {"alb": "alb", "nlb": "nlb", "l4proxy": "l4p"}
CLIENT_NET = "198.51.100."
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: How a backend names the request in its SQL: the Python app in a comment
#: (``/* rid=a0001 */``), the Java one as a bound value, so its SQL text never changes and
#: pgjdbc can prepare it (PostgreSQL logs ``DETAIL:  parameters: $1 = 'rid=a0001', ...``).
SQL_RID = re.compile(r"/\* rid=(\w+) \*/|'rid=(\w+)'")


def sql_request_ids(text: str) -> set[str]:
    """The request ids a PostgreSQL log (or SQL text) names, in either convention."""
    return {comment or bound for comment, bound in SQL_RID.findall(text)}


def wire_sql_request_ids(capture: Path) -> set[str]:
    """The request ids the SQL on the wire names: in a query's text, or a Bind's values."""
    rows = tshark(capture, "-Y", "pgsql.query || pgsql.type == \"Bind\"",
                  "-T", "fields", "-e", "pgsql.query", "-e", "pgsql.val.data")  # fmt: skip
    found = set()
    for row in rows:
        found |= sql_request_ids(row[0])
        for value in row[1].split(",") if len(row) > 1 and row[1] else []:
            bound = re.fullmatch(r"rid=(\w+)", bytes.fromhex(value).decode("latin-1"))
            found |= {bound.group(1)} if bound else set()
    return found


@dataclass(frozen=True)
class Scenario:
    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def capture(self) -> Path:
        return self.folder / f"{self.name}.pcapng"

    @functools.cached_property
    def client(self) -> list[dict]:
        return json.loads((self.folder / "client.json").read_text())

    @functools.cached_property
    def truth(self) -> dict:
        return json.loads((self.folder / "truth.json").read_text())

    @functools.cached_property
    def topology(self) -> dict:
        return json.loads((self.folder / "topology.json").read_text())

    def instance(self, target: str) -> str:
        """The instance (``web1``/``web2``) owning a target ``ip:port``, from topology.json:
        the ALB's targets are the instances' primary and secondary addresses."""
        ip = target.rsplit(":", 1)[0]
        for host in self.topology["hosts"]:
            if host["role"] == "instance" and any(ip in i["ip"] for i in host["interfaces"]):
                return host["name"]
        raise AssertionError(f"{target} is no instance's address in topology.json")

    def log(self, name: str) -> str:
        path = self.folder / "logs" / f"{name}.log"
        return path.read_text() if path.exists() else ""


def tshark(capture: Path, *args: str) -> list[list[str]]:
    done = subprocess.run(
        ["tshark", "-n", "-r", str(capture), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [line.split("\t") for line in done.stdout.splitlines() if line]


@functools.lru_cache(maxsize=16)
def streams(capture: Path) -> dict[str, bytes]:
    """Per hop, every TCP direction's payload concatenated (so a split id still matches).

    Returns hop -> one byte string of all its streams joined by a separator.
    """
    rows = tshark(
        capture,
        "-Y",
        "tcp.len > 0",
        "-T",
        "fields",
        "-e",
        "frame.interface_name",
        "-e",
        "tcp.stream",
        "-e",
        "ip.src",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.payload",
    )
    parts: dict[tuple[str, str, str, str], bytearray] = defaultdict(bytearray)
    for hop, stream, src, port, payload in rows:
        parts[(hop, stream, src, port)] += bytes.fromhex(payload.replace(":", ""))
    joined: dict[str, bytearray] = defaultdict(bytearray)
    for (hop, *_), data in parts.items():
        joined[hop] += bytes(data) + b"\n--stream--\n"
    return {hop: bytes(data) for hop, data in joined.items()}


def seen(capture: Path, hop: str, rid: str) -> bool:
    """Whether request id ``rid`` appears in clear on ``hop``."""
    return re.search(rid.encode() + rb"(?![0-9])", streams(capture).get(hop, b"")) is not None


# -- the promises ---------------------------------------------------------------------------


def check_interfaces(scenario: Scenario) -> None:
    """Every hop is an interface of the file, named after it, with real non-zero MACs."""
    rows = tshark(scenario.capture, "-T", "fields", "-e", "frame.interface_name", "-e", "eth.src")
    macs: dict[str, set[str]] = defaultdict(set)
    for hop, mac in rows:
        macs[hop].add(mac)
    hops = [h["interface"] for h in scenario.topology["hops"]]
    assert set(macs) <= set(hops), f"interfaces {sorted(macs)} are not all hops {sorted(hops)}"
    # A per-flow hash balancer may send every one of a few connections to one target (with
    # six connections, one run in 32 leaves a target idle): its back-side hop then carries
    # no frame. Every other hop must, and so must every hop truth.json names.
    used = {c.get("hop") for c in scenario.truth.get("connections", [])}
    idle_ok = {h for h in hops if h.startswith("nlb-") and h not in used and h != "nlb-client"}
    missing = sorted(set(hops) - set(macs) - idle_ok)
    assert not missing, f"hops with no frame: {missing} (interfaces {sorted(macs)})"
    known = {i["mac"] for host in scenario.topology["hosts"] for i in host["interfaces"]}
    for hop, found in macs.items():
        assert "00:00:00:00:00:00" not in found, f"zero MAC on {hop}"
        assert found <= known, f"{hop}: MACs {found - known} are not in topology.json"
        assert len(found) >= 2, f"{hop}: only one MAC, no conversation"


def _plain(record: dict) -> bool:
    return record["scheme"] == "http" and record["status"] is not None


def check_request_ids_on_hops(scenario: Scenario) -> None:
    """Each plain request id crosses the client hop, its target's hop and the app hops."""
    balancer = BALANCER_HOST[scenario.name]
    requests = scenario.truth["requests"]
    checked = 0
    for record in scenario.client:
        rid = record["rid"]
        if rid not in requests or not record["status"]:
            continue
        web = scenario.instance(requests[rid]["target"])
        if _plain(record):
            assert seen(scenario.capture, f"client-{balancer}", rid), (
                f"{rid} not on client-{balancer}"
            )
        if record["scheme"] == "http" or balancer == "alb":  # TLS ends at the ALB
            assert seen(scenario.capture, f"{balancer}-{web}", rid), (
                f"{rid} not on {balancer}-{web}"
            )
            other = "web2" if web == "web1" else "web1"
            assert not seen(scenario.capture, f"{balancer}-{other}", rid), f"{rid} also on {other}"
        if (
            "/api/items/" in record["target"]
            and record["method"] == "GET"
            and record["scheme"] == "http"
        ):
            assert seen(scenario.capture, f"{web}-api", rid), f"{rid} not on {web}-api"
            assert seen(scenario.capture, "api-redis", f"rid:{rid}"), f"{rid} not on api-redis"
        checked += 1
    assert checked >= 30, f"only {checked} requests checked"
    sql_rids = sql_request_ids(scenario.log("postgresql"))
    assert sql_rids, "no SQL in the PostgreSQL log"
    for rid in sql_rids:
        assert seen(scenario.capture, "api-db", f"rid={rid}"), f"SQL of {rid} not on api-db"


def check_addresses_behind_balancer(scenario: Scenario) -> None:
    """Behind the NLB targets see the client; behind the ALB/L4 proxy they see the proxy."""
    balancer = BALANCER_HOST[scenario.name]
    hops = " || ".join(f'frame.interface_name == "{balancer}-{w}"' for w in ("web1", "web2"))
    rows = tshark(
        scenario.capture,
        "-Y", f"({hops}) && tcp.flags.syn == 1 && tcp.flags.ack == 0",
        "-T", "fields", "-e", "ip.src",
    )  # fmt: skip
    sources = {row[0] for row in rows}
    assert sources, "no connection on the back side"
    if balancer == "nlb":
        assert all(s.startswith(CLIENT_NET) for s in sources), sources
    else:
        back = {"alb": "192.0.2.2", "l4p": "192.0.2.4"}[balancer]
        assert sources == {back}, sources
    if balancer == "alb":
        rows = tshark(
            scenario.capture,
            "-Y", f"({hops}) && http.request",
            "-T", "fields", "-e", "ip.src", "-e", "http.x_forwarded_for", "-e", "http.request.uri",
        )  # fmt: skip
        assert len(rows) >= 30
        by_rid = {r["rid"]: r for r in scenario.client}
        for src, xff, uri in rows:
            rid = re.search(r"rid=(\w+)", uri).group(1)
            assert src == "192.0.2.2"
            assert xff == by_rid[rid]["source"].split(":")[0], (rid, xff)


def check_tls(scenario: Scenario) -> None:
    """SNI is visible, and the key log decrypts the HTTP inside (NLB: on both sides)."""
    keylog = scenario.folder / "keylog.txt"
    assert keylog.exists()
    secrets = keylog.read_text()
    assert "CLIENT_TRAFFIC_SECRET_0" in secrets or "CLIENT_RANDOM" in secrets
    balancer = BALANCER_HOST[scenario.name]
    rows = tshark(
        scenario.capture,
        "-Y", "tls.handshake.extensions_server_name",
        "-T", "fields", "-e", "frame.interface_name", "-e", "tls.handshake.extensions_server_name",
    )  # fmt: skip
    hops = {hop for hop, name in rows if name == "shop.example.com"}
    expected = {f"client-{balancer}"}
    if balancer == "nlb":  # passthrough: the hello reaches the target the truth names
        requests = scenario.truth["requests"]
        expected |= {
            "nlb-" + scenario.instance(requests[r["rid"]]["target"])
            for r in scenario.client
            if r["scheme"] == "https"
        }
    assert expected <= hops, f"SNI seen on {hops}, expected {expected}"
    rows = tshark(
        scenario.capture,
        "-o", f"tls.keylog_file:{keylog}",
        "-Y", f'frame.interface_name == "client-{balancer}" && (http.request || http2.headers.path)',
        "-T", "fields", "-e", "http.request.uri", "-e", "http2.headers.path",
    )  # fmt: skip
    decrypted = set(re.findall(r"rid=(\w+)", " ".join("\t".join(r) for r in rows)))
    tls_rids = {r["rid"] for r in scenario.client if r["scheme"] == "https"}
    assert tls_rids and tls_rids <= decrypted, f"not decrypted: {sorted(tls_rids - decrypted)}"


def check_cache_and_sql(scenario: Scenario) -> None:
    """Redis shows a GET that misses then SET, and later GETs that hit; SQL is pgsql.query."""
    redis = streams(scenario.capture)["api-redis"]
    assert re.search(rb"\$3\r\nGET\r\n\$\d+\r\nitem:\d+\r\n", redis), "no GET item:N"
    assert re.search(rb"\$3\r\nSET\r\n\$\d+\r\nitem:\d+\r\n", redis), "no SET item:N"
    assert b"$-1\r\n" in redis, "no cache miss (nil reply) on the wire"
    caches = {r["cache"] for r in scenario.client if r["cache"]}
    assert caches == {"hit", "miss"}, caches
    rids = wire_sql_request_ids(scenario.capture)
    logged = sql_request_ids(scenario.log("postgresql"))
    assert rids and rids == logged, (sorted(rids), sorted(logged))


def check_truth_matches_back_side(scenario: Scenario) -> None:
    """Every request's truth target is the back-side hop its connection really used."""
    balancer = BALANCER_HOST[scenario.name]
    hops = " || ".join(f'frame.interface_name == "{balancer}-{w}"' for w in ("web1", "web2"))
    rows = tshark(
        scenario.capture,
        "-Y", f"({hops}) && tcp.flags.syn == 1 && tcp.flags.ack == 0",
        "-T", "fields", "-e", "frame.interface_name", "-e", "ip.dst", "-e", "tcp.dstport",
    )  # fmt: skip
    used = {(hop.split("-")[1], f"{ip}:{port}") for hop, ip, port in rows}
    requests = scenario.truth["requests"]
    assert requests
    for rid, decision in requests.items():
        web = scenario.instance(decision["target"])
        assert (web, decision["target"]) in used, f"{rid}: {decision['target']} never reached"
        record = next(r for r in scenario.client if r["rid"] == rid)
        if record["served_by"]:
            assert record["served_by"] == web, (
                f"{rid}: truth {web}, served by {record['served_by']}"
            )
    assert {scenario.instance(d["target"]) for d in requests.values()} == {"web1", "web2"}


def check_alb_rules(scenario: Scenario) -> None:
    """Each ALB rule type routed its request to the target group the config names."""
    expected = {
        "host": "tg-admin", "header": "tg-canary", "method": "tg-write",
        "query": "tg-beta", "source": "tg-office", "path": "tg-api", "default": "tg-web",
    }  # fmt: skip
    requests = scenario.truth["requests"]
    for record in scenario.client:
        if record["suite"] != "rules":
            continue
        rule = record["note"].removeprefix("expects rule ")
        decision = requests[record["rid"]]
        assert decision["rule"] == rule, (record["rid"], decision["rule"], rule)
        assert decision["target_group"] == expected[rule]
    # Distinct targets per rule: the config beside the capture gives every group targets of
    # its own, and HAProxy sent each request to one of its group's (the secondary addresses
    # of topology.py); nginx's log says it was reached at that very address.
    config = json.loads((scenario.folder / "alb.config.json").read_text())
    members = {g["Name"]: set(g["Targets"]) for g in config["TargetGroups"]}
    for group, targets in members.items():
        others = set().union(*(t for name, t in members.items() if name != group))
        assert targets and not targets & others, (group, targets & others)
    nginx = scenario.truth["nginx"]
    for rid, decision in requests.items():
        assert decision["target"] in members[decision["target_group"]], (rid, decision)
        assert nginx[rid]["server"] == decision["target"], (rid, nginx[rid], decision["target"])


def check_proxy_v2(scenario: Scenario) -> None:
    """The :81 variant of the L4 proxy sends a PROXY v2 header naming the real client."""
    data = b"".join(streams(scenario.capture).get(f"l4p-{w}", b"") for w in ("web1", "web2"))
    assert PROXY_V2_SIGNATURE in data
    nginx = scenario.log("nginx-web1") + scenario.log("nginx-web2")
    assert re.search(r"server=192\.0\.2\.1[12]:8081 .* proxy_protocol=198\.51\.100\.\d+:\d+", nginx)


def check_smuggle(scenario: Scenario) -> None:
    """The smuggled request is on the client hops; what crossed each balancer is recorded."""
    by_note = defaultdict(list)
    for record in scenario.client:
        by_note[(record["destination"].split(":")[0], record["note"])].append(record["rid"])
    alb_hidden = by_note[("203.0.113.10", "hidden inside the outer body")][0]
    nlb_hidden = by_note[("203.0.113.20", "hidden inside the outer body")][0]
    for hop, rid in (("client-alb", alb_hidden), ("client-nlb", nlb_hidden)):
        assert seen(scenario.capture, hop, rid), f"{rid} not on {hop}"
    # The NLB does not look inside TCP: the hidden request reaches a target byte for byte.
    assert any(seen(scenario.capture, f"nlb-{w}", nlb_hidden) for w in ("web1", "web2"))
    # Behind HAProxy, exactly the requests its log names reach a target: the log is the
    # ground truth of what it did with the ambiguous message.
    rows = tshark(
        scenario.capture,
        "-Y", '(frame.interface_name == "alb-web1" || frame.interface_name == "alb-web2") && http.request',
        "-T", "fields", "-e", "http.request.uri",
    )  # fmt: skip
    behind = {m for row in rows for m in re.findall(r"rid=(\w+)", row[0])}
    logged = set(re.findall(r" rid=(\w+) ", scenario.log("haproxy-alb")))
    assert behind == logged, (sorted(behind), sorted(logged))
    assert (alb_hidden in behind) == (alb_hidden not in scenario.truth["not_forwarded"])
    assert "Transfer-Encoding: chunked" in streams(scenario.capture)["client-alb"].decode("latin-1")


def check_websocket(scenario: Scenario) -> None:
    """Each WebSocket got its 101, stayed on one target for its life (tshark, back side), the
    one the ALB's log or the NLB's first SYN names; the app behind it saw every message the
    client sent; clean closes are 1000 both ways, the idle one was closed by the balancer."""
    from collections import Counter

    records = [r for r in scenario.client if r["suite"] == "websocket"]
    assert records and all(r["status"] == 101 for r in records), [(r["rid"], r["status"], r["note"]) for r in records]
    rows = tshark(
        scenario.capture,
        "-Y", 'http.request.uri contains "/ws/" || websocket',
        "-T", "fields", "-e", "frame.interface_name", "-e", "tcp.stream",
        "-e", "http.request.uri", "-e", "websocket.opcode",
    )  # fmt: skip
    rid_of: dict[tuple[str, str], str] = {}
    frames: Counter[tuple[str, str]] = Counter()
    for hop, stream, uri, opcodes in ((row + ["", ""])[:4] for row in rows):
        match = re.search(r"rid=(\w+)", uri)
        if match:
            rid_of[(hop, stream)] = match.group(1)
        if opcodes:
            frames[(hop, stream)] += len(opcodes.split(","))
    requests, app = scenario.truth["requests"], scenario.truth["websocket"]
    haproxy = {row["rid"]: row for row in map(_fields, scenario.log("haproxy-alb").splitlines()) if "rid" in row}
    for record in records:
        rid = record["rid"]
        balancer = "alb" if record["destination"].startswith("203.0.113.10:") else "nlb"
        back = {hop for (hop, stream), found in rid_of.items()
                if found == rid and frames[(hop, stream)] and hop.startswith(balancer + "-web")}  # fmt: skip
        target = scenario.instance(requests[rid]["target"])
        assert back == {f"{balancer}-{target}"}, (rid, back, target)
        sent = sum(1 for way, kind, *_ in record["extra"]["messages"] if way == "out" and kind in ("text", "binary"))
        assert app[rid]["messages"] == sent and app[rid]["app"] == {"web1": "api1", "web2": "api2"}[target], rid
        if record["extra"]["closed_by"] == "client":
            assert record["extra"]["close_code"] == 1000 and app[rid]["close_code"] == 1000, rid
        else:  # HAProxy's tunnel timeout: a client-side timeout in the data phase ("cD")
            assert balancer == "alb" and haproxy[rid]["termination"].startswith("c"), haproxy.get(rid)
            assert record["extra"]["ended_with"] == "closed" and app[rid]["close_code"] == 1006, rid


def _fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))

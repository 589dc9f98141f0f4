"""Configuration text for the lab's real servers, written as pure functions.

Each function returns the text of one configuration file (or PEM bytes) from a few
facts (addresses, paths); :mod:`osilab.lab.record` writes them into the run's temp
folder. Nothing here starts a process or touches a file, so a learner can read the
exact configuration a capture came from, and tests can check it without root.

The roles, and the AWS behaviour each imitates (see ``docs/lb-reference.md``):

* **ALB role** — HAProxy ``mode http``. Listener rules become HAProxy ACLs, evaluated in
  priority order, first match wins (AWS "Listener rules", conditions ``host-header``,
  ``path-pattern``, ``http-header``, ``http-request-method``, ``query-string``,
  ``source-ip``). ``option forwardfor`` adds ``X-Forwarded-For`` as an ALB does.
  TLS ends at the balancer (an HTTPS listener), HTTP/2 is offered by ALPN, and the
  balancer talks HTTP/1.1 to its targets (the ALB default target protocol version).
  One log line per request names the rule, the target group (backend) and the target
  (server address:port): the ground truth for the replay models.
* **NLB role** — nftables DNAT with a hash of the 4-tuple (``jhash``), in the
  ``prerouting`` hook of the balancer's namespace: the target is chosen on the flow's
  first packet, and the client's address reaches the target unchanged.
* **Terminating L4 proxy** — HAProxy ``mode tcp``: it ends the client's TCP connection
  and opens its own, so the target sees the proxy's address; one variant sends a
  PROXY protocol v2 header first (haproxy.org/download/2.6/doc/proxy-protocol.txt)
  so the target can learn the client's address anyway (``listen ... proxy_protocol``).
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlbRule",
    "ALB_RULES",
    "ALB_TARGET_GROUPS",
    "instance_of",
    "L4_TARGET_GROUPS",
    "NLB_SEED",
    "haproxy_alb",
    "haproxy_l4",
    "FAILOVER_PORT",
    "haproxy_failover",
    "ALB_PORTS",
    "NLB_PORTS",
    "ALB_WS_PORT",
    "ALB_WS_RULES",
    "ALB_WS_TARGET_GROUPS",
    "ALB_WS_IDLE_TIMEOUT",
    "aws_condition",
    "aws_alb_config",
    "aws_nlb_config",
    "balancer_configs",
    "nftables_nlb",
    "nginx_instance",
    "postgres_schema",
    "self_signed",
    "client_ca",
    "ALB_MTLS_PORT",
    "ALB_MTLS_TRUST_STORE",
    "ALB_MTLS_CLIENT",
]

#: The ALB role's mutual-TLS listener (issue 17): HTTPS whose clients must present a
#: certificate from the lab's CA (HAProxy ``verify required ca-file``; AWS
#: ``MutualAuthentication`` ``verify``). Its own port, so :443 and its fixtures stay as they are.
ALB_MTLS_PORT = 8443
#: The lab CA's PEM, written beside the capture: the mTLS listener's ``TrustStore``.
ALB_MTLS_TRUST_STORE = "alb-client-ca.pem"
#: Common name of the certificate the lab's client presents on :data:`ALB_MTLS_PORT`.
ALB_MTLS_CLIENT = "lab-client.example.com"

#: jhash seed of the NLB role: fixed, so the same flow goes to the same target every run.
NLB_SEED = 0x05115EED

#: The ALB role's listener ports: HTTP, and HTTPS (TLS ends at the balancer).
ALB_PORTS = (80, 443)

#: The NLB role's listener ports: HTTP, and TLS passed through to the targets.
NLB_PORTS = (80, 443)


@dataclass(frozen=True, slots=True)
class AlbRule:
    """One listener rule: name, AWS condition type, HAProxy ACL, target group.

    ``condition`` uses the AWS field names so the replay model's config can be written
    from the same table; ``acl`` is the HAProxy expression that implements it.
    """

    priority: int
    name: str
    condition: str
    value: str
    acl: str
    target_group: str


#: The ALB role's rules, in priority order (lowest first), one per AWS condition type.
ALB_RULES: tuple[AlbRule, ...] = (
    AlbRule(
        1,
        "host",
        "host-header",
        "admin.example.com",
        "hdr_beg(host) -i admin.example.com",
        "tg-admin",
    ),
    AlbRule(2, "header", "http-header", "X-Canary: 1", "req.hdr(x-canary) -m str 1", "tg-canary"),
    AlbRule(3, "method", "http-request-method", "DELETE,PUT", "method DELETE PUT", "tg-write"),
    AlbRule(4, "query", "query-string", "version=beta", "urlp(version) -m str beta", "tg-beta"),
    AlbRule(5, "source", "source-ip", "198.51.100.8/32", "src 198.51.100.8", "tg-office"),
    AlbRule(6, "path", "path-pattern", "/api/*", "path_beg /api/", "tg-api"),
)

#: Target group -> targets, by target name: ``web1``/``web2`` are the instances' primary
#: addresses, ``web1.canary`` and the like their secondary ones
#: (:data:`osilab.lab.topology.SECONDARY_ADDRESSES`, registered as ``ip`` targets). No two
#: groups share a target, so a capture shows each rule's traffic on addresses of its own;
#: ``tg-web``, the default action, keeps the primary addresses the other balancers use.
ALB_TARGET_GROUPS: dict[str, tuple[str, ...]] = {
    "tg-admin": ("web2.admin",),
    "tg-canary": ("web1.canary",),
    "tg-write": ("web1.write",),
    "tg-beta": ("web2.beta",),
    "tg-office": ("web1.office",),
    "tg-api": ("web1.api", "web2.api"),
    "tg-web": ("web1", "web2"),
}


def instance_of(target: str) -> str:
    """The instance a target name lives on: HAProxy's server name for that target.

    >>> instance_of("web1.canary"), instance_of("web2")
    ('web1', 'web2')
    """
    return target.partition(".")[0]


#: The ALB role's WebSocket listener (issue 19): its own port, so the rules of :80/:443 stay
#: the six above. One rule on the upgrade path; the Upgrade request is routed like any
#: request, and the connection then stays on that target until it closes or idles out.
ALB_WS_PORT = 8080
ALB_WS_RULES: tuple[AlbRule, ...] = (
    AlbRule(1, "websocket", "path-pattern", "/ws/*", "path_beg /ws/", "tg-ws"),
)
ALB_WS_TARGET_GROUPS: dict[str, tuple[str, ...]] = {"tg-ws": ("web1", "web2"), "tg-web": ("web1", "web2")}
#: Seconds without a byte either way before the WebSocket listener closes a connection
#: (HAProxy ``timeout tunnel``; the ALB's ``idle_timeout.timeout_seconds``, 60 by default).
ALB_WS_IDLE_TIMEOUT = 3


def aws_condition(rule: AlbRule) -> dict[str, Any]:
    """One rule's condition the way ``aws elbv2 describe-rules`` prints it.

    >>> aws_condition(ALB_RULES[1])
    {'Field': 'http-header', 'HttpHeaderConfig': {'HttpHeaderName': 'X-Canary', 'Values': ['1']}}
    """
    field, value = rule.condition, rule.value
    if field == "host-header":
        return {"Field": field, "HostHeaderConfig": {"Values": [value]}}
    if field == "http-header":
        name, _, wanted = value.partition(":")
        return {
            "Field": field,
            "HttpHeaderConfig": {"HttpHeaderName": name.strip(), "Values": [wanted.strip()]},
        }
    if field == "http-request-method":
        return {"Field": field, "HttpRequestMethodConfig": {"Values": value.split(",")}}
    if field == "query-string":
        key, _, wanted = value.partition("=")
        return {"Field": field, "QueryStringConfig": {"Values": [{"Key": key, "Value": wanted}]}}
    if field == "source-ip":
        return {"Field": field, "SourceIpConfig": {"Values": [value]}}
    return {"Field": field, "PathPatternConfig": {"Values": [value]}}


def aws_alb_config(
    targets: dict[str, str],
    port: int = 80,
    https_port: int | None = None,
    *,
    rules: tuple[AlbRule, ...] = ALB_RULES,
    target_groups: dict[str, tuple[str, ...]] = ALB_TARGET_GROUPS,
    idle_timeout: int | None = None,
    mtls_port: int | None = None,
) -> dict[str, Any]:
    """The ALB role as an AWS-shaped balancer configuration (``../shared/docs/design.md``, "Load balancer configuration").

    Written from :data:`ALB_RULES` and :data:`ALB_TARGET_GROUPS`, the very table that
    :func:`haproxy_alb` turns into HAProxy ACLs, so the ALB model and the real balancer
    run the same rules (priority order, first match wins, ``tg-web`` by default).
    ``targets`` maps target names (``web1``, ``web1.canary``...) to ``ip:port``; groups and
    rules whose targets are not in it are left out. With ``https_port`` an HTTPS listener
    with the same rules is added: the ALB ends TLS there and forwards plain HTTP to the
    same target groups.
    ``rules``/``target_groups``/``idle_timeout`` describe another listener of the role
    (the WebSocket one: :data:`ALB_WS_RULES`). With ``mtls_port`` one more HTTPS listener
    with the same rules verifies client certificates against :data:`ALB_MTLS_TRUST_STORE`.
    """
    groups = {
        name: [targets[m] for m in members if m in targets]
        for name, members in target_groups.items()
    }
    groups = {name: members for name, members in groups.items() if members}
    if "tg-web" not in groups:
        groups = {"tg-web": list(targets.values())}
    listed = [
        {
            "Priority": str(rule.priority),
            "Conditions": [aws_condition(rule)],
            "Actions": [{"Type": "forward", "TargetGroupName": rule.target_group}],
        }
        for rule in rules
        if rule.target_group in groups
    ]
    listeners = [("HTTP", port)] + ([("HTTPS", https_port)] if https_port is not None else [])
    listeners += [("HTTPS", mtls_port)] if mtls_port is not None else []
    verify = {"Mode": "verify", "TrustStore": ALB_MTLS_TRUST_STORE}
    attributes = {} if idle_timeout is None else {
        "Attributes": {"idle_timeout.timeout_seconds": str(idle_timeout)}}
    return {
        "Type": "application",
        **attributes,
        "TargetGroups": [
            {
                "Name": name,
                "Protocol": "HTTP",
                "Port": port,
                "Targets": members,
                "Algorithm": "round_robin",
            }
            for name, members in groups.items()
        ],
        "Listeners": [
            {
                "Protocol": protocol,
                "Port": listener_port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": "tg-web"}],
                "Rules": listed,
                **({"MutualAuthentication": verify} if listener_port == mtls_port else {}),
            }
            for protocol, listener_port in listeners
        ],
    }


def aws_nlb_config(targets: dict[str, str], ports: Sequence[int] = NLB_PORTS) -> dict[str, Any]:
    """The NLB role as an AWS-shaped balancer configuration: one TCP listener per port.

    ``targets`` maps instance names to IP addresses. Each port gets a target group
    ``tg-tcp-<port>`` holding every instance on that port, as :func:`nftables_nlb`
    DNATs each port to the same port of a target. An NLB listener has no rules: its only
    "decision" is a hash of the flow (AWS "Network Load Balancers", listeners). AWS does
    not publish its hash, so the groups name the lab's: ``HashTable: nft-jhash`` with
    ``HashSeed`` :data:`NLB_SEED`, the very jhash nftables computes, and the model sends
    every connection where the kernel sent it.

    >>> aws_nlb_config({"web1": "192.0.2.11"}, (80,))["Listeners"]
    [{'Protocol': 'TCP', 'Port': 80, 'DefaultActions': [{'Type': 'forward', 'TargetGroupName': 'tg-tcp-80'}]}]
    """
    return {
        "Type": "network",
        "TargetGroups": [
            {
                "Name": f"tg-tcp-{port}",
                "Protocol": "TCP",
                "Port": port,
                "Targets": [f"{ip}:{port}" for ip in targets.values()],
                "HashTable": "nft-jhash",
                "HashSeed": NLB_SEED,
            }
            for port in ports
        ],
        "Listeners": [
            {
                "Protocol": "TCP",
                "Port": port,
                "DefaultActions": [{"Type": "forward", "TargetGroupName": f"tg-tcp-{port}"}],
            }
            for port in ports
        ],
    }


def balancer_configs(
    balancers: Sequence[str], instances: dict[str, str], targets: dict[str, str] | None = None
) -> dict[str, Any]:
    """The AWS-shaped configs of a scenario's ALB and NLB roles, by role (``"alb"``, ``"nlb"``).

    ``balancers`` names the roles the scenario goes through (a
    :class:`~osilab.lab.record.Scenario`'s ``balancers``), ``instances`` maps the
    instances' names to their (primary) addresses: the NLB's targets. ``targets`` maps
    the ALB's target names to their addresses (the instances' primary and secondary
    ones, :data:`ALB_TARGET_GROUPS`); by default the instances. ``osilab lab record``
    writes each config beside the capture (``alb.config.json``, ``nlb.config.json``), so
    the analysis reads the rules the real balancer ran without importing the lab. The terminating L4 proxy
    (``"l4p"``) is neither an ALB nor an NLB and has no config here.

    >>> sorted(balancer_configs(("alb", "nlb"), {"web1": "192.0.2.11"}))
    ['alb', 'nlb']
    """
    rendered: dict[str, Any] = {}
    endpoints = {name: f"{ip}:80" for name, ip in (targets or instances).items()}
    if "alb" in balancers:
        http, https = ALB_PORTS
        mtls = ALB_MTLS_PORT if "alb-mtls" in balancers else None  # the mTLS listener recorded
        rendered["alb"] = aws_alb_config(endpoints, http, https, mtls_port=mtls)
    if "alb-ws" in balancers:  # the ALB role's WebSocket listener
        rendered["alb"] = aws_alb_config(
            endpoints, ALB_WS_PORT, rules=ALB_WS_RULES, target_groups=ALB_WS_TARGET_GROUPS,
            idle_timeout=ALB_WS_IDLE_TIMEOUT,
        )  # fmt: skip
    if "nlb" in balancers:
        rendered["nlb"] = aws_nlb_config(instances, NLB_PORTS)
    return rendered


#: The terminating L4 proxy's backends: plain TCP to :80, PROXY v2 to nginx's :8081.
L4_TARGET_GROUPS: dict[str, tuple[int, bool]] = {"tg-tcp": (80, False), "tg-tcp-pp2": (8081, True)}

#: HAProxy log line of one HTTP request; parsed by :func:`osilab.lab.truth.parse_haproxy_http`.
_HTTP_LOG = (
    "alb client=%ci:%cp frontend=%ft rule=%[var(txn.rule)] target_group=%b server=%s "
    "target=%si:%sp status=%ST bytes=%B termination=%ts "
    "rid=%[capture.req.hdr(0)] version=%HV request=%{+Q}r"
)
#: HAProxy log line of one TCP connection; parsed by :func:`osilab.lab.truth.parse_haproxy_tcp`.
_TCP_LOG = (
    "l4 client=%ci:%cp frontend=%ft target_group=%b server=%s target=%si:%sp "
    "source=%bi:%bp bytes=%B termination=%ts listen=%fi:%fp"
)


def haproxy_alb(
    *, vip: str, targets: dict[str, str], certificate: str, rules: tuple[AlbRule, ...] = ALB_RULES,
    client_ca: str | None = None,
) -> str:
    """HAProxy configuration of the ALB role (HTTP :80, HTTPS+h2 :443, logs to stdout);
    with ``client_ca`` (a PEM path) also the mTLS listener :data:`ALB_MTLS_PORT`.

    ``targets`` maps every target name of :data:`ALB_TARGET_GROUPS` to its address. Each
    backend's servers are named after their instance (``server web1 192.0.2.15:80``):
    the log's ``server=`` names the instance, ``target=`` the address, i.e. the target."""
    lines = [
        "global",
        "    log stdout format raw local0",
        "    maxconn 512",
        "    tune.ssl.default-dh-param 2048",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option forwardfor",
        "    option http-keep-alive",
        "    timeout connect 3s",
        "    timeout client 15s",
        "    timeout server 15s",
        "    timeout http-keep-alive 10s",
        f'    log-format "{_HTTP_LOG}"',
        "",
        "frontend alb",
        f"    bind {vip}:80",
        f"    bind {vip}:443 ssl crt {certificate} alpn h2,http/1.1",
        "    http-request capture req.hdr(x-request-id) len 32",
        "    # Listener rules in priority order; the first that matches names the rule.",
    ]
    lines += _rule_lines(rules)
    if client_ca is not None:  # a client without a certificate from the CA never gets in
        lines += [
            "frontend alb-mtls",
            f"    bind {vip}:{ALB_MTLS_PORT} ssl crt {certificate} ca-file {client_ca} "
            "verify required alpn http/1.1",
            "    http-request capture req.hdr(x-request-id) len 32",
            *_rule_lines(rules),
        ]
    lines += [
        "frontend alb-ws",
        f"    bind {vip}:{ALB_WS_PORT}",
        "    http-request capture req.hdr(x-request-id) len 32",
        "    # The WebSocket listener: the Upgrade request is routed by its path, once.",
        *_rule_lines(ALB_WS_RULES),
    ]
    for group, members in {**ALB_TARGET_GROUPS, "tg-ws": ALB_WS_TARGET_GROUPS["tg-ws"]}.items():
        lines += [f"backend {group}", "    balance roundrobin"]
        if group == "tg-ws":  # after the 101 only the tunnel timeout applies (HAProxy docs)
            lines.append(f"    timeout tunnel {ALB_WS_IDLE_TIMEOUT}s")
        lines += [f"    server {instance_of(name)} {targets[name]}:80" for name in members]
        lines.append("")
    return "\n".join(lines)


def _rule_lines(rules: tuple[AlbRule, ...]) -> list[str]:
    """One frontend's rules: the first match (priority order) names the rule and its group."""
    lines = [
        f"    http-request set-var(txn.rule) str({rule.name}) "
        f"if {{ {rule.acl} }} !{{ var(txn.rule) -m found }}"
        for rule in rules
    ]
    lines.append(
        "    http-request set-var(txn.rule) str(default) unless { var(txn.rule) -m found }"
    )
    lines += [
        f"    use_backend {rule.target_group} if {{ var(txn.rule) -m str {rule.name} }}"
        for rule in rules
    ]
    return lines + ["    default_backend tg-web", ""]


def haproxy_l4(*, vip: str, targets: dict[str, str]) -> str:
    """HAProxy configuration of the terminating L4 proxy (mode tcp; :81 sends PROXY v2)."""
    lines = [
        "global",
        "    log stdout format raw local0",
        "    maxconn 512",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    timeout connect 3s",
        "    timeout client 15s",
        "    timeout server 15s",
        f'    log-format "{_TCP_LOG}"',
        "",
    ]
    for index, (group, (port, proxy_v2)) in enumerate(L4_TARGET_GROUPS.items()):
        lines += [
            f"frontend l4-{port}",
            f"    bind {vip}:{80 + index}",
            f"    default_backend {group}",
            "",
        ]
        lines += [f"backend {group}", "    balance roundrobin"]
        extra = " send-proxy-v2" if proxy_v2 else ""
        lines += [f"    server {name} {address}:{port}{extra}" for name, address in targets.items()]
        lines.append("")
    return "\n".join(lines)


#: The failover scenario's listener port, on both the L4 role's and the ALB role's address.
FAILOVER_PORT = 82

#: HAProxy health checks of the failover scenario: every 250 ms, down after 2 failures,
#: up after 2 successes (AWS's defaults are slower: NLB 30 s, 5 up, 2 down; lb-reference §2).
_CHECK = "check inter 250ms fall 2 rise 2"


def haproxy_failover(*, role: str, vip: str, targets: dict[str, str]) -> str:
    """HAProxy of the failover scenario: the L4 role (``role="l4"``) or the ALB role (``"alb"``).

    Both balance ``static-rr`` over ``tg-failover`` with health checks, and log with ISO
    timestamps (``format iso``) so that truth.json can say when a target was marked down
    and up. The L4 role is ``mode tcp`` with ``on-marked-down shutdown-sessions`` and
    ``option nolinger``: the sessions on a target marked down end with an RST to the
    client, as an NLB's flows do when their target becomes unhealthy (NLB-UG
    target-group-health-checks). The ALB role is ``mode http`` with an HTTP check
    (``GET /`` must answer 200) and lets requests in flight finish; the next request on a
    kept-alive client connection simply goes to another target.
    """
    tcp = role == "l4"
    lines = [
        "global",
        "    log stdout format iso local0",
        "    maxconn 256",
        "    nbthread 1  # one accept queue: connections take their turns in SYN order",
        "",
        "defaults",
        f"    mode {'tcp' if tcp else 'http'}",
        "    log global",
        "    timeout connect 2s",
        "    timeout client 20s",
        "    timeout server 20s",
    ]
    if tcp:
        lines += ["    option nolinger", f'    log-format "{_TCP_LOG} accept=%Ts.%ms"']
    else:
        lines += ["    option forwardfor", "    option http-keep-alive",
                  "    timeout http-keep-alive 15s", f'    log-format "{_HTTP_LOG}"']  # fmt: skip
    lines += ["", f"frontend failover-{role}", f"    bind {vip}:{FAILOVER_PORT}"]
    if not tcp:
        lines.append("    http-request capture req.hdr(x-request-id) len 32")
    lines += ["    default_backend tg-failover", "", "backend tg-failover", "    balance static-rr"]
    if tcp:
        lines.append(f"    default-server {_CHECK} on-marked-down shutdown-sessions")
    else:
        lines += ["    option httpchk GET /", "    http-check expect status 200",
                  f"    default-server {_CHECK}"]  # fmt: skip
    lines += [f"    server {name} {address}:80" for name, address in targets.items()]
    return "\n".join(lines + [""])


def nftables_nlb(*, vip: str, targets: tuple[str, ...], ports: tuple[int, ...] = NLB_PORTS) -> str:
    """The NLB role as an nftables ruleset: per-flow hash DNAT in ``prerouting``.

    ``jhash ip saddr . tcp sport . ip daddr . tcp dport mod N seed S`` hashes the
    4-tuple of the flow's first packet; conntrack then keeps every later packet of the
    flow (both directions) on the same target, as an NLB's flow table does.
    """
    mapping = ", ".join(f"{index} : {address}" for index, address in enumerate(targets))
    count = len(targets)
    rules = "\n".join(
        f"        ip daddr {vip} tcp dport {port} dnat to jhash ip saddr . tcp sport . "
        f"ip daddr . tcp dport mod {count} seed {NLB_SEED:#x} map {{ {mapping} }}"
        for port in ports
    )
    return (
        "table ip nlb {\n"
        "    chain prerouting {\n"
        "        type nat hook prerouting priority dstnat; policy accept;\n"
        f"{rules}\n"
        "    }\n"
        "}\n"
    )


def nginx_instance(
    *,
    name: str,
    address: str,
    app: str,
    root: str,
    run_dir: str,
    certificate: str,
    key: str,
    secondary: Sequence[str] = (),
) -> str:
    """nginx on one EC2-like instance: static files, ``/api/`` proxied to the app.

    Listens on :80 (plain), :443 (TLS, for the NLB's TLS passthrough) and :8081
    (``proxy_protocol``: the PROXY v2 variant of the L4 proxy) of its primary
    ``address``, and on :80 of each ``secondary`` address (the ALB's ``ip`` targets,
    reached in plain HTTP). The request id is passed on to the app; the access log names
    it, the peer, the address it was reached at, ``X-Forwarded-For`` and the PROXY
    protocol's client address.
    """
    extra = "".join(f"        listen {ip}:80;  # a secondary address: an ALB ip target\n"
                    for ip in secondary)  # fmt: skip
    return f"""# nginx of instance {name} ({address})
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    default_type text/plain;
    types {{ text/html html; application/javascript js; text/css css; }}
    client_body_temp_path {run_dir}/body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    log_format lab 'nginx instance={name} client=$remote_addr:$remote_port '
                   'server=$server_addr:$server_port "$request" status=$status '
                   'bytes=$body_bytes_sent rid=$http_x_request_id '
                   'xff="$http_x_forwarded_for" proxy_protocol=$proxy_protocol_addr:$proxy_protocol_port '
                   'upstream=$upstream_addr';
    access_log {run_dir}/access.log lab;
    keepalive_requests 1000;
    keepalive_timeout 15s;
    upstream api {{
        server {app};
        keepalive 4;
    }}
    server {{
        listen {address}:80;
        listen {address}:443 ssl;
        listen {address}:8081 proxy_protocol;
{extra}        server_name _;
        ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22's default stops at TLS 1.2
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        root {root};
        add_header X-Served-By {name} always;
        location /api/ {{
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $http_x_request_id;
        }}
        location /ws/ {{
            # WebSocket (RFC 6455): pass the Upgrade on, then carry the frames both ways.
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $http_x_request_id;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


def postgres_schema(items: int = 50) -> str:
    """SQL that creates and fills the ``items`` table the app reads."""
    rows = ",\n".join(
        f"    ({i}, 'item {i}', {(i * 37) % 1000 / 10:.2f})" for i in range(1, items + 1)
    )
    return (
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric(8, 2));\n"
        f"INSERT INTO items (id, name, price) VALUES\n{rows};\n"
    )


def _issue(
    common_name: str, issuer: tuple[Any, Any] | None = None, *, ca: bool | None = None,
    names: tuple[Any, ...] = (),
) -> tuple[Any, Any]:
    """A fresh EC P-256 key and a certificate for ``common_name`` issued by ``issuer``
    ((certificate, key); ``None``: self-signed), valid from 5 minutes ago for two days.
    ``ca`` (the mTLS pair only) adds BasicConstraints and the ``O=osilab lab`` the
    subjects of the lab's PKI share; the server's certificate has neither, as before."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if ca is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "osilab lab"))
    subject = x509.Name(attributes)
    issuer_name, issuer_key = (subject, key) if issuer is None else (issuer[0].subject, issuer[1])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(certificate: Any, key: Any | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if key is None:
        return bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))  # fmt: skip


def self_signed(hostnames: tuple[str, ...], addresses: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and key (PEM) for ``hostnames`` and IP ``addresses``.

    Made at run time (never committed), with an EC P-256 key: small certificates keep
    the TLS handshake to a few segments.
    """
    from cryptography import x509

    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    certificate, key = _issue(hostnames[0], names=tuple(names))
    return _pem(certificate), _pem(certificate, key)


def client_ca(client: str = ALB_MTLS_CLIENT) -> tuple[bytes, bytes, bytes, str]:
    """A fresh lab CA and a client certificate it issued, for the mTLS listener.

    Returns the CA's PEM (HAProxy's ``ca-file``, the ALB model's ``TrustStore``), the
    client's certificate and key (PEM) and the client's subject as RFC 4514 prints it
    (what AWS puts in ``X-Amzn-Mtls-Clientcert-Subject``). Made at record time, never
    committed: like :func:`self_signed`, valid for two days.
    """
    ca, ca_key = _issue("osilab lab CA", ca=True)
    certificate, key = _issue(client, (ca, ca_key), ca=False)
    return _pem(ca), _pem(certificate), _pem(certificate, key), certificate.subject.rfc4514_string()

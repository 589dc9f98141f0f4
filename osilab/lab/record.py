"""``osilab lab record``: build the lab, run each scenario's client, keep the evidence.

For each scenario this writes, into ``OUT/<scenario>/``:

* ``<scenario>.pcapng`` — every hop of the scenario, merged; each interface is named
  after its hop (``client-alb``, ``alb-web1``, ``web1-api``, ``api-redis``, ``api-db``...);
* ``keylog.txt`` — the client's TLS secrets (NSS key log format), where TLS was used;
* ``truth.json`` — which target group and target each request id reached, according to
  the real balancer (see :mod:`osilab.lab.truth`);
* ``topology.json`` — hosts, interfaces (names, MACs, IPs) and hops;
* ``alb.config.json`` / ``nlb.config.json`` — the ALB and NLB roles the scenario goes
  through, as AWS-shaped balancer configs (:func:`osilab.lab.configs.balancer_configs`):
  the analysis reads them with :func:`osilab.balancers.config.beside.config_beside`;
* ``client.json`` — what the client sent and got back, one record per request id;
* ``logs/`` — the servers' own logs for the scenario's time window: HAProxy, nginx
  access logs, PostgreSQL statements.

The lab network is built once (:class:`Lab`), every scenario runs on it in turn, and
everything is torn down in ``finally`` — also on Ctrl-C, SIGTERM or the overall
timeout (``SIGALRM``), which raise into the same path.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from osilab.balancers.config.beside import CONFIG_SUFFIX, TOPOLOGY_FILE
from osilab.capture.pcapng import pcap_to_pcapng
from osilab.errors import LabError
from osilab.lab import cdn, configs, doctor, failover, javabuild, quic, truth
from osilab.lab.runtime import (
    Managed,
    Supervisor,
    build_network,
    hop_endpoints,
    remove_network,
    remove_stale_namespaces,
    run,
    wait_for_port,
)
from osilab.lab.topology import LAB, SECONDARY_ADDRESSES, Topology

__all__ = [
    "Scenario",
    "SCENARIOS",
    "Lab",
    "BACKENDS",
    "record",
    "bounded",
    "scenario_configs",
    "alb_targets",
    "write_configs",
]

_SERVICE_HOSTS = ("web1", "web2")
_APP_OF = {"web1": "api1", "web2": "api2"}
_DATA_HOPS = ("web1-api", "web2-api", "api-redis", "api-db")
#: The /api service behind nginx: the seed's Java/Spring one (lab/java/), or lab/app.py.
BACKENDS = ("java", "python")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One recording: the hops captured and the client's plan (suites against addresses)."""

    name: str
    prefix: str
    summary: str
    hops: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]
    balancers: tuple[str, ...] = field(default=())


def _steps(address: str, *suites: str, **options: Any) -> tuple[dict[str, Any], ...]:
    return tuple({"suite": suite, "address": address, **options.get(suite, {})} for suite in suites)


_S = LAB.services
SCENARIOS: dict[str, Scenario] = {
    "alb": Scenario(
        "alb",
        "a",
        "the architecture through the ALB role (HAProxy mode http): HTTP, HTTPS, HTTP/2, every rule type",
        ("client-alb", "alb-web1", "alb-web2", *_DATA_HOPS),
        _steps(_S["alb_http"], "keepalive", "pipelined", "slow_head", "big_head", "post", "rules")
        + _steps(_S["alb_https"], "https", "h2")
        + _steps(_S["alb_http"], "short")
        + _steps(f"{_S['alb']}:{configs.ALB_MTLS_PORT}", "mtls"),
        ("alb", "alb-mtls"),
    ),
    "nlb": Scenario(
        "nlb",
        "n",
        "the same client through the NLB role (nftables jhash DNAT), incl. TLS passthrough",
        ("client-nlb", "nlb-web1", "nlb-web2", *_DATA_HOPS),
        _steps(_S["nlb_http"], "keepalive", "pipelined", "slow_head", "big_head", "post")
        + _steps(_S["nlb_tls"], "https", https={"connections": 4, "per": 2})
        + _steps(_S["nlb_http"], "short", short={"count": 40}),
        ("nlb",),
    ),
    "l4proxy": Scenario(
        "l4proxy",
        "p",
        "a terminating L4 proxy (HAProxy mode tcp); port 81 sends PROXY protocol v2 to the targets",
        ("client-l4p", "l4p-web1", "l4p-web2", *_DATA_HOPS),
        _steps(
            _S["l4p_http"],
            "keepalive",
            "pipelined",
            "slow_head",
            "post",
            "short",
            keepalive={"connections": 2},
            short={"count": 16},
        )
        + _steps(
            _S["l4p_proxy_v2"],
            "keepalive",
            "short",
            keepalive={"connections": 2},
            short={"count": 16},
        ),
        ("l4p",),
    ),  # fmt: skip
    "smuggle": Scenario(
        "smuggle",
        "s",
        "a CL.TE request-smuggling attempt, in front of and behind HAProxy, and raw through the NLB",
        ("client-alb", "alb-web1", "alb-web2", "client-nlb", "nlb-web1", "nlb-web2", *_DATA_HOPS),
        _steps(_S["alb_http"], "smuggle")
        + _steps(_S["nlb_http"], "smuggle")
        + _steps(_S["alb_http"], "keepalive", keepalive={"connections": 2, "per": 3})
        + _steps(_S["nlb_http"], "short", short={"count": 8}),
        ("alb", "nlb"),
    ),
    "cdn": Scenario(
        "cdn",
        "c",
        "the CloudFront edge (nginx proxy_cache) in front of the ALB role: hits, misses, "
        "cache keys, a revalidation, redirects",
        ("client-edge", "edge-s3", "edge-alb", "alb-web1", "alb-web2", *_DATA_HOPS),
        _steps(_S["cdn_https"], "cdn", cdn={"plain": _S["cdn_http"]}),
        ("cdn", "alb"),
    ),
    "websocket": Scenario(
        "websocket",
        "w",
        "WebSocket (aiohttp behind nginx) through the ALB role's WebSocket listener (a rule on the "
        "upgrade path, then a tunnel closed by its idle timeout) and through the NLB role",
        ("client-alb", "alb-web1", "alb-web2", "client-nlb", "nlb-web1", "nlb-web2", "web1-api", "web2-api"),
        _steps(f"{_S['alb']}:{configs.ALB_WS_PORT}", "websocket",
               websocket={"connections": 3, "idle": configs.ALB_WS_IDLE_TIMEOUT + 4})
        + _steps(_S["nlb_http"], "websocket", websocket={"connections": 2, "big": False}),
        ("alb-ws", "nlb"),
    ),  # fmt: skip
    "failover": Scenario(
        "failover",
        "f",
        "web1 stops accepting connections mid-traffic and starts again, behind the L4 role "
        "(HAProxy tcp, health checks, sessions reset on marked-down) and the ALB role (HTTP checks)",
        ("client-l4p", "l4p-web1", "l4p-web2", "client-alb", "alb-web1", "alb-web2"),
        ({"suite": "failover", "address": f"{_S['l4p']}:{configs.FAILOVER_PORT}",
          "alb": f"{_S['alb']}:{configs.FAILOVER_PORT}", "target_ns": f"osl-{failover.STOPPED}"},),
        ("failover",),
    ),  # fmt: skip
    "quic": Scenario(
        "quic",
        "q",
        "HTTP/3 (aioquic) through a 5-tuple UDP balancer and a QUIC-aware one (nftables, by the "
        "server ID in the connection ID), each connection migrating to a new client port midway",
        ("client-nlb", "nlb-web1", "nlb-web2"),
        _steps(f"{_S['nlb']}:{quic.UDP_PORT}", "quic") + _steps(f"{_S['nlb']}:{quic.QUIC_PORT}", "quic"),
        ("quic",),
    ),
}


def scenario_configs(
    scenario: Scenario, topology: Topology = LAB, truth: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The balancer configs of ``scenario``'s ALB and NLB roles, by role, over the lab's instances.

    ``truth`` is the scenario's truth.json: the failover scenario's configs carry the
    health schedule its real balancers saw (:func:`osilab.lab.failover.balancer_configs`).
    """
    if "failover" in scenario.balancers:
        return failover.balancer_configs(topology.services, truth or {})
    if "quic" in scenario.balancers:
        return quic.balancer_configs(topology.services)
    instances = {web: topology.services[web] for web in _SERVICE_HOSTS}
    return configs.balancer_configs(scenario.balancers, instances, alb_targets(topology))


def alb_targets(topology: Topology = LAB) -> dict[str, str]:
    """The ALB role's targets by name: each instance's primary address, then its secondary
    ones (``web1.canary`` -> 192.0.2.15), as :data:`osilab.lab.configs.ALB_TARGET_GROUPS`
    names them."""
    return {name: topology.services[name]
            for web in _SERVICE_HOSTS for name in (web, *SECONDARY_ADDRESSES[web])}  # fmt: skip


def write_configs(
    scenario: Scenario, out: Path, topology: Topology = LAB, truth: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``alb.config.json`` / ``nlb.config.json`` into ``out`` (beside the capture).

    A role the scenario does not go through gets no file, and a stale one is removed, so
    the folder never describes a balancer its capture did not pass.
    """
    rendered = scenario_configs(scenario, topology, truth)
    written = []
    if "cdn" in scenario.balancers:  # the CloudFront edge's distribution config (lab.cdn)
        rendered["cdn"] = cdn.distribution_config(topology.services["s3"], topology.services["alb"])
    for role in ("alb", "nlb", "nlb-quic", "cdn"):
        path = out / f"{role}{CONFIG_SUFFIX}"
        if role in rendered:
            path.write_text(json.dumps(rendered[role], indent=1) + "\n")
            written.append(path)
        else:
            path.unlink(missing_ok=True)
    return written


_STATIC_JS = "\n".join(
    f"// line {i}: osilab lab static file, served by nginx from the instance's disk"
    for i in range(60)
)


#: Held while a lab runs (see :meth:`Lab.running`); /run is root's and cleared at boot.
LAB_LOCK = Path("/run/osilab-lab.lock")


@contextmanager
def _lab_lock() -> Iterator[None]:
    """One lab at a time on this machine: wait for the lab that is running to finish."""
    with open(LAB_LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Lab:
    """The running lab: network, certificates, servers. Use :meth:`running`."""

    def __init__(
        self,
        workdir: Path,
        topology: Topology = LAB,
        *,
        backend: str = "java",
        classes: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.topology = topology
        self.backend = backend  # "java" (Jetty + Spring, lab/java/) or "python" (lab/app.py)
        self.classes = classes  # the Java backend's compiled classes (lab.javabuild.build)
        self.supervisor = Supervisor()
        self.logs: dict[str, Path] = {}
        self.versions: dict[str, str] = {}
        self.mtls_subject = ""  # the subject of the lab client's mTLS certificate (RFC 4514)

    # -- start --------------------------------------------------------------------
    @contextmanager
    def running(self) -> Iterator[Lab]:
        """Build everything; tear everything down on the way out, whatever happens.

        The lab's namespaces have fixed names, so two labs at once would tear each other
        down: a lock file makes a second ``osilab lab record`` wait for the first."""
        with _lab_lock():
            remove_stale_namespaces()
            try:
                build_network(self.topology)
                self._start_servers()
                yield self
            finally:
                self.supervisor.stop_all()
                remove_network(self.topology)

    def _path(self, *parts: str) -> Path:
        path = self.workdir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _start_servers(self) -> None:
        s = self.topology.services
        certificate, key = configs.self_signed(
            ("shop.example.com", "admin.example.com"), (s["alb"], s["nlb"], s["web1"], s["web2"])
        )
        self._path("tls", "cert.pem").write_bytes(certificate)
        self._path("tls", "key.pem").write_bytes(key)
        self._path("tls", "haproxy.pem").write_bytes(certificate + key)
        ca, client, client_key, self.mtls_subject = configs.client_ca()
        self._path("tls", configs.ALB_MTLS_TRUST_STORE).write_bytes(ca)
        self._path("tls", "client.pem").write_bytes(client)
        self._path("tls", "client-key.pem").write_bytes(client_key)
        self._start_postgres()
        self._start_redis()
        for web in _SERVICE_HOSTS:
            self._start_app(web)
        for web in _SERVICE_HOSTS:
            self._start_nginx(web)
        self._start_haproxy("alb", configs.haproxy_alb(
            vip=s["alb"], targets=alb_targets(self.topology),
            certificate=str(self._path("tls", "haproxy.pem")),
            client_ca=str(self._path("tls", configs.ALB_MTLS_TRUST_STORE)),
        ), s["alb"], 80)  # fmt: skip
        self._start_haproxy(
            "l4p", configs.haproxy_l4(vip=s["l4p"], targets={w: s[w] for w in _SERVICE_HOSTS}),
            s["l4p"], 80,
        )  # fmt: skip
        self._start_cdn()
        nft = self._path("nlb", "nlb.nft")
        nft.write_text(configs.nftables_nlb(vip=s["nlb"], targets=(s["web1"], s["web2"])))
        run(["nft", "-f", str(nft)], ns="osl-nlb")
        self.versions = {f.requirement.program: f.version for f in doctor.check() if f.present}

    def _start_postgres(self) -> None:
        bindir = doctor.postgres_bindir()
        if bindir is None:
            raise LabError("PostgreSQL's initdb was not found under /usr/lib/postgresql")
        pg = self._path("postgres", "data")
        sock = self._path("postgres", "socket")
        for folder in (pg, sock):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
        os.chmod(pg.parent, 0o755)
        os.chmod(self.workdir, 0o755)
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        run([*as_postgres, f"{bindir}/initdb", "-D", str(pg), "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"], timeout=60)  # fmt: skip
        with open(pg / "pg_hba.conf", "a") as hba:
            hba.write("host all all 192.0.2.0/24 trust\n")
        log = self._path("logs", "postgresql.log")
        self.logs["postgresql"] = log
        db = self.topology.services["db"]
        self.supervisor.start(
            "postgres",
            [*as_postgres, f"{bindir}/postgres", "-D", str(pg),
             "-c", f"listen_addresses={db}", "-c", f"unix_socket_directories={sock}",
             "-c", "log_statement=all", "-c", "logging_collector=off", "-c", "ssl=off",
             "-c", "fsync=off", "-c", "log_line_prefix=%m [%p] %r %d ",
             "-c", "log_connections=on", "-c", "log_disconnections=on"],
            ns="osl-db", log=log, ready=0.5,
            stop_signal=signal.SIGINT,  # fast shutdown; SIGTERM would wait for the apps to leave
        )  # fmt: skip
        wait_for_port("osl-db", db, 5432, timeout=20)
        psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(sock), "-U", "postgres"]
        run([*psql, "-c", "CREATE DATABASE shop"], ns="osl-db")
        run([*psql, "-d", "shop"], ns="osl-db", input_text=configs.postgres_schema())

    def _start_redis(self) -> None:
        cache = self.topology.services["cache"]
        folder = self._path("redis", "data")
        folder.mkdir(parents=True, exist_ok=True)
        self.logs["redis"] = self._path("logs", "redis.log")
        self.supervisor.start(
            "redis",
            ["redis-server", "--bind", cache, "--port", "6379", "--save", "", "--appendonly", "no",
             "--protected-mode", "no", "--dir", str(folder), "--daemonize", "no"],
            ns="osl-cache", log=self.logs["redis"], ready=0.3,
        )  # fmt: skip
        wait_for_port("osl-cache", cache, 6379)

    def _start_app(self, web: str) -> None:
        s = self.topology.services
        api = _APP_OF[web]
        log = self._path("logs", f"app-{api}.log")
        self.logs[f"app-{api}"] = log  # the WebSocket handler's lines (the app logs nothing else)
        listen, redis = f"{s[api]}:8080", f"{s['cache']}:6379"
        if self.backend == "java":
            argv = javabuild.command(self.classes or javabuild.build(), listen=listen,
                                     redis=redis, database=s["db"], name=api)  # fmt: skip
        else:
            argv = [sys.executable, "-m", "osilab.lab.app", "--listen", listen,
                    "--redis", redis, "--database", s["db"], "--name", api]  # fmt: skip
        self.supervisor.start(f"app {api}", argv, ns=f"osl-{api}", log=log, ready=0.5)
        try:
            wait_for_port(f"osl-{api}", s[api], 8080, timeout=30)
        except LabError as exc:  # a JVM fails slowly: say why, from its log
            raise LabError(
                f"{exc}; its log ends: {log.read_text(errors='replace')[-600:]}"
            ) from None

    def _start_nginx(self, web: str) -> None:
        s = self.topology.services
        run_dir = self._path(f"nginx-{web}", "run")
        run_dir.mkdir(parents=True, exist_ok=True)
        root = self._path(f"nginx-{web}", "www")
        (root / "static").mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(
            f"<!doctype html><title>shop</title><h1>Served by {web}</h1>\n"
        )
        (root / "static" / "app.js").write_text(_STATIC_JS + "\n")
        (root / "static" / "style.css").write_text("body { font-family: sans-serif; }\n")
        conf = run_dir / "nginx.conf"
        conf.write_text(configs.nginx_instance(
            name=web, address=s[web], app=f"{s[_APP_OF[web]]}:8080", root=str(root),
            run_dir=str(run_dir), certificate=str(self._path("tls", "cert.pem")),
            key=str(self._path("tls", "key.pem")),
            secondary=tuple(SECONDARY_ADDRESSES[web].values()),
        ))  # fmt: skip
        self.logs[f"nginx-{web}"] = run_dir / "access.log"
        self.supervisor.start(
            f"nginx {web}",
            ["nginx", "-c", str(conf), "-p", str(run_dir), "-e", str(run_dir / "nginx-error.log"),
             "-g", "daemon off;"],
            ns=f"osl-{web}", log=self._path("logs", f"nginx-{web}.out"), ready=0.3,
        )  # fmt: skip
        wait_for_port(f"osl-{web}", s[web], 80)

    def _start_cdn(self) -> None:
        """The CloudFront edge and its static origin, two nginx (:mod:`osilab.lab.cdn`)."""
        s = self.topology.services
        for path, (body, _control) in cdn.STATIC_FILES.items():
            self._path("cdn-s3", "www", *path.strip("/").split("/")).write_text(body)
        tls = {
            "certificate": str(self._path("tls", "cert.pem")),
            "key": str(self._path("tls", "key.pem")),
        }
        for name, host, text in (
            ("cdn-s3", "s3", lambda run: cdn.nginx_static_origin(
                address=s["s3"], root=str(self._path("cdn-s3", "www")), run_dir=run)),
            ("cdn-edge", "edge", lambda run: cdn.nginx_edge(
                address=s["edge"], static=s["s3"], alb=s["alb"], run_dir=run, **tls)),
        ):  # fmt: skip
            run_dir = self._path(name, "run", "cache").parent
            (run_dir / "cache").mkdir(exist_ok=True)  # the edge's proxy_cache_path
            os.chmod(run_dir / "cache", 0o777)
            conf = run_dir / "nginx.conf"
            conf.write_text(text(str(run_dir)))
            self.logs[name] = run_dir / "access.log"
            self.supervisor.start(
                f"nginx {name}",
                ["nginx", "-c", str(conf), "-p", str(run_dir), "-g", "daemon off;"],
                ns=f"osl-{host}", log=self._path("logs", f"{name}.out"), ready=0.3,
            )  # fmt: skip
            wait_for_port(f"osl-{host}", s[host], 80)

    def _start_haproxy(self, host: str, config: str, vip: str, port: int) -> None:
        path = self._path(host, "haproxy.cfg")
        path.write_text(config)
        run(["haproxy", "-c", "-q", "-f", str(path)])
        log = self._path("logs", f"haproxy-{host}.log")
        self.logs[f"haproxy-{host}"] = log
        self.supervisor.start(
            f"haproxy {host}", ["haproxy", "-db", "-f", str(path)], ns=f"osl-{host}", log=log,
            ready=0.3,
        )  # fmt: skip
        wait_for_port(f"osl-{host}", vip, port)

    def _start_own_servers(self, scenario: Scenario) -> list[Managed]:
        """Servers that run for one scenario only (the failover HAProxies, whose health
        checks would otherwise fill every other capture); stopped after its client."""
        if "quic" in scenario.balancers:
            return self._start_quic()
        if "failover" not in scenario.balancers:
            return []
        started = []
        for name, (host, vip, text) in failover.servers(self.topology.services).items():
            path = self._path(name, "haproxy.cfg")
            path.write_text(text)
            run(["haproxy", "-c", "-q", "-f", str(path)])
            self.logs[name] = self._path("logs", f"{name}.log")
            started.append(self.supervisor.start(name, ["haproxy", "-db", "-f", str(path)],
                                                 ns=f"osl-{host}", log=self.logs[name], ready=0.3))  # fmt: skip
            failover.wait_listening(f"osl-{host}", vip)
        time.sleep(1.0)  # the first health checks pass before traffic starts
        return started

    def _start_quic(self) -> list[Managed]:
        """The quic scenario's HTTP/3 servers and its two UDP balancers (:mod:`osilab.lab.quic`)."""
        s = self.topology.services
        started = []
        for web in quic.TARGETS:
            name = f"quic-{web}"
            self.logs[name] = self._path("logs", f"{name}.log")
            started.append(self.supervisor.start(
                name, [sys.executable, "-m", "osilab.lab.quic_server", web, s[web],
                       str(self._path("tls", "cert.pem")), str(self._path("tls", "key.pem"))],
                ns=f"osl-{web}", log=self.logs[name], ready=0.3))  # fmt: skip
        deadline = time.monotonic() + 20
        while not all('"listening"' in (self.logs[f"quic-{w}"].read_text()
                                         if self.logs[f"quic-{w}"].exists() else "")
                      for w in quic.TARGETS):  # fmt: skip
            if time.monotonic() > deadline:
                raise LabError("the lab's HTTP/3 servers did not start (logs/quic-web*.log)")
            time.sleep(0.1)
        nft = self._path("nlb", "quic.nft")
        nft.write_text(quic.nftables_quic(vip=s["nlb"], targets={w: s[w] for w in quic.TARGETS}))
        run(["nft", "-f", str(nft)], ns="osl-nlb")
        return started

    # -- record -------------------------------------------------------------------
    def _log_offsets(self) -> dict[str, int]:
        return {
            name: path.stat().st_size if path.exists() else 0 for name, path in self.logs.items()
        }

    def _log_since(self, name: str, offsets: dict[str, int]) -> str:
        path = self.logs[name]
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            handle.seek(offsets.get(name, 0))
            return handle.read().decode("utf-8", "replace")

    def start_tcpdump(self, hop: str, folder: Path) -> Managed:
        """Capture ``hop`` into ``folder/<hop>.pcap``; returns once tcpdump is listening."""
        host = self.topology.hop(hop).host
        log = folder / f"{hop}.tcpdump.log"
        managed = self.supervisor.start(
            f"tcpdump {hop}",
            ["tcpdump", "-i", hop, "-w", str(folder / f"{hop}.pcap"), "-U", "-n", "-s", "0",
             "-Z", "root", "--immediate-mode"],
            ns=f"osl-{host}", log=log,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while "listening on" not in (log.read_text() if log.exists() else ""):
            if managed.process.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"tcpdump on {hop} did not start: {log.read_text()[-300:]}")
            time.sleep(0.05)
        # ``ip netns exec`` execs tcpdump: the recorded pid is tcpdump's own.
        comm = Path(f"/proc/{managed.pid}/comm").read_text().strip()
        if comm != "tcpdump":
            raise LabError(f"the pid recorded for tcpdump on {hop} is {comm!r}, not tcpdump")
        return managed

    def record(self, scenario: Scenario, out: Path, *, timeout: float = 180) -> dict[str, Any]:
        """Run one scenario and write its files into ``out``; returns a short summary."""
        out.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-", dir=self.workdir))
        run([sys.executable, "-c", "import redis; redis.Redis('192.0.2.30', 6379).flushall()"],
            ns="osl-cache")  # fmt: skip
        own = self._start_own_servers(scenario)  # before the offsets: their logs count
        offsets = self._log_offsets()
        dumps = [self.start_tcpdump(hop, scratch) for hop in scenario.hops]
        keylog = scratch / "keylog.txt"
        plan = {"prefix": scenario.prefix, "keylog": str(keylog), "steps": list(scenario.steps),
                "client_certificate": [str(self._path("tls", n)) for n in ("client.pem", "client-key.pem")]}  # fmt: skip
        (scratch / "plan.json").write_text(json.dumps(plan, indent=1))
        started = time.monotonic()
        try:
            run([sys.executable, "-m", "osilab.lab.client", str(scratch / "plan.json"),
                 str(scratch / "client.json")], ns="osl-client", timeout=timeout)  # fmt: skip
        finally:
            time.sleep(1.0)  # let FINs and the servers' log lines land
            for managed in dumps + own:
                self.supervisor.interrupt(managed)
        elapsed = time.monotonic() - started
        named = []
        for hop in scenario.hops:
            pcap = (scratch / f"{hop}.pcap").read_bytes()
            target = scratch / f"{hop}.pcapng"
            target.write_bytes(pcap_to_pcapng(pcap, hop, self.topology.hop(hop).description))
            named.append(str(target))
        capture = out / f"{scenario.name}.pcapng"
        run(["mergecap", "-F", "pcapng", "-w", str(capture), *named], timeout=60)
        client_records = json.loads((scratch / "client.json").read_text())
        (out / "client.json").write_text(json.dumps(client_records, indent=1) + "\n")
        if keylog.exists() and keylog.stat().st_size:
            shutil.copy(keylog, out / "keylog.txt")
        if "alb-mtls" in scenario.balancers:  # the mTLS listener's TrustStore, beside its config
            shutil.copy(self._path("tls", configs.ALB_MTLS_TRUST_STORE), out / configs.ALB_MTLS_TRUST_STORE)
        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        texts = {}
        for name in self.logs:
            if name == "redis":
                continue
            text = self._log_since(name, offsets)
            if text.strip():
                texts[name] = text
                (logs / f"{name}.log").write_text(text)
        document = self._truth(scenario, capture, client_records, texts)
        (out / "truth.json").write_text(json.dumps(document, indent=1) + "\n")
        topology = self.topology.to_json(scenario.hops)
        topology["scenario"] = scenario.name
        (out / TOPOLOGY_FILE).write_text(json.dumps(topology, indent=1) + "\n")
        write_configs(scenario, out, self.topology, document)
        shutil.rmtree(scratch, ignore_errors=True)
        return {
            "scenario": scenario.name,
            "requests": len(client_records),
            "seconds": round(elapsed, 1),
            "bytes": capture.stat().st_size,
        }

    def _truth(
        self,
        scenario: Scenario,
        capture: Path,
        client_records: list[dict[str, Any]],
        logs: dict[str, str],
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "scenario": scenario.name,
            "summary": scenario.summary,
            "requests": {},
            "connections": [],
            "server_versions": self.versions,
            "backend": self.backend,
        }
        if "alb" in scenario.balancers or "alb-ws" in scenario.balancers:
            alb = truth.alb_truth(truth.parse_haproxy_http(logs.get("haproxy-alb", "")))
            document["requests"].update({rid: {"balancer": "alb", **v} for rid, v in alb.items()})
        if "cdn" in scenario.balancers:  # every request met the edge first; some went on
            document["requests"] = cdn.cdn_truth(cdn.parse_edge(logs.get("cdn-edge", "")),
                                                 cdn.parse_origin(logs.get("cdn-s3", "")),
                                                 document["requests"])  # fmt: skip
        if "nlb" in scenario.balancers:
            rows = _syn_rows(capture, ("nlb-web1", "nlb-web2"))
            self._add_connections(document, "nlb", rows, client_records,
                                  "back-side capture (first SYN on nlb-web*)", "nlb")  # fmt: skip
        if "l4p" in scenario.balancers:
            rows = [
                {"client": r["client"], "target": r["target"], "target_group": r["target_group"],
                 "proxy_source": r.get("source", ""), "frontend": r.get("frontend", ""),
                 "listen": r.get("listen", "")}
                for r in truth.parse_haproxy_tcp(logs.get("haproxy-l4p", ""))
            ]  # fmt: skip
            self._add_connections(document, "l4proxy", rows, client_records,
                                  "haproxy tcp log", "l4p")  # fmt: skip
        if "failover" in scenario.balancers:
            services = self.topology.services
            resets = failover.reset_rows(capture, "client-l4p", services["l4p"])
            parts = failover.failover_truth(logs, resets, client_records, services)
            document["failover"] = parts["failover"]
            document["connections"] += parts["connections"]
            document["requests"].update(parts["requests"])
        if "alb-mtls" in scenario.balancers:  # what HAProxy's verify-required listener did
            rids = [r["rid"] for r in client_records if r["suite"] == "mtls"]
            document["mtls"] = {
                "port": configs.ALB_MTLS_PORT, "trust_store": configs.ALB_MTLS_TRUST_STORE,
                "client_subject": self.mtls_subject, "requests": rids,
                # HAProxy logs the frontend with "~" for TLS; "verify required" ends the
                # handshake of a client it does not trust, so no request of it is logged.
                "accepted": bool(rids) and all(
                    document["requests"].get(rid, {}).get("frontend") == "alb-mtls~" for rid in rids),
            }  # fmt: skip
        if "quic" in scenario.balancers:
            paths = quic.path_rows(capture, ("nlb-web1", "nlb-web2"), self.topology.services)
            parts = quic.quic_truth(logs, paths, client_records)
            document["requests"].update(parts["requests"])
            document["quic"] = parts["quic"]
        if any(name.startswith("app-") for name in logs):
            document["websocket"] = truth.websocket_truth(
                "".join(text for name, text in logs.items() if name.startswith("app-"))
            )
        document["not_forwarded"] = sorted(
            r["rid"] for r in client_records if r["rid"] not in document["requests"]
        )
        document["nginx"] = {
            row["rid"]: {"instance": row.get("instance"), "peer": row.get("client"),
                         "server": row.get("server"),  # the address:port nginx was reached at
                         "xff": row.get("xff"), "proxy_protocol": row.get("proxy_protocol"),
                         "status": row.get("status")}
            for name, text in logs.items() if name.startswith("nginx-")
            for row in truth.parse_nginx(text) if row.get("rid", "-") != "-"
        }  # fmt: skip
        return document

    def _add_connections(
        self,
        document: dict[str, Any],
        balancer: str,
        rows: list[dict[str, str]],
        client_records: list[dict[str, Any]],
        source: str,
        service: str,
    ) -> None:
        """Add one L4 balancer's connections (``rows``: client, target...) to truth.json,
        and the requests they carried, unless an earlier balancer already claimed them."""
        connections, requests = truth.connection_truth(
            rows, client_records, source=source, virtual_ip=self.topology.services[service]
        )
        document["connections"] += [{"balancer": balancer, **c} for c in connections]
        for rid, value in requests.items():
            document["requests"].setdefault(rid, {"balancer": balancer, **value})


def _syn_rows(capture: Path, hops: Sequence[str]) -> list[dict[str, str]]:
    """Each connection's first SYN on the given back-side hops: client -> target."""
    rows, seen = [], set()
    syns = "tcp.flags.syn == 1 && tcp.flags.ack == 0"
    for hop, src, sport, dst, dport in hop_endpoints(capture, hops, syns, "tcp"):
        client = f"{src}:{sport}"
        if client in seen:  # a retransmitted SYN is the same decision
            continue
        seen.add(client)
        rows.append({"client": client, "target": f"{dst}:{dport}", "hop": hop})
    return rows


class _Interrupted(BaseException):
    """SIGTERM or the overall timeout: unwinds through every ``finally`` like Ctrl-C."""


@contextmanager
def bounded(seconds: int) -> Iterator[None]:
    """Limit the block to ``seconds``; SIGTERM or the limit end it like Ctrl-C, as a LabError."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGALRM)}
    signal.alarm(seconds)
    try:
        yield
    except _Interrupted as exc:
        reason = "timed out" if str(exc) == "SIGALRM" else f"stopped by {exc}"
        raise LabError(
            f"lab record {reason}; every lab process and namespace was removed"
        ) from None
    finally:
        signal.alarm(0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def record(
    out: Path,
    scenarios: Sequence[str] | None = None,
    *,
    timeout: int = 900,
    progress: Any = None,
    backend: str = "java",
) -> list[dict[str, Any]]:
    """Record ``scenarios`` (all by default) into ``out/<scenario>/``; returns summaries.

    ``backend`` is the /api service behind nginx: ``"java"`` (Jetty, Spring, pgjdbc:
    compiled first by :func:`osilab.lab.javabuild.build`) or ``"python"`` (aiohttp).
    """
    if backend not in BACKENDS:
        raise LabError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    names = list(scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise LabError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    doctor.require(backend)
    classes = javabuild.build() if backend == "java" else None
    summaries = []
    with (
        bounded(timeout),
        tempfile.TemporaryDirectory(prefix="osilab-lab-", ignore_cleanup_errors=True) as workdir,
    ):
        lab = Lab(Path(workdir), backend=backend, classes=classes)
        with lab.running():
            for name in names:
                summary = lab.record(SCENARIOS[name], out / name)
                summaries.append(summary)
                if progress:
                    progress(summary)
    return summaries

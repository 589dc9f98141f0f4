"""The lab's Java/Spring backend (osilab/lab/java/): recorded afresh, read on the wire.

Records the ``alb`` scenario with ``backend="java"`` into a temp folder (root, the lab's
Debian packages and the JDK; about 15 s) and checks what the issue promises:

* every /api response behind nginx comes from Jetty (``Server: Jetty(9.4...)``);
* the lab's promises still hold, the balancer's among them (truth.json's target is the
  back-side hop the connection really used; every ALB rule routed where its config says);
* pgjdbc's switch to a server-side prepared statement after ``prepareThreshold`` (5)
  executions, as osilab's pgsql parser reads it: an unnamed Parse per query for the first
  four, a Parse named ``S_1`` at the fifth, then only Bind ``S_1`` / Execute;
* tshark reads the same pgsql message types and statement names, frame by frame;
* the pool's few long-lived connections carry every query.

The build cache is checked without root: same sources, same classes, no second javac.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from lab.lab_checks import (
    Scenario,
    check_alb_rules,
    check_cache_and_sql,
    check_request_ids_on_hops,
    check_truth_matches_back_side,
    tshark,
)

import osilab
from osilab.errors import LabError
from osilab.lab import doctor, javabuild
from osilab.lab.record import record
from osilab.pipeline.tracker import conversations

#: pgjdbc's default, which the backend's URL spells out (AppConfig.url).
PREPARE_THRESHOLD = 5
#: The one SQL text of the backend (Items.SQL), as pgjdbc sends it ($n placeholders).
ITEMS_SQL = "SELECT id, name, price, $1 AS request FROM items WHERE id = $2"
POOL_SIZE, APPS = 2, 2  # AppConfig.dataSource: a fixed pool of 2 per app; api1 and api2


@pytest.fixture(scope="module")
def java_alb(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    try:
        doctor.require("java")
    except LabError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("java-lab")
    [summary] = record(out, ["alb"], timeout=300, backend="java")
    assert summary["requests"] > 30
    return Scenario(out / "alb")


# -- what the backend is --------------------------------------------------------------


@pytest.mark.lab
@pytest.mark.slow
def test_every_api_response_is_jettys(java_alb: Scenario) -> None:
    rows = tshark(
        java_alb.capture,
        "-Y", '(frame.interface_name == "web1-api" || frame.interface_name == "web2-api") && http.response',
        "-T", "fields", "-e", "frame.interface_name", "-e", "http.server",
    )  # fmt: skip
    servers = {server for _hop, server in rows}
    assert {hop for hop, _server in rows} == {"web1-api", "web2-api"}
    assert len(servers) == 1 and servers.pop().startswith("Jetty(9.4."), rows[:3]
    assert java_alb.truth["backend"] == "java"
    assert java_alb.truth["server_versions"]["jetty9-server.jar"].startswith("9.4.")


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.parametrize(
    "check",
    [
        check_truth_matches_back_side,
        check_alb_rules,
        check_request_ids_on_hops,
        check_cache_and_sql,
    ],
    ids=lambda c: c.__name__.removeprefix("check_"),
)
def test_the_lab_promises_hold_with_java(java_alb: Scenario, check) -> None:
    check(java_alb)


# -- the prepared-statement switch, read by osilab ----------------------------------


def _pgsql_messages(capture: Path) -> list:
    return [m for m in conversations(osilab.read(capture)) if m.message.protocol == "pgsql"]


def _executions(messages: list) -> dict[str, list[tuple[str, str]]]:
    """Per connection, each execution of the items query: (how it began, statement name).

    An execution is a client Bind; it "began" with a Parse when a Parse of the items SQL
    came right before it (the same run), else with the Bind alone. The pool's validity
    checks (an empty query) are not executions of the items query and are left out.
    """
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    parsed: dict[str, str | None] = {}
    for item in messages:
        message, flow = item.message, str(item.flow)
        if message.direction.name != "TO_SERVER":
            continue
        kind = message.fields.get("type")
        if kind == "Parse":
            query = message.fields.get("query", "")
            parsed[flow] = message.fields["statement"] if query == ITEMS_SQL else None
        elif kind == "Bind":
            statement = message.fields["statement"]
            if flow in parsed:
                if parsed[flow] is not None:
                    found[flow].append(("Parse", parsed[flow] or ""))
                del parsed[flow]
            elif statement:  # only a Bind: a statement prepared earlier on this connection
                found[flow].append(("Bind", statement))
    return found


#: The n-th execution (1-based) of one SQL text on one connection -> what pgjdbc sends.
#: Before the threshold an unnamed statement is parsed each time; at it, a named one; after
#: it, the named statement is only bound. (pgjdbc docs, "prepareThreshold".)
EXPECTED = {
    **{n: ("Parse", "") for n in range(1, PREPARE_THRESHOLD)},
    PREPARE_THRESHOLD: ("Parse", "S_1"),
}
AFTER = ("Bind", "S_1")


@pytest.mark.lab
@pytest.mark.slow
def test_pgjdbc_switches_to_a_named_statement(java_alb: Scenario) -> None:
    executions = _executions(_pgsql_messages(java_alb.capture))
    switched = {flow: runs for flow, runs in executions.items() if len(runs) > PREPARE_THRESHOLD}
    assert switched, {flow: len(runs) for flow, runs in executions.items()}
    for flow, runs in executions.items():
        for n, seen in enumerate(runs, 1):
            assert seen == EXPECTED.get(n, AFTER), (flow, n, runs)
    named_parses = sum(run == ("Parse", "S_1") for runs in executions.values() for run in runs)
    assert named_parses == len([r for r in executions.values() if len(r) >= PREPARE_THRESHOLD])


@pytest.mark.lab
@pytest.mark.slow
def test_the_pool_keeps_few_long_lived_connections(java_alb: Scenario) -> None:
    messages = _pgsql_messages(java_alb.capture)
    flows = {str(m.flow) for m in messages}
    startups = [m for m in messages if m.message.fields.get("type") == "Startup message"]
    queries = sum(len(runs) for runs in _executions(messages).values())
    assert len(flows) <= POOL_SIZE * APPS, flows
    assert len(startups) <= POOL_SIZE * APPS  # the pool opened them at start, not per request
    assert queries > 2 * len(flows), (queries, flows)


@pytest.mark.lab
@pytest.mark.slow
def test_tshark_reads_the_same_pgsql_messages(java_alb: Scenario) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    ours: dict[int, list[str]] = defaultdict(list)
    our_statements: dict[int, list[str]] = defaultdict(list)
    for item in _pgsql_messages(java_alb.capture):
        message = item.message
        ours[message.last_packet].append(message.fields["type"])
        if message.fields["type"] in ("Parse", "Bind"):
            our_statements[message.last_packet].append(message.fields["statement"])
    rows = tshark(java_alb.capture, "-Y", "pgsql", "-T", "fields", "-e", "frame.number",
                  "-e", "pgsql.type", "-e", "pgsql.statement")  # fmt: skip
    theirs = {int(row[0]): row[1].split(",") for row in rows}
    their_statements = {
        int(row[0]): row[2].split(",") for row in rows if len(row) > 2 and row[2] != ""
    }
    assert ours == theirs
    assert {k: v for k, v in our_statements.items() if any(v)} == {
        k: v for k, v in their_statements.items() if any(v)
    }
    kinds = {kind for kinds in theirs.values() for kind in kinds}
    assert {"Parse", "Bind", "Execute", "Sync", "Bind completion", "Data row"} <= kinds
    assert sum(s.count("S_1") for s in their_statements.values()) > PREPARE_THRESHOLD


# -- the build ------------------------------------------------------------------------


def test_build_is_cached_and_keyed_by_the_sources(tmp_path: Path) -> None:
    try:
        javabuild.classpath()
    except LabError as exc:
        pytest.skip(str(exc))
    if shutil.which("javac") is None:
        pytest.skip("javac is not installed (openjdk-17-jdk-headless)")
    sources = tmp_path / "src"
    shutil.copytree(javabuild.SOURCES, sources)
    first = javabuild.build(sources=sources, cache=tmp_path / "cache")
    marker = first / "osilab" / "backend" / "Backend.class"
    stamp = marker.stat().st_mtime_ns
    assert javabuild.build(sources=sources, cache=tmp_path / "cache") == first
    assert marker.stat().st_mtime_ns == stamp, "unchanged sources were compiled again"
    resp = sources / "Resp.java"
    resp.write_text(resp.read_text() + "\n// a change\n")
    second = javabuild.build(sources=sources, cache=tmp_path / "cache")
    assert second != first and (second / "osilab" / "backend" / "Resp.class").exists()
    assert not list((tmp_path / "cache" / "java-backend").glob("build-*")), "a scratch folder left"
    assert not any(p.suffix == ".class" for p in javabuild.SOURCES.rglob("*")), (
        "classes in the repo"
    )


def test_a_broken_source_is_a_lab_error_naming_javac(tmp_path: Path) -> None:
    try:
        javabuild.classpath()
    except LabError as exc:
        pytest.skip(str(exc))
    sources = tmp_path / "src"
    shutil.copytree(javabuild.SOURCES, sources)
    (sources / "Items.java").write_text("class Broken {")
    with pytest.raises(LabError, match="javac"):
        javabuild.build(sources=sources, cache=tmp_path / "cache")
    assert not list((tmp_path / "cache" / "java-backend").glob("*")), "a failed build was cached"


# -- what both backends must agree on, and what the machine must have -----------------


def test_both_backends_accept_the_same_request_ids() -> None:
    """The id reaches SQL and Redis keys: the Java pattern must be the Python one, exactly."""
    import re

    from osilab.lab import app

    java = (javabuild.SOURCES / "Backend.java").read_text()
    pattern = re.search(r'RID = Pattern.compile\("(.+?)"\);', java).group(1).replace("\\\\", "\\")
    assert pattern == app._RID.pattern


def test_ci_installs_every_debian_package_the_java_backend_needs() -> None:
    ci = (Path(__file__).parents[2] / ".ci" / "run").read_text()
    line = ci.split("apt-get install", 1)[1].split(">/dev/null", 1)[0].split()
    assert {r.package for r in doctor.JAVA_REQUIREMENTS} <= set(line)
    assert {r.package for r in doctor.JAVA_REQUIREMENTS} <= set(doctor.DEBIAN_PACKAGES)


def _bind(portal: bytes, statement: bytes, formats: list[int], values: list[bytes | None]) -> bytes:
    import struct

    body = (
        portal
        + b"\0"
        + statement
        + b"\0"
        + struct.pack(f">H{len(formats)}H", len(formats), *formats)
    )
    body += struct.pack(">H", len(values))
    for value in values:
        body += struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value
    body += struct.pack(">H", 0)  # result formats
    return b"B" + struct.pack(">i", len(body) + 4) + body


@pytest.mark.parametrize(
    ("message", "statement", "values", "summary"),
    [
        (_bind(b"", b"S_1", [0, 1], [b"rid=a0044", b"\0\0\0\x0a"]), "S_1",
         ("'rid=a0044'", "0x0000000a"), ">B Bind: S_1 $1='rid=a0044' $2=0x0000000a"),
        (_bind(b"", b"", [], [b"3"]), "", ("'3'",), ">B Bind: $1='3'"),  # no codes: all text
        (_bind(b"", b"", [1], [b"\0\x03", None]), "", ("0x0003", "NULL"), ">B Bind: $1=0x0003 $2=NULL"),
        (_bind(b"", b"S_2", [], []), "S_2", (), ">B Bind: S_2"),
    ],
    ids=["pgjdbc-named", "all-text", "one-code-for-all", "no-values"],
)  # fmt: skip
def test_the_parser_reads_a_binds_statement_and_values(
    message: bytes, statement: str, values: tuple[str, ...], summary: str
) -> None:
    """PostgreSQL docs, "Message Formats": Bind. What the journey looks for the id in."""
    from osilab.protocols import Direction
    from osilab.protocols.pgsql import PgsqlParser

    parser = PgsqlParser()
    parser.feed(Direction.TO_SERVER, b"\0\0\0\x08\x00\x03\x00\x00", 1, 0.0)  # a startup, then typed
    [bind] = parser.feed(Direction.TO_SERVER, message, 2, 0.0)
    assert (bind.fields["statement"], bind.fields["values"], bind.summary) == (
        statement,
        values,
        summary,
    )

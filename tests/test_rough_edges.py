"""The rough edges a new user meets first (issue 23 item 5), each by a test that failed on the
behaviour before the fix."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from osilab_cli import run_osilab as _osilab
from shared_paths import CAPTURES, THIRDPARTY
from tshark_oracle import tshark_fields

import osilab

REPO = Path(__file__).resolve().parents[1]
ALB = CAPTURES / "alb" / "alb.pcapng"
KEYLOG = CAPTURES / "alb" / "keylog.txt"
TLS13 = THIRDPARTY / "zeek" / "tls13-chrome125-kyber-sni.pcap"
PING = THIRDPARTY / "chrissanders-packets" / "icmp_echo.pcapng"



# -- --keylog -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["http", "tls", "layers", "route", "export"])
@pytest.mark.parametrize(("keylog", "message"), [
    ("missing.txt", "cannot read the key log file"),
    ("empty.txt", "holds no key"),
    ("garbage.txt", "holds no key"),
])  # fmt: skip
def test_a_keylog_that_gives_no_key_is_an_error(tmp_path: Path, command: str, keylog: str,
                                                message: str) -> None:  # fmt: skip
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "garbage.txt").write_text("# a comment\nnot a key log line\n")
    extra = {"route": ["--lb", "alb"], "export": ["--table", "requests", "--out",
                                                   str(tmp_path / "r.parquet")]}.get(command, [])
    done = _osilab(command, str(ALB), "--keylog", str(tmp_path / keylog), *extra)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("argv", "note"), [
    (["http", str(ALB)], "3 TLS connections could not be read: without their keys: give --keylog"),
    (["tls", str(ALB)], "3 TLS connections could not be read: without their keys"),
    (["http", str(ALB), "--keylog", str(KEYLOG)], None),
    (["tls", str(ALB), "--keylog", str(KEYLOG)], None),
])  # fmt: skip
def test_http_and_tls_count_the_connections_they_could_not_read(argv: list[str], note: str | None) -> None:
    # The notes name the lab's HTTPS connections (https, h2, mtls suites), from client.json.
    records = json.loads((ALB.parent / "client.json").read_text())
    connections = len({r["source"] for r in records if r.get("scheme") == "https"})
    note = note.replace("3 TLS", f"{connections} TLS") if note else None
    done = _osilab(*argv, "--json")
    assert done.returncode == 0, done.stderr
    if note is None:
        assert "could not be read" not in done.stderr
    else:
        assert note in done.stderr
    # the count is the TLS connections tshark sees (three HTTPS connections in the lab's script)
    if note is not None:
        streams = {row[0] for row in tshark_fields(ALB, "tcp.stream", options=("-Y", "tls.handshake.type == 1 && frame.interface_id == 0"))}
        assert len(streams) == connections


# -- the ClientHello's version ------------------------------------------------------------

@pytest.mark.parametrize(("argv", "frame"), [
    (["layers", str(TLS13), "--no-streams"], 4),
    (["layers", str(TLS13)], 4),
])  # fmt: skip
def test_a_client_hello_shows_the_handshake_version(argv: list[str], frame: int, tshark: str) -> None:
    line = next(x for x in _osilab(*argv).stdout.splitlines() if x.split()[0] == str(frame))
    assert "TLS TLS" not in line
    offered = tshark_fields(TLS13, "tls.handshake.extensions.supported_version",
                            options=("-Y", f"frame.number == {frame}"))[0][0]
    assert "0x0304" in offered and "offering TLS 1.3" in line
    record = tshark_fields(TLS13, "tls.record.version", options=("-Y", f"frame.number == {frame}"))[0][0]
    assert record == "0x0301" and "record layer TLS 1.0: only the record's version" in line


# -- Capture as a sequence; fields by name ------------------------------------------------

def test_capture_indexing_and_len() -> None:
    cap = osilab.read(ALB)
    numbers = [row[0] for row in tshark_fields(ALB, "frame.number")] if _has_tshark() else None
    assert len(cap) == cap.count() == (len(numbers) if numbers else len(list(cap.records())))
    assert cap[5].no == 6 and cap.frame(6).no == 6 and cap[-1].no == len(cap)
    assert [p.no for p in cap[3:6]] == [4, 5, 6] and [p.no for p in cap[-2:]] == [len(cap) - 1, len(cap)]
    with pytest.raises(IndexError, match=f"holds {len(cap)} packets"):
        cap[len(cap)]
    with pytest.raises(TypeError, match="cap.frame"):
        cap["tcp"]  # type: ignore[index]


def test_len_of_a_big_capture_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    import osilab.capture.reader as reader

    monkeypatch.setattr(reader, "LEN_LIMIT", 10)
    with pytest.raises(TypeError, match=r"cap\.count\(\)"):
        len(osilab.read(ALB))


@pytest.mark.parametrize(("key", "value"), [
    (("tcp", "dstport"), 80),
    (("tcp", "tcp.dstport"), 80),
    (("tcp.dstport",), 80),
    (("ip.dst",), "203.0.113.10"),
])  # fmt: skip
def test_fields_by_bare_or_wireshark_name(key: tuple[str, ...], value: object) -> None:
    pkt = osilab.read(ALB)[2]  # the first SYN, to the ALB's port 80
    got = pkt[key[0]] if len(key) == 1 else pkt[key[0]][key[1]]
    assert got == value


@pytest.mark.parametrize(("key", "listed"), [
    (("tcp", "dstprt"), "dstport"),
    (("tcp", "udp.dstport"), "srcport"),
    (("udp",), "['eth', 'ip', 'tcp']"),
    (("udp.dstport",), "'udp' layer"),
])  # fmt: skip
def test_a_wrong_name_lists_the_valid_ones(key: tuple[str, ...], listed: str) -> None:
    pkt = osilab.read(ALB)[2]
    with pytest.raises(KeyError) as caught:
        pkt[key[0]] if len(key) == 1 else pkt[key[0]][key[1]]
    assert listed in str(caught.value)


# -- the command line ---------------------------------------------------------------------

def test_version() -> None:
    done = _osilab("--version")
    assert done.returncode == 0 and re.fullmatch(r"osilab \d+\.\d+\.\d+\S*\n", done.stdout)


@pytest.mark.parametrize(("command", "needed"), [
    ("layers", []), ("flows", []), ("http", []), ("route", ["--lb", "alb"]),
])  # fmt: skip
def test_a_bad_flag_prints_the_sub_commands_usage(command: str, needed: list[str]) -> None:
    done = _osilab(command, str(ALB), *needed, "--no-such-flag")
    assert done.returncode == 2
    assert done.stderr.startswith(f"usage: osilab {command} ")
    assert "unrecognized arguments: --no-such-flag" in done.stderr


def test_long_request_columns_are_cut() -> None:
    import io

    from osilab.commands._output import MAX_CELL, print_table

    out = io.StringIO()
    print_table(("target", "status"), [("/" + "a" * 200, 200)], out)
    row = out.getvalue().splitlines()[2]
    assert row.startswith("/" + "a" * (MAX_CELL - 4) + "...") and len(row) < 80



def test_the_layers_table_header_stands_over_its_columns() -> None:
    """Every column title starts where its column does (the layer stack is 32 wide)."""
    done = _osilab("layers", str(ALB), "--limit", "3")
    header, *rows = done.stdout.splitlines()
    for row in rows:
        stack = re.search(r"eth\(2\) \S.*?  +(?=\S)", row)
        assert stack is not None, row
        assert header.index("layers (OSI layer)") == stack.start(), (header, row)
        assert header.index("summary of the top layer") == stack.end(), (header, row)


# -- ICMP echo, DNS TXT, PostgreSQL -------------------------------------------------------

def test_an_icmp_echo_reads_as_ping(tshark: str) -> None:
    lines = _osilab("layers", str(PING)).stdout.splitlines()[1:]
    seqs = tshark_fields(PING, "icmp.type", "icmp.ident", "icmp.seq")
    for line, (kind, ident, seq) in zip(lines, seqs, strict=True):
        word = "request" if kind == "8" else "reply"
        assert f"ping {word} id=0x{int(ident):04x} seq={seq}:" in line
        assert "does not decode" not in line and "data(3)" in line  # echo data is ICMP's own


def test_dns_txt_reads_as_text(tshark: str, tmp_path: Path) -> None:
    from scapy.all import DNS, DNSQR, DNSRR, IP, UDP

    answer = IP(src="192.0.2.53", dst="198.51.100.7") / UDP(sport=53, dport=5353) / DNS(
        id=7, qr=1, qd=DNSQR(qname="shop.example", qtype="TXT"),
        an=DNSRR(rrname="shop.example", type="TXT", rdata=[b"v=spf1 -all", b"hello"]))
    cap = osilab.from_scapy([answer])
    pkt = list(osilab.pipeline.annotate(cap))[0]
    dns = pkt["dns"]
    theirs = tshark_fields(cap.path, "dns.txt")[0][0].split(",")
    assert theirs == ["v=spf1 -all", "hello"]
    assert dns["txt"] == ('"v=spf1 -all" "hello"',)
    assert '-> "v=spf1 -all" "hello"' in dns.summary


def test_repeated_pgsql_messages_read_as_one_line(tshark: str) -> None:
    """A segment of several PostgreSQL messages: one pgsql entry as tshark's frame.protocols
    has it, and every message in the line (tshark's Info: >P/B/D/E/S). The frame is the first
    one where tshark counts five or more messages (the capture is re-recorded now and then)."""
    rows = tshark_fields(ALB, "frame.number", "pgsql.type", options=("-Y", "pgsql"))
    frame, types = next((int(no), kinds.split(",")) for no, kinds in rows if kinds.count(",") >= 4)
    line = next(x for x in _osilab("layers", str(ALB)).stdout.splitlines()
                if re.match(rf"\S+\s+{frame}\s", x))  # fmt: skip
    assert f"pgsql(7)x{len(types)}" in line and f"{len(types)} pgsql messages" in line
    for message in types:
        assert message in line


# -- setup --------------------------------------------------------------------------------

def test_make_tour_installs_only_the_tour_extra() -> None:
    done = subprocess.run(["make", "-n", "-B", "tour"], cwd=REPO, capture_output=True, text=True)
    installs = [line for line in done.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs == [line for line in installs if "'.[tour]'" in line] and installs
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not any(dep.startswith(("jupyter ", "jupyterlab")) or dep == "jupyter" for dep in extras["tour"])
    assert extras["tables"] == ["pyarrow>=14"]
    assert "tables" in (REPO / "Makefile").read_text().split("$(BIN)/.installed:")[1].split("\n\n")[0]


def test_readme_warns_of_a_folder_named_osilab() -> None:
    readme = (REPO / "README.md").read_text()
    assert "AttributeError: module\n'osilab' has no attribute 'read'" in readme or \
        "has no attribute 'read'" in readme.replace("\n", " ")


def _has_tshark() -> bool:
    import shutil

    return shutil.which("tshark") is not None

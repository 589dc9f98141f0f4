"""The CLI contract for the foundation commands: layers, summary, help, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from shared_paths import CAPTURES, THIRDPARTY

from osilab.cli import COMMANDS, main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osilab.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_layers_json_follows_the_contract(thirdparty):
    out = _run("layers", str(THIRDPARTY / "zeek/http-get.pcap"), "--json", "--limit", "4")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["no"] for r in rows] == [1, 2, 3, 4]
    first = rows[0]
    assert {"no", "time", "length", "layers"} <= set(first)
    assert first["layers"][0] == {"name": "eth", "osi": 2, "tcpip": "link", "offset": 0, "length": 14}
    assert [lay["name"] for lay in rows[3]["layers"]][:3] == ["eth", "ip", "tcp"]
    assert "http" in [lay["name"] for lay in rows[3]["layers"]]


def test_summary_groups_by_osi_layer(thirdparty):
    out = _run("summary", str(THIRDPARTY / "zeek/icmp-arp-dot1q.pcap"))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "OSI 2 Data link" in text and "OSI 3 Network" in text
    assert text.index("OSI 3 Network") < text.index("OSI 2 Data link")
    assert "vlan" in text and "arp" in text and "icmp" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(command, capsys):
    try:
        __import__(COMMANDS[command])
    except ModuleNotFoundError:
        pytest.skip(f"osilab {command} is not built yet")
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_garbage_file_is_one_clear_line_and_exit_1(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"\x00" * 100)
    out = _run("layers", str(junk))
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert str(junk) in out.stderr and "byte offset 0" in out.stderr and "not a capture" in out.stderr


def test_damaged_capture_still_reads_and_names_the_damage(thirdparty):
    path = THIRDPARTY / "suricata-verify/fuzz-bad-record-length.pcap"
    out = _run("layers", str(path), "--json")
    assert out.returncode == 0
    assert "Traceback" not in out.stderr
    assert "packet 2, byte offset 228" in out.stderr
    assert len(out.stdout.splitlines()) == 1


_MODULES_AFTER = r"""
import contextlib, io, sys
from osilab.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    main(sys.argv[1:])
print("\n".join(sorted(sys.modules)))
"""

#: What ``route --lb nlb`` must not load: the ALB and the HTTP stack under it, the journey,
#: PyYAML (a JSON config needs none), and importlib.metadata (only ``--version`` does).
_LAYER7_MODULES = ("osilab.balancers.alb", "osilab.pipeline", "osilab.protocols.http", "h11",
                   "cryptography", "osilab.journey", "yaml", "importlib.metadata")  # fmt: skip


def test_an_nlb_route_starts_without_the_http_stack() -> None:
    """An L4 replay reads no stream, so the command imports neither the ALB nor what it
    stands on (a third of the command's time on the bench capture, issue 22). The same
    check on ``--lb alb`` finds them: it can fail."""

    def loaded(lb: str) -> set[str]:
        argv = ["route", str(CAPTURES / "nlb/nlb.pcapng"), "--lb", lb, "--json", "--quiet"]
        done = subprocess.run([sys.executable, "-c", _MODULES_AFTER, *argv], capture_output=True,
                              text=True, timeout=120, check=True)  # fmt: skip
        return set(done.stdout.split())

    nlb = loaded("nlb")
    assert "osilab.balancers.nlb" in nlb
    assert not [m for m in _LAYER7_MODULES if m in nlb]
    alb = loaded("alb")
    assert {"osilab.balancers.alb", "osilab.pipeline", "h11"} <= alb

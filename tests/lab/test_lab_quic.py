"""The quic scenario (issue 20 item 3): a connection is not a 5-tuple any more.

The bundled captures/quic is checked without root (model against truth, the migration's
story, tshark's SNI and layers, HTTP/3 requests against the servers' own log); a fresh
recording (root, namespaces: marked ``lab``) must keep the same promises.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab.quic_checks import check_migration_story, check_model_agrees, check_quic_tshark
from protocols.test_quic import _ours
from tshark_oracle import frame_protocols, to_osilab_names

import osilab
from osilab.errors import LabError
from osilab.lab import doctor
from osilab.pipeline import annotate, iter_http

BUNDLED = Path(__file__).resolve().parents[2] / "captures" / "quic"
CHECKS = (check_model_agrees, check_migration_story, check_quic_tshark)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_bundled(check) -> None:
    check(BUNDLED)


def test_http3_requests_are_the_servers_log() -> None:
    """With the client's key log, osilab reads on the front hop every HTTP/3 request the
    client sent, each with its request id: those the servers logged, and after the move
    (a new UDP flow, no Initial) the ones its connection IDs lead back to the connection
    (the capture's connection-ID table; per hop and per request: tests/protocols/test_quic.py).
    """
    capture = osilab.read(BUNDLED / "quic.pcapng")
    truth = json.loads((BUNDLED / "truth.json").read_text())
    client = json.loads((BUNDLED / "client.json").read_text())
    seen = {}
    for m in iter_http(capture, keylog=str(BUNDLED / "keylog.txt")):
        if type(m).__name__ == "HttpRequest" and capture.hop_name(m.flow.interface) == "client-nlb":
            assert m.version == "HTTP/3"
            seen[m.header("x-request-id")] = m.target
    sent = {r["rid"] for r in client}
    assert set(seen) == sent and set(truth["requests"]) <= sent
    assert all(seen[rid].endswith(f"rid={rid}") for rid in seen)


def _to_quic(names: list[str]) -> list[str]:
    return names[: names.index("quic") + 1] if "quic" in names else names


@pytest.mark.tshark
def test_layers_agree_with_tshark(tshark) -> None:
    """Every frame's layers up to quic, as tshark reads them.

    Above quic (tls, http3, with the key log) tshark must read one hop at a time: see
    tests/protocols/test_quic.py::test_layers_above_quic_agree_with_tshark and its rules.
    """
    path = BUNDLED / "quic.pcapng"
    theirs = frame_protocols(str(path))
    ours = {p.no: _to_quic(_ours([lay.name for lay in p.layers])) for p in annotate(osilab.read(path))}
    theirs_named = {no: _to_quic(to_osilab_names(protocols)) for no, protocols in theirs.items()}
    # ICMP port unreachable quoting a QUIC datagram (a server answering the client's closed
    # old socket after the move): tshark dissects the quoted UDP payload as quic, osilab
    # stops at the quoted udp header. Known gap, left out here and counted.
    quoted = {no for no, names in ours.items() if "icmp" in names}
    assert quoted and len(quoted) < len(ours) // 4
    assert {n: v for n, v in ours.items() if n not in quoted} == {
        n: v for n, v in theirs_named.items() if n not in quoted}
    assert sum("quic" in names for names in ours.values()) > len(ours) // 2


@pytest.mark.lab
@pytest.mark.slow
def test_fresh_recording(tmp_path: Path) -> None:
    """``osilab lab record --scenario quic`` afresh (root): the same promises hold."""
    from osilab.lab.record import record

    try:
        doctor.require("python")
    except LabError as exc:
        pytest.skip(str(exc))
    record(tmp_path, ["quic"], timeout=300, backend="python")
    for check in CHECKS:
        check(tmp_path / "quic")

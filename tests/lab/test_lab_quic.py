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
    """With the client's key log, osilab reads on the front hop the HTTP/3 requests the
    servers logged before the migration, each with its request id.

    Known gap (left for issue 20): a migrated client's packets are a new UDP flow with no
    Initial, and osilab's QUIC reader keeps its keys per flow, so the requests sent after
    the move (answered ones and the stranded one) are not decoded yet.
    """
    capture = osilab.read(BUNDLED / "quic.pcapng")
    truth = json.loads((BUNDLED / "truth.json").read_text())
    client = json.loads((BUNDLED / "client.json").read_text())
    seen = {}
    for m in iter_http(capture, keylog=str(BUNDLED / "keylog.txt")):
        if type(m).__name__ == "HttpRequest" and capture.hop_name(m.flow.interface) == "client-nlb":
            assert m.version == "HTTP/3"
            seen[m.header("x-request-id")] = m.target
    before = {r["rid"] for r in client if not r["extra"]["migrated"]}
    assert set(seen) == before and before <= set(truth["requests"])
    assert all(seen[rid].endswith(f"rid={rid}") for rid in seen)


def _to_quic(names: list[str]) -> list[str]:
    return names[: names.index("quic") + 1] if "quic" in names else names


@pytest.mark.tshark
def test_layers_agree_with_tshark(tshark) -> None:
    """Every frame's layers up to quic, as tshark reads them.

    Known gap: above quic (tls, http3, decrypted with the key log) osilab and tshark 4.0
    disagree on 50 of the 126 frames of the bundled capture (osilab decodes more on the
    back-side hops, where the same connection appears again); not yet decided from the bytes.
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

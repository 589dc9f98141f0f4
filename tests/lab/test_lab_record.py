"""Record every scenario afresh in a temp folder and check the lab's promises (root only).

Marked ``lab``: it needs root (network namespaces) and the lab's Debian packages, and
skips with the reason when either is missing. The whole file takes about half a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab.cdn_checks import (
    check_cdn_back_side,
    check_cdn_model,
    check_cdn_origin_requests,
    check_cdn_plan,
    check_cdn_tshark,
)
from lab.lab_checks import (
    Scenario,
    check_addresses_behind_balancer,
    check_alb_rules,
    check_cache_and_sql,
    check_interfaces,
    check_proxy_v2,
    check_request_ids_on_hops,
    check_smuggle,
    check_tls,
    check_truth_matches_back_side,
    check_websocket,
)

from osilab.errors import LabError
from osilab.lab import doctor
from osilab.lab.record import SCENARIOS, record

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROMISES = {
    "alb": (check_interfaces, check_request_ids_on_hops, check_addresses_behind_balancer,
            check_tls, check_cache_and_sql, check_truth_matches_back_side, check_alb_rules),
    "nlb": (check_interfaces, check_request_ids_on_hops, check_addresses_behind_balancer,
            check_tls, check_cache_and_sql, check_truth_matches_back_side),
    "l4proxy": (check_interfaces, check_request_ids_on_hops, check_addresses_behind_balancer,
                check_cache_and_sql, check_truth_matches_back_side, check_proxy_v2),
    "smuggle": (check_interfaces, check_smuggle),
    "websocket": (check_interfaces, check_websocket),
    "cdn": (check_interfaces, check_cdn_plan, check_cdn_model, check_cdn_back_side,
            check_cdn_origin_requests, check_cdn_tshark),
}  # fmt: skip


def _lab_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("osl-")]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        doctor.require()
    except LabError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("lab")
    summaries = record(out, timeout=600)
    assert [s["scenario"] for s in summaries] == list(SCENARIOS)
    assert _lab_namespaces() == [], "the lab left namespaces behind"
    return out


@pytest.mark.parametrize(
    ("name", "check"),
    [(n, c) for n, checks in PROMISES.items() for c in checks],
    ids=[f"{n}-{c.__name__.removeprefix('check_')}" for n, cs in PROMISES.items() for c in cs],
)
def test_fresh_recording(recorded: Path, name: str, check) -> None:
    check(Scenario(recorded / name))


def test_sizes_stay_small(recorded: Path) -> None:
    for name in SCENARIOS:
        size = (recorded / name / f"{name}.pcapng").stat().st_size
        assert 10_000 < size < 1_500_000, (name, size)


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [(signal.SIGTERM, 1, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted")],
    ids=["SIGTERM", "Ctrl-C"],
)
def test_a_stopped_run_tears_everything_down(
    tmp_path: Path, sig: signal.Signals, code: int, message: str
) -> None:
    try:
        doctor.require()
    except LabError as exc:
        pytest.skip(str(exc))
    before = set(_servers())
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "osilab.cli",
            "lab",
            "record",
            "--out",
            str(tmp_path),
            "--scenario",
            "alb",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "osl-alb" not in _lab_namespaces() or not (set(_servers()) - before):
        assert process.poll() is None and time.monotonic() < deadline, "the lab did not start"
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert message in stderr
    assert _lab_namespaces() == []
    assert set(_servers()) <= before, "lab servers survived"


def _servers() -> list[int]:
    """Pids of processes running the lab's server programs (to check none survive)."""
    names = {"nginx", "haproxy", "redis-server", "postgres", "tcpdump"}
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                pids.append(int(entry))
    return pids


def test_load_generator_is_bounded_and_complete(tmp_path: Path) -> None:
    try:
        doctor.require()
    except LabError as exc:
        pytest.skip(str(exc))
    from osilab.lab.load import record_load

    summary = record_load(tmp_path, requests=2400, connections=4, timeout=300)
    assert summary["requests"] == 2400  # > 1000 per connection would need a reconnect; 600 here
    assert summary["dropped_by_kernel"] == 0
    # At least a request and a response on each of the two hops a request crosses.
    assert summary["packets"] >= 2400 * 4
    assert _lab_namespaces() == []

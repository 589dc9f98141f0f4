"""A SYN flood capture: N client SYNs from distinct client ports, none answered.

Usage: ``python bench/synflood.py [N] [PATH]`` (default 1,000,000 into
``bench/data/synflood.pcapng``); ``python bench/synflood.py --measure [N] [PATH] [--tree DIR]`` also runs the
four jobs of issue 22 on it (``osilab flows --json``, ``route --lb nlb --json``, ``http
--json``, ``route --lb alb --json``) and prints each one's peak RSS (GNU time's ``%M``),
seconds and bytes per flow.

A SYN flood is the classic case where an L4 balancer and an L7 proxy differ (the NLB
passes every SYN to a target; the ALB answers the handshakes itself and forwards only
requests). Each SYN (RFC 9293 §3.5) comes from its own ``(client address, port)``: the
client address walks 198.18.0.0/15 (RFC 2544's benchmarking range) every 50,000 ports,
the server is 203.0.113.10:80; the whole flood lasts ten seconds, inside every timeout,
so no flow can be expired early: every one is a half-open flow held to the end and
counted. ``tests/test_memory.py`` uses :func:`syn_records` at a smaller scale.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from osilab.capture.pcapng import write_pcapng  # noqa: E402

__all__ = ["syn_records", "write_synflood", "measure"]

_PORTS_PER_ADDRESS = 50_000
_SERVER = bytes((203, 0, 113, 10))
_ETHERNET = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00"
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIHHHH")


def syn_records(count: int, *, seconds: float = 10.0, start: float = 1_700_000_000.0) -> Iterator[tuple]:
    """``count`` record tuples ``(no, time, linktype, data, wire_length, interface)`` of
    client SYNs, each from a distinct client endpoint, spread over ``seconds``."""
    step = seconds / max(count, 1)
    for i in range(count):
        host, port = divmod(i, _PORTS_PER_ADDRESS)
        client = bytes((198, 18 + (host >> 16 & 1), host >> 8 & 0xFF, host & 0xFF))
        ip = _IP.pack(0x45, 0, 40, i & 0xFFFF, 0x4000, 64, 6, 0, client, _SERVER)
        tcp = _TCP.pack(1024 + port, 80, (i * 2654435761) & 0xFFFFFFFF, 0, (5 << 12) | 0x02, 64240, 0, 0)
        frame = _ETHERNET + ip + tcp
        yield (i + 1, start + i * step, 1, frame, len(frame), 0)


def write_synflood(count: int, path: str | Path) -> int:
    """Write the flood as pcapng; returns the number of packets written."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_pcapng(syn_records(count), str(path))


#: The jobs of issue 22's memory goal: name -> argv after ``osilab``.
JOBS: dict[str, list[str]] = {
    "flows --json": ["flows", "--json", "--quiet"],
    "route --lb nlb --json": ["route", "--lb", "nlb", "--json", "--quiet"],
    "http --json": ["http", "--json", "--quiet"],
    "route --lb alb --json": ["route", "--lb", "alb", "--json", "--quiet"],
}


def measure(path: Path, tree: str | None = None) -> dict[str, dict]:
    """Peak RSS (MiB) and seconds of each job of :data:`JOBS` on ``path``, and the
    number of output lines (flows listed, decisions streamed). ``tree``: a directory
    holding another copy of the ``osilab`` package to run instead (a "before")."""
    results: dict[str, dict] = {}
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    for name, argv in JOBS.items():
        with tempfile.NamedTemporaryFile() as timing, tempfile.TemporaryFile() as out:
            command = ["/usr/bin/time", "-f", "%M %e", "-o", timing.name, sys.executable,
                       "-m", "osilab.cli", *argv[:1], str(path), *argv[1:]]  # fmt: skip
            done = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=False,
                                  env=env, cwd=tree or None)  # fmt: skip
            out.seek(0)
            lines = sum(1 for _ in out)
            kib, seconds = Path(timing.name).read_text().split()[-2:]
        results[name] = {
            "peak_rss_mib": round(int(kib) / 1024, 1),
            "seconds": float(seconds),
            "lines": lines,
            "exit": done.returncode,
            "stderr": done.stderr.decode(errors="replace")[-300:],
        }
    return results


def main() -> None:
    args = sys.argv[1:]
    measuring = "--measure" in args
    tree = args[args.index("--tree") + 1] if "--tree" in args else None
    args = [a for i, a in enumerate(args) if a not in ("--measure", "--tree")
            and (i == 0 or args[i - 1] != "--tree")]  # fmt: skip
    count = int(args[0]) if args else 1_000_000
    path = Path(args[1]) if len(args) > 1 else ROOT / "bench" / "data" / f"synflood-{count}.pcapng"
    if not path.exists():
        write_synflood(count, path)
    print(f"{path}: {count:,} SYNs, {path.stat().st_size / 1e6:.0f} MB")
    if measuring:
        print(json.dumps(measure(path, tree), indent=1))


if __name__ == "__main__":
    main()

"""``osilab lab``: record real captures in a lab of network namespaces, or check the machine.

``osilab lab record`` builds the lab (see :mod:`osilab.lab.record`), runs every scenario
and writes one folder per scenario; ``osilab lab doctor`` lists the programs the lab
needs and their versions. Both need Linux; ``record`` needs root.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from osilab.commands._output import print_table, write_jsonl
from osilab.errors import UsageError

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run"]

HELP = "record real captures in a network-namespace lab (needs root), or check its tools"
EXAMPLE = "sudo osilab lab record --out captures --scenario alb --scenario nlb"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from osilab.lab.record import BACKENDS, SCENARIOS

    actions = parser.add_subparsers(dest="lab_action", metavar="ACTION")
    record = actions.add_parser(
        "record",
        help="build the lab, run the scenarios, write captures, logs and truth.json",
        description="Build the lab, run the scenarios, write captures, logs and truth.json. "
        "Scenarios: " + "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS.values()),
    )
    record.add_argument("--out", default="captures", help="output folder (default: captures)")
    record.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="a scenario to record (repeatable; default: all)",
    )
    record.add_argument(
        "--timeout", type=int, default=900, help="overall limit in seconds (default 900)"
    )
    record.add_argument("--json", action="store_true", help="one JSON summary per scenario")
    record.add_argument(
        "--backend",
        choices=BACKENDS,
        default=BACKENDS[0],
        help="the /api service behind nginx: java (Jetty + Spring + pgjdbc, compiled at record "
        "time) or python (aiohttp); default java",
    )
    load = actions.add_parser(
        "load",
        help="benchmark traffic: many keep-alive HTTP requests through the NLB role, captured",
    )
    load.add_argument("--out", default="load-capture", help="output folder (default: load-capture)")
    load.add_argument(
        "--requests", type=int, default=60_000, help="number of requests (default 60000)"
    )
    load.add_argument("--connections", type=int, default=8, help="parallel connections (default 8)")
    load.add_argument(
        "--timeout", type=int, default=900, help="overall limit in seconds (default 900)"
    )
    doctor = actions.add_parser(
        "doctor", help="list the lab's programs, versions, and what is missing"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object per program")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "lab_action", None)
    if action == "doctor":
        return _doctor(args)
    if action == "record":
        return _record(args)
    if action == "load":
        return _load(args)
    raise UsageError(
        "say what to do: 'osilab lab record', 'osilab lab load' or 'osilab lab doctor'"
    )


def _load(args: argparse.Namespace) -> int:
    from osilab.lab.load import record_load

    if args.requests < args.connections or args.connections < 1:
        raise UsageError("--requests must be at least --connections, and --connections at least 1")
    summary = record_load(
        Path(args.out), requests=args.requests, connections=args.connections, timeout=args.timeout
    )
    write_jsonl([summary])
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from osilab.lab import doctor

    findings = doctor.check()
    rows = [
        {
            "program": f.requirement.program,
            "package": f.requirement.package,
            "present": f.present,
            "version": f.version,
            "purpose": f.requirement.purpose,
        }
        for f in findings
    ]
    python = doctor.missing_python()
    if args.json:
        write_jsonl(rows)
    else:
        print_table(
            ("program", "debian package", "version", "used for"),
            ((r["program"], r["package"], r["version"], r["purpose"]) for r in rows),
        )
        print(f"root: {'yes' if os.geteuid() == 0 else 'no (record needs root)'}")
        print(
            "python packages for the lab app: "
            + ("all present" if not python else "missing " + ", ".join(python))
        )
    missing = [r for r in rows if not r["present"]]
    return 1 if missing or python else 0


def _record(args: argparse.Namespace) -> int:
    from osilab.lab.record import record

    out = Path(args.out)

    def progress(summary: dict[str, object]) -> None:
        if args.json:
            write_jsonl([summary])
        else:
            print(
                f"{summary['scenario']}: {summary['requests']} requests in {summary['seconds']} s, "
                f"{summary['bytes']} bytes -> {out / str(summary['scenario'])}"
            )

    record(out, args.scenario, timeout=args.timeout, progress=progress, backend=args.backend)
    return 0

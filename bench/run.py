"""The osilab speed and memory benchmark (GitHub issue 7): ``python bench/run.py``.

Builds (once) a large capture of real HTTP traffic, runs the three jobs with osilab,
dpkt, scapy and tshark, each in its own process, and writes ``bench/RESULTS.md``:
packets per second, osilab's ratio to each peer, and each process's peak memory (RSS,
from ``os.wait4``'s rusage of that very child).

    python bench/run.py                 # the speed run (builds bench/data/ on first use)
    python bench/run.py --memory        # also: every osilab job on a 1.5 GB capture
    python bench/run.py --repeat 3      # 3 rounds of every job, the best run of each counts
    python bench/run.py --replicate     # build the capture by replication, not the lab

Timing: for the Python tools, the work loop only (imports excluded; scapy runs on a
sample and is scaled); for tshark and the osilab CLI, the whole process, as a user runs it.
Nothing here asserts a time: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
sys.path.insert(0, str(ROOT))

from bench.capture import DATA, ensure_capture  # noqa: E402
from bench.jobs import TSHARK  # noqa: E402

PYTHON = sys.executable
OSILAB_CLI = str(Path(PYTHON).parent / "osilab")
SCAPY_SAMPLE = 20_000
MEMORY_LIMIT_MB = 200
#: The memory check stops a job whose address space passes this (it would not fit anyway).
MEMORY_CEILING = 3 << 30
MEMORY_JOBS = ["osilab-walk", "osilab-l4-nlb", "osilab-l4-tuples", "osilab-layers-cli-no-streams",
               "osilab-l7-http", "osilab-l7-alb", "osilab-layers-cli", "osilab-route-cli"]  # fmt: skip
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def run_process(argv: list[str], *, stdout: Any = subprocess.DEVNULL,
                limit_bytes: int | None = None) -> tuple[float, int, int, str]:  # fmt: skip
    """Run one child; (wall seconds, peak RSS in KiB, exit code, its stdout if piped).

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``), which waits for the child
    itself: a child's ``ru_maxrss`` seen from here would start at this process's own size
    (Linux keeps the high-water mark of the forked copy across ``execve``).
    ``limit_bytes`` caps the child's address space (the memory check must not take the
    machine down when a job grows without bound: it then fails with MemoryError).
    """

    def limit() -> None:
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    report = OUT / "time.txt"
    prefix = [GNU_TIME, "-f", "%M", "-o", str(report)] if GNU_TIME else []
    started = time.perf_counter()
    pipe = stdout == subprocess.PIPE
    child = subprocess.Popen(prefix + argv, stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT, text=True,
                             preexec_fn=limit if limit_bytes else None)  # fmt: skip
    output = child.stdout.read() if pipe and child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read() if child.stderr else ""
    if code:
        print(f"bench: {' '.join(argv[:4])}... exited {code}: {errors[-500:]}", file=sys.stderr)
    rss = usage.ru_maxrss
    if GNU_TIME:
        words = report.read_text().split()
        rss = int(words[-1]) if words and words[-1].isdigit() else rss
    return wall, rss, code, output


def python_job(job: str, capture: Path, *, sample: int | None = None, out: Path | None = None,
               limit_bytes: int | None = None) -> dict:  # fmt: skip
    argv = [PYTHON, str(BENCH / "jobs.py"), job, str(capture)]
    if sample:
        argv += ["--sample", str(sample)]
    if out:
        argv += ["--out", str(out)]
    wall, rss, code, output = run_process(argv, stdout=subprocess.PIPE, limit_bytes=limit_bytes)
    result = (
        json.loads(output.strip().splitlines()[-1])
        if code == 0
        else {"packets": 0, "seconds": float("nan")}
    )
    result.update(job=job, wall=wall, rss_kib=rss, ok=code == 0, sampled=bool(sample))
    return result


def tshark_job(kind: str, capture: Path, total: int) -> dict:
    target = OUT / f"tshark-{kind}.txt"
    with open(target, "w") as sink:
        wall, rss, code, _ = run_process([*TSHARK[kind], str(capture)], stdout=sink)
    lines = sum(1 for _ in open(target))
    return {"job": f"tshark-{kind}", "packets": total, "seconds": wall, "wall": wall, "rss_kib": rss,
            "ok": code == 0, "sampled": False, "results": {"lines": lines}}  # fmt: skip


def cli_layers(capture: Path, total: int, *, streams: bool = True, sink: Path | None = None,
               limit_bytes: int | None = None) -> dict:  # fmt: skip
    target = sink or OUT / f"osilab-layers{'' if streams else '-no-streams'}.jsonl"
    argv = [OSILAB_CLI, "layers", "--json", "--quiet", str(capture)] + (
        [] if streams else ["--no-streams"]
    )
    with open(target, "w") as handle:
        wall, rss, code, _ = run_process(argv, stdout=handle, limit_bytes=limit_bytes)
    lines = sum(1 for _ in open(target)) if target != Path(os.devnull) else total
    name = "osilab-layers-cli" if streams else "osilab-layers-cli-no-streams"
    return {"job": name, "packets": lines, "seconds": wall, "wall": wall, "rss_kib": rss, "ok": code == 0,
            "sampled": False, "results": {"lines": lines}}  # fmt: skip


def cli_route(capture: Path, total: int, lb: str = "alb", *, limit_bytes: int | None = None,
              name: str = "osilab-route-cli") -> dict:  # fmt: skip
    """``osilab route --lb LB --json`` with the benchmark's configuration, output discarded.

    The benchmark capture holds three hops and no topology.json, so the command is told
    which hop to replay (``--interface 0``, the client side): it still reads every packet.
    """
    argv = [OSILAB_CLI, "route", str(capture), "--lb", lb, "--config", str(BENCH / f"{lb}.json"),
            "--interface", "0", "--json", "--quiet"]  # fmt: skip
    wall, rss, code, _ = run_process(argv, limit_bytes=limit_bytes)
    return {"job": name, "packets": total, "seconds": wall, "wall": wall, "rss_kib": rss,
            "ok": code == 0, "sampled": False, "results": {}}  # fmt: skip


def best(runs: list[dict]) -> dict:
    good = [r for r in runs if r["ok"]] or runs
    return min(good, key=lambda r: r["seconds"] / max(r["packets"], 1))


def pps(result: dict) -> float:
    return result["packets"] / result["seconds"] if result["seconds"] else float("nan")


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import dpkt
    import scapy

    tshark = subprocess.run(
        ["tshark", "--version"], capture_output=True, text=True
    ).stdout.splitlines()
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": memory,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "dpkt": dpkt.__version__,
        "scapy": scapy.__version__,
        "tshark": tshark[0] if tshark else "?",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def count_packets(capture: Path) -> int:
    from osilab.capture import read

    return sum(1 for _ in read(capture).records())


JOB_TITLES = {
    "osilab-walk": "osilab record walk (`Capture.records`): the floor",
    "osilab-l4-nlb": "osilab NLB replay, `replay(osilab.read(path), nlb)` (`flow_facts` -> `feed_flows`)",
    "osilab-l4-nlb-feed": "osilab NLB `feed` per packet, from `flow_facts` (what `feed_flows` saves)",
    "osilab-l4-tuples": "osilab 5-tuples (`flow_facts`)",
    "osilab-l4-nlb-packets": "osilab `replay(packets, nlb)` over full Packets",
    "dpkt-l4": "dpkt 5-tuple loop",
    "scapy-l4": "scapy 5-tuple (sample, scaled)",
    "tshark-l4": "tshark -T fields 5-tuple",
    "osilab-l7-alb": "osilab ALB replay, `replay(osilab.read(path), alb)`: reassembly + HTTP + rules",
    "osilab-l7-http": "osilab `iter_http(osilab.read(path))` (reassembly + HTTP, no balancer)",
    "osilab-route-cli": "`osilab route --lb alb --json` (CLI, memory check only)",
    "osilab-route-alb-cli": "`osilab route --lb alb --json --interface 0` (CLI: reads every packet, replays the client hop, writes every decision)",
    "osilab-route-nlb-cli": "`osilab route --lb nlb --json --interface 0` (CLI: reads every packet, replays the client hop, writes every decision)",
    "dpkt-l7": "dpkt naive request extraction (per segment, no reassembly)",
    "scapy-l7": "scapy TCPSession + HTTP (sample, scaled)",
    "tshark-l7": "tshark -Y http.request -T fields method/host/uri",
    "osilab-layers-cli": "`osilab layers --json` (CLI, stream-aware)",
    "osilab-layers-cli-no-streams": "`osilab layers --json --no-streams` (CLI, per packet)",
    "dpkt-layers": "dpkt full decode, stack per packet",
    "scapy-layers": "scapy full dissection, layers per packet (sample, scaled)",
    "tshark-layers": "tshark -T fields frame.protocols",
}

#: (job, peers it is compared with, the goal's ratio per peer)
GOALS = [
    ("osilab-l4-nlb", {"dpkt-l4": 3.0, "tshark-l4": 9.0, "scapy-l4": 45.0}),
    ("osilab-l4-tuples", {"dpkt-l4": 3.0, "tshark-l4": 9.0, "scapy-l4": 45.0}),
    ("osilab-route-nlb-cli", {"dpkt-l4": 4.0, "tshark-l4": None}),  # issue 22: through the CLI
    ("osilab-l7-alb", {"dpkt-l7": 1.0, "tshark-l7": 2.5, "scapy-l7": None}),
    ("osilab-l7-http", {"dpkt-l7": 1.0, "tshark-l7": 2.5, "scapy-l7": None}),
    ("osilab-route-alb-cli", {"tshark-l7": 2.5, "dpkt-l7": None}),  # issue 22: through the CLI
    ("osilab-layers-cli", {"tshark-layers": 1.0, "dpkt-layers": None, "scapy-layers": None}),
    (
        "osilab-layers-cli-no-streams",
        {"tshark-layers": 1.0, "dpkt-layers": None, "scapy-layers": None},
    ),
]


def speed_run(capture: Path, total: int, repeat: int, only: set[str] | None) -> dict[str, dict]:
    OUT.mkdir(exist_ok=True)
    plan: list[tuple[str, Any]] = [
        ("osilab-walk", lambda: python_job("osilab-walk", capture)),
        ("osilab-l4-nlb", lambda: python_job("osilab-l4-nlb", capture)),
        ("osilab-l4-nlb-feed", lambda: python_job("osilab-l4-nlb-feed", capture)),
        ("osilab-l4-tuples", lambda: python_job("osilab-l4-tuples", capture)),
        ("osilab-l4-nlb-packets", lambda: python_job("osilab-l4-nlb-packets", capture)),
        ("dpkt-l4", lambda: python_job("dpkt-l4", capture)),
        ("scapy-l4", lambda: python_job("scapy-l4", capture, sample=SCAPY_SAMPLE)),
        ("tshark-l4", lambda: tshark_job("l4", capture, total)),
        ("osilab-route-nlb-cli", lambda: cli_route(capture, total, "nlb", name="osilab-route-nlb-cli")),
        ("osilab-l7-alb", lambda: python_job("osilab-l7-alb", capture)),
        ("osilab-l7-http", lambda: python_job("osilab-l7-http", capture)),
        ("dpkt-l7", lambda: python_job("dpkt-l7", capture)),
        ("scapy-l7", lambda: python_job("scapy-l7", capture, sample=SCAPY_SAMPLE)),
        ("tshark-l7", lambda: tshark_job("l7", capture, total)),
        ("osilab-route-alb-cli", lambda: cli_route(capture, total, "alb", name="osilab-route-alb-cli")),
        ("osilab-layers-cli", lambda: cli_layers(capture, total)),
        ("osilab-layers-cli-no-streams", lambda: cli_layers(capture, total, streams=False)),
        ("dpkt-layers", lambda: python_job("dpkt-layers", capture, out=OUT / "dpkt-layers.txt")),
        (
            "scapy-layers",
            lambda: python_job(
                "scapy-layers", capture, sample=SCAPY_SAMPLE, out=OUT / "scapy-layers.txt"
            ),
        ),  # fmt: skip
        ("tshark-layers", lambda: tshark_job("layers", capture, total)),
    ]
    chosen = [(name, action) for name, action in plan
              if not only or any(name.startswith(prefix) for prefix in only)]  # fmt: skip
    # With --repeat N, N rounds over every job, not N runs of one job after another: this
    # machine's speed drifts over minutes (other guests share its cores), and a drift then
    # slows every job of a round, not only the jobs that happened to run during it, so the
    # ratios (osilab against its peers) stay fair. Each job's best run counts.
    runs: dict[str, list[dict]] = {name: [] for name, _ in chosen}
    results: dict[str, dict] = {}
    for round_number in range(1, repeat + 1):
        if repeat > 1:
            print(f"bench: round {round_number} of {repeat}", flush=True)
        for name, action in chosen:
            runs[name].append(action())
            if round_number == repeat:  # the last round: each job's best, as it completes
                r = results[name] = best(runs[name])
                print(f"{name:32} {r['packets']:>9} pkts {r['seconds']:8.2f} s {pps(r):>10.0f} pkt/s "
                      f"{r['rss_kib'] / 1024:7.1f} MiB  {json.dumps(r.get('results', {}))[:120]}", flush=True)  # fmt: skip
    return results


def memory_run(source: Path, jobs: list[str]) -> tuple[dict, dict[str, dict]]:
    """Every osilab job on a 1.5 GB capture replicated from ``source``; peak RSS of each."""
    big = DATA / "memory-1.5GB.pcap"
    try:
        print("bench: building the 1.5 GB capture for the memory check ...", flush=True)
        built = subprocess.run([PYTHON, str(BENCH / "capture.py"), "--memory", str(source), str(big)],
                               check=True, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        info = json.loads(built.stdout.strip().splitlines()[-1])
        results: dict[str, dict] = {}
        for job in jobs:
            if job.startswith("osilab-layers-cli"):
                r = cli_layers(big, info["packets"], sink=Path(os.devnull), streams=not job.endswith("no-streams"),
                               limit_bytes=MEMORY_CEILING)  # fmt: skip
                r["job"] = job
            elif job == "osilab-route-cli":
                r = cli_route(big, info["packets"], limit_bytes=MEMORY_CEILING)
            else:
                r = python_job(job, big, limit_bytes=MEMORY_CEILING)
            results[job] = r
            state = (
                "" if r["ok"] else f" (failed: stopped at the {MEMORY_CEILING >> 30} GiB ceiling?)"
            )
            print(f"memory {job:30} {r['packets']:>9} pkts {r['seconds']:8.1f} s {r['rss_kib'] / 1024:8.1f} MiB{state}",
                  flush=True)  # fmt: skip
        return info, results
    finally:
        big.unlink(missing_ok=True)


def ratio_table(results: dict[str, dict]) -> list[str]:
    lines = [
        "| osilab job | peer | osilab pkt/s | peer pkt/s | ratio | goal | met |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for job, peers in GOALS:
        if job not in results:
            continue
        mine = pps(results[job])
        for peer, goal in peers.items():
            if peer not in results:
                continue
            theirs = pps(results[peer])
            ratio = mine / theirs if theirs else float("nan")
            met = "" if goal is None else ("yes" if ratio >= goal else "**no**")
            goal_text = "" if goal is None else f"{goal:g}x"
            lines.append(
                f"| {job} | {peer} | {mine:,.0f} | {theirs:,.0f} | {ratio:.2f}x | {goal_text} | {met} |"
            )
    return lines


def write_results(capture: Path, info: dict, total: int, results: dict[str, dict], memory: Any,
                  repeat: int, machine_info: dict[str, str] | None = None) -> None:  # fmt: skip
    """Write RESULTS.md; ``machine_info`` is the machine as the speed run saw it (with the
    time it ran), kept with the results so that ``--rewrite`` reports it unchanged."""
    about = dict(machine_info) if machine_info else {**machine(), "written": None}
    written = about.pop("written", None) or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rounds = f", over {repeat} rounds of every job" if repeat > 1 else ""
    lines = ["# osilab benchmark results", "",
             f"Written by `python bench/run.py` on {written}"
             f" (best of {repeat} per job{rounds}). Regenerate with the same command; see bench/README.md.", "",
             "## Machine", ""]  # fmt: skip
    lines += [f"- {key}: {value}" for key, value in about.items()]
    how = info.get("how")
    lines += ["", "## Capture", "",
              f"- `{Path(info['file']).relative_to(ROOT) if Path(info['file']).is_relative_to(ROOT) else info['file']}`:"
              f" {total:,} packets, {info['bytes'] / 1e6:.0f} MB, "
              + ("recorded with the lab (`osilab.lab.load`: keep-alive HTTP/1.1 GETs through the NLB role to nginx,"
                 f" front and back hops; {info.get('requests', '?'):,} requests)" if how == "lab"
                 else f"replicated from {info.get('sources')} bundled real captures ({info.get('copies')} copies)"),
              "", "## Jobs", "",
              "| job | what | packets | seconds | pkt/s | peak RSS MiB | result |",
              "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for name, r in results.items():
        scaled = " (sample)" if r.get("sampled") else ""
        lines.append(f"| {name} | {JOB_TITLES.get(name, name)} | {r['packets']:,}{scaled} | {r['seconds']:.2f} | "
                     f"{pps(r):,.0f} | {r['rss_kib'] / 1024:.1f} | `{json.dumps(r.get('results', {}))[:90]}` |")  # fmt: skip
    lines += ["", "## Ratios (packets per second; goals from issue 7)", ""] + ratio_table(results)
    if memory:
        info_big, mem = memory
        lines += ["", "## Memory on a 1.5 GB capture", "",
                  f"{info_big['packets']:,} packets, {info_big['bytes'] / 1e9:.2f} GB, replicated from the capture "
                  f"above, streamed to disk and deleted afterwards. Goal: under {MEMORY_LIMIT_MB} MB peak RSS.", "",
                  "| job | packets | seconds | peak RSS MiB | under goal |", "|---|---:|---:|---:|---|"]  # fmt: skip
        for name, r in mem.items():
            under = "yes" if r["rss_kib"] / 1024 < MEMORY_LIMIT_MB else "**no**"
            lines.append(
                f"| {name} | {r['packets']:,} | {r['seconds']:.1f} | {r['rss_kib'] / 1024:.1f} | {under} |"
            )
    notes = BENCH / "notes.md"
    if notes.exists():  # hand-written: the profiles behind the numbers (bench/where_time_goes.py)
        lines += ["", notes.read_text().rstrip()]
    (BENCH / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"bench: wrote {BENCH / 'RESULTS.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description="osilab speed and memory benchmark (issue 7)")
    parser.add_argument("--memory", action="store_true", help="also run the 1.5 GB memory check")
    parser.add_argument(
        "--memory-job",
        dest="memory_jobs",
        action="append",
        choices=MEMORY_JOBS,
        help="with --memory: only this job (repeatable)",
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="skip the speed run (keeps its results)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per job; the best counts")
    parser.add_argument("--replicate", action="store_true", help="build the capture by replication")
    parser.add_argument("--rebuild", action="store_true", help="build the capture again")
    parser.add_argument(
        "--only", action="append", help="run only jobs starting with this (repeatable)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave RESULTS.md alone"
    )
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help="run nothing: write RESULTS.md again from the saved results (after editing notes.md)",
    )
    args = parser.parse_args()
    for tool in ("tshark", "capinfos"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} is needed (Debian package tshark)")
    OUT.mkdir(exist_ok=True)
    # A CLI job is timed as a user runs it: from an installed package, whose modules are
    # compiled once (pip writes the bytecode). A shell with PYTHONDONTWRITEBYTECODE=1 and a
    # tree without __pycache__ would make every child compile osilab again (~0.2 s a run).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(str(ROOT / "osilab"), quiet=1)
    # The capture is built in a child process, so that this one stays small.
    build = [PYTHON, str(BENCH / "capture.py")] + (["--rebuild"] if args.rebuild else [])
    subprocess.run(build + (["--replicate"] if args.replicate else []), check=True, cwd=ROOT)
    capture, info = ensure_capture()
    total = count_packets(capture)
    print(
        f"bench: {capture} ({total:,} packets, {info['bytes'] / 1e6:.0f} MB, {info['how']})",
        flush=True,
    )
    # Each part's results are kept in bench/out/, so that a speed run and a memory run
    # made at different times still give one RESULTS.md.
    saved_speed, saved_memory = OUT / "speed.json", OUT / "memory.json"
    if args.rewrite:
        kept = json.loads(saved_speed.read_text())
        memory = tuple(json.loads(saved_memory.read_text())) if saved_memory.exists() else None
        saved_info = kept.get("machine")
        write_results(capture, info, total, kept["results"], memory, kept["repeat"], saved_info)
        return
    if args.memory_only:
        if not saved_speed.exists():
            raise SystemExit("bench: --memory-only needs a speed run first (python bench/run.py)")
        kept = json.loads(saved_speed.read_text())
        results, args.repeat = kept["results"], kept["repeat"]
    else:
        machine_info = {**machine(), "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        results = speed_run(capture, total, args.repeat, set(args.only) if args.only else None)
        if not args.only:
            saved_speed.write_text(json.dumps({"results": results, "repeat": args.repeat,
                                               "machine": machine_info}))  # fmt: skip
    memory = None
    if args.memory or args.memory_only:
        memory = memory_run(capture, args.memory_jobs or MEMORY_JOBS)
        if not args.memory_jobs:
            saved_memory.write_text(json.dumps(memory))
    elif saved_memory.exists():
        memory = tuple(json.loads(saved_memory.read_text()))
    if not args.no_write:
        write_results(capture, info, total, results, memory, args.repeat,
                      None if args.memory_only else machine_info)  # fmt: skip


if __name__ == "__main__":
    main()

"""Where osilab's time goes on the benchmark capture: cProfile, grouped by module.

Usage: ``python bench/where_time_goes.py {alb,http,nlb,layers} [CAPTURE] [--top N]``

Runs one osilab job under :mod:`cProfile` and prints each module's share of the *self*
time (a function's own time, not its callees'), so the shares add up to 100%: which
stage (record walk, flow table, reassembly, HTTP, balancer model) the time goes to.
Profiling slows Python code two or three times, evenly enough for shares, not for
seconds. ``bench/notes.md`` quotes these tables for the goals that are missed.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _job(name: str, path: str) -> None:
    from osilab.capture import read

    if name == "alb":
        from osilab.balancers import ApplicationLoadBalancer, replay

        replay(read(path), ApplicationLoadBalancer(str(ROOT / "bench" / "alb.json")))
    elif name == "nlb":
        from osilab.balancers import NetworkLoadBalancer, replay

        replay(read(path), NetworkLoadBalancer(str(ROOT / "bench" / "nlb.json")))
    elif name == "http":
        from osilab.pipeline import iter_http

        for _ in iter_http(read(path)):
            pass
    elif name == "layers":  # what `osilab layers --json` does, without the process
        from osilab.commands.layers import packet_json_line
        from osilab.pipeline import annotate

        for packet in annotate(read(path)):
            packet_json_line(packet)


def _module(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0] + " (site-packages)"
    if filename.startswith(("~", "<")):
        return "built-ins (bytes, dict, re, struct, ...)"
    if str(ROOT) in filename:
        return filename.replace(str(ROOT) + "/", "")
    return Path(filename).name + " (standard library)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=("alb", "http", "nlb", "layers"))
    parser.add_argument("capture", nargs="?", default=str(ROOT / "bench" / "data" / "http-lab.pcapng"))
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    profile = cProfile.Profile()
    profile.runcall(_job, args.job, args.capture)
    stats = pstats.Stats(profile)
    shares: collections.Counter[str] = collections.Counter()
    for (filename, _line, _function), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        shares[_module(filename)] += own
    total = sum(shares.values())
    print(f"| module | share of self time ({args.job}) |\n|---|---:|")
    for module, own in shares.most_common(args.top):
        print(f"| {module} | {100 * own / total:.1f}% |")


if __name__ == "__main__":
    main()

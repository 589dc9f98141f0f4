"""A bounded load generator for the speed benchmark: many small HTTP exchanges, captured.

``osilab lab load --out DIR`` builds the lab, drives a fixed number of HTTP/1.1
keep-alive requests through the NLB role to nginx on the two instances, captures the
front and back hops (``client-nlb``, ``nlb-web1``, ``nlb-web2``), and writes
``DIR/load.pcapng`` — by default well over 200,000 packets of real HTTP traffic, for
benchmarking readers. It is not committed (too big) and not part of the curriculum.

Bounded in every way: a fixed number of requests, a fixed number of connections, a
timeout on every socket operation and on the whole run. The client part runs in the
client namespace as ``python -m osilab.lab.load client ADDRESS CONNECTIONS REQUESTS``.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h11

__all__ = ["record_load", "drive"]


def _one_connection(
    address: tuple[str, int], source: str, count: int, start: int, out: list[int]
) -> None:
    """Send ``count`` requests, reconnecting when the server ends a keep-alive connection
    (nginx closes after ``keepalive_requests``, 1000 here)."""
    done = 0
    while done < count:
        sent_before = done
        with socket.create_connection(address, timeout=5, source_address=(source, 0)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = h11.Connection(h11.CLIENT)
            while done < count:
                rid = f"l{start + done:07d}"
                request = h11.Request(
                    method="GET",
                    target=f"/?rid={rid}",
                    headers=[("Host", "shop.example.com"), ("X-Request-Id", rid)],
                )
                sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
                event: Any = None
                while not isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = sock.recv(65536)
                        if not data:
                            break
                        conn.receive_data(data)
                if not isinstance(event, h11.EndOfMessage):
                    break
                done += 1
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break  # "Connection: close": open a new connection
                conn.start_next_cycle()
        if done == sent_before:  # no progress at all: stop rather than loop
            break
    out.append(done)


def drive(
    address: str, connections: int, requests: int, source: str = "198.51.100.7"
) -> dict[str, Any]:
    """Send ``requests`` GETs over ``connections`` parallel keep-alive connections."""
    host, port = address.rsplit(":", 1)
    if not host.startswith("203.0.113."):
        raise SystemExit(f"refusing to load anything outside the lab: {address}")
    per = requests // connections
    counts: list[int] = []
    threads = [
        threading.Thread(
            target=_one_connection,
            args=((host, int(port)), source, per, i * per, counts),
            daemon=True,
        )
        for i in range(connections)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return {"requests": sum(counts), "seconds": round(time.monotonic() - started, 2)}


def record_load(
    out: Path, *, requests: int = 60_000, connections: int = 8, timeout: int = 900
) -> dict[str, Any]:
    """Build the lab, run the load through the NLB role, write ``out/load.pcapng``."""
    import tempfile

    from osilab.capture.pcapng import pcap_to_pcapng
    from osilab.lab import doctor
    from osilab.lab.record import Lab, bounded
    from osilab.lab.runtime import run

    doctor.require()
    out.mkdir(parents=True, exist_ok=True)
    hops = ("client-nlb", "nlb-web1", "nlb-web2")
    with (
        bounded(timeout),
        tempfile.TemporaryDirectory(prefix="osilab-load-", ignore_cleanup_errors=True) as workdir,
    ):
        lab = Lab(Path(workdir))
        with lab.running():
            scratch = Path(workdir) / "load"
            scratch.mkdir()
            dumps = [lab.start_tcpdump(hop, scratch) for hop in hops]
            try:
                done = run(
                    [sys.executable, "-m", "osilab.lab.load", "client", lab.topology.services["nlb_http"],
                     str(connections), str(requests)],
                    ns="osl-client", timeout=timeout,
                )  # fmt: skip
            finally:
                time.sleep(1.0)
                for managed in dumps:
                    lab.supervisor.interrupt(managed, timeout=60)
            summary = json.loads(done.stdout)
            summary["dropped_by_kernel"] = sum(
                int(line.split()[0])
                for hop in hops
                for line in (scratch / f"{hop}.tcpdump.log").read_text().splitlines()
                if line.endswith("dropped by kernel")
            )
            named = []
            for hop in hops:
                target = scratch / f"{hop}.pcapng"
                target.write_bytes(
                    pcap_to_pcapng(
                        (scratch / f"{hop}.pcap").read_bytes(),
                        hop,
                        lab.topology.hop(hop).description,
                    )
                )
                named.append(str(target))
            capture = out / "load.pcapng"
            run(["mergecap", "-F", "pcapng", "-w", str(capture), *named], timeout=300)
    counted = run(["capinfos", "-M", "-c", "-T", str(capture)], timeout=300).stdout.splitlines()[-1]
    summary["packets"] = int(counted.split("\t")[-1])
    summary["bytes"] = capture.stat().st_size
    summary["file"] = str(capture)
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "client":
        print(json.dumps(drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(
            "usage: python -m osilab.lab.load client ADDRESS CONNECTIONS REQUESTS", file=sys.stderr
        )
        sys.exit(2)

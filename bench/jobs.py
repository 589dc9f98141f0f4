"""The benchmark's jobs, one per (task, tool), each run in its own process by ``run.py``.

Usage: ``python bench/jobs.py JOB CAPTURE [--sample N] [--out FILE]``; prints one JSON
object: ``packets`` (how many were processed), ``seconds`` (the work loop only, imports
excluded) and ``results`` (what the job found, to check that the tools agree).

The three tasks, as each tool would naturally be used for them:

* **l4** -- every packet's 5-tuple (protocol, addresses, ports). osilab also replays
  the packets through its NLB model (a decision per new flow, a flow-table lookup per
  packet): ``replay(osilab.read(path), nlb)``, which reads
  :func:`osilab.capture.facts.flow_facts` into ``NetworkLoadBalancer.feed_flows``.
* **l7** -- every HTTP request's method, host and path. osilab reassembles each TCP
  stream (in order, gaps marked), parses HTTP/1.x with h11 and replays the requests
  through its ALB model. dpkt's usual loop parses each segment on its own (no
  reassembly, no reordering: a request split across segments is lost). scapy uses
  ``TCPSession``.
* **layers** -- full dissection, every packet's layer stack written out.

The tshark jobs are command lines run by ``run.py`` itself (see ``TSHARK``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NLB_CONFIG = str(ROOT / "bench" / "nlb.json")
ALB_CONFIG = str(ROOT / "bench" / "alb.json")

_5TUPLE_FIELDS = ["-e", "frame.number", "-e", "ip.proto", "-e", "ip.src", "-e", "ipv6.src",
                  "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "ip.dst", "-e", "ipv6.dst",
                  "-e", "tcp.dstport", "-e", "udp.dstport"]  # fmt: skip

#: tshark command lines (the capture path is appended after -r); output goes to a file.
TSHARK: dict[str, list[str]] = {
    "l4": ["tshark", "-n", "-T", "fields", *_5TUPLE_FIELDS, "-r"],
    "l7": ["tshark", "-n", "-Y", "http.request", "-T", "fields", "-e", "frame.number",
           "-e", "http.request.method", "-e", "http.host", "-e", "http.request.uri", "-r"],
    "layers": ["tshark", "-n", "-T", "fields", "-e", "frame.number", "-e", "frame.len",
               "-e", "frame.protocols", "-r"],
}  # fmt: skip


# ---------------------------------------------------------------------------------------
# osilab
# ---------------------------------------------------------------------------------------


def osilab_walk(path: str, sample: int | None) -> dict[str, Any]:
    """The floor: osilab's fast record walk, touching each frame's length only."""
    from osilab.capture import read

    packets = size = 0
    started = time.perf_counter()
    for record in read(path).records():
        packets += 1
        size += len(record[3])
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {"bytes": size}}


def osilab_l4_tuples(path: str, sample: int | None) -> dict[str, Any]:
    """The 5-tuple of every packet from osilab's fast path, counted per flow."""
    from osilab.capture import read
    from osilab.capture.facts import flow_facts

    flows: Counter[tuple] = Counter()
    packets = 0
    started = time.perf_counter()
    for f in flow_facts(read(path)):
        flows[f.proto, f.src, f.src_port, f.dst, f.dst_port] += 1
        packets += 1
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {"flows": len(flows)}}


def osilab_l4_nlb(path: str, sample: int | None) -> dict[str, Any]:
    """osilab's public ``replay(osilab.read(path), nlb)``: the fast path (``feed_flows``)."""
    from osilab.balancers import NetworkLoadBalancer, replay
    from osilab.capture import read

    started = time.perf_counter()
    result = replay(read(path), NetworkLoadBalancer(NLB_CONFIG))
    seconds = time.perf_counter() - started
    return {"packets": result.total, "seconds": seconds,
            "results": {"decisions": len(result.decisions), "digest": _digest(result.decisions),
                        "accounting": result.accounting}}  # fmt: skip


def osilab_l4_nlb_feed(path: str, sample: int | None) -> dict[str, Any]:
    """osilab's NLB teaching core, ``feed`` called once per packet (keyword arguments, a
    ``PacketFate`` each), from the fast path: what ``feed_flows`` saves."""
    from osilab.balancers import NetworkLoadBalancer
    from osilab.capture import read
    from osilab.capture.facts import flow_facts

    nlb = NetworkLoadBalancer(NLB_CONFIG)
    feed = nlb.feed
    packets = 0
    started = time.perf_counter()
    for f in flow_facts(read(path)):
        feed(no=f.no, time=f.time, proto=f.proto, src_ip=f.src, src_port=f.src_port, dst_ip=f.dst,
             dst_port=f.dst_port, tcp_flags=f.tcp_flags or 0, tcp_seq=f.tcp_seq, damaged=f.damaged)  # fmt: skip
        packets += 1
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds,
            "results": {"decisions": len(nlb.decisions), "digest": _digest(nlb.decisions),
                        "accounting": dict(nlb.accounting)}}  # fmt: skip


def osilab_l4_nlb_packets(path: str, sample: int | None) -> dict[str, Any]:
    """``replay(packets, nlb)`` over full Packet objects, every layer dissected."""
    from osilab.balancers import NetworkLoadBalancer, replay
    from osilab.capture import read

    packets = _Counting(read(path), sample)  # an iterable of Packets, not the Capture
    started = time.perf_counter()
    result = replay(packets, NetworkLoadBalancer(NLB_CONFIG))
    seconds = time.perf_counter() - started
    return {"packets": result.total, "seconds": seconds,
            "results": {"decisions": len(result.decisions), "digest": _digest(result.decisions),
                        "accounting": result.accounting}}  # fmt: skip


def _record_count(path: str) -> int:
    """Packets in the capture, counted before the timed loop (the fast paths read records)."""
    from osilab.capture import read

    return sum(1 for _ in read(path).raw_records())


def osilab_l7_alb(path: str, sample: int | None) -> dict[str, Any]:
    """osilab's ``replay(osilab.read(path), alb)``: reassembly, HTTP, ALB rules, per request."""
    from osilab.balancers import ApplicationLoadBalancer, replay
    from osilab.capture import read

    packets = _record_count(path)
    started = time.perf_counter()
    result = replay(read(path), ApplicationLoadBalancer(ALB_CONFIG))
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds,
            "results": {"requests": result.total, "accounting": result.accounting,
                        "kept": len(result.decisions), "dropped": result.dropped}}  # fmt: skip


def osilab_l7_http(path: str, sample: int | None) -> dict[str, Any]:
    """osilab's ``iter_http``: reassembled requests' method, host and path, no balancer."""
    from osilab.capture import read
    from osilab.pipeline import iter_http
    from osilab.protocols.messages import HttpRequest

    packets = _record_count(path)
    requests = 0
    seen: Counter[tuple] = Counter()
    started = time.perf_counter()
    for message in iter_http(read(path)):
        if isinstance(message, HttpRequest):
            requests += 1
            seen[message.method, message.host] += 1
            _path = message.path
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds,
            "results": {"requests": requests, "kinds": len(seen)}}  # fmt: skip


def _digest(decisions: Any) -> str:
    """A short fingerprint of (packet, target) of every decision, to check two runs agree."""
    import hashlib

    text = ";".join(f"{d.decided_at}>{d.target}" for d in decisions)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _Counting:
    """Iterate a capture's packets, counting them on the way."""

    def __init__(self, packets: Any, limit: int | None = None) -> None:
        self.packets, self.count, self.limit = packets, 0, limit

    def __iter__(self) -> Any:
        for packet in self.packets:
            if self.limit is not None and self.count >= self.limit:
                return
            self.count += 1
            yield packet


# ---------------------------------------------------------------------------------------
# dpkt
# ---------------------------------------------------------------------------------------


def _dpkt_reader(handle: Any) -> Any:
    import dpkt

    head = handle.read(4)
    handle.seek(0)
    return dpkt.pcapng.Reader(handle) if head == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(handle)


def dpkt_l4(path: str, sample: int | None) -> dict[str, Any]:
    """The classic dpkt loop: Ethernet -> IP/IPv6 -> TCP/UDP, 5-tuple per packet."""
    import dpkt

    flows: Counter[tuple] = Counter()
    packets = 0
    started = time.perf_counter()
    with open(path, "rb") as handle:
        for _ts, buf in _dpkt_reader(handle):
            packets += 1
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                l4 = ip.data
                if isinstance(l4, dpkt.tcp.TCP | dpkt.udp.UDP):
                    flows[
                        ip.p if isinstance(ip, dpkt.ip.IP) else ip.nxt,
                        ip.src,
                        l4.sport,
                        ip.dst,
                        l4.dport,
                    ] += 1
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {"flows": len(flows)}}


def dpkt_l7(path: str, sample: int | None) -> dict[str, Any]:
    """dpkt's naive request extraction: each TCP payload parsed alone, no reassembly."""
    import dpkt

    requests = 0
    seen: Counter[tuple] = Counter()
    packets = 0
    started = time.perf_counter()
    with open(path, "rb") as handle:
        for _ts, buf in _dpkt_reader(handle):
            packets += 1
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                continue
            ip = eth.data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6):
                continue
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP) or not tcp.data:
                continue
            try:
                request = dpkt.http.Request(tcp.data)
            except (dpkt.UnpackError, dpkt.NeedData, ValueError):
                continue
            requests += 1
            seen[request.method, request.headers.get("host")] += 1
            _path = request.uri
    seconds = time.perf_counter() - started
    return {
        "packets": packets,
        "seconds": seconds,
        "results": {"requests": requests, "kinds": len(seen)},
    }


def dpkt_layers(path: str, sample: int | None, out: str | None = None) -> dict[str, Any]:
    """dpkt's full decode (Ethernet parses down to TCP), every packet's stack written out."""
    import dpkt

    packets = 0
    started = time.perf_counter()
    with open(path, "rb") as handle, open(out or "/dev/null", "w") as sink:
        write = sink.write
        for _ts, buf in _dpkt_reader(handle):
            packets += 1
            names = []
            try:
                layer: Any = dpkt.ethernet.Ethernet(buf)
            except dpkt.UnpackError:
                write(f"{packets}\tdamaged\n")
                continue
            while isinstance(layer, dpkt.Packet):
                names.append(type(layer).__name__)
                layer = layer.data
            if names and names[-1] == "TCP" and layer:
                try:
                    dpkt.http.Request(layer)
                    names.append("HTTP")
                except (dpkt.UnpackError, dpkt.NeedData, ValueError):
                    try:
                        dpkt.http.Response(layer)
                        names.append("HTTP")
                    except (dpkt.UnpackError, dpkt.NeedData, ValueError):
                        names.append("data")
            write(f"{packets}\t{len(buf)}\t{':'.join(names)}\n")
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {}}


# ---------------------------------------------------------------------------------------
# scapy (on a sample: it is slow)
# ---------------------------------------------------------------------------------------


def _scapy_packets(path: str) -> Any:
    """scapy packets from a pcap or pcapng file of Ethernet frames.

    scapy's ``PcapReader`` hands back undissected ``Raw`` packets for the lab's merged
    pcapng (three interfaces); building ``Ether(frame)`` from its raw reader is what
    that reader does inside for an Ethernet link type.
    """
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader

    for frame, _meta in RawPcapReader(path):
        yield Ether(frame)


def scapy_l4(path: str, sample: int | None) -> dict[str, Any]:
    """scapy, 5-tuple per packet (getlayer IP/IPv6, TCP/UDP), on the first ``sample`` packets."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    flows: Counter[tuple] = Counter()
    packets = 0
    started = time.perf_counter()
    for pkt in _scapy_packets(path):
        packets += 1
        net = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if net is not None:
            l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
            if l4 is not None:
                flows[net.src, l4.sport, net.dst, l4.dport] += 1
        if sample and packets >= sample:
            break
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {"flows": len(flows)}}


def scapy_l7(path: str, sample: int | None) -> dict[str, Any]:
    """scapy's TCPSession (its stream reassembly) with its HTTP layer, on a sample."""
    from scapy.layers.http import HTTPRequest
    from scapy.sessions import TCPSession

    requests = 0
    packets = 0

    def limited() -> Any:
        nonlocal packets
        for pkt in _scapy_packets(path):
            packets += 1
            yield pkt
            if sample and packets >= sample:
                return

    seen: Counter[tuple] = Counter()
    started = time.perf_counter()
    session = TCPSession()
    for pkt in limited():
        built = (
            session.process(pkt) if hasattr(session, "process") else session.on_packet_received(pkt)
        )
        for item in built if isinstance(built, list) else [built] if built is not None else []:
            if item.haslayer(HTTPRequest):
                requests += 1
                layer = item[HTTPRequest]
                seen[layer.Method, layer.Host] += 1
    seconds = time.perf_counter() - started
    return {
        "packets": packets,
        "seconds": seconds,
        "results": {"requests": requests, "kinds": len(seen)},
    }


def scapy_layers(path: str, sample: int | None, out: str | None = None) -> dict[str, Any]:
    """scapy's full dissection, every packet's layer names written out, on a sample."""
    packets = 0
    started = time.perf_counter()
    with open(out or "/dev/null", "w") as sink:
        for pkt in _scapy_packets(path):
            packets += 1
            sink.write(
                f"{packets}\t{len(pkt)}\t{':'.join(layer.__name__ for layer in pkt.layers())}\n"
            )
            if sample and packets >= sample:
                break
    seconds = time.perf_counter() - started
    return {"packets": packets, "seconds": seconds, "results": {}}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "osilab-walk": osilab_walk,
    "osilab-l4-tuples": osilab_l4_tuples,
    "osilab-l4-nlb": osilab_l4_nlb,
    "osilab-l4-nlb-feed": osilab_l4_nlb_feed,
    "osilab-l4-nlb-packets": osilab_l4_nlb_packets,
    "osilab-l7-alb": osilab_l7_alb,
    "osilab-l7-http": osilab_l7_http,
    "dpkt-l4": dpkt_l4,
    "dpkt-l7": dpkt_l7,
    "dpkt-layers": dpkt_layers,
    "scapy-l4": scapy_l4,
    "scapy-l7": scapy_l7,
    "scapy-layers": scapy_layers,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", choices=sorted(JOBS))
    parser.add_argument("capture")
    parser.add_argument("--sample", type=int, default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    job = JOBS[args.job]
    kwargs: dict[str, Any] = {"out": args.out} if args.job.endswith("layers") else {}
    print(json.dumps(job(args.capture, args.sample, **kwargs)))


if __name__ == "__main__":
    main()

"""Write the osilab curriculum notebooks (``notebooks/NN-*.ipynb``) from this one script.

The notebooks are generated so that they stay reproducible and reviewable: this file is
the source, the ``.ipynb`` files are its output, saved with no outputs (the tests and
``osilab tour`` execute them). Run it after editing a lesson:

    .venv/bin/python notebooks/_build.py

Each notebook holds one idea and reads like a short essay: a title, **What you will see**,
**What to notice**, short code cells that mirror the sentences around them, and a
**Question for the team** at the end. Cells that draw a figure carry the cell tag
``figure`` (the tests check that each one produces an image).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

#: The first code cell of every notebook: figures inline, the library, the captures.
SETUP = """\
%matplotlib inline
import osilab
from osilab import viz
from osilab.lessons import scenarios
from osilab.viz import balancers as balancer_plots

ALB = scenarios.capture_path("alb")        # captures/alb/alb.pcapng: every hop of the ALB scenario
NLB = scenarios.capture_path("nlb")
L4PROXY = scenarios.capture_path("l4proxy")
SMUGGLE = scenarios.capture_path("smuggle")"""


def md(text: str) -> tuple[str, str]:
    return ("md", text)


def code(text: str) -> tuple[str, str]:
    return ("code", text)


def fig(text: str) -> tuple[str, str]:
    """A code cell that draws exactly one figure (tagged ``figure``)."""
    return ("fig", text)


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

# --------------------------------------------------------------------------- 01
NOTEBOOKS["01-layers"] = [
    md("""# 1. Layers: one real packet, two models

One HTTP request, captured on the wire between the lab's client and its ALB, taken apart
into the headers that carry it. Every header belongs to a layer, and every layer has a
place in two models of networking: OSI's seven layers and TCP/IP's four (RFC 1122).

## What you will see

- packet by packet, the lab capture `captures/alb/alb.pcapng`, hop `client-alb`;
- one request packet as a table of layers and a hexdump **coloured by layer**;
- the same packet placed into the OSI and the TCP/IP model side by side;
- the name of each layer's unit of data (its *PDU*): frame, packet, segment, message;
- two protocols that do not fit the models neatly: **TLS** and **ARP**.

## What to notice

- The layers are *nested*: Ethernet carries IP, which carries TCP, which carries HTTP.
  In the bytes they are simply one after another, outermost first.
- OSI layers 5 and 6 have no header of their own in an HTTP packet. TCP/IP folds them
  into "application".
- The colours are the same in every notebook and every figure: one palette for layers."""),
    code(SETUP),
    md("""## One request packet

The capture holds every hop of the scenario; `scenarios.hop_packets` keeps one hop. We take
the first packet on the client's side that carries an HTTP request."""),
    code("""front = scenarios.hop_packets(ALB, "client-alb")
request_packet = next(p for p in front if "http" in p and "request.method" in p["http"])
print(request_packet.names())
print(request_packet["tcp"]["dstport"], request_packet["http"]["request.uri"])
request_packet          # in a notebook: the layer table and the hexdump coloured by layer"""),
    md("""`show()` is the same packet as text: one block per layer, with the OSI and the TCP/IP
layer it belongs to and the few fields a learner needs."""),
    code("request_packet.show()"),
    md("""## The packet against both models

The top band is the frame, byte 0 on the left, each header in its layer's colour. Below,
the two models as stacks, with this frame's protocols written into the layer that holds
them. Hatched layers have nothing of their own in this frame."""),
    fig("figure = viz.frame_figure(request_packet)"),
    md("""## PDU names

Each layer calls its unit of data by its own name. A capture records *frames*; inside each
frame is an IP *packet*, inside that a TCP *segment*, inside that (part of) an HTTP
*message*."""),
    code("""from osilab.layers import OSI, TCPIP, place

for layer in request_packet.layers:
    where = place(layer.name)
    print(f"{layer.name:5} OSI {layer.osi} {OSI[layer.osi - 1].name:12} "
          f"TCP/IP {layer.tcpip:12} PDU: {where.pdu:8} header {layer.length:4} bytes")"""),
    md("""## The honest misfits: TLS and ARP

Real protocols were not designed to fit a teaching model. Two of them show up in this very
capture: ARP (the client asking which MAC address owns the balancer's IP) and TLS (the
HTTPS requests)."""),
    code("""arp = next(p for p in front if "arp" in p)
hello = next(p for p in front if "tls" in p and "handshake.extensions_server_name" in p["tls"])
for pkt in (arp, hello):
    top = pkt.layers[-1]
    print(f"packet {pkt.no}: {' / '.join(pkt.names())}\\n  {top.summary}")
    print(f"  osilab files {top.name} under OSI {top.osi}: {place(top.name).note}\\n")"""),
    fig("""figure = viz.frame_figure(hello, title=f"Packet #{hello.no}: a TLS ClientHello, filed under OSI 6")"""),
    md("""## Question for the team

TLS encrypts everything above it, yet the ClientHello above carries the server's name in
clear. In which layer would *you* put TLS, and does the answer change when you ask
"who can read this byte?" instead of "what does this byte do?"?"""),
]

# --------------------------------------------------------------------------- 02
NOTEBOOKS["02-encapsulation"] = [
    md("""# 2. Encapsulation: what each layer costs

Every layer wraps what it is given in a header of its own. We build a packet by hand with
scapy, one layer at a time, and compare it with the real one from the lab; then we look at
what happens when a message is bigger than a frame can carry.

## What you will see

- a request built layer by layer with scapy, and its length growing at each layer;
- the header overhead of each layer for real packets: a SYN, a bare ACK, a request, a
  full-size data segment;
- a 24 KB POST from the lab cut by TCP into MSS-sized segments, and the same cut computed;
- goodput: the share of the wire that is application data, by message size and MTU.

## What to notice

- A bare ACK is all overhead; a full segment is about 95 % payload.
- The real TCP header is 32 bytes, not 20: the lab's Linux adds the timestamp option, so
  the MSS is 1448 and not the 1460 of textbooks.
- Small messages are expensive: the headers are paid per segment, whatever the payload."""),
    code(SETUP),
    md("""## Building a packet layer by layer (scapy)

Scapy's `/` operator stacks layers: the right-hand side becomes the payload of the left.
We start at the top with the HTTP request bytes and wrap them one layer at a time."""),
    code("""from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

http_message = Raw(load=b"GET /api/items/3?rid=a0003 HTTP/1.1\\r\\nHost: shop.example.com\\r\\n\\r\\n")
segment = TCP(sport=48167, dport=80, flags="PA", seq=1000, ack=2000) / http_message
ip_packet = IP(src="198.51.100.7", dst="203.0.113.10") / segment
frame = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / ip_packet

for name, part in (("HTTP message", http_message), ("TCP segment", segment),
                   ("IP packet", ip_packet), ("Ethernet frame", frame)):
    print(f"{name:15} {len(bytes(part)):4} bytes")"""),
    md("""osilab can read bytes from anywhere, not only from a capture file: wrap scapy's bytes in
a `Packet` and it is dissected like any captured frame."""),
    code("""built = osilab.Packet(1, 0.0, bytes(frame))
built"""),
    md("""## The real packets, layer by layer

From the lab capture: the first connection's SYN, a bare ACK, the request packet, and the
largest data segment of the 24 KB POST."""),
    code("""front = scenarios.hop_packets(ALB, "client-alb")
records = scenarios.client_records("alb")
post_rid = next(r["rid"] for r in records if r["suite"] == "post")
requests = {r.header("X-Request-Id"): r for r in viz.http_requests(front)}
post = requests[post_rid]
post_conversation = viz.tcp_conversation(front, post.flow)

syn = next(p for p in front if p.tcp_flags == 0x02)
bare_ack = next(p for p in front if p.proto == "tcp" and p.tcp_flags == 0x10 and not p.payload)
request_packet = next(p for p in front if "http" in p and "request.method" in p["http"])
full_segment = max((p for p in post_conversation.packets if post_conversation.from_client(p)),
                   key=lambda p: len(p.payload))
examples = [built, syn, bare_ack, request_packet, full_segment]
labels = ["built (scapy)", f"SYN #{syn.no}", f"ACK #{bare_ack.no}",
          f"request #{request_packet.no}", f"POST data #{full_segment.no}"]"""),
    fig("""figure = viz.overhead_chart(examples, labels=labels,
                            title="Header bytes per layer: what each layer costs")"""),
    code("""print("TCP header of the built packet:", built["tcp"].length, "bytes")
print("TCP header of the captured one:", request_packet["tcp"].length, "bytes, options:",
      request_packet["tcp"].get("options"))"""),
    md("""## How MSS and MTU split a message

The POST's body is about 24 KB. Ethernet frames carry at most 1500 bytes of IP packet (the
MTU); minus 20 bytes of IP and 32 of TCP, a segment carries at most 1448 bytes (the MSS).
First the computation, then what the capture shows."""),
    code("""mss = 1500 - 20 - 32
sizes = [len(p.payload) for p in post_conversation.packets
         if post_conversation.from_client(p) and p.payload]
print(f"the POST went out in {len(sizes)} data segments: {sizes}")
print(f"{sum(sizes)} bytes in total; TCP at MSS {mss} would cut it into",
      len(viz.segments(sum(sizes), mss)), "segments:", viz.segments(sum(sizes), mss))"""),
    fig("""figure = viz.segmentation_figure(sum(sizes), mtu=1500, tcp=32)"""),
    md("""## Goodput

Goodput is the share of the bytes on the wire that the application asked for. Ethernet
also spends 24 bytes per frame that no capture shows (preamble, frame check sequence,
inter-frame gap). Each line climbs in steps: each new segment pays every header again.
AWS uses a 9001-byte MTU inside a VPC and 1500 towards the internet."""),
    fig("""figure = viz.goodput_plot((576, 1500, 9001))"""),
    code("""on_wire = sum(len(p.data) + viz.layers.WIRE_EXTRA for p in post_conversation.packets)
useful = sum(len(p.payload) for p in post_conversation.packets)
print(f"the whole POST connection: {useful} application bytes in {on_wire} bytes on the wire "
      f"= goodput {useful / on_wire:.1%} (handshake, ACKs and the response included)")"""),
    md("""## Question for the team

Inside a VPC the MTU is 9001, but traffic to the internet is 1500. Where in our
architecture (client, ALB, nginx, app, Redis, PostgreSQL) does the MTU change, and who pays
for it when a large response crosses that boundary?"""),
]

# --------------------------------------------------------------------------- 03
NOTEBOOKS["03-tcp-conversation"] = [
    md("""# 3. A TCP conversation

HTTP rides on a TCP connection: a byte stream in each direction, numbered by sequence
numbers. One connection can carry many requests, several requests can share one segment,
and one request can need several segments. The receiver puts the bytes back in order
before anyone reads them.

## What you will see

- a keep-alive connection as a ladder diagram: handshake, six requests, the close;
- a pipelined burst: six requests in one segment, found by reassembly;
- a request head sent in four pieces, and the byte stream put back together from them.

## What to notice

- The handshake costs a round trip before the first byte of HTTP.
- Requests do not line up with segments: TCP knows bytes, not messages. Finding where a
  request ends is the application's job (the blank line after the headers).
- The packet that *completes* a request is not the packet that started it."""),
    code(SETUP),
    code("""front = scenarios.hop_packets(ALB, "client-alb")
records = scenarios.client_records("alb")
requests = viz.http_requests(front)
by_rid = {r.header("X-Request-Id"): r for r in requests}

def first_rid(suite: str) -> str:
    return next(r["rid"] for r in records if r["suite"] == suite)

keepalive = viz.tcp_conversation(front, by_rid[first_rid("keepalive")].flow)
print(keepalive.summary())"""),
    md("""## Keep-alive: many requests, one connection

Each arrow is one packet, client on the left, server (the ALB's address) on the right.
Orange arrows carry only TCP control, red ones carry application data."""),
    fig("""figure = viz.ladder_diagram(keepalive, limit=30, title="Keep-alive: one handshake, several requests")"""),
    code("""on_this_connection = [r for r in requests if r.flow == keepalive.flow]
for r in on_this_connection:
    print(f"request {r.index + 1}: {r.method} {r.target:32} complete at packet {r.headers_complete_packet}")"""),
    md("""## Pipelining: six requests in one segment

The client wrote six requests at once, without waiting for answers. They arrive in a single
TCP segment; the HTTP parser finds six messages in it."""),
    code("""pipelined = [by_rid[r["rid"]] for r in records if r["suite"] == "pipelined"]
for r in pipelined:
    print(f"{r.method} {r.target:30} first byte in packet {r.first_packet}, "
          f"headers complete in packet {r.headers_complete_packet}")
print("distinct packets:", sorted({r.headers_complete_packet for r in pipelined}))"""),
    md("""## A request split across segments, and its reassembly

The lab client sent one request head in four pieces, with `TCP_NODELAY` so that each piece
left as its own segment. Each bar below is one packet's payload, placed at its sequence
number; the dashed line is the end of the request head (`\\r\\n\\r\\n`)."""),
    code("""slow = by_rid[first_rid("slow_head")]
slow_conversation = viz.tcp_conversation(front, slow.flow)
print(f"{slow.method} {slow.target}: first bytes in packet {slow.first_packet}, "
      f"head complete in packet {slow.headers_complete_packet}")"""),
    fig("""figure = viz.reassembly_figure(slow_conversation, title="One request head, four segments")"""),
    md("""`osilab.pipeline.follow` runs the reassembler (`osilab.streams`) on one flow: for each
piece of the client's stream, the packet that carried it and the byte offset where it belongs."""),
    code("""from osilab.pipeline import follow

for piece in follow(front, slow.flow):
    chunk = piece.item
    if piece.direction == "to_server" and hasattr(chunk, "data"):
        print(f"packet {chunk.packet_no:>4}  stream offset {chunk.offset:>4}  "
              f"{len(chunk.data):3} bytes  {bytes(chunk.data)[:36]!r}")"""),
    md("""## Question for the team

Keep-alive saves a handshake per request, and pipelining saves a round trip per request,
yet browsers never enabled HTTP/1.1 pipelining. What goes wrong when the first of six
pipelined requests is slow, and how does that show up in a ladder diagram?"""),
]

# --------------------------------------------------------------------------- 04
NOTEBOOKS["04-what-a-balancer-sees"] = [
    md("""# 4. What a balancer can see

An L4 balancer (AWS NLB) and an L7 balancer (AWS ALB) receive the same packets. The NLB
chooses a target from addresses and ports, which the very first packet of a connection
already carries. The ALB chooses from the HTTP request, which only exists once the
handshake is done and the request head has fully arrived.

## What you will see

- the first packets of one connection twice: the bytes an NLB reads, and the bytes an ALB
  reads, with the packet where each can decide outlined;
- the same connection as a ladder client - balancer - target, with both decisions marked;
- how long each balancer waited before it could decide, for every request of the capture.

## What to notice

- The NLB decides at the SYN: packet 1 of the connection, zero bytes of HTTP.
- The ALB needs the *complete* request head: for the head sent in four pieces, that is
  the fourth piece, several round trips after the SYN.
- Deciding later buys the ALB the whole request to route on, at the price of terminating
  TCP itself and opening its own connection to the target."""),
    code(SETUP),
    code("""from osilab.balancers import parse_config

front = scenarios.hop_packets(ALB, "client-alb")
alb_config = parse_config(scenarios.lab_alb_config())
nlb_config = parse_config(scenarios.lab_nlb_config())
comparison = osilab.compare(front, nlb_config, alb_config=alb_config)
records = scenarios.client_records("alb")
rows = {row.request.header("X-Request-Id"): row for row in comparison.rows}
slow_rid = next(r["rid"] for r in records if r["suite"] == "slow_head")
slow = rows[slow_rid]
conversation = viz.tcp_conversation(front, slow.request.flow)
print(f"{slow.request.method} {slow.request.target}")
print(f"NLB decided at packet {slow.nlb_decided_at}, ALB at packet {slow.alb_decided_at}")"""),
    md("""## The bytes each balancer reads

Coloured bytes are read to choose a target; grey bytes pass through unread. The NLB reads
the IP and TCP headers; the ALB reads the HTTP request head."""),
    fig("""figure = viz.visibility_figure(conversation, l4_decided_at=slow.nlb_decided_at,
                              l7_decided_at=slow.alb_decided_at, limit=12)"""),
    code("""print("NLB:", slow.nlb_why)
print()
print("ALB:", slow.alb_why)"""),
    md("""## The same connection as a ladder

Dashed arrows: what an NLB forwards (every packet, as it is, the moment it arrives).
Dotted: what an ALB forwards (each request, once decided, on its own connection)."""),
    fig("""figure = balancer_plots.ladder(conversation.packets, nlb_decided_at=slow.nlb_decided_at,
                               alb_decided_at=[slow.alb_decided_at], target="web1 / web2",
                               title="A request head in four pieces: where each balancer decides")"""),
    md("""## Time to decision, for every request

For each request: from its connection's SYN to the packet where each model could decide.
The NLB's bar has no length: it decides at the SYN. Each request of a keep-alive
connection is measured from the same SYN, so later requests wait longer."""),
    code("""suite_of = {r["rid"]: r["suite"] for r in records}
chosen = {}
for rid, row in rows.items():
    chosen.setdefault(suite_of.get(rid, "?"), row)
intervals = []
for suite, row in chosen.items():
    label = f"{suite}: {row.request.method} {row.request.path[:18]}"
    waited = row.request.time - row.syn_time            # seconds from the SYN to the ALB's decision
    intervals.append(viz.Interval(f"NLB  {label}", 0.0, 0.0, osi=4, note="(at the SYN)"))
    intervals.append(viz.Interval(f"ALB  {label}", 0.0, waited, osi=7,
                                  note=f"(+{row.alb_packets_after_syn} packets)"))
print(comparison.time_to_decision())"""),
    fig("""figure = viz.timeline_chart(intervals, title="From the SYN to the decision: NLB vs ALB",
                           xlabel="milliseconds after the connection's SYN")"""),
    md("""## Question for the team

The ALB has to hold the client's bytes until the request head is complete. What could a
client do with that (think of a head sent one byte per second), and what does an NLB do
differently when the same client connects?"""),
]

# --------------------------------------------------------------------------- 05
NOTEBOOKS["05-nlb-vs-alb"] = [
    md("""# 5. NLB vs ALB on the lab capture

The same traffic, replayed through a model of each balancer. The ALB model is configured
with the very rules the lab's real L7 balancer (HAProxy) ran, written as AWS listener
rules. The question is not which balancer is better, but what each one *can* route on.

## What you will see

- per-connection (NLB) versus per-request (ALB) balancing on the same 70 HTTP requests;
- one request per rule type: host, header, method, query, source, path, and where each went;
- the ALB model checked against the real balancer's own log (`truth.json`);
- the distribution of requests over the targets, and when each decision was made;
- why an NLB cannot send `/api` elsewhere, and what it can do instead;
- a request-smuggling attempt that only the ALB can see, and stop.

## What to notice

- Every request on one connection goes where the NLB sent the connection; the ALB
  chooses again for every request.
- The rules read different layers: `source-ip` is layer 3, all the others are layer 7.
- An NLB listener configuration with rules is refused: there is nothing to match them on."""),
    code(SETUP),
    code("""from collections import Counter
from osilab.balancers import parse_config

front = scenarios.hop_packets(ALB, "client-alb")
alb_config = parse_config(scenarios.lab_alb_config())
nlb_config = parse_config(scenarios.lab_nlb_config())
comparison = osilab.compare(front, nlb_config, alb_config=alb_config)
comparison          # the comparison's own summary table"""),
    md("""## Per connection vs per request

`requests_per_connection` counts the requests each connection carried: keep-alive
connections carry six, the short ones one. The NLB spreads *connections*; the ALB spreads
*requests*."""),
    code("""print(Counter(comparison.requests_per_connection().values()))
print("NLB, connections per target:", comparison.nlb_flow_counts())
print("NLB, requests per target:   ", comparison.nlb_request_counts())
print("ALB, requests per target:   ", comparison.alb_request_counts())"""),
    fig("""figure = balancer_plots.target_distribution(comparison,
                                            title="Requests per target: NLB (per connection) vs ALB (per request)")"""),
    md("""## Rules on path, host, header, method, query and source

The lab client sent one request made to match each rule. The table shows what the ALB
model decided and what the real balancer logged for the same request id."""),
    code("""import pandas as pd

records = scenarios.client_records("alb")
truth = scenarios.truth("alb")["requests"]
decisions = {d.request.header("X-Request-Id"): d for d in comparison.alb.decisions}
rule_rids = [r["rid"] for r in records if r["suite"] == "rules"]
table = pd.DataFrame([
    {"request": f"{decisions[rid].request.method} {decisions[rid].request.target}",
     "host": decisions[rid].request.host,
     "model rule": decisions[rid].rule, "model target group": decisions[rid].target_group,
     "real rule": truth[rid]["rule"], "real target group": truth[rid]["target_group"],
     "fields read": ", ".join(decisions[rid].seen[:4]) + " ..."}
    for rid in rule_rids
])
table"""),
    code("""agree = sum(1 for rid, d in decisions.items()
            if rid in truth and truth[rid]["target"] == d.target and truth[rid]["target_group"] == d.target_group)
print(f"the ALB model and the real balancer agree on {agree} of {len(decisions)} requests "
      "(target group and target, round robin included)")"""),
    fig("""figure = balancer_plots.decision_timeline(comparison,
                                          title="When and where each balancer decided (packet number)")"""),
    md("""## Why the NLB cannot send `/api` elsewhere

An NLB listener forwards a whole TCP (or TLS, or UDP) connection to one target group. At
the moment it decides, the SYN, there is no path yet. AWS therefore has no `Rules` on an
NLB listener, and osilab refuses a configuration that tries."""),
    code("""with_rules = scenarios.lab_nlb_config()
with_rules["Listeners"][0]["Rules"] = [{
    "Priority": "10",
    "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
    "Actions": [{"Type": "forward", "TargetGroupName": "tg-tcp-80"}]}]
try:
    parse_config(with_rules)
except osilab.ConfigError as error:
    print("refused:", error)"""),
    md("""What an NLB *can* do: give the API its own listener **port** (or its own NLB), so the
client chooses by connecting to a different address or port; or terminate TLS and pick
by **SNI** (one certificate per host name), which is still per connection. The lab's NLB
has two listeners, one per service (web on 80, TLS passed through on 443):"""),
    code("""two_ports = parse_config(scenarios.lab_nlb_config(ports=(80, 443)))
for listener in two_ports.listeners:
    group = listener.default_actions[0].target_groups[0].name
    print(f"listener {listener.protocol}:{listener.port} -> target group {group} (rules: {len(listener.rules)})")"""),
    md("""## A request-smuggling attempt: only the ALB can see it

The `smuggle` capture holds a `POST` carrying both `Content-Length` (covering a hidden
`GET /api/items/2`) and `Transfer-Encoding: chunked` (ending *before* it). A server that
trusts one header sees one request; a server that trusts the other sees two. That
disagreement is how a hidden request slips past a balancer. AWS's ALB classifies every
request with http-desync-guardian: CL and TE together is **Ambiguous**. What it does then
depends on `routing.http.desync_mitigation_mode`."""),
    code("""smuggle_front = scenarios.hop_packets(SMUGGLE, "client-alb")
rows, results = {}, {}
for mode in ("monitor", "defensive", "strictest"):
    config = scenarios.lab_alb_config("smuggle")     # alb.config.json beside the smuggle capture
    config["Attributes"] = [{"Key": "routing.http.desync_mitigation_mode", "Value": mode}]
    results[mode] = result = osilab.replay(smuggle_front, osilab.ApplicationLoadBalancer(config))
    for d in result.decisions[:3]:       # the outer POST, the hidden GET, the one sent after
        key = f"{d.request.method} {d.request.target}"
        rows.setdefault(key, {"desync class": f"{d.request.desync.klass} ({d.request.desync.reason})"})
        rows[key][mode] = d.action + (f" -> {d.target}" if d.target else "")
pd.DataFrame.from_dict(rows, orient="index")"""),
    md("""In the default *defensive* mode the ALB forwards the ambiguous POST and then closes
the connection, so the hidden request is never read. The real HAProxy in the lab did the
same: `truth.json` lists the hidden and the following request as never forwarded."""),
    code("""print("HAProxy never forwarded:", scenarios.truth("smuggle")["not_forwarded"])
why = [d.why for d in results["defensive"].decisions if d.action == "connection-closed"][0]
print("model (defensive):", why)"""),
    md("""The NLB sees the same attempt as one TCP connection. It decides at the SYN from four
numbers, and the hidden request reaches a target byte for byte (nginx then refused it
with `400`, but the NLB had no say)."""),
    code("""nlb_front = scenarios.hop_packets(SMUGGLE, "client-nlb")
nlb_config = scenarios.lab_nlb_config(scenario="smuggle")   # nlb.config.json beside the capture
nlb_result = osilab.replay(nlb_front, osilab.NetworkLoadBalancer(nlb_config))
print("fields the NLB read:", nlb_result.decisions[0].seen)
behind = b"".join(p.payload for p in scenarios.hop_packets(SMUGGLE, "nlb-web1", "nlb-web2"))
start = behind.find(b"GET /api/items/")
print("bytes that reached a target:", behind[start:start + 40])"""),
    md("""## Question for the team

Our ALB rules use `source-ip` for the office and `X-Canary` for canaries. Which of our six
rules could an NLB imitate with separate listeners or separate NLBs, which could it not,
and what would it cost the clients?"""),
]

# --------------------------------------------------------------------------- 06
NOTEBOOKS["06-tls"] = [
    md("""# 6. TLS: passthrough, termination, and SNI in between

With HTTPS, the request is encrypted before it reaches TCP. A balancer that does not hold
the key (TLS **passthrough**, as the NLB scenario) sees only TCP/IP headers and the TLS
handshake; one that **terminates** TLS (the ALB scenario) decrypts and reads the HTTP
inside. The TLS ClientHello carries the server name in clear (SNI): the middle ground.

## What you will see

- the ClientHello of the NLB scenario, on the client side and behind the NLB: the same
  bytes, SNI readable on both hops;
- an encrypted application-data packet: what an L4 balancer sees of a request;
- the ALB scenario's HTTPS requests: encrypted on the client side, plain HTTP behind the
  ALB; and, with the client's key log, decrypted on the client side too;
- routing by SNI: what a passthrough balancer can decide without any key.

## What to notice

- In passthrough the target holds the certificate; the balancer never could read `/api`.
- SNI names a *host*, never a path: SNI routing is per connection, like the NLB.
- Terminating TLS at the ALB is what makes per-request routing possible on HTTPS."""),
    code(SETUP),
    code("""nlb_all = scenarios.hop_packets(NLB)
hellos = [p for p in nlb_all if "tls" in p and "handshake.extensions_server_name" in p["tls"]]
for p in hellos:
    print(f"#{p.no:5} {p.interface_name:10} {p.ip_src}:{p.src_port} -> {p.ip_dst}:{p.dst_port}  "
          f"SNI={p['tls']['handshake.extensions_server_name']}")"""),
    md("""The NLB rewrites only the destination address (DNAT); the TLS bytes are untouched, so the
same ClientHello appears on both sides, SNI included. Its bytes, coloured by layer:"""),
    code("hellos[0]"),
    fig("""figure = viz.frame_figure(hellos[0], title=f"ClientHello #{hellos[0].no}: the server name travels in clear")"""),
    md("""## An encrypted request

After the handshake, the request is a TLS application-data record: an L4 balancer, a
switch or a sniffer on the path sees its length and nothing else."""),
    code("""first_flow = (hellos[0].ip_src, hellos[0].src_port)
encrypted = [p for p in nlb_all if (p.ip_src, p.src_port) == first_flow and "tls" in p
             and p is not hellos[0] and len(p.payload) > 100]
print(encrypted[1].names(), encrypted[1]["tls"].summary)
print(bytes(encrypted[1].payload[:48]).hex(" "))"""),
    md("""## Termination: the ALB scenario

On the client side of the ALB, port 443 carries TLS; behind the ALB (hops `alb-web1`,
`alb-web2`) the same requests travel as plain HTTP. Counted per hop:"""),
    code("""from collections import Counter

alb_all = scenarios.hop_packets(ALB, "client-alb", "alb-web*")
readable = Counter()
for p in alb_all:
    hop = "client side" if p.interface_name == "client-alb" else "behind the ALB"
    if "tls" in p:
        readable[(hop, "TLS (encrypted)")] += 1
    elif "http" in p:
        readable[(hop, "HTTP (plain text)")] += 1
counts = {}
for (hop, kind), n in readable.items():
    counts.setdefault(kind, {})[hop] = n
counts"""),
    fig("""figure = viz.grouped_counts_chart(counts, title="Packets an observer can read, per side of the ALB",
                                   xlabel="where the packet was captured", ylabel="packets")"""),
    md("""### Decrypting with the key log

The lab client wrote its TLS secrets to `keylog.txt` (the NSS key log format browsers
write with `SSLKEYLOGFILE`). With it, osilab's TLS support (`osilab.protocols.tls`,
when installed) decrypts the client side as the ALB does. Without it, only the
back side shows the requests."""),
    code("""import importlib.util
from osilab.pipeline import iter_http

keylog = str(ALB.parent / "keylog.txt")
front = scenarios.hop_packets(ALB, "client-alb")
tls_support = importlib.util.find_spec("osilab.protocols.tls") is not None
on_443 = [p for p in front if 443 in (p.src_port, p.dst_port)]
decrypted = [m for m in iter_http(on_443, keylog=keylog) if hasattr(m, "method")] if tls_support else []
print("TLS support installed:", tls_support)
print(f"requests read on the client side of port 443 with the key log: {len(decrypted)}")
for request in decrypted[:5]:
    print(f"  {request.method} {request.target} ({request.version})")
back = [m for m in viz.http_requests(scenarios.hop_packets(ALB, "alb-web*")) if "rid=a" in m.target]
https_rids = {r["rid"] for r in scenarios.client_records("alb") if r["scheme"] == "https"}
print(f"HTTPS requests seen in plain text behind the ALB: "
      f"{sum(1 for m in back if m.header('X-Request-Id') in https_rids)} of {len(https_rids)}")"""),
    md("""## SNI routing: the middle ground

A passthrough balancer can still read the ClientHello. Routing on its SNI needs no key:
choose the target group per host name, once per connection. Here is that rule applied to
every ClientHello of both scenarios:"""),
    code("""sni_rules = {"shop.example.com": "tg-shop", "admin.example.com": "tg-admin"}
all_hellos = hellos + [p for p in front if "tls" in p and "handshake.extensions_server_name" in p["tls"]]
for p in all_hellos:
    name = p["tls"]["handshake.extensions_server_name"]
    print(f"#{p.no:5} {p.interface_name:10} SNI {name:18} -> {sni_rules.get(name, 'default group')}")"""),
    md("""## Question for the team

Encrypted Client Hello (ECH) hides the SNI as well. If our clients adopted it, which of our
balancers would still be able to route by host name, and what would we have to give the
balancer that it does not hold today?"""),
]

# --------------------------------------------------------------------------- 07
NOTEBOOKS["07-who-is-the-client"] = [
    md("""# 7. Who is the client?

A target that logs "who called me" reads the source address of the IP packet it received.
Behind a proxy that terminates TCP (the ALB, an L4 proxy), that address is the proxy's.
Each balancer has its own answer to "then who was the real client?".

## What you will see

- **ALB**: the front hop (client -> ALB) and the back hop (ALB -> nginx) side by side: the
  source address changes, and the ALB adds `X-Forwarded-For` with the client's address;
- **NLB**: the back hop still carries the client's own address (client IP preservation):
  the NLB rewrote only the destination;
- **L4 proxy**: on port 80 the target sees the proxy; on port 81 the proxy sends a
  **PROXY protocol v2** header first, carrying the client's address and port in binary;
- the real nginx logs of each case, from `truth.json`.

## What to notice

- `X-Forwarded-For` is layer 7 (an HTTP header): only an HTTP proxy can add it.
- PROXY v2 is a few bytes before the first byte of the application data: it works for any
  TCP protocol, but the target must expect it (nginx `listen ... proxy_protocol`).
- Client IP preservation needs no header at all, but the target's replies must go back
  through the balancer (the lab's web servers route via the NLB)."""),
    code(SETUP),
    code("""import pandas as pd

def requests_by_rid(packets):
    return {r.header("X-Request-Id"): r for r in viz.http_requests(packets)}

alb_front = requests_by_rid(scenarios.hop_packets(ALB, "client-alb"))
alb_back = requests_by_rid(scenarios.hop_packets(ALB, "alb-web*"))
rid = next(rid for rid in alb_front if rid in alb_back)
front, back = alb_front[rid], alb_back[rid]
pd.DataFrame({
    "client -> ALB (front)": [str(front.flow.client), str(front.flow.server),
                              (front.header("X-Forwarded-For") or "(none)")],
    "ALB -> nginx (back)": [str(back.flow.client), str(back.flow.server),
                            (back.header("X-Forwarded-For") or "(none)")],
}, index=["source ip:port", "destination ip:port", "X-Forwarded-For"])"""),
    md("""## The NLB: client IP preservation"""),
    code("""nlb_front = requests_by_rid(scenarios.hop_packets(NLB, "client-nlb"))
nlb_back = requests_by_rid(scenarios.hop_packets(NLB, "nlb-web*"))
nrid = next(r for r in nlb_front if r in nlb_back)
f, b = nlb_front[nrid], nlb_back[nrid]
pd.DataFrame({
    "client -> NLB (front)": [str(f.flow.client), str(f.flow.server), (f.header("X-Forwarded-For") or "(none)")],
    "NLB -> nginx (back)": [str(b.flow.client), str(b.flow.server), (b.header("X-Forwarded-For") or "(none)")],
}, index=["source ip:port", "destination ip:port", "X-Forwarded-For"])"""),
    md("""## The L4 proxy, with and without PROXY protocol v2"""),
    code("""l4 = scenarios.hop_packets(L4PROXY)
proxied = [p for p in l4 if "proxy" in p]
header = proxied[0]
print(f"packet #{header.no} on {header.interface_name}: {header['proxy'].summary}")
start, size = header["proxy"].offset, header["proxy"].length
print("the PROXY v2 header's bytes:", header.data[start:start + size].hex(" "))
header"""),
    md("""The first 12 bytes are the fixed signature `\\r\\n\\r\\n\\0\\r\\nQUIT\\n`; then version and
command, the address family (TCP over IPv4), a length, and the client's address and port.
What each target believed, from nginx's own logs:"""),
    code("""def who_nginx_saw(scenario):
    seen = {}
    for rid, line in scenarios.truth(scenario)["nginx"].items():
        if line.get("proxy_protocol", "-:-") not in ("-:-", "-", ""):
            how = "PROXY v2 header"
        elif line.get("xff", "-") not in ("-", ""):
            how = "X-Forwarded-For"
        elif line["peer"].startswith("198.51.100."):
            how = "IP source address"
        else:
            how = "nowhere (proxy's address only)"
        seen[how] = seen.get(how, 0) + 1
    return seen

where = {"ALB": who_nginx_saw("alb"), "NLB": who_nginx_saw("nlb"), "L4 proxy": who_nginx_saw("l4proxy")}
where"""),
    fig("""methods = sorted({m for counts in where.values() for m in counts})
by_method = {m: {lb: where[lb].get(m, 0) for lb in where} for m in methods}
from osilab.layers.palette import colour_for
layer_of = {"IP source address": colour_for(3), "PROXY v2 header": colour_for(5),
            "X-Forwarded-For": colour_for(7), "nowhere (proxy's address only)": "#D9D9D9"}
figure = viz.grouped_counts_chart(by_method, title="Where nginx found the client's address",
                                  xlabel="balancer in front of nginx", ylabel="requests logged",
                                  colours=layer_of)"""),
    md("""## Question for the team

Our rate limiting and our audit logs key on "the client IP". For each of our three
balancer set-ups, which field would they have to read, and who could forge that field?"""),
]

# --------------------------------------------------------------------------- 08
NOTEBOOKS["08-architecture"] = [
    md("""# 8. The architecture end to end

One request, followed across every hop of the lab: client -> ALB -> nginx -> the app ->
Redis (the cache) -> PostgreSQL, and the response all the way back. The request id
(`X-Request-Id`, `?rid=`, the Redis key `rid:...`, the SQL comment `/* rid=... */`) lets
osilab find it on every hop.

## What you will see

- the journey of one `/api` request, device by device, with the layers each device read on
  the way in and what it rewrote or created on the way out;
- a hop-by-hop table: the highest layer each device read, what it rewrote, what it created;
- a latency breakdown: where the time went;
- a static file (`/static/...`) for contrast: nginx answers it without the app.

## What to notice

- The switch (`data`) reads layer 2 only; every server and proxy goes up to layer 7 and
  *creates* new TCP/IP headers on the way out: each one terminates a connection.
- The cache lookup, the database query and the answer are separate request/response pairs,
  each on its own TCP connection and its own protocol (RESP, PostgreSQL wire).
- Most of the time is spent inside servers, not on the wire."""),
    code(SETUP),
    code("""from osilab.journey import journey

records = scenarios.client_records("alb")
api_rid = next(r["rid"] for r in records if r["target"].startswith("/api/") and r["cache"] == "miss")
trip = journey(ALB, api_rid)
print(trip.summary())"""),
    md("""In a notebook the journey is an interactive view; its text form is below it."""),
    code("trip"),
    code("""import pandas as pd

pd.DataFrame(scenarios.hop_table(trip)).set_index("step")"""),
    md("""## Where the time goes

One bar per step, from the moment a device handled the request (or its response) to the
next device's turn, coloured by the highest layer that device read."""),
    fig("""figure = viz.timeline_chart(scenarios.journey_intervals(trip),
                           title=f"Request {api_rid}: latency breakdown, hop by hop")"""),
    md("""## A static file, for contrast"""),
    code("""static_rid = next(r["rid"] for r in records if r["target"].startswith("/static/"))
static_trip = journey(ALB, static_rid)
print(static_trip.summary())
print("devices on the way of the /api request:   ", len(trip.events))
print("devices on the way of the static request: ", len(static_trip.events))"""),
    md("""## Question for the team

The cache-miss path above crosses six devices and four TCP connections. Which of those
connections are reused between requests, which are opened per request, and where would
connection pooling change the latency breakdown?"""),
]

# --------------------------------------------------------------------------- 09
NOTEBOOKS["09-http2-behind-l4"] = [
    md("""# 9. HTTP/2 and gRPC behind an L4 balancer

HTTP/2 multiplexes many requests (streams) on one TCP connection; gRPC is HTTP/2 with
`content-type: application/grpc`. An L4 balancer balances connections, so every stream
of a long-lived HTTP/2 connection lands on the same target. An L7 balancer reads the
streams and balances each request.

## What you will see

- the ALB scenario's HTTP/2 suite: 24 requests on **one** TLS connection (ALPN `h2`);
- where the real L7 balancer sent those 24 requests, and where an L4 balancer would;
- the whole capture balanced per connection and per request, and the imbalance that results;
- with the key log and osilab's TLS support, the HTTP/2 streams themselves.

## What to notice

- One connection, one NLB decision: 24 requests, one target.
- The ALB speaks HTTP/2 to the client and HTTP/1.1 to its targets (the AWS default), so it
  spreads the streams by round robin.
- The imbalance grows with how unequal the connections are, not with how many there are."""),
    code(SETUP),
    code("""from collections import Counter

records = scenarios.client_records("alb")
h2 = [r for r in records if r["suite"] == "h2"]
connections = Counter(r["source"] for r in h2)
print(f"{len(h2)} HTTP/{h2[0]['http_version']} requests on {len(connections)} connection(s): {dict(connections)}")
truth = scenarios.truth("alb")["requests"]
alb_targets = Counter(truth[r["rid"]]["target"] for r in h2 if r["rid"] in truth)
print("the real ALB sent them to:", dict(alb_targets))"""),
    md("""## What an L4 balancer does with that connection

The NLB model is fed the client side of the ALB scenario (ports 80 and 443, TLS passing
through). It decides once, at the SYN of the HTTP/2 connection."""),
    code("""from osilab.balancers import NetworkLoadBalancer, parse_config

front = scenarios.hop_packets(ALB, "client-alb")
nlb = osilab.replay(front, NetworkLoadBalancer(parse_config(scenarios.lab_nlb_config(ports=(80, 443)))))
h2_client = next(iter(connections))
h2_decision = next(d for d in nlb.decisions if str(d.flow.client) == h2_client)
print(h2_decision.why)
nlb_targets = {h2_decision.target.replace(":443", ":80"): len(h2)}"""),
    fig("""figure = viz.grouped_counts_chart({"L4 (NLB model), per connection": nlb_targets,
                                    "L7 (real ALB), per request": dict(alb_targets)},
                                   title="24 HTTP/2 requests on one connection: where they went",
                                   xlabel="target", ylabel="requests")"""),
    md("""## The whole capture: connections are not equal

Over the whole ALB scenario, the NLB spreads connections evenly, but connections carry
1, 6 or 24 requests. Requests per target under each model:"""),
    code("""per_connection = Counter(r["source"] for r in records)
nlb_requests = Counter()
for decision in nlb.decisions:
    nlb_requests[decision.target.rsplit(":", 1)[0]] += per_connection.get(str(decision.flow.client), 0)
alb_requests = Counter(truth[r["rid"]]["target"].rsplit(":", 1)[0] for r in records if r["rid"] in truth)
print("requests per connection:", sorted(Counter(per_connection.values()).items()))
print("NLB model:", dict(nlb_requests), " real ALB:", dict(alb_requests))"""),
    fig("""figure = balancer_plots.target_distribution({"NLB": dict(nlb_requests), "ALB": dict(alb_requests)},
                                            title="Every request of the ALB scenario: per connection vs per request")"""),
    md("""## The streams themselves

With the client's key log the HTTP/2 connection can be decrypted, and each request
appears with its stream id (odd numbers, one per request). This needs osilab's TLS
support; without it, the cell says so."""),
    code("""import importlib.util
from osilab.pipeline import iter_http

if importlib.util.find_spec("osilab.protocols.tls") is None:
    print("osilab.protocols.tls is not installed here: the streams stay encrypted.")
else:
    on_h2 = [p for p in front if f"{p.ip_src}:{p.src_port}" == h2_client
             or f"{p.ip_dst}:{p.dst_port}" == h2_client]
    streams = [m for m in iter_http(on_h2, keylog=str(ALB.parent / "keylog.txt")) if hasattr(m, "method")]
    print(f"{len(streams)} requests decrypted on one connection")
    for m in streams[:8]:
        print(f"  stream {m.stream_id}: {m.method} {m.target}")"""),
    md("""## Question for the team

Our gRPC services keep one HTTP/2 connection open per client for hours. Behind an NLB,
what happens to the load when we add a third target, and which fixes would we consider:
an ALB (gRPC target groups), client-side balancing, or shorter connection lifetimes?"""),
]

# --------------------------------------------------------------------------- 10
NOTEBOOKS["10-exercises"] = [
    md("""# 10. Exercises, with automatic checks

Six questions about the lab captures. Each has a checker (`osilab.lessons.exercises`) that compares
your answer with the capture and with osilab's balancer models, and tells you *why* a
wrong answer is wrong. Work in pairs: agree on an answer, then check it.

## What you will see

- each exercise's question and a hint;
- the checker's reply to a first, typical wrong answer (so you see what feedback looks like);
- a cell where you put your own answer (it starts as `None`).

## What to notice

- The checkers never hard-code the answer: they read the capture, so a re-recorded capture
  changes the right answer and the checkers follow.
- A wrong answer is told which layer or which balancer it describes: most mistakes are
  answering the right question for the other balancer."""),
    code(SETUP),
    code("""from osilab.lessons import exercises

print(exercises.names())"""),
    md("""## 1. Header bytes"""),
    code("""ex = exercises.get("header-bytes")
ex"""),
    code("ex.check(54)     # a typical first answer"),
    code("""answer = None    # your answer: a number of bytes
ex.check(answer)"""),
    md("""## 2. Where did the NLB decide?"""),
    code("""ex = exercises.get("nlb-decision")
ex"""),
    code("ex.check(ex.requests[0].headers_complete_packet)     # the first request's packet"),
    code("""answer = None    # your answer: a packet number
ex.check(answer)"""),
    md("""## 3. Where could the ALB decide?"""),
    code("""ex = exercises.get("alb-decision")
ex"""),
    md("""A figure to reason with: the connection of this exercise, packet by packet, as the
ALB received it. Which arrow carries the end of the request head?"""),
    fig("""conversation = viz.tcp_conversation(ex.packets, ex.request.flow)
figure = viz.ladder_diagram(conversation, limit=12, title="Exercise 3: the connection, as the ALB received it")"""),
    code("ex.check(ex.request.first_packet)     # where the request's first bytes arrived"),
    code("""answer = None    # your answer: a packet number
ex.check(answer)"""),
    md("""## 4. What does an NLB read?"""),
    code("""ex = exercises.get("nlb-fields")
ex"""),
    code("""ex.check(["ip.dst", "tcp.dstport", "http.host"])"""),
    code("""answer = None    # your answer: a list of field names
ex.check(answer)"""),
    md("""## 5. Write ALB rules"""),
    code("""ex = exercises.get("alb-rules")
ex"""),
    code("""ex.check([{"Priority": "10",
           "Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/static"]}}],
           "Actions": [{"Type": "forward", "TargetGroupName": "static"}]}])"""),
    code("""answer = None    # your answer: the Rules list (Python or JSON text)
ex.check(answer)"""),
    md("""## 6. The ALB's desync guard"""),
    code("""ex = exercises.get("desync-tier")
print(ex.request_head)
ex"""),
    code("""ex.check("Acceptable")"""),
    code("""answer = None    # your answer: Compliant, Acceptable, Ambiguous or Severe
ex.check(answer)"""),
    md("""## Question for the team

Which exercise split the team? Write down the wrong answer you gave first and the layer it
belonged to: it is usually the best summary of what this curriculum is about."""),
]


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """One notebook from its cells; figure cells get the ``figure`` tag."""
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        if kind == "md":
            notebook.cells.append(new_markdown_cell(source))
        else:
            cell = new_code_cell(source)
            if kind == "fig":
                cell.metadata["tags"] = ["figure"]
            notebook.cells.append(cell)
    for index, cell in enumerate(notebook.cells):  # stable ids: the files diff cleanly
        cell["id"] = f"{name[:2]}-{index:02d}"
    return notebook


def main(argv: list[str]) -> int:
    """Write every notebook (or only those named on the command line)."""
    wanted = set(argv) or set(NOTEBOOKS)
    for name, cells in NOTEBOOKS.items():
        if name not in wanted and name[:2] not in wanted:
            continue
        path = HERE / f"{name}.ipynb"
        nbformat.write(build(name, cells), path)
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

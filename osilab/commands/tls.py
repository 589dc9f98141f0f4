"""``osilab tls``: every TLS ClientHello of a capture, with the server's answer.

One line (or JSON object) per ClientHello: the flow, the packet that completed the hello,
the server name (SNI), the ALPN protocols offered and the highest version offered -- the
facts a TLS-terminating balancer reads before any HTTP -- plus, when the ServerHello was
captured, the version and cipher suite the server chose and its ALPN choice (TLS 1.3 hides
the ALPN answer in an encrypted message: ``--keylog`` reveals it).

A hello is printed once its ServerHello is seen, or when the capture ends, so the command
streams in bounded memory. Each hello names its ``hop``, the capture interface it was seen
on (a table column when the capture has several); a ServerHello answers the ClientHello of
the same flow on the same hop.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from osilab.capture import hop_name
from osilab.commands._capture import capture_arguments, open_capture, print_listing, report_errors
from osilab.pipeline import FlowMessage, conversations
from osilab.protocols.tls import ClientHello, ServerHello
from osilab.protocols.tls import unread as unread_record
from osilab.streams.keys import FlowKey

__all__ = ["HELP", "EXAMPLE", "add_arguments", "run", "hellos"]

HELP = "list TLS ClientHellos: SNI, ALPN, offered version, and the server's choice"
EXAMPLE = "osilab tls ../shared/captures/thirdparty/zeek/tls13-chrome125-kyber-sni.pcap --json"

#: ClientHellos held while waiting for their ServerHello before being printed without it.
MAX_WAITING = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    capture_arguments(parser, json_unit="ClientHello",
                      keylog="NSS key log file (SSLKEYLOGFILE): also shows TLS 1.3's ALPN answer",
                      selects="ClientHellos whose completing frame matches")


def _entry(flow: str, packet: int, hello: ClientHello) -> dict[str, Any]:
    return {
        "flow": flow,
        "packet": packet,
        "sni": hello.server_name,
        "alpn": list(hello.alpn),
        "version": hello.version,
        "server_version": None,
        "cipher": None,
        "server_alpn": None,
        "server_packet": None,
    }


#: Hop names without a capture to ask: ``if<N>``, as pcapng numbers interfaces.
_NUMBERED_HOPS: Callable[[int, str], str] = partial(hop_name, ())


def hellos(
    messages: Iterable[FlowMessage], hop: Callable[[int, str], str] = _NUMBERED_HOPS
) -> Iterator[dict[str, Any]]:
    """One dict per ClientHello (design.md's ``osilab tls --json`` keys plus the server's
    answer and the ``hop``, named by ``hop(interface, tunnel)``: ``Capture.hop_name``; by
    default ``if<N>``, then ``/<tunnel>`` for a tunnelled flow)."""
    waiting: list[tuple[FlowKey, dict[str, Any]]] = []
    for item in messages:
        message = item.message
        if message.protocol != "tls" and message.protocol != "dtls":
            continue
        flow = item.flow
        hello = message.message
        if isinstance(hello, ClientHello):
            entry = _entry(str(flow), message.last_packet, hello)
            entry["hop"] = hop(flow.interface, flow.tunnel)
            waiting.append((flow, entry))
        elif isinstance(hello, ServerHello) and not hello.hello_retry:
            for key, entry in reversed(waiting):
                if key == flow and entry["server_version"] is None:
                    entry.update(server_version=hello.version, cipher=hello.cipher,
                                 server_alpn=hello.alpn, server_packet=message.last_packet)
                    break
        elif message.fields.get("handshake.type") == 8 and message.fields.get(
            "handshake.extensions_alpn_str"
        ):  # decrypted TLS 1.3 EncryptedExtensions: the ALPN answer
            for key, entry in reversed(waiting):
                if key == flow:
                    entry["server_alpn"] = message.fields["handshake.extensions_alpn_str"]
                    break
        while waiting and (
            len(waiting) > MAX_WAITING
            or (waiting[0][1]["server_version"] is not None
                and waiting[0][1]["server_alpn"] is not None)
        ):  # fmt: skip
            yield waiting.pop(0)[1]
    for _, entry in waiting:
        yield entry


def run(args: argparse.Namespace) -> int:
    capture = open_capture(args.file, progress=not args.quiet, keylog=args.keylog)
    unread: set[FlowKey] = set()
    found = hellos(_noting_unread(conversations(capture, keylog=args.keylog), unread),
                   capture.hop_name)  # fmt: skip
    print_listing(
        args,
        capture,
        found,
        keep=lambda chosen, entry: chosen.frame(entry["packet"]),
        as_json=lambda entry: entry,
        headers=("flow", "packet", "sni", "alpn", "offers", "server", "cipher", "server alpn"),
        cells=lambda entry: (
            entry["hop"],
            entry["flow"],
            entry["packet"],
            entry["sni"] or "-",
            ",".join(entry["alpn"]) or "-",
            entry["version"],
            entry["server_version"] or "-",
            entry["cipher"] or "-",
            entry["server_alpn"] or "-",
        ),
        unit="ClientHellos",
    )
    return report_errors(capture, unread_tls=unread, keylog=args.keylog)


def _noting_unread(messages: Iterable[FlowMessage], unread: set[FlowKey]) -> Iterator[FlowMessage]:
    """The messages, each TLS flow with a record it could not decrypt noted in ``unread``."""
    for item in messages:
        if unread_record(item.message):
            unread.add(item.flow)
        yield item

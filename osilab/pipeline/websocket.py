"""WebSocket messages of a whole capture, one row each: what ``osilab websocket`` lists.

Built on :func:`osilab.pipeline.tracker.conversations`: the HTTP parser hands a connection
to :class:`~osilab.protocols.websocket.WebSocketParser` after its ``101``, and this module
keeps the reassembled messages (a fragmented message is one row, RFC 6455 §5.4). Each row
names its ``hop`` (the capture interface), so one WebSocket seen on three hops of a lab
capture (client to ALB, ALB to target, target to app) is three connections, each with
its own masking keys: the ALB ends the client's connection and opens its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from osilab.capture import Capture
from osilab.pipeline.tracker import conversations
from osilab.protocols.messages import HttpRequest
from osilab.protocols.websocket import WebSocketMessage, rfc8441_note
from osilab.streams.keys import FlowKey

__all__ = ["iter_websocket", "message_json", "rows", "FIRST_BYTES"]

#: Payload bytes a row shows (``first_bytes``, hex; ``text`` for a text message).
FIRST_BYTES = 16


def iter_websocket(
    packets: Iterable[Any], *, notes: list[str] | None = None, keylog: str | None = None
) -> Iterator[tuple[FlowKey, WebSocketMessage]]:
    """Every WebSocket message of a capture, with its flow, in the order they completed.

    ``notes``, a list, receives one line per HTTP/2 extended CONNECT asking for WebSocket
    (RFC 8441): osilab does not read WebSocket over HTTP/2 and says so rather than be silent.
    ``keylog`` (an NSS key log) lets the TLS layer decrypt ``wss://`` connections.

    Examples:
        >>> import osilab
        >>> path = "../shared/captures/thirdparty/zeek/websocket-jupyter-behind-proxy.pcap"
        >>> [m.kind for _, m in iter_websocket(osilab.read(path))][-2:]  # doctest: +SKIP
        ['close', 'close']
    """
    for item in conversations(packets, keylog=keylog):
        message = item.message
        rich = message.message
        if message.protocol == "websocket" and isinstance(rich, WebSocketMessage):
            yield item.flow, rich
        elif notes is not None and isinstance(rich, HttpRequest) and rich.stream_id is not None:
            note = rfc8441_note(rich.method, rich.headers)
            if note is not None and message.fields.get("stage") == "headers":
                notes.append(f"{item.flow} stream {rich.stream_id} (packet {rich.headers_complete_packet}): {note}")


def message_json(flow: FlowKey, message: WebSocketMessage, hop: str) -> dict[str, Any]:
    """One message as ``osilab websocket --json`` writes it."""
    shake = message.handshake
    return {
        "flow": str(flow),
        "hop": hop,
        "direction": message.direction.value,
        "opcode": message.opcode,
        "kind": message.kind,
        "length": message.length,
        "data_length": len(message.data),
        "first_bytes": message.data[:FIRST_BYTES].hex(),
        "text": message.text[:FIRST_BYTES * 4] if message.text is not None else None,
        "frames": message.frames,
        "first_packet": message.first_packet,
        "last_packet": message.last_packet,
        "time": message.time,
        "compressed": message.compressed,
        "inflated": message.inflated,
        "close_code": message.close_code,
        "close_reason": message.close_reason,
        "note": message.note,
        "accept_ok": shake.accept_ok if shake is not None else None,
        "subprotocol": shake.protocol if shake is not None else None,
        "extensions": list(shake.extensions) if shake is not None else [],
    }


def rows(capture: Capture, *, notes: list[str] | None = None,
         keylog: str | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """:func:`message_json` for every message of ``capture``, hops named by the capture
    (``notes`` collects what :func:`iter_websocket` says of the handshakes)."""
    for flow, message in iter_websocket(capture, notes=notes, keylog=keylog):
        yield message_json(flow, message, capture.hop_name(flow.interface, flow.tunnel))

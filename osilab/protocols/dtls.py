"""DTLS on UDP: the ClientHello of DTLS 1.0, 1.2 and 1.3, one datagram at a time.

Theory of operation
-------------------
DTLS (RFC 6347 for 1.2, RFC 9147 for 1.3) is TLS made to survive lost and reordered
datagrams: each record header adds an epoch and a 48-bit sequence number (13 bytes in
all), and each handshake message a message sequence and a fragment offset and length, so
that a message too big for one datagram can be cut into fragments. A datagram holds whole
records, so no stream has to be put together: this parser reads each datagram on its own.

The ClientHello is TLS's with one more field, the cookie, after the session id (RFC 6347
§4.2.1; DTLS 1.3 keeps it empty and legacy, RFC 9147 §5.3). DTLS 1.3 clients say so in
supported_versions (0xfefc), like TLS 1.3 clients; the record version stays 0xfefd.

What this module must not know: packets, flows tables, files.
"""

from __future__ import annotations

from osilab.capture.tls_records import DTLS_MINORS, DTLS_VERSIONS, dtls_client_hello_body
from osilab.errors import OsilabError
from osilab.protocols import AppMessage, Direction
from osilab.protocols.tls import CONTENT_TYPES, HANDSHAKE_TYPES, parse_client_hello
from osilab.streams.keys import FlowKey

__all__ = ["DtlsParser", "looks_like_dtls"]


def looks_like_dtls(data: bytes) -> bool:
    """A DTLS record header: content type 20-25, version 0xfeff, 0xfefd or 0xfefc."""
    return len(data) >= 13 and 20 <= data[0] <= 25 and data[1] == 0xFE and data[2] in DTLS_MINORS


class DtlsParser:
    """Sans-IO DTLS record reader for one UDP flow: one message per record.

    A ClientHello record has the parsed :class:`~osilab.protocols.tls.ClientHello` (with its
    SNI) as ``message``, as the TLS parser gives it, so ``osilab tls`` lists it.
    """

    protocol = "dtls"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        self.flow = flow

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        out: list[AppMessage] = []
        p = 0
        while looks_like_dtls(data[p:]):
            content_type, version = data[p], int.from_bytes(data[p + 1:p + 3], "big")
            epoch, length = int.from_bytes(data[p + 3:p + 5], "big"), int.from_bytes(data[p + 11:p + 13], "big")
            body = data[p + 13:p + 13 + length]
            fields = {"stage": "complete", "record.content_type": content_type, "record.version": version,
                      "record.epoch": epoch, "record.length": length}
            what = CONTENT_TYPES.get(content_type, f"content type {content_type}")
            hello = None
            damaged = None if len(body) == length else f"record of {length} bytes cut at {len(body)}"
            if content_type == 22 and epoch == 0 and len(body) >= 12:
                fields["handshake.type"] = body[0]
                what = HANDSHAKE_TYPES.get(body[0], f"handshake {body[0]}")
                whole = body[6:9] == b"\0\0\0" and body[9:12] == body[1:4]  # one unfragmented message
                if body[0] == 1 and whole:
                    try:
                        hello = parse_client_hello(dtls_client_hello_body(body[12:]))
                    except OsilabError as exc:
                        damaged = str(exc)
                    else:
                        fields["handshake.extensions_server_name"] = hello.server_name
                        what += f" SNI={hello.server_name}" if hello.server_name else ""
            shown = DTLS_VERSIONS.get(version, hex(version))
            if hello is not None and 0xFEFC in hello.supported_versions:
                shown = "DTLS 1.3"
            out.append(AppMessage("dtls", direction, packet_no, packet_no, 13 + len(body), f"{shown} {what}",
                                  fields, time, hello, damaged))
            p += 13 + length
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        return []

    def close(self) -> list[AppMessage]:
        return []

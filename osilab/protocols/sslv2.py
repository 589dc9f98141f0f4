"""SSL 2.0 records on a TCP stream: the hellos old clients still send, read for the TLS parser.

Theory of operation
-------------------
SSL 2.0 (Hickman's 1995 draft; prohibited by RFC 6176) frames its records with a 2-byte
header whose high bit is set and whose 15 low bits are the length, or with a 3-byte header
(high bit clear, 14-bit length, then a padding count) when the body is padded for a block
cipher. Its CLIENT-HELLO (message type 1) gives a version, the lengths of the cipher specs,
session id and challenge, then 3-byte cipher specs: no extensions, so no server name (SNI).

Clients that speak SSL 3.0 or TLS too sent such a hello for years with the version field
set to 3.x ("version 2 compatible", RFC 5246 Appendix E.2); a TLS server answers with an
ordinary TLS record and the rest of the connection is TLS. A real SSL 2.0 server answers
with a SERVER-HELLO (type 4) and every later record is SSL 2.0 as well.

:func:`record_size` tells the TLS parser (:class:`osilab.protocols.tls.TlsParser`) where a
record ends; :func:`message` turns one whole record into its :class:`AppMessage`.

What this module must not know: packets, TCP reassembly, decryption.
"""

from __future__ import annotations

from typing import Any

from osilab.capture.tls_records import TLS_VERSIONS, sslv2_client_hello
from osilab.protocols import AppMessage, Direction

__all__ = ["record_size", "message", "MESSAGE_TYPES"]

#: SSL 2.0 handshake message types (the draft's §2.5 / Wireshark's names).
MESSAGE_TYPES = {0: "Error", 1: "Client Hello", 2: "Client Master Key", 3: "Client Finished",
                 4: "Server Hello", 5: "Server Verify", 6: "Server Finished",
                 7: "Request Certificate", 8: "Client Certificate"}  # fmt: skip


def record_size(buffer: bytes | bytearray) -> tuple[int, int] | None:
    """``(header length, body length)`` of the SSL 2.0 record starting ``buffer``, or None
    while its header is not all there."""
    if len(buffer) < 2 or (not buffer[0] & 0x80 and len(buffer) < 3):
        return None
    if buffer[0] & 0x80:
        return 2, ((buffer[0] & 0x7F) << 8) | buffer[1]
    return 3, ((buffer[0] & 0x3F) << 8) | buffer[1]


def message(direction: Direction, record: bytes, header: int, encrypted: bool, first: int, last: int,
            time: float) -> tuple[AppMessage, dict[str, Any] | None]:  # fmt: skip
    """The message of one whole SSL 2.0 record, and the CLIENT-HELLO's fields when it is one.

    Once both hellos are through, the records are encrypted (``encrypted``): their type
    byte is ciphertext, and they are reported as "Encrypted Data" as Wireshark does.
    """
    body = record[header:]
    fields: dict[str, Any] = {"stage": "complete", "record.version": 2, "record.length": len(body)}
    hello = None
    if encrypted or not body:
        what = "Encrypted Data"
    else:
        fields["handshake.type"] = body[0]
        what = MESSAGE_TYPES.get(body[0], f"message type {body[0]}")
        hello = sslv2_client_hello(body)
        if hello is not None:
            fields.update(hello)
            offered = TLS_VERSIONS.get(hello["handshake.version"], "SSL 2.0")
            what += f" offering {offered}, {len(hello['handshake.cipherspecs'])} cipher specs, no SNI"
    found = AppMessage("tls", direction, first, last, len(record), f"SSL 2.0 {what}", fields, time)
    return found, hello

"""TLS on a reassembled TCP stream: records, the hellos, and decryption with a key log.

Theory of operation
-------------------
TLS (RFC 8446 for 1.3, RFC 5246 for 1.2) cuts each direction of a connection into
*records*: a 5-byte header -- content type (20 change_cipher_spec, 21 alert, 22 handshake,
23 application_data), a legacy version, and a 2-byte length -- then at most 2^14 bytes of
content (a little more once encrypted, §5.2). Records do not respect TCP segments: one
segment may hold several records, and one record may span several segments, so the
parser keeps a buffer per direction and reports a record when its last byte arrives.

Handshake records carry *handshake messages* (a 1-byte type and a 3-byte length), which
in turn may span records. The first two are in the clear and tell a learner most of what
matters about a connection:

* the **ClientHello** names the server (the SNI extension, RFC 6066 §3), lists the
  application protocols the client can speak (ALPN, RFC 7301: ``h2``, ``http/1.1``) and
  the versions it offers (TLS 1.3 clients say so in the ``supported_versions`` extension,
  RFC 8446 §4.2.1, while the legacy version field stays at TLS 1.2);
* the **ServerHello** gives the chosen version, cipher suite and (in TLS 1.2) the ALPN
  choice. In TLS 1.3 everything after it is encrypted, ALPN's answer included (it moves to
  EncryptedExtensions).

An L4 balancer (NLB) sees none of this; a TLS-terminating ALB reads the SNI to pick a
certificate, decrypts, and only then sees the HTTP request it routes on.

Decryption. Given an NSS key log (``SSLKEYLOGFILE``), :class:`TlsParser` derives the
record keys (see :mod:`osilab.protocols._tls_crypto`) and decrypts: TLS 1.3 with
AES-128/256-GCM, ChaCha20-Poly1305 and AES-128-CCM; TLS 1.2 with AES-GCM and
ChaCha20-Poly1305 suites (ECDHE, DHE or RSA key exchange: the master secret is in the
log). CBC suites, 0-RTT early data and SSL 3.0 are not decrypted; such records are marked,
not guessed at. Decrypted application bytes are returned in ``fields["plaintext"]``, with
the negotiated ALPN in ``fields["alpn"]``, and the streams stage hands them to the HTTP/1.1
or HTTP/2 parser.

What the parser reports (the :class:`~osilab.protocols.StreamParser` contract): one
:class:`~osilab.protocols.AppMessage` per record, on the packet that completes it,
with Wireshark's field names (``record.content_type``, ``handshake.type``,
``handshake.extensions_server_name``, ``handshake.extensions_alpn_str``...). A record
holding a hello has the :class:`ClientHello` or :class:`ServerHello` as ``message``; one
holding a Certificate (the client's, in mTLS: decrypted in TLS 1.3) has the DER chain in
``fields["handshake.certificates"]``.
Hostile bytes (a record length beyond the limit, a hello cut short, a lost segment) mark
the message ``damaged`` and the parser looks for the next plausible record header; it
never raises.

Key logs are secrets: this module never prints or logs them, nor puts them in a message.

What this module must not know: files other than the key log, packets, TCP reassembly.

References:
    RFC 8446 (TLS 1.3), RFC 5246 (TLS 1.2), RFC 6066 §3 (SNI), RFC 7301 (ALPN),
    RFC 5288 (AES-GCM for TLS), RFC 7905 (ChaCha20-Poly1305 for TLS); the NSS key log
    format (firefox-source-docs, "NSS Key Log Format").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from osilab.capture.tls_records import looks_like_sslv2
from osilab.errors import DecodeError, OsilabError
from osilab.protocols import AppMessage, Direction, sslv2
from osilab.protocols._tls_crypto import (
    SUITES,
    DecryptError,
    KeyLog,
    RecordCipher,
    load_keylog,
    tls12_ciphers,
    tls13_cipher,
    tls13_next_secret,
)
from osilab.streams.keys import FlowKey

__all__ = [
    "TlsParser",
    "unread",
    "ClientHello",
    "ServerHello",
    "parse_client_hello",
    "parse_server_hello",
    "parse_certificate",
    "version_name",
    "cipher_name",
    "CONTENT_TYPES",
    "HANDSHAKE_TYPES",
    "VERSIONS",
    "MAX_RECORD",
]

#: Record content types (RFC 8446 §5.1), named as Wireshark's info column does.
CONTENT_TYPES: MappingProxyType[int, str] = MappingProxyType({
    20: "Change Cipher Spec", 21: "Alert", 22: "Handshake", 23: "Application Data",
    24: "Heartbeat",
})

#: Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
HANDSHAKE_TYPES: MappingProxyType[int, str] = MappingProxyType({
    0: "Hello Request", 1: "Client Hello", 2: "Server Hello", 4: "New Session Ticket",
    5: "End Of Early Data", 8: "Encrypted Extensions", 11: "Certificate",
    12: "Server Key Exchange", 13: "Certificate Request", 14: "Server Hello Done",
    15: "Certificate Verify", 16: "Client Key Exchange", 20: "Finished", 22: "Certificate Status",
    24: "Key Update",
})

#: Protocol versions as they appear on the wire.
VERSIONS: MappingProxyType[int, str] = MappingProxyType({
    0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3",  # RFC 6347 §4.1, RFC 9147 §5.3
    0x0002: "SSL 2.0", 0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3",
})

#: Largest record body accepted: 2^14 plus the 2048 bytes of expansion TLS 1.2 allows
#: (RFC 5246 §6.2.3; TLS 1.3 allows only 256, RFC 8446 §5.2).
MAX_RECORD = 2**14 + 2048

#: Largest handshake message put together (certificate chains are the big ones).
MAX_HANDSHAKE = 256 * 1024

#: ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
HELLO_RETRY_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

_EXT_SERVER_NAME, _EXT_ALPN, _EXT_SUPPORTED_VERSIONS = 0, 16, 43


def _is_grease(value: int) -> bool:
    """GREASE values (RFC 8701) are random-looking placeholders: 0x0a0a, 0x1a1a, ... 0xfafa."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def version_name(version: int) -> str:
    """``0x0303`` -> ``"TLS 1.2"``; unknown values as hex.

    >>> version_name(0x0304), version_name(0x7f1c)
    ('TLS 1.3', '0x7f1c')
    """
    return VERSIONS.get(version, f"0x{version:04x}")


def cipher_name(suite: int) -> str:
    """The IANA name of a cipher suite osilab knows, else its code point in hex."""
    known = SUITES.get(suite)
    return known.name if known is not None else f"0x{suite:04x}"


class _Short(Exception):
    """Internal: a structure ended before its declared length (turned into ``damaged``)."""


class _Reader:
    """Bounds-checked reading of TLS's length-prefixed vectors (RFC 8446 §3.4)."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else min(end, len(data))

    def take(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise _Short(f"needs {size} bytes at offset {self.pos}, {self.end - self.pos} left")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))

    def left(self) -> int:
        return self.end - self.pos


@dataclass(frozen=True, slots=True)
class ClientHello:
    """The first handshake message (RFC 8446 §4.1.2), fields in wire order.

    Attributes:
        legacy_version: the version field (``client_version`` in TLS 1.2; 0x0303 in 1.3).
        random: 32 bytes; the key log names the connection by it.
        session_id: up to 32 bytes (``legacy_session_id``).
        cipher_suites: code points offered, in the client's order (GREASE kept).
        extensions: extension type codes, in wire order.
        server_name: the SNI host name (extension 0), or None.
        alpn: protocols offered (extension 16), e.g. ``("h2", "http/1.1")``.
        supported_versions: versions offered in extension 43 (TLS 1.3 clients), GREASE dropped.
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    server_name: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]

    @property
    def version(self) -> str:
        """The highest version offered: ``"TLS 1.3"`` when supported_versions lists it."""
        offered = self.supported_versions or (self.legacy_version,)
        return version_name(max(offered))


@dataclass(frozen=True, slots=True)
class ServerHello:
    """The server's answer (RFC 8446 §4.1.3), fields in wire order.

    Attributes:
        legacy_version: the version field (0x0303 also for TLS 1.3).
        random: 32 bytes (a fixed value marks a HelloRetryRequest).
        session_id: echoed ``legacy_session_id_echo``.
        cipher_suite: the chosen suite.
        extensions: extension type codes, in wire order.
        selected_version: from supported_versions (TLS 1.3), else None.
        alpn: the chosen protocol (TLS 1.2 carries it here), else None.
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    extensions: tuple[int, ...]
    selected_version: int | None
    alpn: str | None

    @property
    def version(self) -> str:
        """The negotiated version, e.g. ``"TLS 1.3"``."""
        return version_name(self.selected_version or self.legacy_version)

    @property
    def hello_retry(self) -> bool:
        """Whether this is a HelloRetryRequest (the client must send a new ClientHello)."""
        return self.random == HELLO_RETRY_RANDOM

    @property
    def cipher(self) -> str:
        """The chosen cipher suite's IANA name (hex when unknown to osilab)."""
        return cipher_name(self.cipher_suite)


def _extensions(reader: _Reader) -> list[tuple[int, bytes]]:
    if reader.left() == 0:  # extensions are optional before TLS 1.3
        return []
    block = _Reader(reader.vector(2))
    found = []
    while block.left() > 0:
        kind = block.number(2)
        found.append((kind, block.vector(2)))
    return found


def _alpn_list(body: bytes) -> tuple[str, ...]:
    reader = _Reader(body)
    names = _Reader(reader.vector(2))
    out = []
    while names.left() > 0:
        out.append(names.vector(1).decode("ascii", "replace"))
    return tuple(out)


def parse_client_hello(body: bytes) -> ClientHello:
    """A ClientHello from its handshake body (after the 4-byte handshake header).

    Raises :class:`~osilab.errors.OsilabError` (a ``DecodeError``) when the body ends early.
    """
    try:
        reader, legacy_version, random, session_id = _hello_start(body)
        raw = reader.vector(2)
        suites = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2))
        reader.vector(1)  # legacy_compression_methods
        extensions = _extensions(reader)
        server_name = None
        alpn: tuple[str, ...] = ()
        versions: tuple[int, ...] = ()
        for kind, data in extensions:
            if kind == _EXT_SERVER_NAME and data:
                names = _Reader(_Reader(data).vector(2))
                while names.left() > 0:
                    name_type, name = names.number(1), names.vector(2)
                    if name_type == 0:
                        server_name = name.decode("ascii", "replace")
                        break
            elif kind == _EXT_ALPN:
                alpn = _alpn_list(data)
            elif kind == _EXT_SUPPORTED_VERSIONS:
                listed = _Reader(data).vector(1)
                offered = (int.from_bytes(listed[i : i + 2], "big") for i in range(0, len(listed) - 1, 2))
                versions = tuple(v for v in offered if not _is_grease(v))
    except _Short as exc:
        raise DecodeError(f"ClientHello cut short: {exc}", layer="tls") from None
    return ClientHello(
        legacy_version, random, session_id, suites, tuple(k for k, _ in extensions),
        server_name, alpn, versions,
    )


def _hello_start(body: bytes) -> tuple[_Reader, int, bytes, bytes]:
    """What both hellos open with (RFC 8446 §4.1.2, §4.1.3): legacy_version, random,
    legacy_session_id; and the reader, positioned after them."""
    reader = _Reader(body)
    return reader, reader.number(2), reader.take(32), reader.vector(1)


def parse_server_hello(body: bytes) -> ServerHello:
    """A ServerHello from its handshake body. Raises ``DecodeError`` when it ends early."""
    try:
        reader, legacy_version, random, session_id = _hello_start(body)
        suite = reader.number(2)
        reader.number(1)  # legacy_compression_method
        extensions = _extensions(reader)
        selected = None
        alpn = None
        for kind, data in extensions:
            if kind == _EXT_SUPPORTED_VERSIONS and len(data) >= 2:
                selected = int.from_bytes(data[:2], "big")
            elif kind == _EXT_ALPN:
                names = _alpn_list(data)
                alpn = names[0] if names else None
    except _Short as exc:
        raise DecodeError(f"ServerHello cut short: {exc}", layer="tls") from None
    return ServerHello(
        legacy_version, random, session_id, suite, tuple(k for k, _ in extensions), selected, alpn
    )


def parse_certificate(body: bytes, tls13: bool) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message body, leaf first (RFC 5246 §7.4.2; RFC
    8446 §4.4.2 adds a request context and per-entry extensions). Raises ``DecodeError``."""
    try:
        reader = _Reader(body)
        reader.vector(1) if tls13 else None  # certificate_request_context, skipped
        entries, chain = _Reader(reader.vector(3)), list[bytes]()
        while entries.left() > 0:
            chain.append(entries.vector(3))
            if tls13:
                entries.vector(2)  # the entry's extensions (OCSP, SCT)
    except _Short as exc:
        raise DecodeError(f"Certificate message cut short: {exc}", layer="tls") from None
    return tuple(chain)


def _plausible_header(data: bytes | bytearray, at: int) -> bool:
    return (
        20 <= data[at] <= 24
        and data[at + 1] == 3
        and data[at + 2] <= 4
        and int.from_bytes(data[at + 3 : at + 5], "big") <= MAX_RECORD
    )


class _Side:
    """One direction's state: the record buffer, handshake reassembly, and the key."""

    __slots__ = (
        "buffer", "head_packet", "lost", "handshake", "handshake_first", "encrypted",
        "cipher", "secret", "decrypt_failed", "dead", "sslv2",
    )

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.head_packet = 0  # the packet that carried the buffer's first byte
        self.lost = False  # bytes were lost: look for the next plausible record header
        self.handshake = bytearray()  # handshake-message bytes not yet complete
        self.handshake_first = 0
        self.encrypted = False  # records of this side are protected from now on
        self.cipher: RecordCipher | None = None
        self.secret: bytes | None = None  # TLS 1.3 current traffic secret (for KeyUpdate)
        self.decrypt_failed: str | None = None
        self.dead: str | None = None  # why nothing more is parsed on this side
        self.sslv2 = 0  # SSL 2.0 records read on this side (0: it speaks TLS records)


class TlsParser:
    """Sans-IO TLS record parser for one TCP flow (both directions).

    Args:
        flow: the flow (used only in messages).
        keylog: path of an NSS key log file; with it, application data is decrypted.

    >>> from osilab.protocols import Direction
    >>> parser = TlsParser()
    >>> hello = bytes.fromhex("16030100") + bytes([47]) + bytes.fromhex("0100002b0303") + bytes(32) \\
    ...     + bytes.fromhex("000002130101000000")
    >>> [m.summary for m in parser.feed(Direction.TO_SERVER, hello, 4, 0.0)]
    ["TLS Client Hello offering TLS 1.2 (record layer TLS 1.0: only the record's version)"]
    """

    protocol = "tls"

    def __init__(self, flow: FlowKey | None = None, *, keylog: str | None = None) -> None:
        self.flow = flow
        self.keylog_path = keylog
        self._keylog: KeyLog | None = None
        self._keylog_error: str | None = None
        self._sides = {Direction.TO_SERVER: _Side(), Direction.TO_CLIENT: _Side()}
        self.client_hello: ClientHello | None = None
        self.server_hello: ServerHello | None = None
        self.alpn: str | None = None
        self._version: int | None = None  # negotiated, once the ServerHello is seen
        self._notes: list[str] = []  # decryption facts to report once on the next message

    # -- the StreamParser contract ------------------------------------------------------

    def feed(self, direction: Direction, data: bytes, packet_no: int, time: float) -> list[AppMessage]:
        """Bytes that follow the last ones fed in this direction; returns completed records."""
        side = self._sides[direction]
        if side.dead or not data:
            return []
        starts_record = not side.buffer and not side.lost
        if not side.buffer:
            side.head_packet = packet_no
        side.buffer += data
        out: list[AppMessage] = []
        while True:
            buffer = side.buffer
            if side.lost:
                if not self._resync(side):
                    break
                side.head_packet = packet_no
            if side.sslv2 or (not side.lost and buffer and looks_like_sslv2(buffer, 0, len(buffer))):
                if not self._sslv2_record(direction, side, packet_no, time, out):
                    break
                continue
            if len(buffer) < 5:
                break
            length = int.from_bytes(buffer[3:5], "big")
            if not (20 <= buffer[0] <= 24 and buffer[1] == 3) or length > MAX_RECORD:
                why = (
                    f"record length {length} exceeds the {MAX_RECORD}-byte limit (RFC 8446 §5.2)"
                    if length > MAX_RECORD
                    else f"bytes {bytes(buffer[:3]).hex()} are not a TLS record header"
                )
                out.append(self._damaged(direction, side.head_packet, packet_no, time, why))
                side.lost = True
                del buffer[:1]
                continue
            if len(buffer) < 5 + length:
                break
            record = bytes(buffer[: 5 + length])
            del buffer[: 5 + length]
            out.append(self._record(direction, side, record, side.head_packet, packet_no, time))
            side.head_packet = packet_no
        if starts_record and not out and side.buffer and not side.lost:
            out.append(self._record_start(direction, side, packet_no, time))
        return out

    def gap(self, direction: Direction, size: int, packet_no: int) -> list[AppMessage]:
        """Bytes were never captured: resynchronise on the next plausible record header."""
        side = self._sides[direction]
        if side.dead:
            return []
        side.buffer.clear()
        side.handshake.clear()
        side.lost = True
        out = []
        if side.cipher is not None:
            side.cipher = None
            side.decrypt_failed = "bytes were lost, so record sequence numbers are unknown"
            out.append(self._damaged(direction, packet_no, packet_no, 0.0,
                                     f"{size} bytes lost; decryption stops in this direction"))
        return out

    def end(self, direction: Direction, packet_no: int, time: float) -> list[AppMessage]:
        """This direction finished (FIN): report a record that was cut short."""
        side = self._sides[direction]
        if side.buffer and not side.lost and not side.dead:
            size = len(side.buffer)
            side.buffer.clear()
            return [self._damaged(direction, side.head_packet, packet_no, time,
                                  f"the stream ended inside a record ({size} bytes of it seen)")]
        return []

    def close(self) -> list[AppMessage]:
        """The flow ended: nothing is waiting but cut records (reported by :meth:`end`)."""
        out: list[AppMessage] = []
        for direction in (Direction.TO_SERVER, Direction.TO_CLIENT):
            out += self.end(direction, self._sides[direction].head_packet, 0.0)
        return out

    # -- records ------------------------------------------------------------------------

    @staticmethod
    def _record_start(direction: Direction, side: _Side, packet_no: int, time: float) -> AppMessage:
        """A segment that opens a record it does not finish.

        Wireshark's TLS dissector reads the record header in such a segment before it asks
        TCP for the rest, so tshark lists ``tls`` in this frame too ("[TCP segment of a
        reassembled PDU]"); osilab mirrors that with a small layer of its own.
        """
        buffer = side.buffer
        size = int.from_bytes(buffer[3:5], "big") + 5 if len(buffer) >= 5 else None
        what = f"{len(buffer)} of {size} bytes" if size else f"{len(buffer)} bytes of its header"
        kind = CONTENT_TYPES.get(buffer[0], "record")
        return AppMessage("tls", direction, packet_no, packet_no, len(buffer),
                          f"TLS {kind} record starts here ({what}; continues in later segments)",
                          {"stage": "segment"}, time)

    def _sslv2_record(self, direction: Direction, side: _Side, packet_no: int, time: float,
                      out: list[AppMessage]) -> bool:  # fmt: skip
        """Take one whole SSL 2.0 record off the buffer into ``out`` (see :mod:`.sslv2`);
        False while it is incomplete. A side goes back to TLS records when one starts."""
        buffer = side.buffer
        if len(buffer) >= 5 and _plausible_header(buffer, 0):
            side.sslv2 = 0  # a "version 2 compatible" hello was answered in TLS
            return True
        size = sslv2.record_size(buffer)
        if size is None or len(buffer) < size[0] + size[1]:
            return False
        record = bytes(buffer[: size[0] + size[1]])
        del buffer[: len(record)]
        clear = 2 if direction is Direction.TO_SERVER else 1  # hello (and master key) in clear
        found, hello = sslv2.message(direction, record, size[0], side.sslv2 >= clear,
                                     side.head_packet, packet_no, time)  # fmt: skip
        side.sslv2 += 1
        side.head_packet = packet_no
        if hello is not None and self.client_hello is None:
            challenge = record[size[0] + 9 + hello["handshake.cipher_spec_len"] + hello["handshake.session_id_length"]:]
            self.client_hello = ClientHello(hello["handshake.version"], challenge, b"",
                                            hello["handshake.cipherspecs"], (), None, (), ())  # fmt: skip
            found = replace(found, message=self.client_hello)
        out.append(found)
        return True

    @staticmethod
    def _resync(side: _Side) -> bool:
        buffer = side.buffer
        for at in range(0, max(0, len(buffer) - 4)):
            if _plausible_header(buffer, at):
                del buffer[:at]
                side.lost = False
                return True
        if len(buffer) > 4:
            del buffer[: len(buffer) - 4]
        return False

    def _record(
        self, direction: Direction, side: _Side, record: bytes, first: int, last: int, time: float
    ) -> AppMessage:
        content_type, version = record[0], int.from_bytes(record[1:3], "big")
        fields: dict[str, Any] = {
            "stage": "complete",
            "record.content_type": content_type,
            "record.version": version,
            "record.length": len(record) - 5,
        }
        what = CONTENT_TYPES.get(content_type, f"content type {content_type}")
        damaged: str | None = None
        hello: ClientHello | ServerHello | None = None
        body = record[5:]
        if content_type == 20:  # ChangeCipherSpec: in TLS 1.2 the sender's next records are protected
            # (TLS 1.3 peers send it too, for middlebox compatibility, and it means nothing.)
            if self.server_hello is not None and self._version != 0x0304:
                self._start_tls12(direction, side)
        elif content_type == 23 or (
            side.encrypted and self._version != 0x0304 and content_type in (21, 22)
        ):  # TLS 1.3 protects every record as type 23; TLS 1.2 everything after ChangeCipherSpec
            what, hello, damaged = self._protected(direction, side, record, fields, what)
        elif content_type == 22:
            names, hello, damaged = self._handshake(direction, side, body, first, fields)
            what = ", ".join(names) if names else "Handshake (continues in the next record)"
        elif content_type == 21 and len(body) >= 2:
            fields["alert_message.level"], fields["alert_message.desc"] = body[0], body[1]
        shown = hello.version if hello is not None else version_name(self._version or version)
        if isinstance(hello, ClientHello):  # the version it offers is in "what"; the record's is not it
            shown = "TLS"
            if version_name(version) != hello.version:
                what += f" (record layer {version_name(version)}: only the record's version)"
        summary = f"{shown} {what}"
        if self._notes:
            fields["notes"] = tuple(self._notes)
            self._notes.clear()
        return AppMessage("tls", direction, first, last, len(record), summary, fields, time, hello,
                          damaged)

    def _protected(
        self, direction: Direction, side: _Side, record: bytes, fields: dict[str, Any], what: str
    ) -> tuple[str, ClientHello | ServerHello | None, str | None]:
        """An encrypted record: decrypt it when the key is known."""
        if side.cipher is None:
            if record[0] == 22:
                what = "Encrypted Handshake Message"
            return what, None, None
        try:
            plain = side.cipher.decrypt(record[:5], record[5:])
        except DecryptError as exc:
            side.cipher = None
            side.decrypt_failed = str(exc)
            return what, None, f"decryption failed ({exc}): a wrong key, lost bytes or 0-RTT data"
        inner = record[0]
        if self._version == 0x0304:  # TLSInnerPlaintext: content, type, zero padding
            stripped = plain.rstrip(b"\x00")
            if not stripped:
                return what, None, "decrypted record has no content type"
            inner, plain = stripped[-1], stripped[:-1]
        fields["decrypted"] = True
        fields["decrypted.content_type"] = inner
        if inner == 23:
            fields["plaintext"] = plain
            fields["alpn"] = self.alpn
            return f"Application Data ({len(plain)} bytes decrypted)", None, None
        if inner == 22:
            names, hello, damaged = self._handshake(direction, side, plain, 0, fields)
            return ", ".join(names) or "Handshake", hello, damaged
        if inner == 21 and len(plain) >= 2:
            fields["alert_message.level"], fields["alert_message.desc"] = plain[0], plain[1]
        return CONTENT_TYPES.get(inner, f"content type {inner}"), None, None

    def _handshake(
        self, direction: Direction, side: _Side, body: bytes, first: int, fields: dict[str, Any]
    ) -> tuple[list[str], ClientHello | ServerHello | None, str | None]:
        """Handshake messages completed by this record's content (they may span records)."""
        if not side.handshake:
            side.handshake_first = first
        side.handshake += body
        names: list[str] = []
        hello: ClientHello | ServerHello | None = None
        damaged = None
        buf = side.handshake
        while len(buf) >= 4:
            kind, length = buf[0], int.from_bytes(buf[1:4], "big")
            if length > MAX_HANDSHAKE:
                buf.clear()
                return names, hello, f"handshake message of {length} bytes is beyond osilab's limit"
            if len(buf) < 4 + length:
                break
            message = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            names.append(HANDSHAKE_TYPES.get(kind, f"Handshake type {kind}"))
            fields.setdefault("handshake.type", kind)
            try:
                found = self._handshake_message(direction, side, kind, message, fields)
            except OsilabError as exc:
                damaged = exc.reason
                continue
            if found is not None and hello is None:
                hello = found
                names[-1] += _hello_summary(found)
        return names, hello, damaged

    def _handshake_message(
        self, direction: Direction, side: _Side, kind: int, body: bytes, fields: dict[str, Any]
    ) -> ClientHello | ServerHello | None:
        if kind == 1 and direction is Direction.TO_SERVER:
            hello = parse_client_hello(body)
            self.client_hello = hello
            fields.update({
                "handshake.version": hello.legacy_version,
                "handshake.extensions.supported_version": hello.supported_versions,
                "handshake.extensions_server_name": hello.server_name,
                "handshake.extensions_alpn_str": hello.alpn,
                "handshake.ciphersuite": hello.cipher_suites,
                "version": hello.version,
            })
            return hello
        if kind == 2 and direction is Direction.TO_CLIENT:
            server = parse_server_hello(body)
            fields.update({
                "handshake.version": server.legacy_version,
                "handshake.extensions.supported_version": server.selected_version,
                "handshake.ciphersuite": server.cipher_suite,
                "handshake.extensions_alpn_str": server.alpn,
                "version": server.version,
                "cipher": server.cipher,
                "hello_retry_request": server.hello_retry,
            })
            if not server.hello_retry:
                self.server_hello = server
                self._version = server.selected_version or server.legacy_version
                if server.alpn:
                    self.alpn = server.alpn
                if self._version == 0x0304:
                    self._start_tls13()
            return server
        if kind == 11:  # Certificate: the chain the sender presents (the client's, for mTLS)
            fields["handshake.certificates"] = parse_certificate(body, self._version == 0x0304)
        elif kind == 8:  # EncryptedExtensions (TLS 1.3): ALPN's answer lives here
            reader = _Reader(body)
            try:
                for ext, data in _extensions(reader):
                    if ext == _EXT_ALPN:
                        names = _alpn_list(data)
                        self.alpn = names[0] if names else None
                        fields["handshake.extensions_alpn_str"] = self.alpn
            except _Short:
                pass
        elif kind == 20 and self._version == 0x0304:  # Finished: switch to application keys
            self._tls13_keys(direction, side, application=True)
        elif kind == 24 and self._version == 0x0304 and side.secret is not None:  # KeyUpdate
            suite = SUITES.get(self.server_hello.cipher_suite) if self.server_hello else None
            if suite is not None:
                side.secret = tls13_next_secret(suite, side.secret)
                side.cipher = tls13_cipher(suite, side.secret)
        return None

    # -- keys ---------------------------------------------------------------------------

    def _keys(self) -> KeyLog | None:
        if self.keylog_path is None or self._keylog_error is not None:
            return None
        if self._keylog is None:
            try:
                self._keylog = load_keylog(self.keylog_path)
            except OsilabError as exc:  # the message names the path only, never contents
                self._keylog_error = exc.reason
                self._notes.append(exc.reason)
                return None
        return self._keylog

    def _suite_for_decryption(self):  # -> Suite | None
        if self.server_hello is None or self.client_hello is None:
            return None
        suite = SUITES.get(self.server_hello.cipher_suite)
        if suite is None:
            self._notes.append(
                f"cipher suite {self.server_hello.cipher} is not one osilab decrypts"
            )
        return suite

    def _start_tls13(self) -> None:
        for direction, side in self._sides.items():
            side.encrypted = True
            self._tls13_keys(direction, side, application=False)

    def _tls13_keys(self, direction: Direction, side: _Side, *, application: bool) -> None:
        keys = self._keys()
        if keys is None or side.decrypt_failed:
            return
        suite = self._suite_for_decryption()
        if suite is None or not suite.tls13 or self.client_hello is None:
            return
        who = "CLIENT" if direction is Direction.TO_SERVER else "SERVER"
        label = f"{who}_TRAFFIC_SECRET_0" if application else f"{who}_HANDSHAKE_TRAFFIC_SECRET"
        secret = keys.get(label, self.client_hello.random)
        if secret is None:
            side.cipher = None
            if direction is Direction.TO_SERVER:
                self._notes.append(f"the key log has no {label} for this connection")
            return
        side.secret = secret
        side.cipher = tls13_cipher(suite, secret)

    def _start_tls12(self, direction: Direction, side: _Side) -> None:
        side.encrypted = True
        keys = self._keys()
        if keys is None or self.client_hello is None or self.server_hello is None:
            return
        suite = self._suite_for_decryption()
        if suite is None or suite.tls13:
            return
        master = keys.get("CLIENT_RANDOM", self.client_hello.random)
        if master is None:
            if direction is Direction.TO_SERVER:
                self._notes.append("the key log has no CLIENT_RANDOM for this connection")
            return
        client, server = tls12_ciphers(
            suite, master, self.client_hello.random, self.server_hello.random
        )
        side.cipher = client if direction is Direction.TO_SERVER else server

    # -- helpers ------------------------------------------------------------------------

    def _damaged(
        self, direction: Direction, first: int, last: int, time: float, why: str
    ) -> AppMessage:
        return AppMessage("tls", direction, first, last, 0, f"TLS: {why}",
                          {"stage": "error", "layer": False}, time, None, why)


def unread(message: AppMessage) -> bool:
    """Whether ``message`` is a protected TLS record osilab could not decrypt: application
    data (or TLS 1.3's encrypted handshake) whose keys the key log did not give.

    Commands count the connections that have one (``osilab http``, ``osilab tls``), so a
    learner knows how much of the capture stayed sealed.
    """
    return (message.protocol == "tls" and message.fields.get("record.content_type") == 23
            and not message.fields.get("decrypted"))  # fmt: skip


def _hello_summary(hello: ClientHello | ServerHello) -> str:
    if isinstance(hello, ClientHello):
        parts = [f"offering {hello.version}"]
        if hello.server_name:
            parts.append(f"SNI={hello.server_name}")
        if hello.alpn:
            parts.append("ALPN=" + ",".join(hello.alpn))
        return " " + " ".join(parts)
    extra = f" {hello.cipher}"
    if hello.alpn:
        extra += f" ALPN={hello.alpn}"
    return " (Hello Retry Request)" if hello.hello_retry else extra


"""TLS, SSL 2.0 and DTLS records as one packet shows them: the dissector's view.

Theory of operation
-------------------
A TLS record (RFC 8446 §5.1) opens with 5 bytes: content type (20-24), a legacy version
(3.x) and a length. An SSL 2.0 record (the 1995 draft, still sent as the first hello by
old clients) has a 2-byte header whose high bit is set and whose 15 low bits are the
length; its CLIENT-HELLO lists 3-byte cipher specs and carries no extensions, so no SNI.
A DTLS record (RFC 6347 §4.1, RFC 9147) adds an epoch and a 48-bit sequence number to
TLS's header, and its version bytes are the ones' complement of TLS's (0xfeff DTLS 1.0,
0xfefd DTLS 1.2, 0xfefc DTLS 1.3).

These dissectors read what one segment or datagram shows; a record that spans segments
is put together by the stream parser (:mod:`osilab.protocols.tls`), whose messages the
stream-aware view shows instead.

What this module must not know: streams, key logs, decryption.
"""

from __future__ import annotations

from struct import unpack_from

from osilab.capture.layer import Layer, new_layer

__all__ = ["looks_like_tls", "looks_like_sslv2", "client_hello_sni", "sslv2_client_hello", "tls", "dtls",
           "dtls_client_hello_body", "TLS_VERSIONS", "DTLS_VERSIONS", "DTLS_MINORS"]  # fmt: skip

_Next = tuple[Layer, str | None, int, int]


def looks_like_tls(data: bytes, off: int, end: int) -> bool:
    """A TLS record header (RFC 8446 §5.1: content type 20-24, version 3.x) or an SSL 2.0
    ClientHello or ServerHello (:func:`looks_like_sslv2`) at ``off``."""
    if end - off < 5:
        return False
    content_type, major, minor = data[off], data[off + 1], data[off + 2]
    return (20 <= content_type <= 24 and major == 3 and minor <= 4) or looks_like_sslv2(data, off, end)


def looks_like_sslv2(data: bytes | bytearray, off: int, end: int) -> bool:
    """An SSL 2.0 record with a 2-byte header (high bit set, then a 15-bit length) holding a
    CLIENT-HELLO (type 1, version 0x0002 or a 3.x "version 2 compatible" hello) or a
    SERVER-HELLO (type 4: session-id-hit, certificate type, version 0x0002)."""
    if end - off < 7 or not data[off] & 0x80:
        return False
    length = ((data[off] & 0x7F) << 8) | data[off + 1]
    kind = data[off + 2]
    if kind == 1:
        return length >= 9 and (data[off + 3], data[off + 4]) in _SSLV2_HELLO_VERSIONS
    return kind == 4 and length >= 11 and data[off + 3] in (0, 1) and data[off + 5:off + 7] == b"\x00\x02"


_SSLV2_HELLO_VERSIONS = frozenset(((0, 2), (3, 0), (3, 1), (3, 2), (3, 3)))




_TLS_CONTENT = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data",
                24: "heartbeat"}
_TLS_HANDSHAKE = {0: "hello_request", 1: "client_hello", 2: "server_hello", 4: "new_session_ticket",
                  8: "encrypted_extensions", 11: "certificate", 12: "server_key_exchange",
                  13: "certificate_request", 14: "server_hello_done", 15: "certificate_verify",
                  16: "client_key_exchange", 20: "finished"}
TLS_VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
                0x0304: "TLS 1.3"}


def _hello_extension(body: bytes, wanted: int) -> bytes | None:
    """The data of extension ``wanted`` in a ClientHello body (after the 4-byte handshake
    header), cut where the bytes end; ``None`` when absent or when the bytes end first.

    RFC 8446 §4.1.2 lays the ClientHello out as: version(2) random(32) session_id<0..32>
    cipher_suites<2..> compression<1..> extensions<..>, each extension type(2) length(2) data.
    """
    try:
        p = 34
        p += 1 + body[p]
        p += 2 + int.from_bytes(body[p:p + 2], "big")
        p += 1 + body[p]
        ext_end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        while p + 4 <= min(ext_end, len(body)):
            ext_type, ext_len = unpack_from("!HH", body, p)
            p += 4
            if ext_type == wanted:
                return bytes(body[p:p + ext_len])
            p += ext_len
    except IndexError:
        return None
    return None


def client_hello_sni(body: bytes) -> str | None:
    """The server name (SNI, extension 0: RFC 6066 §3) in a ClientHello body, or ``None``."""
    ext = _hello_extension(body, 0)
    if ext is None or len(ext) < 5:
        return None
    name_len = int.from_bytes(ext[3:5], "big")
    name = ext[5:5 + name_len]
    return name.decode("ascii", "replace") if len(name) == name_len else None


def client_hello_version(body: bytes) -> int | None:
    """The highest version a ClientHello offers: from supported_versions (extension 43,
    RFC 8446 §4.2.1; GREASE values dropped) when present, else its ``client_version``.

    A TLS 1.3 ClientHello says 0x0303 (TLS 1.2) in its version field and lists 0x0304 in
    supported_versions; the record layer around it often says 0x0301 (TLS 1.0) for old
    middleboxes' sake (RFC 8446 §5.1): neither is the version offered.
    """
    if len(body) < 2:
        return None
    offered = [int.from_bytes(body[0:2], "big")]
    ext = _hello_extension(body, 43)
    if ext:
        listed = [int.from_bytes(ext[i:i + 2], "big") for i in range(1, min(len(ext), 1 + ext[0]) - 1, 2)]
        offered = [v for v in listed if v & 0x0F0F != 0x0A0A] or offered
    return max(offered)


def tls(data: bytes, off: int, end: int) -> _Next:
    """The TLS records one segment shows (RFC 8446 §5.1); SSL 2.0 hellos too (:func:`_sslv2`)."""
    if data[off] & 0x80:
        return _sslv2(data, off, end)
    content_type, version, length = data[off], unpack_from("!H", data, off + 1)[0], unpack_from("!H", data, off + 3)[0]
    fields: dict = {"record.content_type": content_type, "record.version": version, "record.length": length}
    what = _TLS_CONTENT.get(content_type, str(content_type))
    records = 1
    p = off + 5 + length
    while p + 5 <= end and looks_like_tls(data, p, end):  # more records in the same segment
        records += 1
        p += 5 + unpack_from("!H", data, p + 3)[0]
    fields["records"] = records
    if content_type == 22 and end - off >= 9:
        hs_type = data[off + 5]
        fields["handshake.type"] = hs_type
        what = _TLS_HANDSHAKE.get(hs_type, f"handshake {hs_type}")
        if hs_type == 1:
            body = data[off + 9:min(end, off + 5 + length)]
            sni = client_hello_sni(body)
            offered = client_hello_version(body)
            if offered is not None:
                fields["handshake.version"] = int.from_bytes(body[0:2], "big")
                what += f" offering {TLS_VERSIONS.get(offered, hex(offered))}"
            if sni is not None:
                fields["handshake.extensions_server_name"] = sni
                what += f" SNI={sni}"
            if offered is not None and offered != version:
                what += f" (record layer {TLS_VERSIONS.get(version, hex(version))}: only the record's version)"
    cut = off + 5 + length > end
    shown = TLS_VERSIONS.get(version, f"TLS {version:#06x}")
    summary = f"{'TLS' if 'offering' in what else shown} {what}"  # a hello: its own version
    if records > 1:
        summary += f" (+{records - 1} more record{'s' if records > 2 else ''})"
    if cut:
        summary += f" (record continues in later segments: {end - off - 5} of {length} bytes here)"
    return new_layer("tls", off, end - off, fields, summary), None, end, end


#: DTLS versions are the ones' complement of TLS's (RFC 6347 §4.1, RFC 9147 §5.3): the second byte.
DTLS_MINORS = frozenset((0xFF, 0xFD, 0xFC))
DTLS_VERSIONS = {0xFEFF: "DTLS 1.0", 0xFEFD: "DTLS 1.2", 0xFEFC: "DTLS 1.3"}


def dtls_client_hello_body(body: bytes) -> bytes:
    """A DTLS ClientHello body as TLS lays it out: the cookie<0..255> after the session id
    (RFC 6347 §4.2.1) taken out, so :func:`client_hello_sni` reads the rest."""
    if len(body) < 35:
        return body
    at = 35 + body[34]
    if at >= len(body):
        return body
    return body[:at] + body[at + 1 + body[at]:]


def dtls(data: bytes, off: int, end: int) -> _Next:
    """A DTLS record (RFC 6347 §4.1): type(8) version(16) epoch(16) sequence(48) length(16);
    a handshake adds type(8) length(24) message_seq(16) fragment_offset(24) fragment_length(24)."""
    content_type, version, epoch = data[off], unpack_from("!H", data, off + 1)[0], unpack_from("!H", data, off + 3)[0]
    length = unpack_from("!H", data, off + 11)[0]
    fields: dict = {"record.content_type": content_type, "record.version": version,
                    "record.epoch": epoch, "record.length": length}
    what = _TLS_CONTENT.get(content_type, str(content_type))
    if content_type == 22 and epoch == 0 and end - off >= 25:
        hs_type = data[off + 13]
        fields["handshake.type"] = hs_type
        what = _TLS_HANDSHAKE.get(hs_type, f"handshake {hs_type}")
        if hs_type == 1:
            body = dtls_client_hello_body(bytes(data[off + 25:min(end, off + 13 + length)]))
            fields["handshake.version"] = unpack_from("!H", body)[0] if len(body) >= 2 else None
            sni = client_hello_sni(body)
            if sni is not None:
                fields["handshake.extensions_server_name"] = sni
                what += f" SNI={sni}"
    summary = f"{DTLS_VERSIONS.get(version, hex(version))} {what}"
    return new_layer("dtls", off, end - off, fields, summary), None, end, end


def sslv2_client_hello(body: bytes) -> dict | None:
    """The fields of an SSL 2.0 CLIENT-HELLO message (from its type byte), or None when cut:
    type(8) version(16) cipher-specs length(16) session-id length(16) challenge length(16),
    then the 3-byte cipher specs, the session id and the challenge."""
    if len(body) < 9 or body[0] != 1:
        return None
    version, specs_len, sid_len, challenge_len = unpack_from("!HHHH", body, 1)
    specs = body[9:9 + specs_len]
    if len(specs) < specs_len:
        return None
    ciphers = tuple(int.from_bytes(specs[i:i + 3], "big") for i in range(0, specs_len - 2, 3))
    return {"handshake.version": version, "handshake.cipher_spec_len": specs_len,
            "handshake.session_id_length": sid_len, "handshake.challenge_length": challenge_len,
            "handshake.cipherspecs": ciphers}


def _sslv2(data: bytes, off: int, end: int) -> _Next:
    length = ((data[off] & 0x7F) << 8) | data[off + 1]
    fields: dict = {"record.length": length, "record.version": 2, "handshake.type": data[off + 2]}
    body = bytes(data[off + 2:min(end, off + 2 + length)])
    hello = sslv2_client_hello(body)
    if hello is not None:
        fields.update(hello)
        summary = (f"SSL 2.0 CLIENT-HELLO offering {TLS_VERSIONS.get(hello['handshake.version'], 'SSL 2.0')}, "
                   f"{len(hello['handshake.cipherspecs'])} cipher specs (no SNI: SSL 2.0 has no extensions)")
    else:
        summary = "SSL 2.0 SERVER-HELLO" if data[off + 2] == 4 else f"SSL 2.0 message type {data[off + 2]}"
    return new_layer("tls", off, end - off, fields, summary), None, end, end

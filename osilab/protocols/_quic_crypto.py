"""QUIC packet protection: the Initial secrets, header protection and the packet AEAD.

Theory of operation
-------------------
QUIC (RFC 9000) encrypts almost every byte of every packet, even the first ones. But the
keys of the very first packets, the *Initial* packets, are no secret at all: both ends
derive them from a value the client sends in clear, the Destination Connection ID of its
first Initial packet (RFC 9001 §5.2)::

    initial_secret        = HKDF-Extract(initial_salt, client_dcid)
    client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
    server_initial_secret = HKDF-Expand-Label(initial_secret, "server in", "", 32)

The salt is fixed per QUIC version (v1: RFC 9001 §5.2; v2: RFC 9369 §3.3.1). So anyone on
the path can read the Initial packets, the TLS ClientHello in them included: Initial
protection guards against tampering by off-path attackers, not against eavesdroppers.
(That is why the SNI of an HTTP/3 connection is as visible as that of HTTPS over TCP.)

From any secret -- an Initial one, or a TLS 1.3 traffic secret that a key log
(``SSLKEYLOGFILE``) gives for the Handshake and 1-RTT packets -- three values follow by
HKDF-Expand-Label (RFC 9001 §5.1; v2 renames the labels, RFC 9369 §3.3.2):

* ``key`` ("quic key"), the AEAD key, and ``iv`` ("quic iv"): the packet's nonce is the
  iv XOR the packet number; the additional data is the packet's header (§5.3);
* ``hp`` ("quic hp"), the *header protection* key (§5.4): the first byte's low bits and
  the packet number are masked with bytes made from a 16-byte sample of the ciphertext
  (AES-ECB of the sample for AES suites; ChaCha20 with the sample as counter and nonce
  for ChaCha20-Poly1305). Removing that mask is the first step of reading any packet.

A 1-RTT packet's *key phase* bit flips when an endpoint moves to the next keys
(``"quic ku"``, RFC 9001 §6): :meth:`PacketKeys.next_phase`.

What this module must not know: packets' frames, streams, files. It turns secrets and
protected bytes into plaintext, nothing more. Key log contents are never printed or
put in an error message.

References:
    RFC 9001 (Using TLS to Secure QUIC) §5, §6, Appendix A (test vectors);
    RFC 9369 (QUIC Version 2) §3.3; RFC 9000 §17.1 and Appendix A.3 (packet numbers).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from osilab.protocols._tls_crypto import SUITES, DecryptError, Suite, _aead, _expand_label

__all__ = [
    "QuicVersion",
    "QUIC_VERSIONS",
    "INITIAL_SUITE",
    "PacketKeys",
    "initial_secrets",
    "initial_keys",
    "packet_keys",
    "decode_packet_number",
    "DecryptError",
]


@dataclass(frozen=True, slots=True)
class QuicVersion:
    """What differs between QUIC versions for packet protection.

    Attributes:
        number: the 32-bit version on the wire.
        name: ``"QUIC v1"``...
        salt: the Initial salt (RFC 9001 §5.2, RFC 9369 §3.3.1).
        label_prefix: ``b"quic "`` for v1, ``b"quicv2 "`` for v2 (RFC 9369 §3.3.2).
        long_types: long-header type bits -> packet type (v2 reorders them, RFC 9369 §3.2).
    """

    number: int
    name: str
    salt: bytes
    label_prefix: bytes
    long_types: MappingProxyType[int, str]


_V1_TYPES = MappingProxyType({0: "Initial", 1: "0-RTT", 2: "Handshake", 3: "Retry"})
_V2_TYPES = MappingProxyType({1: "Initial", 2: "0-RTT", 3: "Handshake", 0: "Retry"})
_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_DRAFT29_SALT = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")

#: Versions whose packets osilab can unprotect, by number (IANA QUIC Versions registry).
QUIC_VERSIONS: MappingProxyType[int, QuicVersion] = MappingProxyType({
    0x00000001: QuicVersion(0x00000001, "QUIC v1", _V1_SALT, b"quic ", _V1_TYPES),
    0x6B3343CF: QuicVersion(0x6B3343CF, "QUIC v2",
                            bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
                            b"quicv2 ", _V2_TYPES),  # fmt: skip
    **{
        0xFF000000 + draft: QuicVersion(0xFF000000 + draft, f"draft-{draft}", _DRAFT29_SALT,
                                        b"quic ", _V1_TYPES)  # fmt: skip
        for draft in (29, 30, 31, 32)
    },
})

#: Initial packets are always protected with TLS_AES_128_GCM_SHA256 (RFC 9001 §5.2).
INITIAL_SUITE: Suite = SUITES[0x1301]


def initial_secrets(version: QuicVersion, client_dcid: bytes) -> tuple[bytes, bytes]:
    """(client, server) Initial secrets from the client's first Destination Connection ID.

    >>> v1 = QUIC_VERSIONS[1]
    >>> initial_secrets(v1, bytes.fromhex("8394c8f03e515708"))[0].hex()[:16]
    'c00cf151ca5be075'
    """
    initial = hmac.new(version.salt, client_dcid, "sha256").digest()  # HKDF-Extract (RFC 5869 §2.2)
    return (_expand_label("sha256", initial, b"client in", 32),
            _expand_label("sha256", initial, b"server in", 32))  # fmt: skip


class PacketKeys:
    """The packet protection of one direction and epoch: AEAD key, iv and header key.

    ``largest`` is the largest packet number decrypted so far (for decoding truncated
    packet numbers, RFC 9000 §17.1), -1 before the first.
    """

    __slots__ = ("suite", "version", "secret", "key", "iv", "hp", "_aead", "_mask", "largest")

    def __init__(self, suite: Suite, version: QuicVersion, secret: bytes) -> None:
        prefix = version.label_prefix
        self.suite, self.version, self.secret = suite, version, secret
        self.key = _expand_label(suite.hash_name, secret, prefix + b"key", suite.key_length)
        self.iv = _expand_label(suite.hash_name, secret, prefix + b"iv", 12)
        hp_length = 32 if suite.aead == "CHACHA20-POLY1305" else suite.key_length
        self.hp = _expand_label(suite.hash_name, secret, prefix + b"hp", hp_length)
        self._aead = _aead(suite.aead, self.key)
        self._mask: Callable[[bytes], bytes] = (
            self._chacha_mask if suite.aead == "CHACHA20-POLY1305"
            else Cipher(algorithms.AES(self.hp), modes.ECB()).encryptor().update
        )  # fmt: skip
        self.largest = -1

    def _chacha_mask(self, sample: bytes) -> bytes:
        # RFC 9001 §5.4.4: counter = sample[0:4] (little-endian), nonce = sample[4:16];
        # cryptography's ChaCha20 takes exactly that 16-byte block as its "nonce".
        return Cipher(algorithms.ChaCha20(self.hp, sample), None).encryptor().update(bytes(5))

    def mask(self, sample: bytes) -> bytes:
        """The header protection mask for a 16-byte ciphertext sample (RFC 9001 §5.4)."""
        return self._mask(sample)[:5]

    def next_phase(self) -> PacketKeys:
        """The keys after a key update (RFC 9001 §6.1): a new secret, the same ``hp``."""
        size = hashes.SHA384.digest_size if self.suite.hash_name == "sha384" else 32
        label = self.version.label_prefix + b"ku"
        following = PacketKeys(self.suite, self.version,
                               _expand_label(self.suite.hash_name, self.secret, label, size))  # fmt: skip
        following.hp, following._mask, following.largest = self.hp, self._mask, self.largest
        return following

    def unprotect(self, packet: bytes, pn_offset: int, long_header: bool) -> tuple[bytes, int, bytes]:
        """Remove header protection, then decrypt: ``(header, packet number, payload)``.

        ``packet`` is the whole packet (header and protected payload), ``pn_offset`` where
        its packet number starts. Raises :class:`DecryptError` when the tag does not match
        (a wrong key) or the packet is too short to sample.
        """
        sample_at = pn_offset + 4
        if len(packet) < sample_at + 16:
            raise DecryptError("packet too short for a header protection sample")
        mask = self.mask(packet[sample_at : sample_at + 16])
        first = packet[0] ^ (mask[0] & (0x0F if long_header else 0x1F))
        pn_length = (first & 0x03) + 1
        truncated = bytes(b ^ m for b, m in zip(packet[pn_offset : pn_offset + pn_length],
                                                mask[1 : 1 + pn_length], strict=True))  # fmt: skip
        header = bytes([first]) + packet[1:pn_offset] + truncated
        number = decode_packet_number(self.largest, int.from_bytes(truncated, "big"), pn_length * 8)
        nonce = (int.from_bytes(self.iv, "big") ^ number).to_bytes(12, "big")
        try:
            payload = self._aead.decrypt(nonce, packet[pn_offset + pn_length :], header)
        except InvalidTag:
            raise DecryptError("the authentication tag does not match") from None
        self.largest = max(self.largest, number)
        return header, number, payload


def initial_keys(version: QuicVersion, client_dcid: bytes) -> tuple[PacketKeys, PacketKeys]:
    """(client's, server's) Initial packet keys for this connection (RFC 9001 §5.2)."""
    client, server = initial_secrets(version, client_dcid)
    return PacketKeys(INITIAL_SUITE, version, client), PacketKeys(INITIAL_SUITE, version, server)


def packet_keys(suite_code: int, version: QuicVersion, secret: bytes) -> PacketKeys | None:
    """Keys from a TLS 1.3 traffic secret (a key log's), or None for a suite osilab lacks."""
    suite = SUITES.get(suite_code)
    if suite is None or not suite.tls13:
        return None
    return PacketKeys(suite, version, secret)


def decode_packet_number(largest: int, truncated: int, bits: int) -> int:
    """The full packet number from its truncated form (RFC 9000 Appendix A.3).

    The sender sends only the low bits; the receiver picks the value closest to the
    next expected one.

    >>> hex(decode_packet_number(0xa82f30ea, 0x9b32, 16))  # RFC 9000 A.3's example
    '0xa82f9b32'
    """
    expected = largest + 1
    window = 1 << bits
    half, mask = window // 2, window - 1
    candidate = (expected & ~mask) | truncated
    if candidate <= expected - half and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate

"""TLS record decryption from an NSS key log: the key schedules of TLS 1.2 and TLS 1.3.

Theory of operation
-------------------
A TLS connection's traffic is protected by symmetric keys that both ends derive from a
shared secret; a passive observer never sees that secret. Browsers, curl and OpenSSL can
be told to *write it down* (the ``SSLKEYLOGFILE`` environment variable), one line per
connection and secret, in the "NSS key log" format::

    CLIENT_RANDOM <client random, hex> <TLS 1.2 master secret, hex>
    CLIENT_HANDSHAKE_TRAFFIC_SECRET <client random> <secret>     (TLS 1.3)
    SERVER_HANDSHAKE_TRAFFIC_SECRET <client random> <secret>
    CLIENT_TRAFFIC_SECRET_0 <client random> <secret>
    SERVER_TRAFFIC_SECRET_0 <client random> <secret>

The client random (32 bytes, in the ClientHello) names the connection. From a secret the
record keys follow by the published key schedules:

* **TLS 1.3** (RFC 8446 §7.1-7.3): ``key = HKDF-Expand-Label(secret, "key", "", key_length)``
  and ``iv = HKDF-Expand-Label(secret, "iv", "", 12)``. Each record's nonce is the iv XOR
  the record's sequence number; the additional data is the 5-byte record header. The
  plaintext ends with the real content type, then zero padding (§5.2, §5.3).
* **TLS 1.2** (RFC 5246 §6.3, RFC 5288, RFC 7905): ``key_block = PRF(master_secret,
  "key expansion", server_random + client_random)`` is cut into MAC keys (none for AEAD),
  then the client and server keys, then the client and server fixed IVs. AES-GCM records
  start with an 8-byte explicit nonce; the additional data is ``seq_num + type + version +
  length``.

Key logs are secrets: nothing here prints, logs or puts their contents in an error
message. A :class:`KeyLog`'s ``repr`` shows only how many entries it holds.

What this module must not know: records, streams, packets (it turns secrets and
ciphertext into plaintext, nothing more).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from osilab.errors import UsageError

__all__ = [
    "KeyLog",
    "load_keylog",
    "Suite",
    "SUITES",
    "RecordCipher",
    "tls13_cipher",
    "tls12_ciphers",
    "tls13_next_secret",
    "DecryptError",
]


class DecryptError(Exception):
    """A record did not authenticate under the key: wrong key, lost record, or 0-RTT data."""


@dataclass(frozen=True, slots=True)
class KeyLog:
    """The secrets of an NSS key log file, by label and client random.

    ``secrets[label][client_random]`` is the secret (bytes). ``repr`` never shows them.
    """

    secrets: MappingProxyType = field(repr=False)

    def get(self, label: str, client_random: bytes) -> bytes | None:
        """The secret for one label (``"CLIENT_RANDOM"``...) and connection, or None."""
        return self.secrets.get(label, {}).get(client_random)

    def __repr__(self) -> str:
        return f"KeyLog({sum(len(v) for v in self.secrets.values())} secrets)"


def load_keylog(path: str) -> KeyLog:
    """Read an NSS key log file (cached while the file is unchanged).

    Malformed lines are skipped (as NSS and Wireshark do). Raises :class:`UsageError`
    naming only the path when the file cannot be read or holds no key at all -- never its
    contents.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read the key log file {path} ({exc.strerror})") from None
    return _load(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> KeyLog:
    try:
        with open(path, "rb") as handle:
            raw = handle.read(64 * 1024 * 1024)
    except OSError as exc:
        raise UsageError(f"cannot read the key log file {path} ({exc.strerror})") from None
    secrets: dict[str, dict[bytes, bytes]] = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) != 3 or line.startswith(b"#"):
            continue
        try:
            label = parts[0].decode("ascii")
            client_random, secret = bytes.fromhex(parts[1].decode()), bytes.fromhex(parts[2].decode())
        except ValueError:
            continue
        secrets.setdefault(label, {})[client_random] = secret
    if not secrets:
        raise UsageError(f"the key log file {path} holds no key: no line of the NSS key log "
                         "form 'LABEL CLIENT_RANDOM SECRET' (as SSLKEYLOGFILE writes)")  # fmt: skip
    return KeyLog(MappingProxyType(secrets))


@dataclass(frozen=True, slots=True)
class Suite:
    """What decryption needs to know of a cipher suite (IANA TLS Cipher Suites registry).

    Attributes:
        name: the IANA name.
        aead: ``"AES-GCM"``, ``"CHACHA20-POLY1305"`` or ``"AES-CCM"``.
        key_length: bytes of key.
        hash_name: the PRF / HKDF hash (``"sha256"`` or ``"sha384"``).
        tls13: whether this is a TLS 1.3 suite.
    """

    name: str
    aead: str
    key_length: int
    hash_name: str
    tls13: bool


#: Cipher suites osilab can decrypt, by code point.
SUITES: MappingProxyType[int, Suite] = MappingProxyType({
    0x1301: Suite("TLS_AES_128_GCM_SHA256", "AES-GCM", 16, "sha256", True),
    0x1302: Suite("TLS_AES_256_GCM_SHA384", "AES-GCM", 32, "sha384", True),
    0x1303: Suite("TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", 32, "sha256", True),
    0x1304: Suite("TLS_AES_128_CCM_SHA256", "AES-CCM", 16, "sha256", True),
    0xC02B: Suite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "AES-GCM", 16, "sha256", False),
    0xC02C: Suite("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "AES-GCM", 32, "sha384", False),
    0xC02F: Suite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "AES-GCM", 16, "sha256", False),
    0xC030: Suite("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "AES-GCM", 32, "sha384", False),
    0x009C: Suite("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES-GCM", 16, "sha256", False),
    0x009D: Suite("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES-GCM", 32, "sha384", False),
    0x009E: Suite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "AES-GCM", 16, "sha256", False),
    0x009F: Suite("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "AES-GCM", 32, "sha384", False),
    0xCCA8: Suite("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", 32, "sha256", False),
    0xCCA9: Suite("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", 32, "sha256", False),
    0xCCAA: Suite("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", 32, "sha256", False),
})

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def _aead(kind: str, key: bytes) -> AESGCM | ChaCha20Poly1305 | AESCCM:
    if kind == "AES-GCM":
        return AESGCM(key)
    if kind == "AES-CCM":
        return AESCCM(key)
    return ChaCha20Poly1305(key)


class RecordCipher:
    """Decrypts one direction's records under one key, counting sequence numbers.

    ``tls13``: the nonce is ``iv XOR seq`` and the AAD is the record header.
    TLS 1.2 AES-GCM: the nonce is the 4-byte fixed IV plus the record's 8-byte explicit
    nonce; TLS 1.2 ChaCha20: ``iv XOR seq`` (RFC 7905); AAD ``seq + type + version + length``.
    """

    __slots__ = ("_aead", "_iv", "_tls13", "_explicit", "seq")

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self._aead = _aead(suite.aead, key)
        self._iv = iv
        self._tls13 = suite.tls13
        self._explicit = not suite.tls13 and suite.aead == "AES-GCM"
        self.seq = 0

    def decrypt(self, header: bytes, fragment: bytes) -> bytes:
        """The plaintext of one record (header = the 5 record-header bytes)."""
        seq = self.seq
        self.seq += 1
        try:
            if self._tls13:
                nonce = _xor_seq(self._iv, seq)
                return self._aead.decrypt(nonce, fragment, header)
            if self._explicit:
                if len(fragment) < 24:
                    raise DecryptError("record too short for AES-GCM")
                nonce, body = self._iv + fragment[:8], fragment[8:]
            else:
                if len(fragment) < 16:
                    raise DecryptError("record too short for ChaCha20-Poly1305")
                nonce, body = _xor_seq(self._iv, seq), fragment
            aad = seq.to_bytes(8, "big") + header[:3] + (len(body) - 16).to_bytes(2, "big")
            return self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            raise DecryptError("the authentication tag does not match") from None


def _xor_seq(iv: bytes, seq: int) -> bytes:
    padded = seq.to_bytes(len(iv), "big")
    return bytes(a ^ b for a, b in zip(iv, padded, strict=True))


def _expand_label(hash_name: str, secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) with an empty context."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(_HASHES[hash_name](), length, info).derive(secret)


def tls13_cipher(suite: Suite, secret: bytes) -> RecordCipher:
    """The record cipher for one TLS 1.3 traffic secret (RFC 8446 §7.3)."""
    key = _expand_label(suite.hash_name, secret, b"key", suite.key_length)
    iv = _expand_label(suite.hash_name, secret, b"iv", 12)
    return RecordCipher(suite, key, iv)


def tls13_next_secret(suite: Suite, secret: bytes) -> bytes:
    """The next application traffic secret after a KeyUpdate (RFC 8446 §7.2)."""
    size = hashlib.new(suite.hash_name).digest_size
    return _expand_label(suite.hash_name, secret, b"traffic upd", size)


def _prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF: P_hash(secret, label + seed) (RFC 5246 §5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, hash_name).digest()
        out += hmac.new(secret, a + seed, hash_name).digest()
    return out[:length]


def tls12_ciphers(
    suite: Suite, master_secret: bytes, client_random: bytes, server_random: bytes
) -> tuple[RecordCipher, RecordCipher]:
    """(client-write, server-write) record ciphers from a TLS 1.2 master secret."""
    iv_length = 4 if suite.aead == "AES-GCM" else 12
    size = 2 * suite.key_length + 2 * iv_length
    block = _prf(suite.hash_name, master_secret, b"key expansion", server_random + client_random, size)
    k = suite.key_length
    client_key, server_key = block[:k], block[k : 2 * k]
    client_iv, server_iv = block[2 * k : 2 * k + iv_length], block[2 * k + iv_length : size]
    return RecordCipher(suite, client_key, client_iv), RecordCipher(suite, server_key, server_iv)

"""Build the robustness corpus from real captures: every way a file is commonly broken.

Each case is ``(name, bytes)``. The mutations are derived from the file's own structure
(its record or block boundaries and length fields), so each one hits a place a real reader
must handle: truncation at every structural boundary, seeded bit flips, length fields set
to 0 or to the maximum, a swapped link type, and pcapng blocks with bad lengths.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["boundaries", "mutations"]

LINKTYPES_TO_SWAP = (0, 1, 101, 113, 228, 229, 276, 147, 65535)


def boundaries(blob: bytes) -> list[tuple[int, int, str]]:
    """(offset of a length field, its size, endianness) for each record/block of the file."""
    out: list[tuple[int, int, str]] = []
    magic = blob[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        order = "<" if blob[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        p = 0
        while p + 12 <= len(blob):
            length = struct.unpack_from(order + "I", blob, p + 4)[0]
            out.append((p + 4, 4, order))
            if length < 12:
                break
            p += length
        return out
    else:
        return out
    p = 24
    while p + 16 <= len(blob):
        out.append((p + 8, 4, order))
        p += 16 + struct.unpack_from(order + "I", blob, p + 8)[0]
    return out


def mutations(path: Path, *, flips: int = 40, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """Every mutated variant of one capture file."""
    blob = path.read_bytes()
    rng = random.Random(f"{seed}:{path.name}")
    fields = boundaries(blob)
    header_end = 24 if blob[:4] != b"\x0a\x0d\x0d\x0a" else 0
    cuts = {0, 1, 4, 8, 12, 16, 20, 23, 24, len(blob) - 1}
    for offset, _size, _order in fields:
        record = offset - 8 if header_end else offset - 4
        cuts.update({record, record + 4, offset, offset + 4, record + 16, record + 17})
    for cut in sorted(c for c in cuts if 0 <= c < len(blob)):
        yield f"truncate@{cut}", blob[:cut]
    for i in range(flips):
        mutated = bytearray(blob)
        position = rng.randrange(len(blob))
        mutated[position] ^= 1 << rng.randrange(8)
        yield f"bitflip#{i}@{position}", bytes(mutated)
    for offset, _size, order in fields[:12]:
        for value in (0, 0xFFFFFFFF, 0x7FFFFFFF):
            mutated = bytearray(blob)
            struct.pack_into(order + "I", mutated, offset, value)
            yield f"length={value:#x}@{offset}", bytes(mutated)
    if header_end:
        order = "<" if blob[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        for linktype in LINKTYPES_TO_SWAP:
            mutated = bytearray(blob)
            struct.pack_into(order + "I", mutated, 20, linktype)
            yield f"linktype={linktype}", bytes(mutated)
    else:  # pcapng: swap the link type in every interface description block
        order = "<" if blob[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        for linktype in LINKTYPES_TO_SWAP:
            mutated = bytearray(blob)
            for offset, _size, _ in fields:
                if struct.unpack_from(order + "I", mutated, offset - 4)[0] == 1:
                    struct.pack_into(order + "H", mutated, offset + 4, linktype)
            yield f"linktype={linktype}", bytes(mutated)
        for offset, _size, _ in fields[:8]:
            for bad in (13, 8, 0x7FFFFFF0):
                mutated = bytearray(blob)
                struct.pack_into(order + "I", mutated, offset, bad)
                yield f"pcapng-block-length={bad}@{offset}", bytes(mutated)

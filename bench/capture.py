"""The benchmark's capture: large, real HTTP traffic, built once into ``bench/data/``.

Two ways, in this order of preference:

1. **Recorded with the lab** (root, the Debian packages, ``osilab.lab.load``): a bounded
   load generator drives keep-alive HTTP/1.1 GETs through the lab's NLB role to nginx,
   and tcpdump records the front and back hops. Real traffic, real nginx.
2. **Replicated** from the bundled real captures (where the lab cannot run): every
   IPv4-over-Ethernet TCP packet of the HTTP captures in ``/work/shared/captures/thirdparty``
   and the lab's ``captures/`` is copied many times, each copy with its own client and
   server addresses (198.51.100.0/24 and 203.0.113.0/24, the RFC 5737 documentation
   ranges) and its own time span, so that every copy is a distinct set of flows. Ports,
   payloads and the packet order inside a copy are kept. Checksums are not fixed (no
   tool here checks them).

The same replication, streamed to disk, builds the 1.5 GB capture of the memory check
(``python bench/run.py --memory``), which is deleted afterwards.

Nothing here is committed: ``bench/data/`` is git-ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
THIRDPARTY = Path("/work/shared/captures/thirdparty")
LAB_CAPTURES = ROOT / "captures"

sys.path.insert(0, str(ROOT))

from osilab.capture import read  # noqa: E402

__all__ = ["lab_capture", "replicated_capture", "source_captures", "ensure_capture"]

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, 1)
_RECORD = struct.Struct("<IIII")


def source_captures() -> list[Path]:
    """The real HTTP captures replication starts from (lab captures first)."""
    found = sorted(LAB_CAPTURES.glob("*/*.pcapng")) if LAB_CAPTURES.is_dir() else []
    found += sorted(p for p in THIRDPARTY.rglob("*.pcap*") if "http" in p.name)
    return found


def _ipv4_tcp_frames(paths: Iterable[Path]) -> list[tuple[float, bytes]]:
    """(time, frame) of every Ethernet + IPv4 + TCP frame of the sources, in file order.

    Each source's times are shifted to start one second after the previous source ends, so
    that time only moves forward (the sources were recorded years apart).
    """
    frames: list[tuple[float, bytes]] = []
    cursor = 0.0
    for path in paths:
        first = None
        for _no, time, linktype, data, _wire, _iface in read(path).records():
            if linktype == 1 and len(data) >= 54 and data[12:14] == b"\x08\x00" and data[23] == 6:
                if data[14] >> 4 == 4 and len(data) >= 14 + (data[14] & 0x0F) * 4 + 20:
                    first = time if first is None else first
                    frames.append((cursor + max(0.0, time - first), bytes(data)))
        cursor = (frames[-1][0] if frames else cursor) + 1.0
    return frames


def replicate(
    frames: list[tuple[float, bytes]], *, copies: int | None = None, size: int | None = None
) -> Iterator[tuple[float, bytes]]:
    """Copies of ``frames``, each with distinct addresses and a later time span.

    In copy ``k`` the client side (the higher port of each packet) gets 198.51.100.x and
    the server side 203.0.113.y, with (x, y) different for every copy up to 62,500
    copies; every address of the source maps to one of the copy's two, so a
    conversation stays one conversation. Stops after ``copies`` copies or ``size`` bytes.
    """
    if not frames:
        raise SystemExit("no IPv4/TCP frames found to replicate")
    start = frames[0][0]
    span = max(t for t, _ in frames) - start + 1.0
    written = 0
    k = 0
    while (copies is None or k < copies) and (size is None or written < size):
        client = bytes((198, 51, 100, 1 + k % 250))
        server = bytes((203, 0, 113, 1 + (k // 250) % 250))
        base = 1_700_000_000.0 + k * span
        for time, frame in frames:
            ip = 14
            tcp = ip + (frame[ip] & 0x0F) * 4
            sport, dport = struct.unpack_from("!HH", frame, tcp)
            src_is_client = sport > dport or (
                sport == dport and frame[ip + 12 : ip + 16] <= frame[ip + 16 : ip + 20]
            )
            src, dst = (client, server) if src_is_client else (server, client)
            out = frame[: ip + 12] + src + dst + frame[ip + 20 :]
            written += 16 + len(out)
            yield base + (time - start), out
        k += 1


def write_pcap(path: Path, frames: Iterable[tuple[float, bytes]]) -> int:
    """Stream frames to a classic pcap file (Ethernet); returns the packet count."""
    count = 0
    with open(path, "wb") as out:
        out.write(_PCAP_HEADER)
        for time, frame in frames:
            seconds = int(time)
            out.write(
                _RECORD.pack(
                    seconds, int(round((time - seconds) * 1e6)) % 1_000_000, len(frame), len(frame)
                )
            )
            out.write(frame)
            count += 1
    return count


def replicated_capture(target: Path, *, packets: int = 250_000) -> dict:
    """Build ``target`` by replication until it holds at least ``packets`` packets."""
    frames = _ipv4_tcp_frames(source_captures())
    copies = -(-packets // len(frames))
    count = write_pcap(target, replicate(frames, copies=copies))
    return {
        "how": "replicated",
        "sources": len(source_captures()),
        "copies": copies,
        "packets": count,
    }


def memory_capture(target: Path, source: Path, *, size: int = 1_500_000_000) -> dict:
    """A capture of at least ``size`` bytes, replicated from ``source``, streamed to disk."""
    frames = _ipv4_tcp_frames([source])
    count = write_pcap(target, replicate(frames, size=size))
    return {
        "how": "replicated",
        "source": str(source),
        "packets": count,
        "bytes": target.stat().st_size,
    }


def lab_capture(target: Path, *, requests: int = 60_000) -> dict | None:
    """Record ``target`` with the lab's load generator; None when the lab cannot run here."""
    if os.geteuid() != 0:
        return None
    try:
        from osilab.lab.load import record_load
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="osilab-bench-", dir=DATA) as scratch:
        try:
            summary = record_load(Path(scratch), requests=requests)
        except Exception as exc:  # noqa: BLE001 - any lab failure means: replicate instead
            print(f"bench: the lab could not record ({exc}); replicating instead", file=sys.stderr)
            return None
        shutil.move(summary["file"], target)
    summary.update(how="lab", file=str(target))
    return summary


def ensure_capture(*, rebuild: bool = False, replicate_only: bool = False) -> tuple[Path, dict]:
    """The benchmark capture (built when missing) and how it was made."""
    DATA.mkdir(parents=True, exist_ok=True)
    info_path = DATA / "capture.json"
    if not rebuild and info_path.exists():
        info = json.loads(info_path.read_text())
        if Path(info["file"]).exists():
            return Path(info["file"]), info
    info = None
    if not replicate_only:
        info = lab_capture(DATA / "http-lab.pcapng")
    if info is None:
        target = DATA / "http-replicated.pcap"
        info = replicated_capture(target)
        info["file"] = str(target)
    info["bytes"] = Path(info["file"]).stat().st_size
    info_path.write_text(json.dumps(info, indent=2))
    return Path(info["file"]), info


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory":  # capture.py --memory SOURCE TARGET
        print(json.dumps(memory_capture(Path(sys.argv[3]), Path(sys.argv[2]))))
    else:
        replicate_only = "--replicate" in sys.argv
        path, how = ensure_capture(
            rebuild="--rebuild" in sys.argv or replicate_only, replicate_only=replicate_only
        )
        print(json.dumps(how))

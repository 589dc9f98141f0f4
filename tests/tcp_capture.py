"""Tiny synthetic TCP captures for table-driven tests: one connection, written as a pcap.

``Conversation`` keeps both sides' sequence numbers, so a test lists what each side sends
(``conv.send("client", b"GET ...")``, ``conv.rst("server", seq_offset=5000)``) and gets a
capture file that osilab reads like any other. IPv4 over Ethernet, no checksums (osilab
and tshark do not verify them by default).
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["Conversation", "FIN", "SYN", "RST", "PSH", "ACK"]

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_ETHERNET = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00"


def _frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
           payload: bytes) -> bytes:  # fmt: skip
    tcp = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (5 << 12) | flags, 65535, 0, 0)  # fmt: skip
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    return _ETHERNET + ip + tcp + payload


class Conversation:
    """One TCP connection between ``client`` and ``server`` (``"ip:port"`` text)."""

    def __init__(self, client: str = "10.0.0.1:40000", server: str = "10.0.0.2:8080") -> None:
        (cip, cport), (sip, sport) = (_endpoint(client), _endpoint(server))
        self.ends = {"client": (cip, cport), "server": (sip, sport)}
        self.next = {"client": 1000, "server": 5000}  # each side's next sequence number
        self.frames: list[bytes] = []

    def _emit(self, side: str, flags: int, payload: bytes = b"", seq: int | None = None) -> None:
        other = "server" if side == "client" else "client"
        (src, sport), (dst, dport) = self.ends[side], self.ends[other]
        number = self.next[side] if seq is None else seq
        self.frames.append(_frame(src, dst, sport, dport, number, self.next[other], flags, payload))

    def handshake(self) -> Conversation:
        self._emit("client", SYN)
        self.next["client"] += 1
        self._emit("server", SYN | ACK)
        self.next["server"] += 1
        self._emit("client", ACK)
        return self

    def send(self, side: str, payload: bytes) -> Conversation:
        self._emit(side, PSH | ACK, payload)
        self.next[side] += len(payload)
        return self

    def ack(self, side: str) -> Conversation:
        self._emit(side, ACK)
        return self

    def fin(self, side: str) -> Conversation:
        self._emit(side, FIN | ACK)
        self.next[side] += 1
        return self

    def rst(self, side: str, seq_offset: int = 0) -> Conversation:
        """A RST from ``side`` whose sequence number is ``seq_offset`` past RCV.NXT."""
        self._emit(side, RST | ACK, seq=self.next[side] + seq_offset)
        return self

    def write(self, path: Path) -> Path:
        with open(path, "wb") as out:
            out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for number, data in enumerate(self.frames):
                out.write(struct.pack("<IIII", 1_700_000_000, number * 1000, len(data), len(data)))
                out.write(data)
        return path


def _endpoint(text: str) -> tuple[bytes, int]:
    address, _, port = text.rpartition(":")
    return bytes(int(part) for part in address.split(".")), int(port)

"""Every WebSocket frame of the third-party, tunnel and lab captures, against tshark.

tshark decodes WebSocket only after it has seen the HTTP Upgrade handshake (or when told
to by port), so a capture without the bytes ``websocket`` (any case) anywhere has none:
those are skipped without running tshark (a full scan with ``tshark -Y websocket`` found
frames in zeek/websocket-jupyter-behind-proxy.pcap only, of the shared sets). For each
frame that carries WebSocket frames, both must list the same frames in the same order,
with the same FIN, RSV, opcode, MASK, payload length (tshark's 7-bit field plus its 16-
or 64-bit extension), masking key and close status code; and the frame's layer stack
(``tshark_oracle``'s mapping; tshark lists ``http`` above ``tcp`` for a WebSocket frame,
a parent dissector, not an HTTP message: dropped as in tests/test_layers_vs_tshark.py).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from shared_paths import CAPTURES, thirdparty_captures, tunnel_captures
from tshark_oracle import frame_protocols, to_osilab_names, tshark_fields

import osilab
from osilab.pipeline import annotate

pytestmark = pytest.mark.tshark

_FIELDS = (
    "frame.number", "websocket.fin", "websocket.rsv", "websocket.opcode", "websocket.mask",
    "websocket.payload_length", "websocket.payload_length_ext_16",
    "websocket.payload_length_ext_64", "websocket.masking_key",
    "websocket.payload.close.status_code",
)  # fmt: skip
_COMMON = ("-o", "tcp.reassemble_out_of_order:TRUE")


def _with_websocket() -> list[Path]:
    lab = sorted(CAPTURES.glob("*/*.pcapng"))
    found = []
    for path in thirdparty_captures() + tunnel_captures() + lab:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if b"websocket" in data.lower():
            found.append(path)
    return found


def _theirs(path: Path) -> dict[int, list[tuple]]:
    """frame -> tshark's WebSocket frames in it: (fin, rsv, opcode, mask, length, key, close)."""
    out: dict[int, list[tuple]] = {}
    for row in tshark_fields(path, *_FIELDS, options=(*_COMMON, "-Y", "websocket")):
        if len(row) < len(_FIELDS) or not row[0].isdigit():
            continue
        columns = [value.split(",") for value in row[1:]]
        count = len(columns[2])
        # Fields a frame lacks (no extension, no key, no close code) are left out of the
        # comma lists, so they are matched by walking the frames in order below.
        ext16, ext64, keys, codes = (iter(c for c in col if c) for col in columns[5:9])
        frames = []
        for i in range(count):
            short = int(columns[4][i])
            length = int(next(ext16)) if short == 126 else int(next(ext64)) if short == 127 else short
            masked = columns[3][i] in ("1", "True")
            key = next(keys).replace(":", "") if masked else None
            opcode = int(columns[2][i], 0)
            code = next(codes, None) if opcode == 8 and length >= 2 else None
            frames.append((columns[0][i] in ("1", "True"), int(columns[1][i], 0), opcode, masked,
                           length, key, int(code) if code else None))  # fmt: skip
        out[int(row[0])] = frames
    return out


def _tshark_layers(protocols: str) -> list[str]:
    raw = protocols.split(":")
    kept = [n for i, n in enumerate(raw) if not (n == "http" and raw[i + 1 : i + 2] == ["websocket"])]
    return to_osilab_names(":".join(kept))


def _ours_layers(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name == "data":
            break
        if not out or out[-1] != name:
            out.append(name)
    return out


def test_every_websocket_frame_matches_tshark(tshark):
    captures = _with_websocket()
    if not captures:
        pytest.skip("no capture with WebSocket traffic is present")
    compared = matched = frames_seen = 0
    differ = []
    for path in captures:
        theirs = _theirs(path)
        protocols = frame_protocols(str(path), _COMMON)
        for pkt in annotate(osilab.read(path)):
            layers = [lay for lay in pkt.layers if lay.name == "websocket"]
            if pkt.no not in theirs and not layers:
                continue
            f = [lay.fields for lay in layers]
            ours = [(x["fin"], x["rsv"], x["opcode"], x["mask"], x["payload_length"], x["masking_key"],
                     x.get("payload.close.status_code")) for x in f]  # fmt: skip
            same = ours == theirs.get(pkt.no, []) and _ours_layers(pkt.names()) == _tshark_layers(
                protocols[pkt.no]
            )
            compared += 1
            frames_seen += len(ours)
            matched += same
            if not same:
                differ.append((path.name, pkt.no, ours, theirs.get(pkt.no), pkt.names(), protocols[pkt.no]))
    print(
        f"\nmeasured: WebSocket vs tshark: {matched}/{compared} packets with WebSocket frames agree "
        f"({frames_seen} frames, fields and layers) in {len(captures)} captures: "
        + ", ".join(p.name for p in captures)
    )
    for row in differ[:20]:
        print("  DIFFERS:", row)
    assert compared >= 6 and not differ  # zeek jupyter alone has 6 packets, 14 frames

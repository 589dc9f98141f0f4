"""Where the shared test data is; importable from any test as ``from shared_paths import ...``.

The third-party captures live in ``../shared/captures/thirdparty`` beside the repository
(CI lays ``shared/`` there); ``OSILAB_SHARED`` overrides the location. They are read in
place and never copied.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OSILAB_SHARED", REPO.parent / "shared"))
THIRDPARTY = SHARED / "captures" / "thirdparty"
TUNNELS = SHARED / "captures" / "tunnels"
DESYNC_CASES = SHARED / "desync-cases"
CAPTURES = REPO / "captures"


def thirdparty_captures() -> list[Path]:
    """Every capture file of the third-party set (key logs and the manifest excluded)."""
    if not THIRDPARTY.is_dir():
        return []
    return sorted(p for p in THIRDPARTY.glob("*/*") if p.suffix in (".pcap", ".pcapng"))


def tunnel_captures() -> list[Path]:
    """Every capture of the tunnel and link-layer set (its MANIFEST.md says where each is from)."""
    if not TUNNELS.is_dir():
        return []
    return sorted(p for p in TUNNELS.glob("*/*") if p.suffix in (".pcap", ".pcapng"))

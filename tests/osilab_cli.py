"""Run the ``osilab`` command line as a user does, for tests: ``run_osilab("layers", F)``."""

from __future__ import annotations

import subprocess
import sys


def run_osilab(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``osilab ARGV...`` in a subprocess with this interpreter; output captured as text."""
    return subprocess.run([sys.executable, "-m", "osilab.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip

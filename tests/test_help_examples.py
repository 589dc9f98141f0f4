"""Every sub-command's ``--help`` example runs as printed (a new user copies it first).

The examples are written relative to the repository (``captures/...``, ``tests/...``,
``../shared/...``); they run in a scratch folder laid out the same way, so the files they
write (``journey.html``, ``alb.parquet``) land there. ``tour`` and ``lab`` are left out:
one renders every notebook (tests/test_tour.py runs it), the other needs root and minutes
(tests/lab runs it).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from osilab.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SLOW = {"tour", "lab"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("examples")
    work = root / "main"
    work.mkdir()
    for name in ("captures", "tests"):
        (work / name).symlink_to(REPO / name)
    if SHARED.is_dir():
        (root / "shared").symlink_to(SHARED)
    return work


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - SLOW))
def test_the_help_example_runs(name: str, scratch: Path) -> None:
    example = importlib.import_module(COMMANDS[name]).EXAMPLE
    line = example.split("   (")[0]  # "... --app   (or --json)": the alternative is prose
    assert line.startswith(f"osilab {name}"), example
    if "../shared" in line and not SHARED.is_dir():
        pytest.skip("../shared is not beside the repository")
    osilab = shutil.which("osilab", path=str(Path(sys.executable).parent)) or "osilab"
    done = subprocess.run(
        ["bash", "-c", line.replace("osilab", osilab, 1)],
        cwd=scratch, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("action", ["example", "check", "convert"])
def test_each_config_action_prints_an_example_that_runs(action: str, scratch: Path) -> None:
    """``osilab config ACTION --help`` ends with that action's own example, which runs."""
    from osilab.commands.config import ACTION_EXAMPLES

    osilab = shutil.which("osilab", path=str(Path(sys.executable).parent)) or "osilab"
    shown = subprocess.run([osilab, "config", action, "--help"], capture_output=True, text=True)
    line = ACTION_EXAMPLES[action]
    assert shown.stdout.rstrip().endswith(f"example:\n  {line}"), shown.stdout
    done = subprocess.run(["bash", "-c", line.replace("osilab", osilab, 1)], cwd=scratch,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"

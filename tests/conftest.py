"""Shared fixtures: the third-party captures and the tools some tests compare with.

Paths live in ``shared_paths.py`` (importable from any test as ``from shared_paths import ...``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from shared_paths import THIRDPARTY


@pytest.fixture(scope="session")
def thirdparty() -> Path:
    if not THIRDPARTY.is_dir():
        pytest.skip(f"the shared third-party captures are not at {THIRDPARTY} (set OSILAB_SHARED)")
    return THIRDPARTY


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.skip("tshark is not installed (Debian package tshark; .ci/run installs it)")
    return path

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


# --------------------------------------------------------------------------- measurements
#: Lines a passing test printed with the prefix ``measured: `` (agreement with tshark and
#: the real balancers, corpus size, fuzz inputs ...). They are collected here and printed
#: at the end of the run, so that a CI log shows the numbers the closing notes quote.
_MEASURED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for line in report.capstdout.splitlines():
            if line.startswith("measured: "):
                _MEASURED.append(line.removeprefix("measured: "))


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _MEASURED:
        terminalreporter.section("osilab measurements")
        for line in _MEASURED:
            terminalreporter.write_line(line)

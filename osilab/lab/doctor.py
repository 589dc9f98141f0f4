"""What the lab needs from the machine, and whether this machine has it.

:func:`check` looks for every program the lab runs (and root); :func:`require` turns
the missing ones into ONE :class:`~osilab.errors.LabError` that lists them all with the
Debian packages that provide them, so a user fixes everything in one ``apt-get``.
``osilab lab doctor`` prints :func:`check`'s table with versions.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass

from osilab.errors import LabError

__all__ = [
    "Requirement",
    "Finding",
    "REQUIREMENTS",
    "DEBIAN_PACKAGES",
    "PYTHON_PACKAGES",
    "check",
    "require",
]


@dataclass(frozen=True, slots=True)
class Requirement:
    """A program the lab runs, the Debian package that provides it, how to ask its version."""

    program: str
    package: str
    version_argv: tuple[str, ...]
    purpose: str


@dataclass(frozen=True, slots=True)
class Finding:
    """The answer for one requirement on this machine."""

    requirement: Requirement
    path: str | None
    version: str

    @property
    def present(self) -> bool:
        return self.path is not None


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("ip", "iproute2", ("ip", "-V"), "network namespaces, veth pairs, bridge, routes"),
    Requirement("nft", "nftables", ("nft", "--version"), "the NLB role (DNAT with jhash)"),
    Requirement(
        "ethtool", "ethtool", ("ethtool", "--version"), "offloads off: real MTU-sized frames"
    ),
    Requirement("tcpdump", "tcpdump", ("tcpdump", "--version"), "capturing every hop"),
    Requirement(
        "mergecap", "wireshark-common", ("mergecap", "--version"), "merging hops into one pcapng"
    ),
    Requirement(
        "tshark", "tshark", ("tshark", "-v"), "deriving truth from the back-side capture; tests"
    ),
    Requirement("nginx", "nginx-light", ("nginx", "-v"), "the instances' web server"),
    Requirement("haproxy", "haproxy", ("haproxy", "-v"), "the ALB role and the L4 proxy"),
    Requirement("redis-server", "redis-server", ("redis-server", "--version"), "the cache"),
    Requirement("initdb", "postgresql", ("initdb", "--version"), "the database (PostgreSQL)"),
    Requirement("postgres", "postgresql", ("postgres", "--version"), "the database (PostgreSQL)"),
    Requirement("psql", "postgresql-client", ("psql", "--version"), "loading the lab's table"),
    Requirement(
        "setpriv", "util-linux", ("setpriv", "--version"), "running PostgreSQL as postgres"
    ),
)

#: The Debian packages for .ci's apt-get line.
DEBIAN_PACKAGES: tuple[str, ...] = tuple(sorted({r.package for r in REQUIREMENTS}))
#: The Python packages the lab's app needs (beyond osilab's own dependencies).
PYTHON_PACKAGES: tuple[str, ...] = ("aiohttp", "redis", "psycopg[binary]")


def postgres_bindir() -> str | None:
    """Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return os.path.dirname(found[-1]) if found else None


def which(program: str) -> str | None:
    """The full path of ``program``, looking in PostgreSQL's bin folder too."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None and program in ("initdb", "postgres"):
        bindir = postgres_bindir()
        candidate = os.path.join(bindir, program) if bindir else None
        path = candidate if candidate and os.access(candidate, os.X_OK) else None
    return path


def _version(path: str, argv: tuple[str, ...]) -> str:
    try:
        done = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def check() -> list[Finding]:
    """Every requirement with its path and version (``path`` None when missing)."""
    findings = []
    for requirement in REQUIREMENTS:
        path = which(requirement.program)
        version = _version(path, requirement.version_argv) if path else "missing"
        findings.append(Finding(requirement, path, version))
    return findings


def missing_python() -> list[str]:
    """The lab app's Python packages that cannot be imported here."""
    import importlib.util

    modules = {"aiohttp": "aiohttp", "redis": "redis", "psycopg[binary]": "psycopg"}
    return [name for name, module in modules.items() if importlib.util.find_spec(module) is None]


def require() -> list[Finding]:
    """Check everything; raise ONE LabError naming all that is missing (root included)."""
    findings = check()
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network namespaces need CAP_NET_ADMIN: run with sudo)")
    missing = [f.requirement for f in findings if not f.present]
    if missing:
        packages = sorted({r.package for r in missing})
        programs = ", ".join(r.program for r in missing)
        problems.append(f"programs {programs} (apt-get install {' '.join(packages)})")
    python = missing_python()
    if python:
        problems.append(f"Python packages {', '.join(python)} (pip install {' '.join(python)})")
    if problems:
        raise LabError("the lab cannot run here; missing: " + "; ".join(problems))
    return findings

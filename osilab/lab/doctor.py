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
    "JAVA_REQUIREMENTS",
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

#: The Java/Spring backend (lab/java/, built by :mod:`osilab.lab.javabuild`): the JDK,
#: and one jar in /usr/share/java for each Debian package of its libraries. A "program"
#: ending in ``.jar`` is looked for there; its version is its manifest's.
JAVA_REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("javac", "openjdk-17-jdk-headless", ("javac", "-version"), "compiling the Java backend"),
    Requirement("java", "openjdk-17-jdk-headless", ("java", "-version"), "running the Java backend"),
    Requirement("jetty9-server.jar", "libjetty9-java", (), "the backend's HTTP server (Jetty 9.4)"),
    Requirement("jetty9-websocket-server.jar", "libjetty9-extra-java", (), "the backend's WebSocket echo"),
    Requirement("spring3-context.jar", "libspring-context-java", (), "the backend's Spring context"),
    Requirement("spring3-jdbc.jar", "libspring-jdbc-java", (), "JdbcTemplate"),
    Requirement("HikariCP.jar", "libhikaricp-java", (), "the backend's connection pool"),
    Requirement("postgresql.jar", "libpostgresql-jdbc-java", (), "pgjdbc, the PostgreSQL driver"),
    Requirement("slf4j-simple.jar", "libslf4j-java", (), "the pool's and Jetty's log lines"),
)  # fmt: skip
#: Where Debian installs Java libraries.
JAVA_DIR = "/usr/share/java"

#: The Debian packages for .ci's apt-get line.
DEBIAN_PACKAGES: tuple[str, ...] = tuple(
    sorted({r.package for r in REQUIREMENTS + JAVA_REQUIREMENTS})
)
#: The Python packages the lab's app needs (beyond osilab's own dependencies).
PYTHON_PACKAGES: tuple[str, ...] = ("aiohttp", "redis", "psycopg[binary]")


def postgres_bindir() -> str | None:
    """Debian keeps PostgreSQL's server programs in /usr/lib/postgresql/<major>/bin."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return os.path.dirname(found[-1]) if found else None


def which(program: str) -> str | None:
    """The full path of ``program``, looking in PostgreSQL's bin folder too (a jar: in JAVA_DIR)."""
    if program.endswith(".jar"):
        jar = os.path.join(JAVA_DIR, program)
        return jar if os.path.isfile(jar) else None
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
    if path is None and program in ("initdb", "postgres"):
        bindir = postgres_bindir()
        candidate = os.path.join(bindir, program) if bindir else None
        path = candidate if candidate and os.access(candidate, os.X_OK) else None
    return path


def _jar_version(path: str) -> str:
    """The ``Implementation-Version`` (or ``Bundle-Version``) of a jar's manifest."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as jar:
            manifest = jar.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return "?"
    fields = dict(line.split(": ", 1) for line in manifest.splitlines() if ": " in line)
    return fields.get("Implementation-Version") or fields.get("Bundle-Version") or "?"


def _version(path: str, argv: tuple[str, ...]) -> str:
    if not argv:
        return _jar_version(path)
    try:
        done = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def check(backend: str = "java") -> list[Finding]:
    """Every requirement with its path and version (``path`` None when missing).

    ``backend="java"`` (the default) adds the Java backend's; ``"python"`` leaves them out.
    """
    findings = []
    for requirement in REQUIREMENTS + (JAVA_REQUIREMENTS if backend == "java" else ()):
        path = which(requirement.program)
        version = _version(path, requirement.version_argv) if path else "missing"
        findings.append(Finding(requirement, path, version))
    return findings


def missing_python() -> list[str]:
    """The lab app's Python packages that cannot be imported here."""
    import importlib.util

    modules = {"aiohttp": "aiohttp", "redis": "redis", "psycopg[binary]": "psycopg"}
    return [name for name, module in modules.items() if importlib.util.find_spec(module) is None]


def require(backend: str = "java") -> list[Finding]:
    """Check everything; raise ONE LabError naming all that is missing (root included)."""
    findings = check(backend)
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

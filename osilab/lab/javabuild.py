"""Build the lab's Java/Spring backend (``osilab/lab/java/*.java``) at ``osilab lab record`` time.

The backend is a few Java sources shipped with osilab; its libraries are Debian's jars in
``/usr/share/java`` (Jetty 9.4, Spring 4.3, HikariCP, pgjdbc: see
:data:`osilab.lab.doctor.JAVA_LIBRARIES`). Nothing compiled is ever part of the
repository: :func:`build` runs ``javac`` into a cache folder outside it and reuses the
result while nothing it was built from has changed.

The cache key is a SHA-256 over the sources (names and bytes), the jars' resolved paths
(a Debian upgrade renames ``jetty9-server-9.4.57...jar``, so it rebuilds) and ``javac``'s
own path. A build compiles into a fresh temporary folder beside its final place and
renames it there, so a killed build never leaves half a cache behind.

``--release 8``: Spring 4.3 reads class files with its own copy of ASM, which knows
Java 8's format; Java 8 bytecode runs on the JDK 17 that compiles it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from osilab.errors import LabError
from osilab.lab.runtime import run

__all__ = ["SOURCES", "JARS", "MAIN_CLASS", "cache_home", "classpath", "digest", "build", "command"]

#: The backend's sources, shipped as package data.
SOURCES = Path(__file__).with_name("java")
#: Where Debian puts its Java libraries.
JAVA_DIR = Path("/usr/share/java")
#: The class ``java`` runs.
MAIN_CLASS = "osilab.backend.Backend"

#: The jars on the class path, by their unversioned Debian names (symlinks to the real jar).
JARS: tuple[str, ...] = (
    # Jetty 9.4: the server, servlets, WebSocket (libjetty9-java, libjetty9-extra-java)
    "jetty9-server.jar", "jetty9-http.jar", "jetty9-io.jar", "jetty9-util.jar",
    "jetty9-servlet.jar", "jetty9-security.jar", "servlet-api.jar",
    "jetty9-websocket-api.jar", "jetty9-websocket-common.jar", "jetty9-websocket-server.jar",
    "jetty9-websocket-servlet.jar", "jetty9-websocket-client.jar", "jetty9-client.jar",
    # Spring Framework 4.3: the context and JdbcTemplate (libspring-*-java)
    "spring3-core.jar", "spring3-beans.jar", "spring3-context.jar", "spring3-aop.jar",
    "spring3-expression.jar", "spring3-jdbc.jar", "spring3-transaction.jar", "commons-logging.jar",
    # the pool and the driver (libhikaricp-java, libpostgresql-jdbc-java), their logging
    "HikariCP.jar", "slf4j-api.jar", "slf4j-simple.jar", "postgresql.jar",
)  # fmt: skip


def cache_home() -> Path:
    """``$OSILAB_CACHE``, else ``$XDG_CACHE_HOME/osilab``, else ``~/.cache/osilab``."""
    if os.environ.get("OSILAB_CACHE"):
        return Path(os.environ["OSILAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "osilab"


def classpath(java_dir: Path = JAVA_DIR) -> list[Path]:
    """The jars, resolved to their real files; one LabError names every missing one."""
    missing = [name for name in JARS if not (java_dir / name).exists()]
    if missing:
        raise LabError(
            f"the Java backend needs {', '.join(missing)} in {java_dir} "
            "(osilab lab doctor names their Debian packages)"
        )
    return [(java_dir / name).resolve() for name in JARS]


def _sources(sources: Path) -> list[Path]:
    found = sorted(sources.glob("*.java"))
    if not found:
        raise LabError(f"no Java sources in {sources}")
    return found


def digest(sources: Path, jars: Sequence[Path], javac: str) -> str:
    """The cache key: what the classes were built from (sources, jars, compiler)."""
    hasher = hashlib.sha256()
    for source in _sources(sources):
        hasher.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    for jar in jars:
        hasher.update(str(jar).encode() + b"\0")
    hasher.update(javac.encode())
    return hasher.hexdigest()[:16]


def build(*, sources: Path = SOURCES, cache: Path | None = None, java_dir: Path = JAVA_DIR) -> Path:
    """Compile the backend (or find it already compiled); returns its classes folder."""
    javac = shutil.which("javac")
    if javac is None:
        raise LabError("javac not found: the Java backend needs openjdk-17-jdk-headless")
    jars = classpath(java_dir)
    root = (cache or cache_home()) / "java-backend"
    classes = root / digest(sources, jars, os.path.realpath(javac))
    if (classes / "osilab" / "backend" / "Backend.class").exists():
        return classes
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        run([javac, "--release", "8", "-nowarn", "-encoding", "UTF-8", "-d", str(scratch),
             "-cp", os.pathsep.join(map(str, jars)), *map(str, _sources(sources))],
            timeout=180)  # fmt: skip
        try:
            scratch.rename(classes)
        except OSError:  # another build got there first: its classes are the same
            if not classes.exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return classes


def command(
    classes: Path, *, listen: str, redis: str, database: str, name: str, java_dir: Path = JAVA_DIR
) -> list[str]:
    """The argv that runs the backend (``java`` execs in the namespace: its pid is the server's)."""
    java = shutil.which("java")
    if java is None:
        raise LabError("java not found: the Java backend needs openjdk-17-jdk-headless")
    path = os.pathsep.join([str(classes), *map(str, classpath(java_dir))])
    return [java, "-Xss512k", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", path, MAIN_CLASS,
            "--listen", listen, "--redis", redis, "--database", database, "--name", name]  # fmt: skip

"""The lab's I/O edge: run commands in namespaces, supervise servers, capture hops.

Everything here touches the operating system; everything it is told to do comes from
the pure declarations in :mod:`osilab.lab.topology` and :mod:`osilab.lab.configs`.
It owns three promises:

* every command has a timeout, and a failing one becomes a :class:`~osilab.errors.LabError`
  that names the command and quotes its error output;
* every process it starts is recorded by its own pid and ended on exit (SIGTERM, then
  SIGKILL after a grace period), also on failure or Ctrl-C;
* tcpdump is stopped with SIGINT (so it flushes its buffer and writes a whole file)
  and waited for before its file is read.

``ip netns exec NS CMD`` enters the namespace and then *execs* CMD, so the pid of the
process started here is the server's own pid (checked in :meth:`Supervisor.start`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from osilab.errors import LabError
from osilab.lab.topology import PREFIX, Topology, build_commands

__all__ = [
    "hop_endpoints",
    "run",
    "in_namespace",
    "remove_stale_namespaces",
    "build_network",
    "remove_network",
    "Supervisor",
    "Managed",
]


def in_namespace(ns: str | None, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside network namespace ``ns`` (or as is)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


def run(
    argv: Sequence[str],
    *,
    ns: str | None = None,
    timeout: float = 30.0,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one command (in a namespace), wait at most ``timeout`` seconds."""
    full = in_namespace(ns, argv)
    try:
        done = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, input=input_text
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"command timed out after {timeout:.0f} s: {' '.join(full)}") from exc
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {full[0]}") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise LabError(
            f"command failed (exit {done.returncode}): {' '.join(full)}"
            + (f": {detail[-1]}" if detail else "")
        )
    return done


def _lab_namespaces() -> list[str]:
    listing = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [name for name in names if name.startswith(PREFIX)]


def _kill_namespace_processes(ns: str) -> None:
    # Processes left in one of *our* namespaces were started by a lab run (this one or
    # a killed earlier one): end them by pid before the namespace goes away, and wait
    # until they are really gone (a dying server may still be writing its files).
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), sig)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 3.0
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        if not pids:
            return


def remove_stale_namespaces() -> list[str]:
    """Remove every namespace named ``osl-*`` (a killed run leaves them behind)."""
    removed = []
    for ns in _lab_namespaces():
        _kill_namespace_processes(ns)
        run(["ip", "netns", "del", ns], check=False)
        removed.append(ns)
    return removed


def build_network(topology: Topology) -> None:
    """Create every namespace, link, address and route of ``topology``."""
    for ns, argv in build_commands(topology):
        # ethtool may refuse a feature a veth does not have; that is not a failure.
        run(argv, ns=ns, check=argv[0] != "ethtool")


def remove_network(topology: Topology) -> None:
    """Delete the lab's namespaces (their veths go with them)."""
    for host in topology.hosts:
        _kill_namespace_processes(host.namespace)
        run(["ip", "netns", "del", host.namespace], check=False)


@dataclass(slots=True)
class Managed:
    """A process the lab started: its name, pid, Popen handle and log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path | None
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Starts processes in namespaces and guarantees they are ended.

    Use as a context manager; leaving the block (normally, by an exception or by
    Ctrl-C) terminates every process still running, newest first.
    """

    def __init__(self) -> None:
        self.processes: list[Managed] = []

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ns: str | None,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        ready: float = 0.0,
        stop_signal: int = signal.SIGTERM,
    ) -> Managed:
        """Start ``argv`` in ``ns``, stdout+stderr to ``log``; fail if it dies within ``ready`` s."""
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed by the child's exit
        try:
            process = subprocess.Popen(
                in_namespace(ns, argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # Ctrl-C reaches us, and we end it ourselves
            )
        except FileNotFoundError as exc:
            raise LabError(f"cannot start {name}: {exc}") from exc
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        managed = Managed(name, process, log, stop_signal)
        self.processes.append(managed)
        if ready:
            deadline = time.monotonic() + ready
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-600:] if log else ""
                    raise LabError(f"{name} exited at start (exit {process.returncode}): {tail}")
                time.sleep(0.05)
        return managed

    def interrupt(self, managed: Managed, timeout: float = 10.0) -> None:
        """Stop one process with SIGINT and wait for it (how tcpdump flushes its file)."""
        if managed.process.poll() is None:
            managed.process.send_signal(signal.SIGINT)
            try:
                managed.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                managed.process.kill()
                managed.process.wait(timeout=5)

    def stop_all(self, grace: float = 5.0) -> None:
        """Send each live process its stop signal, newest first; SIGKILL what is left after ``grace``.

        The stop signal is SIGTERM except where a server reads SIGTERM as "finish
        politely" (PostgreSQL's *smart* shutdown waits for every client to leave; its
        *fast* shutdown is SIGINT).
        """
        for managed in reversed(self.processes):
            if managed.process.poll() is None:
                try:
                    managed.process.send_signal(managed.stop_signal)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for managed in reversed(self.processes):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                managed.process.kill()
                managed.process.wait(timeout=5)
        self.processes.clear()


def wait_for_port(ns: str, host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until something in ``ns`` accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    probe = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(0.5)\n"
        f"sys.exit(s.connect_ex(({host!r},{port})))\n"
    )
    import sys

    while time.monotonic() < deadline:
        done = run([sys.executable, "-c", probe], ns=ns, check=False, timeout=5)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise LabError(f"nothing listens on {host}:{port} in {ns} after {timeout:.0f} s")


def hop_endpoints(capture: Path, hops: Iterable[str], display_filter: str, transport: str) -> list[tuple[str, str, str, str, str]]:
    """``(hop, source ip, source port, destination ip, destination port)`` of every frame on
    ``hops`` that matches ``display_filter``, as tshark reads the capture (``transport``:
    ``"tcp"`` or ``"udp"``, whose ports are wanted)."""
    wanted = " || ".join(f'frame.interface_name == "{hop}"' for hop in hops)
    done = run(
        ["tshark", "-n", "-r", str(capture), "-Y", f"({wanted}) && {display_filter}",
         "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src", "-e", f"{transport}.srcport",
         "-e", "ip.dst", "-e", f"{transport}.dstport"],
        timeout=120,
    )  # fmt: skip
    rows = []
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 5:
            hop, src, sport, dst, dport = parts
            rows.append((hop, src, sport, dst, dport))
    return rows

"""Oracle: HAProxy reads the PROXY protocol v2 header the NLB model builds (127.0.0.1 only).

HAProxy's ``accept-proxy`` takes the client address from the header; an
``http-request return`` echoes what it understood. Skips when haproxy is not installed
(Debian package haproxy; CI has it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from osilab.balancers.nlb import proxy_v2_header

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")

CONFIG = """
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend echo
    bind 127.0.0.1:{port} accept-proxy
    http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]"
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def haproxy_port(tmp_path_factory):
    if HAPROXY is None:
        pytest.skip("haproxy is not installed (Debian package haproxy; .ci installs it)")
    port = _free_port()
    config = tmp_path_factory.mktemp("haproxy") / "echo.cfg"
    config.write_text(CONFIG.format(port=port))
    process = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = (
                        process.stdout.read().decode(errors="replace") if process.stdout else ""
                    )
                    pytest.skip(f"haproxy did not start: {output[-300:]}")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("src", "sport", "dst", "dport"),
    [("198.51.100.7", 51514, "203.0.113.20", 80), ("2001:db8::7", 40000, "2001:db8::20", 443)],
)
def test_haproxy_reads_our_proxy_v2_header(
    haproxy_port: int, src: str, sport: int, dst: str, dport: int
) -> None:
    header = proxy_v2_header("tcp", src, sport, dst, dport)
    with socket.create_connection(("127.0.0.1", haproxy_port), timeout=5) as conn:
        conn.sendall(header + b"GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:200]
    assert body.decode().split() == [src, str(sport), dst, str(dport)]

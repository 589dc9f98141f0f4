"""The lab client's WebSocket connections (RFC 6455), written with aiohttp's client.

:meth:`osilab.lab.client.Client.websocket` runs :func:`connection` once per connection.
Each connection sends an Upgrade request with its request id (``X-Request-Id`` and
``?rid=``), then a few messages both ways, spaced in time so that a figure of messages
over time shows them: a short text, a 300-byte text (16-bit length), a binary, a ping
(answered by a pong), optionally a 64 KiB binary (64-bit length); the server echoes each
text and binary. Then the client either closes cleanly (Close 1000 each way, RFC 6455
§7.1.2) or, with ``idle``, says nothing more and waits for the balancer to close an idle
connection (what an ALB does after ``idle_timeout.timeout_seconds``).

aiohttp is the lab's dependency (``pip install osilab[lab]``), imported lazily.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

__all__ = ["connection"]

#: Seconds between two messages of a connection (so their times spread).
SPACING = 0.15


async def _run(
    url: str, source: str, rid: str, *, deflate: bool, big: bool, idle: float | None
) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    log: list[list[Any]] = []
    result: dict[str, Any] = {"messages": log, "deflate": deflate}
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.ws_connect(
            url, headers={"X-Request-Id": rid}, compress=15 if deflate else 0, autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_receive=(idle or 0) + 10, ws_close=5),
        ) as ws:  # fmt: skip
            transport = ws._response.connection.transport if ws._response.connection else None
            local = transport.get_extra_info("sockname") if transport else None
            result["source"] = f"{local[0]}:{local[1]}" if local else ""
            result["status"] = ws._response.status
            result["served_by"] = ws._response.headers.get("X-Served-By")
            result["extensions"] = ws._response.headers.get("Sec-WebSocket-Extensions")
            blob = hashlib.sha256(rid.encode()).digest()
            sends: list[tuple[str, Any]] = [
                ("text", f"hello from {rid}"),
                ("text", f"{rid} " + "abcdefghij" * 30),
                ("binary", blob * 4),
                ("ping", b"osilab"),
            ]
            if big:
                sends.append(("binary", (blob * 2048 + blob[:16])))  # 65,552 bytes
            for kind, payload in sends:
                if kind == "text":
                    await ws.send_str(payload)
                elif kind == "binary":
                    await ws.send_bytes(payload)
                else:
                    await ws.ping(payload)
                log.append(["out", kind, len(payload), round(time.time(), 6)])
                if kind != "ping":
                    answer = await ws.receive()
                    size = len(answer.data) if isinstance(answer.data, (bytes, str)) else 0
                    log.append(["in", answer.type.name.lower(), size, round(time.time(), 6)])
                await asyncio.sleep(SPACING)
            if idle is None:
                await ws.close(code=1000, message=b"done")
                result["closed_by"] = "client"
            else:
                started = time.monotonic()
                answer = await ws.receive()  # nothing more is sent: the balancer must close
                result["closed_by"] = "balancer"
                result["idle_seconds"] = round(time.monotonic() - started, 2)
                result["ended_with"] = answer.type.name.lower()
            result["close_code"] = ws.close_code
    return result


def connection(
    url: str, source: str, rid: str, *, deflate: bool = False, big: bool = False,
    idle: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One WebSocket connection to ``url`` from ``source``; returns what was sent and got.

    aiohttp's own errors (a refused handshake...) become ``OSError``, which the client
    records as a failed suite like any other connection failure.
    """
    import aiohttp

    try:
        return asyncio.run(_run(url, source, rid, deflate=deflate, big=big, idle=idle))
    except aiohttp.ClientError as exc:
        raise OSError(f"websocket {url}: {type(exc).__name__}: {exc}") from exc

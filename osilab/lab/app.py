"""The lab's backend app: a small JSON API behind nginx, reading through Redis into PostgreSQL.

Run inside an app namespace as ``python -m osilab.lab.app --listen 192.0.2.21:8080
--redis 192.0.2.30:6379 --database 192.0.2.40``. It is the classic *cache-aside*
pattern: look in the cache; on a miss read the database and fill the cache, so the
first request for an item shows ``GET`` (nil) + SQL + ``SET`` on the wire and the next
one only a ``GET`` that hits.

Every request carries an id (``X-Request-Id`` header, or the ``rid`` query parameter).
The app makes it visible on every hop it causes: in the Redis key ``rid:<id>`` it sets
for each request, and as a comment ``/* rid=<id> */`` at the start of its SQL (the
database logs it with ``log_statement=all``). The id is checked against a strict
pattern before it goes anywhere near SQL text.

Built on aiohttp (server), redis-py's asyncio client and psycopg 3 (async). This is a
lab server, not part of the library: nothing in :mod:`osilab` imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket

__all__ = ["main", "make_app", "request_id"]

_RID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def request_id(header: str | None, query: str | None) -> str:
    """The request's id from the header or the query; ``"-"`` when absent or unsafe.

    >>> request_id("r0001", None), request_id(None, "r0002"), request_id("1; DROP", None)
    ('r0001', 'r0002', '-')
    """
    for candidate in (header, query):
        if candidate and _RID.match(candidate):
            return candidate
    return "-"


def make_app(redis_address: str, database_host: str, instance: str):  # type: ignore[no-untyped-def]
    """The aiohttp application (imported lazily: only the lab's app namespace needs aiohttp)."""
    import psycopg
    import redis.asyncio as aioredis
    from aiohttp import web

    redis_host, redis_port = redis_address.rsplit(":", 1)
    state: dict[str, object] = {}

    async def startup(app: web.Application) -> None:
        state["redis"] = aioredis.Redis(
            host=redis_host, port=int(redis_port), protocol=2, socket_timeout=5
        )
        state["db"] = await psycopg.AsyncConnection.connect(
            host=database_host,
            dbname="shop",
            user="postgres",
            sslmode="disable",  # a lab: the SQL must be readable in the capture
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=5,
        )
        state["db_lock"] = asyncio.Lock()

    async def cleanup(app: web.Application) -> None:
        await state["redis"].aclose()  # type: ignore[attr-defined]
        await state["db"].close()  # type: ignore[attr-defined]

    def rid_of(request: web.Request) -> str:
        return request_id(request.headers.get("X-Request-Id"), request.query.get("rid"))

    async def get_item(request: web.Request) -> web.Response:
        rid = rid_of(request)
        item_id = int(request.match_info["item_id"])
        cache = state["redis"]
        await cache.set(f"rid:{rid}", f"item:{item_id}", ex=300)  # type: ignore[attr-defined]
        cached = await cache.get(f"item:{item_id}")  # type: ignore[attr-defined]
        if cached is not None:
            item, source = json.loads(cached), "hit"
        else:
            async with state["db_lock"]:  # type: ignore[attr-defined]
                cursor = await state["db"].execute(  # type: ignore[attr-defined]
                    f"/* rid={rid} */ SELECT id, name, price FROM items WHERE id = %s", (item_id,)
                )
                row = await cursor.fetchone()
            if row is None:
                raise web.HTTPNotFound(text=json.dumps({"error": "no such item", "rid": rid}))
            item = {"id": row[0], "name": row[1], "price": str(row[2])}
            await cache.set(f"item:{item_id}", json.dumps(item), ex=300)  # type: ignore[attr-defined]
            source = "miss"
        return web.json_response({"item": item, "cache": source, "rid": rid, "app": instance})

    async def change_item(request: web.Request) -> web.Response:
        rid = rid_of(request)
        item_id = int(request.match_info["item_id"])
        await state["redis"].delete(f"item:{item_id}")  # type: ignore[attr-defined]
        return web.json_response({"invalidated": item_id, "rid": rid, "app": instance})

    async def post_order(request: web.Request) -> web.Response:
        rid = rid_of(request)
        body = await request.read()
        return web.json_response({"received_bytes": len(body), "rid": rid, "app": instance})

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        """RFC 6455 echo: every text or binary message comes back prefixed ``echo:``.

        aiohttp answers the Upgrade with 101 and ``Sec-WebSocket-Accept`` and accepts the
        client's permessage-deflate offer (RFC 7692). One log line per event names the
        request id, the app and the peer (nginx): the truth of where a connection went.
        """
        rid = rid_of(request)
        ws = web.WebSocketResponse(compress=True, heartbeat=None)
        await ws.prepare(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        where = f"rid={rid} app={instance} peer={peer[0]}:{peer[1]}" if peer else f"rid={rid} app={instance}"
        print(f"ws event=open {where} path={request.path} deflate={ws.compress}", flush=True)
        async for message in ws:
            if message.type in (web.WSMsgType.TEXT, web.WSMsgType.BINARY):
                size = len(message.data)
                print(f"ws event=message {where} kind={message.type.name.lower()} bytes={size}", flush=True)
                if message.type is web.WSMsgType.TEXT:
                    await ws.send_str("echo:" + message.data)
                else:
                    await ws.send_bytes(b"echo:" + message.data)
        print(f"ws event=close {where} code={ws.close_code}", flush=True)
        return ws

    async def any_other(request: web.Request) -> web.Response:
        rid = rid_of(request)
        return web.json_response({"path": request.path, "rid": rid, "app": instance})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_get("/api/items/{item_id:\\d+}", get_item)
    app.router.add_route("PUT", "/api/items/{item_id:\\d+}", change_item)
    app.router.add_route("DELETE", "/api/items/{item_id:\\d+}", change_item)
    app.router.add_post("/api/orders", post_order)
    app.router.add_route("*", "/api/{tail:.*}", any_other)
    app.router.add_get("/ws/{tail:.*}", websocket)
    return app


def main(argv: list[str] | None = None) -> None:
    from aiohttp import web

    parser = argparse.ArgumentParser(description="osilab lab backend app")
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    parser.add_argument("--redis", required=True, help="HOST:PORT")
    parser.add_argument("--database", required=True, help="PostgreSQL host")
    parser.add_argument("--name", default=socket.gethostname())
    args = parser.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    web.run_app(
        make_app(args.redis, args.database, args.name),
        host=host,
        port=int(port),
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()

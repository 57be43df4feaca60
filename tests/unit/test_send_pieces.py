"""A body sent in pieces (`/metrics`) arrives whole, with its length, whatever the pieces' sizes."""

from __future__ import annotations

import asyncio
import random

from aiohttp import ClientSession, web

from streams.worker.webaccess import CHUNK_BYTES, send_pieces


async def fetch(pieces: list[bytes]) -> tuple[bytes, str | None, str | None]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await send_pieces(request, pieces, "text/plain; version=0.0.4; charset=utf-8")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as r:
            return await r.read(), r.headers.get("Content-Length"), r.headers.get("Content-Type")
    finally:
        await runner.cleanup()


def test_pieces_of_every_size_arrive_whole() -> None:
    rng = random.Random(7)
    sizes = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES] + [
        rng.randrange(0, 5000) for _ in range(400)
    ]
    pieces = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    body, length, kind = asyncio.run(fetch(pieces))
    assert body == b"".join(pieces)
    assert length == str(len(body))
    assert kind == "text/plain; version=0.0.4; charset=utf-8"


def test_no_pieces_is_an_empty_body() -> None:
    body, length, _ = asyncio.run(fetch([]))
    assert (body, length) == (b"", "0")

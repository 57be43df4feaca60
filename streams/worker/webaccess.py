"""The worker's HTTP port: who may read it (`bordermon.webconfig`), as an aiohttp middleware,
and how a large body is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from bordermon.webconfig import WebConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = 'Basic realm="bordermon", charset="UTF-8"'
# Half of glibc's initial mmap threshold: the joins of a body's chunks reuse heap memory.
CHUNK_BYTES = 1 << 16


def access_guard(config: WebConfig) -> Any:
    """A middleware that answers 401 unless the request carries one of the configured users."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not config.allows(request.headers.get("Authorization")):
            return web.Response(status=401, text="401: Unauthorized", headers={"WWW-Authenticate": REALM})
        return await handler(request)

    return guard


async def send_pieces(request: web.Request, pieces: Sequence[bytes], content_type: str) -> web.StreamResponse:
    """A body sent as `pieces` in ~64 KiB writes, never joined whole: a 20 MB `/metrics` joined
    and then buffered by the transport was three more copies, each into freshly mapped memory."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.content_length = sum(map(len, pieces))
    await response.prepare(request)
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            await response.write(b"".join(batch))
            batch, size = [], 0
    await response.write(b"".join(batch))
    await response.write_eof()
    return response

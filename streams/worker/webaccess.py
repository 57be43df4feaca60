"""The worker's HTTP port: who may read it (`bordermon.webconfig`), as an aiohttp middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bordermon.webconfig import WebConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REALM = 'Basic realm="bordermon", charset="UTF-8"'


def access_guard(config: WebConfig) -> Any:
    """A middleware that answers 401 unless the request carries one of the configured users."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not config.allows(request.headers.get("Authorization")):
            return web.Response(status=401, text="401: Unauthorized", headers={"WWW-Authenticate": REALM})
        return await handler(request)

    return guard

"""`bordermon webhook-log`: an Alertmanager webhook receiver that prints each notification as
one JSON line. The compose stack's stand-in for an incident tool, and a way to see exactly
what on-call would receive."""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


def make_app() -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        try:
            payload = await request.json(loads=orjson.loads)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        line = {"path": request.path, "notification": payload}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        return web.json_response({"status": "ok"})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_post("/{tail:.*}", receive)
    return app


def serve(host: str, port: int) -> None:
    web.run_app(make_app(), host=host, port=port, print=None, handle_signals=True)

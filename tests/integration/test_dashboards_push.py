"""`bordermon dashboards push` against a stand-in Grafana that checks each request against
Grafana's documented HTTP API (folders: POST /api/folders; dashboards: POST /api/dashboards/db)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bordermon.ports import free_port
from harness.processes import run_cli

pytestmark = pytest.mark.integration


class FakeGrafana(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    folder_exists = False

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeGrafana.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body,
                                     "type": self.headers.get("Content-Type")})  # fmt: skip
        if self.path == "/api/folders":
            # Documented: {"uid"?, "title"} -> 200 folder, or 409/412 when the uid exists.
            if set(body) - {"uid", "title", "parentUid"} or "title" not in body:
                return self._reply(400, {"message": "bad folder request"})
            if FakeGrafana.folder_exists:
                return self._reply(409, {"message": "a folder with the same uid already exists"})
            FakeGrafana.folder_exists = True
            return self._reply(200, {"id": 1, "uid": body.get("uid"), "title": body["title"]})
        if self.path == "/api/dashboards/db":
            # Documented: {"dashboard": {..., "uid", "title"}, "folderUid", "overwrite", "message"}.
            allowed = {"dashboard", "folderUid", "folderId", "overwrite", "message"}
            dash = body.get("dashboard", {})
            if set(body) - allowed or not dash.get("uid") or not dash.get("title") or dash.get("id") is not None:
                return self._reply(400, {"message": "bad dashboard request"})
            return self._reply(200, {"id": 7, "uid": dash["uid"], "url": f"/d/{dash['uid']}/x", "status": "success",
                                     "version": 1, "slug": "x"})  # fmt: skip
        return self._reply(404, {"message": "not found"})


@pytest.fixture
def grafana():
    FakeGrafana.requests, FakeGrafana.folder_exists = [], False
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def test_push_creates_the_folder_and_uploads_every_dashboard(grafana):
    env = {"PATH": "/usr/bin:/bin", "GRAFANA_TOKEN": "glsa_test"}
    for attempt in (1, 2):  # the second run finds the folder and overwrites
        result = run_cli(["dashboards", "push", "--grafana-url", grafana], env)
        assert result.returncode == 0, result.stderr
        assert sorted(result.stdout.split()) == sorted(
            f"{grafana}/d/{uid}/x" for uid in ("bordermon-overview", "bordermon-checkpoint", "bordermon-pipeline")
        ), attempt
    posts = [r for r in FakeGrafana.requests if r["path"] == "/api/dashboards/db"]
    assert len(posts) == 6
    assert all(r["auth"] == "Bearer glsa_test" and r["type"].startswith("application/json") for r in posts)
    assert all(r["body"]["overwrite"] is True and r["body"]["folderUid"] == "bordermon" for r in posts)
    folders = [r for r in FakeGrafana.requests if r["path"] == "/api/folders"]
    assert folders[0]["body"] == {"title": "Bordermon", "uid": "bordermon"}


def test_push_with_basic_auth_and_clear_errors(grafana):
    env = {"PATH": "/usr/bin:/bin", "GRAFANA_USER": "ops", "GRAFANA_PASSWORD": "s3cret"}
    assert run_cli(["dashboards", "push", "--grafana-url", grafana], env).returncode == 0
    assert FakeGrafana.requests[0]["auth"] == "Basic " + base64.b64encode(b"ops:s3cret").decode()
    missing = run_cli(["dashboards", "push", "--grafana-url", grafana], {"PATH": "/usr/bin:/bin"})
    assert missing.returncode != 0 and "GRAFANA_TOKEN" in missing.stderr and missing.stderr.count("\n") == 1
    down = run_cli(
        ["dashboards", "push", "--grafana-url", f"http://127.0.0.1:{free_port()}"],
        {"PATH": "/usr/bin:/bin", "GRAFANA_TOKEN": "x"},
    )
    assert down.returncode != 0 and "cannot reach Grafana" in down.stderr and down.stderr.count("\n") == 1

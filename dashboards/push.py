"""`bordermon dashboards push`: upload the committed dashboards to an existing Grafana.

Uses grafana-client (the maintained fork of grafana-api): POST /api/folders for the folder,
POST /api/dashboards/db with `overwrite: true` for each dashboard. Credentials come from the
environment (GRAFANA_TOKEN, or GRAFANA_USER and GRAFANA_PASSWORD), never from a file in the repo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from bordermon.errors import BordermonError

HERE = Path(__file__).parent
FOLDER_UID = "bordermon"
FOLDER_TITLE = "Bordermon"


def credential_from_env() -> str | tuple[str, str] | None:
    token = os.environ.get("GRAFANA_TOKEN")
    if token:
        return token
    user, password = os.environ.get("GRAFANA_USER"), os.environ.get("GRAFANA_PASSWORD")
    if user and password:
        return (user, password)
    return None


def push(url: str, folder_uid: str = FOLDER_UID, timeout: float = 10.0) -> list[str]:
    """Create the folder if needed and upload every dashboard; return their Grafana URLs."""
    credential = credential_from_env()
    if credential is None:
        raise BordermonError("set GRAFANA_TOKEN (or GRAFANA_USER and GRAFANA_PASSWORD) to push dashboards")
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    try:
        try:
            api.folder.create_folder(FOLDER_TITLE, uid=folder_uid)
        except GrafanaClientError as exc:
            if exc.status_code not in (409, 412):  # already exists
                raise
        urls = []
        for path in sorted(HERE.glob("*.json")):
            dashboard = json.loads(path.read_text())
            dashboard.pop("id", None)
            result = api.dashboard.update_dashboard(
                {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": True, "message": "bordermon push"}
            )
            urls.append(url.rstrip("/") + result.get("url", f"/d/{dashboard['uid']}"))
        return urls
    except GrafanaException as exc:
        raise BordermonError(f"Grafana at {url} refused: HTTP {exc.status_code} {exc.message}") from None
    except Exception as exc:  # connection errors from the HTTP library
        raise BordermonError(f"cannot reach Grafana at {url}: {exc}") from None

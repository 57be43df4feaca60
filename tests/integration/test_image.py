"""The production image, as far as this machine allows without a Docker engine.

The build context is recreated from the repository and `.dockerignore`; the `Dockerfile` is
followed instruction by instruction into a directory standing for the image's root: WORKDIR,
COPY, ENV, USER, and of RUN the parts that shape the image (`pip install`, `mkdir`, `chown`;
`useradd` only names the uid). The installed worker then runs as that unprivileged uid in a
working directory it cannot write, against the embedded broker, until /metrics answers.
Not run here: the base image itself (python:3.11-slim) and Docker's own build.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from bordermon import metrics as catalog
from bordermon.ports import free_port
from bordermon.registry import load_registry
from harness.processes import wait_until

# The bundled registry gives Syrym lane groups (cars first): a series it has from the start.
SYRYM_GROUP = load_registry(None)["syrym"].default_group.id
SYRYM_LANES = catalog.LANES_OPEN.series + f'{{checkpoint="syrym",direction="in",lane_group="{SYRYM_GROUP}"}}'

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def dockerignore(root: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """Patterns of .dockerignore as Docker reads them: anchored at the context root, `**` for any
    number of directories, `!` to re-include; a later pattern wins."""
    rules = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip("/"))
        parts = [".*" if part == "**" else fnmatch.translate(part)[4:-3] for part in pattern.split("/")]
        regex = "/".join(parts).replace(".*/", "(?:.*/)?")
        rules.append((keep, re.compile(f"^{regex}$")))
    return rules


def excluded(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker excludes a path when it, or a directory above it, matches the last rule that applies."""
    parts = relative.split("/")
    verdict = False
    for keep, pattern in rules:
        if any(pattern.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            verdict = not keep
    return verdict


def context_files(root: Path) -> Iterator[Path]:
    rules = dockerignore(root)
    for path in sorted(root.rglob("*")):
        if path.is_file() and not excluded(path.relative_to(root).as_posix(), rules):
            yield path


def test_dockerignore_semantics():
    rules = dockerignore(ROOT)
    assert excluded(".venv/bin/python", rules) and excluded("tests/unit/test_x.py", rules)
    assert excluded("streams/__pycache__/app.cpython-311.pyc", rules)
    assert not excluded("streams/worker/app.py", rules) and not excluded("bordermon/data/checkpoints.yaml", rules)


@pytest.fixture
def image_root():
    # Under /tmp, readable by every uid (pytest's own tmp_path is private to root).
    path = Path(tempfile.mkdtemp(prefix="bordermon-image-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_image_installs_and_its_worker_runs_unprivileged_in_a_read_only_workdir(broker, image_root, tmp_path):
    context = image_root / "context"
    for path in context_files(ROOT):
        target = context / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)

    dockerfile = DockerfileParser(path=str(ROOT / "Dockerfile"))
    root = image_root / "rootfs"
    workdir, env, uid, installed = root, dict(dockerfile.envs), None, False
    venv = image_root / "venv"  # stands for the base image's Python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for step in dockerfile.structure:
        kind, value = step["instruction"], step["value"]
        if kind == "WORKDIR":
            workdir = root / value.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif kind == "COPY":
            *sources, dest = shlex.split(value)
            for source in sources:
                src = context / source
                assert src.exists(), f"COPY {source}: not in the build context"
                target = workdir / dest
                if src.is_dir():
                    shutil.copytree(src, target, dirs_exist_ok=True)
                else:
                    target = target / src.name if dest.endswith("/") else target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, target)
        elif kind == "RUN":
            for command in (c.strip() for c in value.split("&&")):
                args = shlex.split(command)
                if args[:2] == ["pip", "install"]:
                    done = subprocess.run([str(venv / "bin/python"), "-m", *args], cwd=workdir,
                                          capture_output=True, text=True, timeout=900)  # fmt: skip
                    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
                    installed = True
                elif args[:2] == ["mkdir", "-p"]:
                    for directory in args[2:]:
                        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
                elif args[0] == "chown":
                    os.chown(root / args[2].lstrip("/"), int(args[1]), -1)
                else:
                    assert args[0] == "useradd", f"RUN {command!r} is not emulated by this test"
        elif kind == "USER":
            uid = int(value)
    assert installed, "the Dockerfile must install the project"
    assert uid is not None and uid != 0, "the image must not run as root"

    # Every package pyproject.toml declares was copied (the original defect: dashboards missing).
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in packages:
        assert (workdir / package.replace(".", "/")).is_dir(), f"{package} is not in the image"

    # Every shipped module imports from the image's own install, outside the source tree (the
    # original defect: dashboards/generate.py imports monitoring, which was not shipped).
    imports = ("import importlib, pkgutil, sys\n"
               "for package in sys.argv[1:]:\n"
               "    module = importlib.import_module(package)\n"
               "    for info in pkgutil.iter_modules(module.__path__, package + '.'):\n"
               "        importlib.import_module(info.name)\n")  # fmt: skip
    done = subprocess.run([str(venv / "bin/python"), "-c", imports, *packages], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    data_dir = root / env["BORDERMON_DATA_DIR"].lstrip("/")
    assert data_dir.is_dir() and data_dir.stat().st_uid == uid, "the data directory belongs to the worker's user"
    before = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*"))
    port = free_port()
    worker_env = {
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        **env,
        "BORDERMON_DATA_DIR": str(data_dir),
        "BORDERMON_WEB_HOST": "127.0.0.1",
        "BORDERMON_WEB_PORT": str(port),
        "KAFKA_BOOTSTRAP_SERVERS": broker.address,
        "BORDERMON_REBALANCE_TIMEOUT": "4",
        "HOME": "/nonexistent",
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", str(venv / "bin/bordermon"), "worker"],
        cwd=workdir,
        env=worker_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        probe = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "test", "-w", "."],
                               cwd=workdir)  # fmt: skip
        assert probe.returncode != 0, "the worker's working directory must not be writable by it"

        def metrics() -> str:
            if worker.poll() is not None:
                raise AssertionError((tmp_path / "worker.log").read_text()[-3000:])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
                return r.read().decode()

        def serving() -> str:  # answering, with the partitions (and so the checkpoints) it owns
            text = metrics()
            return text if SYRYM_LANES in text else ""

        assert wait_until(serving, 90, "/metrics with the checkpoints")
        after = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*"))
        assert after == before, "the worker wrote into its working directory"
        assert any(data_dir.iterdir()), "it used its data directory"
    finally:
        worker.terminate()
        assert worker.wait(20) == 0, (tmp_path / "worker.log").read_text()[-3000:]
        log.close()

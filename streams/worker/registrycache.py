"""The worker's registry, kept parsed in its data directory: a restart skips the YAML.

A worker that crashed is replaced by one that reads the same registry again, and YAML is slow to
read: 1.2-1.8 s for 2,400 checkpoints with three lane groups each (PyYAML's C loader, whose
objects are still built in Python), a sixth of the 10 s the scale section allows from kill -9 to
ready. The typed fields of the last registry read (`RegistryFile`) are kept as msgpack, named by
a hash of the YAML and of the fields' schema: decoding checks each field's type and range again,
and the checks across fields and entries (`build_registry`) run on every start, so a cached
registry is refused exactly as its YAML would be. Kept or not, what the worker gets is the same.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import cache
from pathlib import Path

import msgspec

from bordermon.registry import (
    BUNDLED,
    Registry,
    RegistryFile,
    build_registry,
    registry_file,
    registry_path,
    registry_text,
)

log = logging.getLogger("bordermon.worker")
PREFIX = "registry-"
SUFFIX = ".msgpack"


@cache
def _schema_digest() -> bytes:
    """Changes when a registry field does: an older worker's cache is then another file."""
    return hashlib.sha256(msgspec.json.encode(msgspec.json.schema(RegistryFile))).digest()


def cache_path(text: str, cache_dir: str) -> Path:
    digest = hashlib.sha256(_schema_digest() + text.encode("utf-8")).hexdigest()[:32]
    return Path(cache_dir) / f"{PREFIX}{digest}{SUFFIX}"


def load_registry_kept(path: str | None, cache_dir: str) -> Registry:
    """`bordermon.registry.load_registry`, reading the fields kept in `cache_dir` when the YAML
    is the one they were read from, and keeping them when it is not."""
    path = registry_path(path)
    source = path or BUNDLED
    text = registry_text(path)
    kept = cache_path(text, cache_dir)
    try:
        parsed = msgspec.msgpack.decode(kept.read_bytes(), type=RegistryFile)
    except (OSError, msgspec.DecodeError):  # absent, unreadable or damaged: read the YAML
        parsed = registry_file(text, source)
        _keep(parsed, kept)
    return build_registry(parsed, source)


def _keep(parsed: RegistryFile, kept: Path) -> None:
    """Write the fields atomically (a crash mid-write leaves no half file) and drop older ones.
    A directory the worker cannot write costs only the next start's YAML read."""
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=kept.parent, prefix=PREFIX, suffix=".tmp", delete=False) as out:
            out.write(msgspec.msgpack.encode(parsed))
        os.replace(out.name, kept)
        for older in kept.parent.glob(f"{PREFIX}*{SUFFIX}"):
            if older != kept:
                older.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("registry not kept parsed; the next start reads its YAML", extra={"error": repr(exc)})

"""Reading event logs: JSONL, plain or gzip (detected by magic bytes, not by name)."""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from typing import BinaryIO

from bordermon.errors import BordermonError

GZIP_MAGIC = b"\x1f\x8b"


def open_log(path: str) -> tuple[BinaryIO, BinaryIO]:
    """Open a log; return (line reader, raw file) so progress can follow compressed bytes."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise BordermonError(f"{path}: {exc.strerror or exc}") from None
    if os.path.isdir(path):
        raw.close()
        raise BordermonError(f"{path}: is a directory")
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    return raw, raw


def iter_lines(reader: BinaryIO, path: str) -> Iterator[bytes]:
    """Each line without its terminator, verbatim otherwise (blank lines included)."""
    try:
        for line in reader:
            if line.endswith(b"\n"):
                line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
            yield line
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BordermonError(f"{path}: cannot read: {exc}") from None

"""Durable file primitives and the file-writer seam.

Design: metadata files (`recording.json`, `keys.json`, `manifest.json`) are replaced atomically:
write a temp file, fsync it, rename over the target, fsync the directory (rename is atomic but not
durable without the directory fsync; Pillai et al., OSDI 2014). Segment files are append-only and
written with unbuffered `os.write`, so a killed process loses nothing it has handed to the kernel;
they are fsynced at each checkpoint and when closed. An fsync error is fatal for the file: it is
never retried (the kernel may have dropped the dirty pages, PostgreSQL's "fsyncgate").

`SegmentFile` is the seam through which tests inject ENOSPC and other I/O errors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class AppendFile(Protocol):
    """An append-only file as the writer needs it."""

    def write(self, data: bytes) -> None: ...

    def fsync(self) -> None: ...

    def truncate(self, size: int) -> None: ...

    def close(self) -> None: ...


class OsAppendFile:
    """`AppendFile` on a raw file descriptor (no Python-level buffering)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def fsync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


FileOpener = Callable[[Path], AppendFile]


def open_append(path: Path) -> AppendFile:
    """Default `FileOpener`: a new file (refuses to reuse an existing one: never resume a
    segment, its nonces would repeat)."""
    return OsAppendFile(path)


def fsync_dir(path: Path) -> None:
    """fsync a directory so that entries created or renamed in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` durably (temp, fsync, rename, fsync dir).

    Raises OSError on failure; the previous content of `path`, if any, is then untouched.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's content, read in 1 MiB blocks. Blocks (reads the file)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

"""Files the project writes for people (reports, drafts, charts, rejected rows): never through a link,
never half-written.

Each file is written into a fresh temporary file created exclusively (``O_EXCL``, a random name) in the
target folder, then renamed over the target, so a reader sees the old file or the new one, and a link
planted at the temporary or the final name cannot redirect the write. A target that is a symbolic link, an
output folder that is a file, or a folder that cannot be written is an error naming the path.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from db.errors import FlashSaleError


class OutputPathError(FlashSaleError):
    """An output path that cannot be written: which path, and why."""


class _Figure(Protocol):
    def savefig(self, fname: Any, **kwargs: Any) -> None: ...


def output_folder(path: Path) -> Path:
    """``path`` as a folder to write into, created with its parents where missing."""
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} is a file, not a folder: give a folder for the output.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"cannot create the folder {path}: {exc.strerror or exc}.") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write into the folder {path}: permission denied.")
    return path


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise OutputPathError(f"{path} is a symbolic link: refusing to write through it (remove the link).")
    if path.exists() and not path.is_file():
        raise OutputPathError(f"{path} exists and is not a regular file.")


def temporary_beside(path: Path, *, text: bool = True, newline: str | None = None) -> tuple[IO[Any], Path]:
    """A new file, created exclusively under a random name in ``path``'s folder, open for writing, to be
    moved over ``path`` with :func:`replace_into` when complete."""
    _refuse_link(path)
    output_folder(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputPathError(f"cannot write into the folder {path.parent}: {exc.strerror or exc}.") from exc
    mode = "w" if text else "wb"
    return os.fdopen(fd, mode, encoding="utf-8" if text else None, newline=newline), Path(tmp_name)


def replace_into(tmp: Path, path: Path) -> Path:
    """Move the finished temporary file over ``path`` (refused if a link was planted there meanwhile)."""
    try:
        _refuse_link(path)
    except OutputPathError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_writer(path: Path, *, text: bool = True, newline: str | None = None) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` when the block ends without an error (and is
    discarded otherwise)."""
    fh, tmp = temporary_beside(path, text=text, newline=newline)
    try:
        with fh:
            yield fh
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    replace_into(tmp, path)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_writer(path) as fh:
        fh.write(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_writer(path, text=False) as fh:
        fh.write(data)
    return path


def save_figure(fig: _Figure, path: Path, **savefig: Any) -> Path:
    """A matplotlib figure as a PNG (or what ``savefig`` asks for) at ``path``, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, **({"format": "png"} | savefig))
    return write_bytes(path, buffer.getvalue())

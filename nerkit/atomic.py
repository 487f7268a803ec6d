"""The one way nerkit writes a file a user keeps: whole, or not at all.

Every such file (predictions, converted data, scores, reports, comparison tables and plots,
ONNX exports, a run's history, record and configuration, checkpoints) is written to a
temporary file beside its target, flushed and fsynced, renamed over the target, and then the
folder is fsynced so the rename itself survives a power cut. A failure at any point before the
rename (a bad input line halfway through a stream, a full disk, Ctrl-C) removes the temporary
file and leaves an existing target untouched; a reader never sees half a file.

* ``atomic_write(path)`` yields a stream (text or binary) to write as you go.
* ``atomic_path(path)`` yields a temporary path for writers that take a path themselves
  (matplotlib's ``savefig``); it keeps the target's suffix, from which they pick the format.
* ``atomic_directory(path)`` yields a temporary folder written as one unit (an ONNX export's
  graphs and ``export.json``, a brat directory) and swapped in for the target folder.

Temporary names are hidden and marked ``.tmp`` (``.scores.3f9a2c.tmp.json``, ``.onnx.3f9a2c.tmp``;
a folder moved aside during a swap: ``.onnx.3f9a2c.old``): a ``kill -9`` can leave one behind,
never a damaged target, and it is nerkit's to delete. Where
the target is not a regular file (a named pipe, ``/dev/stdout``, which may be a file the shell
opened to append to) there is nothing to keep and nothing to rename over: it is written
directly. A symbolic link stays one: the file it points to is replaced.

This module imports nothing from nerkit, so every layer (``nerkit.data`` included) can use it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """A stream onto a temporary file that replaces ``path`` when the ``with`` block ends
    without an exception; ``mode`` is ``"w"`` (text, UTF-8 unless ``encoding``) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a new file: mode 'w' or 'wb', not {mode!r}")
    text = {"encoding": encoding or "utf-8", "newline": newline} if mode == "w" else {}
    target = Path(path)
    if _special(target):
        with open(target, mode, **text) as stream:
            yield stream
        return
    with atomic_path(target) as temporary:
        try:  # "x": the temporary name is fresh; never write through a file someone put there
            stream = open(temporary, mode.replace("w", "x"), **text)
        except OSError as error:  # no such folder, no permission: say so of the file the user named
            raise _naming(error, target) from None
        with stream:
            yield stream


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    with atomic_write(path, encoding=encoding) as stream:
        stream.write(text)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) for the block to write a file to; the file
    is fsynced and renamed over ``path`` when the block ends without an exception, and removed
    when it raises (KeyboardInterrupt included)."""
    if _special(Path(path)):
        yield Path(path)
        return
    target = _followed(Path(path))
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory, not a file", str(target))
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(3)}{TEMPORARY_SUFFIX}{target.suffix}")
    try:
        yield temporary
        fsync_path(temporary)
        if target.is_file():  # a replaced file keeps its permissions
            shutil.copymode(target, temporary)
        _rename(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` for the block to fill; when the block ends without an
    exception its files are fsynced and it takes the place of ``path`` (an existing folder there
    is moved aside, then deleted). When the block raises, or the swap fails, the temporary folder
    is removed and ``path`` is as it was."""
    target = _followed(Path(path))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(20, "is a file, not a directory", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _free_name(target, TEMPORARY_SUFFIX)
    staging.mkdir()  # with the umask's permissions (tempfile.mkdtemp's are the owner's only)
    aside = None
    try:
        yield staging
        fsync_tree(staging)
        if target.is_dir():
            shutil.copymode(target, staging)
            # Between these two renames the target is missing; a crash there leaves the old
            # folder whole under the aside name.
            aside = _free_name(target, ".old")
            os.replace(target, aside)
        try:
            _rename(staging, target)
        except BaseException:
            if aside is not None:
                os.replace(aside, target)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(target.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
        fsync_path(target.parent)


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk."""
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if path.is_dir() else os.O_RDWR
    try:
        descriptor = os.open(path, flags)
    except OSError:
        if path.is_dir():
            return  # Windows cannot open a folder, nor does it need to flush one
        raise
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder``, deepest first, ``folder`` last."""
    paths = sorted(folder.rglob("*"), key=lambda path: len(path.parts), reverse=True)
    for path in paths + [folder]:
        if path.is_file() or path.is_dir():
            fsync_path(path)


def _special(target: Path) -> bool:
    """A target no rename may replace: a device or a pipe, or a name such as ``/dev/stdout``
    for a descriptor the shell opened (``>> all.jsonl`` appends: replacing the file would not)."""
    if os.path.abspath(target).startswith(("/dev/", "/proc/")):
        return True
    return target.exists() and not target.is_file() and not target.is_dir()


def _followed(target: Path) -> Path:
    """The path a rename must replace: the file a symbolic link points to, not the link."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _free_name(target: Path, suffix: str) -> Path:
    """A name beside ``target`` that nothing has: ``.NAME.RANDOM`` + ``suffix``."""
    while True:
        name = target.with_name(f".{target.name}.{secrets.token_hex(3)}{suffix}")
        if not name.exists():
            return name


def _rename(source: Path, target: Path) -> None:
    """``os.replace`` whose error names the target, not the temporary name the user never gave."""
    try:
        os.replace(source, target)
    except OSError as error:
        raise _naming(error, target) from None


def _naming(error: OSError, target: Path) -> OSError:
    return type(error)(error.errno, error.strerror, str(target))


__all__ = ["atomic_write", "atomic_write_text", "atomic_path", "atomic_directory", "fsync_path", "fsync_tree"]

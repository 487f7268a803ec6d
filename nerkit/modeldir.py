"""A model directory written as one unit and checked as one when it is read.

Writing. A run directory (``runs/default``) holds the model beside the run's own files
(``checkpoint/``, ``history.json``, ``train_config.yaml``), and training rewrites the best model
there after every improved epoch. Renaming the whole directory would carry the run's files
along (or move the model into a subfolder, a format change), so the unit is a manifest
instead: ``model-manifest.json`` names every model file with its size and sha256.

1. What an earlier, killed save left is finished or removed (``recover``).
2. The files are written into a staging folder ``.saving-*`` inside the directory; each file
   and folder is fsynced.
3. The manifest is written into the staging folder last: from then on it holds a complete model.
4. Each file is hard-linked (or copied) beside its target and renamed over it, so the staging
   folder stays complete; then the manifest is put in place: the commit point.
5. Files that the previous manifest named and the new one does not are removed (never
   anything else: the run's files stay), then the staging folder.

A ``kill -9`` at any moment leaves a loadable model. Before 3: the old one, untouched (the
next save removes the incomplete staging folder). From 3 to the commit: the old one while the
old manifest still matches the files; once a file is swapped it no longer does, but the staging
folder holds the new model complete, and ``locate`` loads it from there. After the commit: the
new one. The next save decides as ``locate`` does (``recover``: finish that swap, or drop the
staging folder), so the model a user loaded is the one that stays. One writer at a time: two
processes saving into one directory at once are not supported.

Reading. ``locate`` refuses a directory holding anything but regular files and folders (a pipe or
device would block the hash check; a link leading outside would read another file), then
verifies every file against the manifest. Directories written before
manifests existed (format versions 1 and 2 of ``config.json``) have none: they load without
the hash check; ``nerkit.tagger`` still checks that labels, entity types, scheme and the
weights' shapes agree, for every directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from nerkit.atomic import atomic_write_text, fsync_path
from nerkit.data.untrusted import UntrustedFileError, check_files, read_json
from nerkit.errors import NerkitError

logger = logging.getLogger(__name__)

MANIFEST_FILE = "model-manifest.json"
# The model's description and weights (written by nerkit.tagger, read by it and by the ONNX runtime).
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
# Of config.json. 2: the head and encoder sections hold only their own registry settings; in 1 the
# head section held every built-in head's fields (``nerkit.tagger.upgrade_format_1`` reads it).
FORMAT_VERSION = 2
STAGING_PREFIX = ".saving-"  # also the prefix of the staging folders of nerkit before manifests
MANIFEST_VERSION = 1


class ModelDirectoryError(NerkitError):
    """A model directory that cannot be loaded; the message names it and what is wrong."""


def not_loadable(directory: Path, problem: str, remedy: str = "") -> ModelDirectoryError:
    """The one-paragraph error of a directory that cannot be loaded."""
    remedy = remedy or "Restore the directory from a copy, or train the model again (nerkit train)."
    problem = re.sub(r"\s*\n\s*", " ", problem)  # one paragraph, whatever a wrapped error held
    return ModelDirectoryError(f"{directory} is not a loadable nerkit model: {problem}. {remedy}")


# ----------------------------------------------------------------------------- writing


def write_directory(directory: str | Path, write_files: Callable[[Path], None]) -> None:
    """Write a model directory as one unit: ``write_files(folder)`` writes the model's files
    into a staging folder, which is then swapped in as described in the module docstring."""
    directory = Path(directory)
    created = not directory.is_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if created:
        fsync_path(directory.parent)  # the new directory's entry
    recover(directory)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    try:
        write_files(staging)
        seal(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    commit(staging, directory)


def update_files(directory: str | Path, make_texts: Callable[[Path], dict[str, str]]) -> None:
    """Write text files into the saved model ``directory`` without rewriting the model:
    ``make_texts(folder)`` gives them (name -> content) once the model's folder is verified;
    the model's other files are hard-linked (or copied) into the staging folder unchanged and
    the whole is committed with a new manifest, as ``write_directory`` does, so the manifest
    names the new files and the model stays one verified unit. A directory written before
    manifests gets the files written atomically, one by one."""
    directory = Path(directory)
    if directory.is_dir():
        recover(directory)  # a save killed during its swap is finished first, as loading would read it
    folder = locate(directory)
    texts = make_texts(folder)
    if not (folder / MANIFEST_FILE).is_file():
        for name, text in texts.items():
            atomic_write_text(directory / name, text)
        return
    kept = [name for name in read_manifest(folder) if name not in texts]

    def write_files(staging: Path) -> None:
        for name in kept:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(folder / name, staging / name)
            except OSError:  # a file system without hard links
                shutil.copyfile(folder / name, staging / name)
        for name, text in texts.items():
            (staging / name).write_text(text, encoding="utf-8")

    write_directory(directory, write_files)


def recover(directory: Path) -> None:
    """Finish the swap of a save killed during it (the staging folder that ``locate`` would load
    from, so the model a user loaded stays the one in place); remove every other staging folder."""
    stagings = [path for path in directory.glob(STAGING_PREFIX + "*") if path.is_dir()]
    if not stagings:
        return
    interrupted = interrupted_save(directory) if directory_problems(directory) != [] else None
    if interrupted is not None:
        logger.warning("%s: finishing a save that was interrupted", directory)
        commit(interrupted, directory)
    for staging in stagings:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_path(directory)


def seal(staging: Path) -> None:
    """fsync every file and folder of ``staging``, then write its manifest (atomically, last)."""
    files = {}
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            files[path.relative_to(staging).as_posix()] = digest(path, sync=True)
    for folder in sorted({path.parent for path in staging.rglob("*")} | {staging}):
        fsync_path(folder)
    manifest = {"manifest_version": MANIFEST_VERSION,
                "files": {name: {"size": size, "sha256": sha256} for name, (size, sha256) in files.items()}}
    atomic_write_text(staging / MANIFEST_FILE, json.dumps(manifest, indent=1))  # fsyncs it and staging


def commit(staging: Path, directory: Path) -> None:
    """Put the complete model of ``staging`` in place of ``directory``'s, manifest last."""
    files = read_manifest(staging)
    try:
        previous = set(read_manifest(directory)) if (directory / MANIFEST_FILE).is_file() else set()
    except (ValueError, OSError):
        previous = set()  # a damaged manifest names nothing that can safely be removed
    folders = {directory}
    for name in files:
        place(staging / name, directory / name)
        folders.add((directory / name).parent)
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        fsync_path(folder)
    place(staging / MANIFEST_FILE, directory / MANIFEST_FILE)
    fsync_path(directory)
    discard(staging, directory, previous - set(files))


def discard(staging: Path, directory: Path, stale: set[str]) -> None:
    """After the commit: remove the previous model's files that the new one lacks, and the
    staging folder."""
    for name in sorted(stale):
        remove_file(directory, name)
    shutil.rmtree(staging, ignore_errors=True)
    fsync_path(directory)


def place(source: Path, target: Path) -> None:
    """Replace ``target`` by ``source`` with one atomic rename, leaving ``source`` where it is."""
    target.parent.mkdir(parents=True, exist_ok=True)
    incoming = target.with_name(f"{target.name}.incoming")
    incoming.unlink(missing_ok=True)
    try:
        os.link(source, incoming)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, incoming)
        fsync_path(incoming)
    os.replace(incoming, target)


def remove_file(directory: Path, name: str) -> None:
    """Remove a file of an earlier model, and the folders it leaves empty inside ``directory``."""
    path = directory / name
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != directory and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def digest(path: Path, *, sync: bool = False) -> tuple[int, str]:
    """``(size in bytes, sha256 hex)`` of a file; with ``sync``, fsynced too."""
    sha256 = hashlib.sha256()
    size = 0
    with open(path, "r+b" if sync else "rb") as stream:
        while chunk := stream.read(1 << 20):
            sha256.update(chunk)
            size += len(chunk)
        if sync:
            os.fsync(stream.fileno())
    return size, sha256.hexdigest()


# ----------------------------------------------------------------------------- reading


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """The files a manifest names; ``ValueError`` saying what is wrong when it is malformed."""
    try:
        manifest = read_json(folder / MANIFEST_FILE)
    except ValueError as error:
        raise ValueError(f"{MANIFEST_FILE} is {error}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION \
            or not isinstance(files, dict) or not files:
        raise ValueError(f"{MANIFEST_FILE} is not a version-{MANIFEST_VERSION} manifest with a list of files")
    for name, entry in files.items():
        parts = PurePosixPath(name).parts
        if name != PurePosixPath(name).as_posix() or not parts or parts[0] == "/" or ".." in parts \
                or name == MANIFEST_FILE or name.startswith(STAGING_PREFIX):
            raise ValueError(f"{MANIFEST_FILE} names {name!r}, not a file inside the model directory")
        if not isinstance(entry, dict) or not isinstance(entry.get("size"), int) \
                or not isinstance(entry.get("sha256"), str):
            raise ValueError(f"{MANIFEST_FILE}: the entry of {name!r} lacks its size or sha256")
    return files


def manifest_problems(folder: Path, files: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between the files in ``folder`` and those its manifest names."""
    problems = []
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        size, sha256 = digest(path)
        if size != entry["size"]:
            problems.append(f"{name} was changed ({size} bytes where {entry['size']} were saved)")
        elif sha256 != entry["sha256"]:
            problems.append(f"{name} was changed (same size, another sha256)")
    return problems


def complete_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The manifest of ``folder`` if it is well-formed and every file matches it."""
    if not (folder / MANIFEST_FILE).is_file():
        return None
    try:
        files = read_manifest(folder)
        return files if not manifest_problems(folder, files) else None
    except (ValueError, OSError):
        return None


def directory_problems(directory: Path) -> list[str] | None:
    """What differs between the directory's files and its manifest; None without a manifest."""
    if not (directory / MANIFEST_FILE).is_file():
        return None
    try:
        return manifest_problems(directory, read_manifest(directory))
    except (ValueError, OSError) as error:
        return [str(error)]


def interrupted_save(directory: Path) -> Path | None:
    """The newest complete staging folder: the model of a save killed during its swap, which is
    the directory's model whenever the directory's own manifest is missing or does not match."""
    stagings = [path for path in directory.glob(STAGING_PREFIX + "*") if complete_manifest(path) is not None]
    return max(stagings, key=lambda path: path.stat().st_mtime_ns) if stagings else None


def locate(directory: str | Path) -> Path:
    """The folder to load ``directory``'s model from, verified against its manifest: the
    directory itself, or the staging folder of a save that was killed during its swap (the
    next save finishes it). A directory without a manifest is returned unchecked (written
    before manifests existed). Anything else is one ``NerkitError``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirectoryError(f"{directory}: no such model directory; train one with `nerkit train` "
                                  "or pass the directory of a trained model")
    try:
        check_files(directory)  # before the hash check, which reads every file: a FIFO would block it
    except UntrustedFileError as error:
        raise not_loadable(directory, str(error), "Copy the model's files as regular files into a directory of "
                                                  "their own.") from None
    problems = directory_problems(directory)
    if problems == []:
        return directory
    interrupted = interrupted_save(directory)
    if interrupted is not None:
        logger.warning("%s: its last save was interrupted; loading the complete model it was writing, "
                       "from %s (the next save into the directory finishes it)", directory, interrupted.name)
        return interrupted
    if problems:
        # An edited description or vocabulary gets the longer remedy (a weights file is not edited by hand).
        changed = any(".json was changed" in problem for problem in problems)
        raise not_loadable(directory, f"its files are not those listed in {MANIFEST_FILE} when it was saved: "
                                      + "; ".join(problems), CHANGED_REMEDY if changed else "")
    return directory


CHANGED_REMEDY = ("Restore the directory from a copy or train the model again. nerkit refuses model files changed "
                  "after saving because labels, entity types and scheme must match the weights (reordered entity "
                  f"types would swap the predicted types); to load a file you edited on purpose, delete "
                  f"{MANIFEST_FILE}: then only the consistency checks apply.")


__all__ = ["ModelDirectoryError", "MANIFEST_FILE", "STAGING_PREFIX", "write_directory", "update_files", "recover",
           "locate", "not_loadable", "read_manifest", "manifest_problems", "complete_manifest", "fsync_path", "digest"]


def description_problems(description: dict[str, Any]) -> list[str]:
    """What a model description lacks or holds of the wrong type."""
    problems = []
    for section in ("encoder", "head"):
        settings = description.get(section)
        if not isinstance(settings, dict) or not isinstance(settings.get("type"), str):
            problems.append(f"{section!r} must be an object with a 'type'")
    if not isinstance(description.get("loss"), dict):
        problems.append("'loss' must be an object")
    for key in ("entity_types", "label_names"):
        names = description.get(key)
        if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names) \
                or len(set(names)) != len(names):
            problems.append(f"{key!r} must be a list of distinct names, not {names!r:.80}")
    counts = description.get("label_counts")
    if not isinstance(counts, list) or not all(type(count) is int and count >= 0 for count in counts):
        problems.append(f"'label_counts' must be a list of counts (integers from 0), not {counts!r:.80}")
    elif isinstance(description.get("label_names"), list) and len(counts) != len(description["label_names"]):
        problems.append(f"{len(counts)} label_counts for {len(description['label_names'])} label_names")
    context = description.get("document_context")
    if context is not None and (type(context) is not int or context < 1):
        problems.append(f"'document_context' must be a number of words (1 or more) or null, not {context!r:.80}")
    reading = description.get("data", {})
    if not isinstance(reading, dict) or not all(isinstance(value, str) for value in reading.values()):
        problems.append(f"'data' must be an object of reading options (scheme, encoding, format, ...), not "
                        f"{reading!r:.80}")
    return problems


def read_description(folder: Path, directory: Path, newest_version: int) -> dict[str, Any]:
    """``config.json`` of a located model folder: a JSON object of a format version from 1 to
    ``newest_version``, with every section and label list of the type a model needs (``directory``
    is the one the user named, for the message). The PyTorch model (``nerkit.tagger``) and the
    ONNX runtime both read it so."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise ModelDirectoryError(f"{directory}: not a nerkit model directory (no {CONFIG_FILE}); "
                                  "train one with `nerkit train` or pass the directory of a trained model")
    try:
        description = read_json(path)
    except ValueError as error:
        raise not_loadable(directory, f"{CONFIG_FILE} is {error}") from None
    if not isinstance(description, dict):
        raise not_loadable(directory, f"{CONFIG_FILE} holds a {type(description).__name__}, "
                                      "not the JSON object that describes a model")
    version = description.get("format_version")
    if type(version) is not int or not 1 <= version <= newest_version:
        raise not_loadable(directory, f"{CONFIG_FILE} has format version {version!r}; this nerkit "
                                      f"reads versions 1 to {newest_version}",
                           "If a newer nerkit wrote it, upgrade nerkit; otherwise train the model again.")
    problems = description_problems(description)
    if problems:
        raise not_loadable(directory, f"{CONFIG_FILE}: " + "; ".join(problems))
    return description

"""Directories someone else made: a nerkit model directory or a pretrained transformer is data a
user downloads, and reading it must never run its code, hang, or read outside it.

- ``check_files``: every entry is a regular file or folder. A FIFO would hang the first read
  (the manifest's hash check reads every file), a device such as ``/dev/zero`` never ends, and
  a symbolic link leading outside a model directory would read whatever file it names.
- ``refuse_remote_code`` and the ``load_*`` functions: transformers runs Python files of a model
  directory whose ``config.json`` or ``tokenizer_config.json`` has an ``auto_map`` (custom code).
  Left to decide, it asks "Do you wish to run the custom code? [y/N]" on standard output and
  reads the answer from standard input, which for ``nerkit predict -`` is the stream of texts.
  nerkit refuses a directory that needs its own code before transformers sees it, and passes
  ``trust_remote_code=False`` on every call, so transformers never asks and never runs it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from nerkit.errors import ConfigError, NerkitError

class UntrustedFileError(NerkitError):
    """A file of a downloaded directory that nerkit refuses to read; the message names it."""


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_files(directory: str | Path, *, confined: bool = True) -> None:
    """Refuse a directory holding anything but regular files and folders (symbolic links to
    those are allowed; with ``confined``, only when they lead to a place inside ``directory``).
    Raises ``UntrustedFileError`` naming the entry."""
    directory = Path(directory)
    root = directory.resolve()
    for current, folders, files in os.walk(directory, followlinks=False):
        for name in folders + files:
            path = Path(current) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if confined and not target.is_relative_to(root):
                    raise UntrustedFileError(f"{path} is a symbolic link leading outside the model directory "
                                             f"(to {target}); nerkit reads only the directory's own files. "
                                             "Replace the link by a copy of the file")
                try:
                    mode = os.stat(path).st_mode
                except OSError:
                    raise UntrustedFileError(f"{path} is a symbolic link to {target}, which does not exist") from None
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UntrustedFileError(f"{path} is {kind_of(mode)}, where a model directory holds only regular "
                                         "files and folders; nerkit does not read from it (a pipe or device would "
                                         "block or never end)")


def read_json(path: Path) -> Any:
    """A JSON file's value; ``ValueError`` saying why it is not readable JSON (also for nesting
    deep enough to exhaust Python's recursion and integers of more digits than Python converts)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"not valid JSON (not UTF-8 text: {error})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply to read)") from None
    except ValueError as error:  # JSONDecodeError, and integers past Python's conversion limit
        raise ValueError(f"not valid JSON ({str(error).splitlines()[0]})") from None


def refuse_remote_code(source: str | Path) -> None:
    """Refuse a local transformer directory that only its own code could build: a ``config.json``
    whose ``model_type`` transformers does not know (or that has none but names code in its
    ``auto_map``), or a ``tokenizer_config.json`` whose ``auto_map`` names code for a tokenizer
    class transformers does not ship. An ``auto_map`` beside a known type is left alone:
    ``trust_remote_code=False`` makes transformers use its own class."""
    from transformers import CONFIG_MAPPING
    import transformers

    directory = Path(source)
    if not directory.is_dir():
        return  # a hub name: transformers refuses its custom code (trust_remote_code=False)
    config = read_object(directory / "config.json")
    if config is not None:
        model_type = config.get("model_type")
        if model_type is not None and model_type not in CONFIG_MAPPING:
            raise ConfigError(remote_code_message(directory / "config.json", f"its model_type {model_type!r:.60} is "
                                                  "not one transformers ships, so only the directory's own code could "
                                                  f"build it{names_code(config)}"))
        if model_type is None and "auto_map" in config:
            raise ConfigError(remote_code_message(directory / "config.json", "it names no model_type, only custom "
                                                  f"code{names_code(config)}"))
    tokenizer = read_object(directory / "tokenizer_config.json")
    if tokenizer is not None and "auto_map" in tokenizer:
        name = str(tokenizer.get("tokenizer_class") or "")
        if not (hasattr(transformers, name) or hasattr(transformers, name.removesuffix("Fast"))):
            raise ConfigError(remote_code_message(directory / "tokenizer_config.json", f"its tokenizer_class "
                                                  f"{name!r:.60} is not one transformers ships, so only the "
                                                  f"directory's own code could build it{names_code(tokenizer)}"))


def read_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file of a transformer directory, None when there is none."""
    if not path.is_file():
        return None
    try:
        content = read_json(path)
    except ValueError as error:
        raise ConfigError(f"{path} is {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path} holds a {type(content).__name__}, not a JSON object")
    return content


def names_code(content: dict[str, Any]) -> str:
    return f" (its auto_map: {json.dumps(content['auto_map'])[:120]})" if "auto_map" in content else ""


def remote_code_message(path: Path, why: str) -> str:
    return (f"{path}: {why}. nerkit never runs code that comes with a model directory (a model is data a user "
            "downloads). Use a model whose architecture transformers ships, or one converted to it")


def load_tokenizer(source: str | Path):
    """A transformer's tokenizer, never running the directory's code (see the module docstring)."""
    from transformers import AutoTokenizer

    refuse_remote_code(source)
    return AutoTokenizer.from_pretrained(str(source), trust_remote_code=False)


def load_config(source: str | Path):
    """A transformer's configuration, never running the directory's code."""
    from transformers import AutoConfig

    refuse_remote_code(source)
    return AutoConfig.from_pretrained(str(source), trust_remote_code=False)


__all__ = ["UntrustedFileError", "check_files", "read_json", "refuse_remote_code", "load_tokenizer", "load_config"]

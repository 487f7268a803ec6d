"""Plug-ins from outside nerkit: ``--code FILE`` imports a Python file before anything else
(like spaCy's ``--code``), so the losses, heads and encoders it registers can be named in a
configuration, and a model trained with them loads again with the same flag.

Installed packages register through the entry-point groups ``nerkit.losses``, ``nerkit.heads``
and ``nerkit.encoders`` instead; each registry loads its group lazily (``nerkit.registry``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from nerkit.errors import NerkitError

_loaded: dict[Path, str] = {}  # resolved file -> module name, so a file is imported once


def load_code(paths: list[str | Path] | tuple[str | Path, ...]) -> list[str]:
    """Import each file (in order) as its own module and return the module names. A file that
    does not exist, is not Python or fails while importing is a ``NerkitError`` naming it (and
    the line of the failure)."""
    names = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise NerkitError(f"--code {path}: no such file")
        resolved = path.resolve()
        if resolved in _loaded:
            names.append(_loaded[resolved])
            continue
        digest = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:8]
        name = f"nerkit_code_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
        spec = importlib.util.spec_from_file_location(name, resolved)
        if spec is None or spec.loader is None:
            raise NerkitError(f"--code {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except NerkitError as error:  # e.g. a component registered twice
            del sys.modules[name]
            raise NerkitError(f"--code {path}: {error}") from None
        except (Exception, SystemExit) as error:
            del sys.modules[name]
            frames = [frame for frame in traceback.extract_tb(error.__traceback__)
                      if Path(frame.filename).resolve() == resolved]
            where = f" line {frames[-1].lineno}" if frames else ""
            if isinstance(error, SyntaxError) and error.lineno:
                where = f" line {error.lineno}"
            raise NerkitError(f"--code {path}{where}: importing it failed with {type(error).__name__}: {error}") from None
        _loaded[resolved] = name
        names.append(name)
    return names


__all__ = ["load_code"]

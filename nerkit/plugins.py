"""Plug-ins from outside nerkit: ``--code FILE`` imports a Python file before anything else
(like spaCy's ``--code``), so the losses, heads, encoders and data formats it registers can be named in a
configuration, and a model trained with them loads again with the same flag.

Installed packages register through the entry-point groups ``nerkit.losses``, ``nerkit.heads``,
``nerkit.encoders`` and ``nerkit.formats`` instead; each registry loads its group lazily
(``nerkit.registry``; data formats: ``nerkit.data.formats.registry``).

A model's ``config.json`` lists where its plug-in components came from (``plugin_sources``), so
that loading it without them names the ``--code`` file or the package to give
(``check_registered``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from nerkit.encoders import ENCODERS
from nerkit.errors import ConfigError, NerkitError
from nerkit.heads import HEADS
from nerkit.losses import LOSSES
from nerkit.registry import Registry, registering_from

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
            with registering_from({"code": str(resolved)}):
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


def _components(description: dict[str, Any]) -> list[tuple[Registry, str]]:
    """The registry entries a model description names, as far as they can be known: its encoder,
    head and loss, and the loss a wrapper (flooding) wraps once the wrapper is registered."""
    encoder, head, loss = (description.get(section) or {} for section in ("encoder", "head", "loss"))
    components = [(ENCODERS, encoder.get("type")), (HEADS, head.get("type")), (LOSSES, loss.get("name", "ce"))]
    wrapper = loss.get("name", "ce")
    if isinstance(wrapper, str) and wrapper in LOSSES and "wrapper" in LOSSES.get(wrapper).metadata["applies_to"]:
        inner = loss.get("inner", "ce")
        components.append((LOSSES, inner.get("name", "ce") if isinstance(inner, dict) else inner))
    # A missing name or one of another type is the description's checks' to refuse.
    return [(registry, name) for registry, name in components if isinstance(name, str)]


def plugin_sources(description: dict[str, Any]) -> list[dict[str, str]]:
    """Where the components of a model description that are not built in came from, for its
    ``config.json``: ``[{"kind": "loss", "name": "my-loss", "code": "/path/my_loss.py"}, ...]``."""
    sources = []
    for registry, name in _components(description):
        source = registry.get(name).source
        if source is not None:
            sources.append({"kind": registry.kind, "name": name, **source})
    return sources


def check_registered(description: dict[str, Any], directory: Path, config_file: str) -> None:
    """Every component the model description of ``directory`` names must be registered; the
    error for one that is not says where it came from when the model was trained (the
    description's ``plugins`` record), or, for a model saved before nerkit recorded it, which
    names are registered."""
    for registry, name in _components(description):
        if name in registry:
            continue
        what = f"{directory}: {config_file} names the {registry.kind} {name!r:.80}, which is not registered"
        source = _recorded_source(description, registry.kind, name)
        if source is not None and "code" in source:
            raise ConfigError(f"{what}; it came from --code {source['code']} when the model was trained: pass "
                              f"--code FILE with that file ({Path(source['code']).name}) or a copy of it to load "
                              "the model (in Python: nerkit.plugins.load_code([FILE]) first)")
        if source is not None and ("package" in source or "entry_point" in source):
            origin = (f"the installed package {source['package']}" if "package" in source
                      else f"the entry point {source['entry_point']!r}")
            raise ConfigError(f"{what}; it came from {origin} (entry-point group "
                              f"{source.get('group', registry.group)!r}) when the model was trained: install the "
                              "package that provides it to load the model")
        if source is not None and "module" in source:
            raise ConfigError(f"{what}; it was registered by the Python module {source['module']} when the model "
                              "was trained: pass that module's file with --code FILE (in Python: import it first)")
        raise ConfigError(f"{what}; registered {registry.kind} names: {', '.join(registry.names())}. If it is a "
                          "plug-in the model was trained with, pass its file with --code FILE, or install the "
                          f"package that registers it (entry-point group {registry.group!r})")


def _recorded_source(description: dict[str, Any], kind: str, name: str) -> dict[str, str] | None:
    """The saved source of a plug-in component; None when the model has no (readable) record of
    it (saved before nerkit kept one, or edited)."""
    record = description.get("plugins")
    for entry in record if isinstance(record, list) else []:
        if isinstance(entry, dict) and entry.get("kind") == kind and entry.get("name") == name:
            source = {key: value for key, value in entry.items()
                      if key in ("code", "package", "entry_point", "group", "module") and isinstance(value, str)}
            return source or None
    return None


__all__ = ["check_registered", "load_code", "plugin_sources"]

"""Installed plug-ins: the packages that declare an entry point in one of nerkit's groups
(``nerkit.losses``, ``nerkit.heads``, ``nerkit.encoders``, ``nerkit.formats``). Loading one is
importing it: its registrations run on import. Below every layer (it imports only
``nerkit.errors``), so the format registry in ``nerkit.data`` loads its group like the others."""

from __future__ import annotations

import contextlib
from importlib import metadata
from typing import Callable, ContextManager

from nerkit.errors import NerkitError


def load_group(group: str, around: Callable[[metadata.EntryPoint], ContextManager] | None = None) -> None:
    """Import every entry point of ``group``, each inside ``around(entry_point)`` when given (the
    registries record where a registration came from). One that fails to import is a
    ``NerkitError`` naming its package, entry point and group."""
    for entry_point in metadata.entry_points(group=group):
        try:
            with around(entry_point) if around is not None else contextlib.nullcontext():
                entry_point.load()
        except Exception as error:
            package = entry_point.dist.name if entry_point.dist is not None else "an installed package"
            raise NerkitError(
                f"the plug-in {entry_point.name!r} of {package} (entry point {entry_point.value!r} in group "
                f"{group!r}) failed to import: {type(error).__name__}: {error}. Fix or uninstall that "
                "package") from None

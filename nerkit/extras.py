"""Optional packages (the ``nerkit[EXTRA]`` extras) and what to say when one is missing.

``require`` is for a feature the user asked for and cannot have without the package: it
raises a ``NerkitError`` (one paragraph, exit code 2 on the command line) that says what to
install. ``optional`` is for a by-product that may be skipped (the history plot): it logs one
warning with the same advice and returns None.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from nerkit.errors import NerkitError

logger = logging.getLogger(__name__)


class MissingExtraError(NerkitError):
    """A feature needs an optional package that is not installed."""


def install_hint(module: str, extra: str, feature: str) -> str:
    package = module.split(".")[0]
    return f"{feature} needs the optional package {package}: pip install 'nerkit[{extra}]'"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming the extra that installs it.

    ``require("matplotlib.pyplot", "plot", "the comparison plot")``. Only a missing package is
    turned into the error; a package that is installed but fails to import is a real fault and
    keeps its own exception."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        # `error.name` is the module that was not found: another missing package imported by an
        # installed one (a broken install) is not this extra's fault, so it is not hidden.
        if error.name is None or not (module == error.name or module.startswith(error.name + ".")):
            raise
        raise MissingExtraError(install_hint(module, extra, feature)) from None


def optional(module: str, extra: str, feature: str) -> ModuleType | None:
    """``require`` for what can be skipped: None and one warning (what to install) if missing."""
    try:
        return require(module, extra, feature)
    except MissingExtraError as error:
        logger.warning("%s; skipped", error)
        return None

"""The encoder registry: name -> factory ``(context: EncoderContext, *, settings...) -> Encoder``.

A factory builds a new encoder from the training examples (``context.examples``, to build
vocabularies) or rebuilds a saved one from a model directory (``context.directory``, where
its ``save_files`` wrote). The encoder's ``config()`` returns ``{"type": name, **settings}``,
which is saved in the model directory and passed back to the factory on loading.
A new encoder is one file and one ``@register_encoder`` decoration (``nerkit encoders``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nerkit.data.spans import Example
from nerkit.registry import Registry


@dataclass(frozen=True)
class EncoderContext:
    """Either the training examples of a new encoder or the directory of a saved one."""

    examples: list[Example] | None = None
    directory: Path | None = None


ENCODERS = Registry("encoder", group="nerkit.encoders")


def register_encoder(name: str, *, summary: str = ""):
    """Register an encoder factory under ``name`` (see the module docstring)."""
    return ENCODERS.register(name, summary=summary)


__all__ = ["ENCODERS", "EncoderContext", "register_encoder"]

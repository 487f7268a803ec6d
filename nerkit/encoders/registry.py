"""The encoder registry: name -> factory ``(context: EncoderContext, *, settings...) -> Encoder``.

A factory builds a new encoder from the training examples (``context.examples``, to build
vocabularies) or rebuilds a saved one from a model directory (``context.directory``, where
its ``save_files`` wrote). The encoder's ``config()`` returns ``{"type": name, **settings}``,
which is saved in the model directory and passed back to the factory on loading.
A new encoder is one file and one ``@register_encoder`` decoration (``nerkit encoders``).

An encoder built on a pretrained transformer names, with ``pretrained``, the setting that holds
the model (a directory or a hub name): ``nerkit debug data`` then counts the data's sub-words with
that model's tokenizer, whatever the encoder is called.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from nerkit.data.spans import Example
from nerkit.errors import ConfigError
from nerkit.registry import Registry


@dataclass(frozen=True)
class EncoderContext:
    """Either the training examples of a new encoder or the directory of a saved one."""

    examples: list[Example] | None = None
    directory: Path | None = None


ENCODERS = Registry("encoder", group="nerkit.encoders")


def register_encoder(name: str, *, summary: str = "", pretrained: str | None = None):
    """Register an encoder factory under ``name`` (see the module docstring). ``pretrained``: the
    keyword-only setting naming the transformer whose tokenizer splits words into sub-words."""
    register = ENCODERS.register(name, summary=summary, pretrained=pretrained)

    def decorate(factory):
        if pretrained is not None and pretrained not in inspect.signature(factory).parameters:
            raise ConfigError(f"encoder {name!r}: pretrained={pretrained!r} is not a setting of its factory")
        return register(factory)

    return decorate


__all__ = ["ENCODERS", "EncoderContext", "register_encoder"]

"""The head registry: name -> factory ``(context: HeadContext, *, settings...) -> Head``.

A new head is one file and one ``@register_head`` decoration (``nerkit heads`` lists it):

    @register_head("my-head", losses=("token",), default_loss="ce", labels="tags")
    def my_head(context: HeadContext, *, scheme: Literal["BIO", "BIOES"] = "BIO") -> Head:
        return MyHead(context.input_size, context.entity_types, scheme=scheme, loss=context.loss)

``losses``: the loss kinds (``applies_to`` of the loss registry) the head takes its loss from.
``default_loss``: the loss it trains with when the configuration names none.
``labels``: what the training label counts are counted over (docs/losses.md 1.5), ``"tags"``
(one per word, in the head's ``scheme`` setting, BIO by default) or ``"types"`` (entities per
type, for span heads); losses that take ``label_counts`` receive them in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from nerkit.registry import Registry

LABEL_SPACES = ("tags", "types")


@dataclass(frozen=True)
class HeadContext:
    """What nerkit gives a head factory besides the head's own settings."""

    input_size: int  # size of the encoder's word vectors
    entity_types: list[str]
    loss: nn.Module  # built from the registry, checked against the head's loss kinds
    label_names: list[str]  # tags or types, as the head's ``labels`` says
    label_counts: list[int]  # their training counts, in the same order
    # Words of the longest entity of the training data; None when a saved model is rebuilt (its
    # head's saved settings hold whatever the head derived from it).
    longest_entity: int | None = None


HEADS = Registry("head", group="nerkit.heads")


def register_head(name: str, *, losses: tuple[str, ...], default_loss: str, labels: str = "tags",
                  summary: str = ""):
    """Register a head factory under ``name`` (see the module docstring)."""
    if labels not in LABEL_SPACES:
        raise ValueError(f"labels={labels!r} is not one of {', '.join(LABEL_SPACES)}")
    return HEADS.register(name, summary=summary, losses=tuple(losses), default_loss=default_loss, labels=labels)


__all__ = ["HEADS", "HeadContext", "register_head"]

"""Heads: word vectors -> loss and decoded spans."""

from __future__ import annotations

from torch import nn

from nerkit.config import HeadConfig
from nerkit.heads.base import Head, TaggingHead
from nerkit.heads.crf import CRFHead
from nerkit.heads.softmax import SoftmaxHead

# Which registry category (LossSpec.applies_to) each head takes its loss from.
LOSS_KIND = {"softmax": "token", "crf": "crf", "span": "span"}


def build_head(config: HeadConfig, *, input_size: int, entity_types: list[str], loss: nn.Module,
               log_prior=None) -> Head:
    if config.type == "softmax":
        return SoftmaxHead(input_size, entity_types, scheme=config.scheme, loss=loss,
                           log_prior=log_prior, posthoc_tau=config.posthoc_tau)
    if config.type == "crf":
        return CRFHead(input_size, entity_types, scheme=config.scheme)
    raise NotImplementedError(f"head {config.type!r} is not available yet")


__all__ = ["Head", "TaggingHead", "SoftmaxHead", "CRFHead", "build_head", "LOSS_KIND"]

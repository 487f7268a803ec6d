"""Heads: word vectors -> loss and decoded spans."""

from __future__ import annotations

from torch import nn

from nerkit.config import HeadConfig
from nerkit.heads.base import Head, TaggingHead
from nerkit.heads.crf import CRFHead
from nerkit.heads.global_pointer import GlobalPointerHead
from nerkit.heads.softmax import SoftmaxHead
from nerkit.losses.am_softmax import AMSoftmax

# Which registry categories (LossSpec.applies_to) each head takes its loss from. The softmax
# head becomes a cosine classifier for margin losses (am-softmax); the CRF takes any token
# loss on its marginals (see heads/crf.py).
LOSS_KINDS = {"softmax": ("token", "cosine"), "crf": ("crf", "token"), "span": ("span",)}


def needs_cosine_classifier(loss: nn.Module) -> bool:
    """A margin loss on cosines (am-softmax), bare or inside a wrapper such as flooding.
    (Looking at the wrapper's registry kinds is not enough: flooding lists every kind.)"""
    while hasattr(loss, "inner") and isinstance(loss.inner, nn.Module):
        loss = loss.inner
    return isinstance(loss, AMSoftmax)


def build_head(config: HeadConfig, *, input_size: int, entity_types: list[str], loss: nn.Module,
               loss_name: str = "ce", log_prior=None) -> Head:
    if config.type == "softmax":
        return SoftmaxHead(input_size, entity_types, scheme=config.scheme, loss=loss, log_prior=log_prior,
                           posthoc_tau=config.posthoc_tau, cosine=needs_cosine_classifier(loss))
    if config.type == "crf":
        return CRFHead(input_size, entity_types, scheme=config.scheme, loss=loss, sequence_nll=loss_name == "ce")
    if config.type == "span":
        # Its default loss (zlpr) is chosen in the configuration (HEAD_DEFAULT_LOSS), where an
        # unset loss name can be told from an explicit `--loss ce`, which build_head_loss refuses.
        return GlobalPointerHead(input_size, entity_types, loss=loss, variant=config.variant,
                                 head_size=config.head_size, max_span_length=config.max_span_length,
                                 flat_decoding=config.flat_decoding, max_cells=config.max_cells)
    raise NotImplementedError(f"head {config.type!r} is not available yet")


__all__ = ["Head", "TaggingHead", "SoftmaxHead", "CRFHead", "GlobalPointerHead", "build_head", "LOSS_KINDS"]

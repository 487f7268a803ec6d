"""What a head may ask of its loss, beyond ``forward``: the optional hooks and their defaults,
in one place (torchtune's ``loss_types.py`` is the model).

The minimum loss is any ``nn.Module`` with the documented ``forward`` (docs/losses.md 1); it
needs no nerkit base class. A loss that wants to change what a head does subclasses
``LossHooks`` (every built-in does, through ``LossModule``) and overrides what it needs:

* ``adjust_logits(logits) -> logits``: the scores to decode from at prediction time; every
  tagging head applies it before its argmax or Viterbi (``logit-adjusted`` with
  ``decision="overall"`` adds ``tau * log prior``). Identity by default.
* ``changes_decoding``: whether ``adjust_logits`` is not the identity (``nerkit losses`` says so).
* ``cosine_scale``: a margin loss on cosines (``am-softmax``) sets its scale ``s``; the softmax
  head then becomes a cosine classifier whose scores are ``softmax(s * cos)``. None by default.
* ``crf_sequence_nll``: on the CRF, train with the CRF's own sequence negative log-likelihood
  instead of applying the loss to the CRF's posterior marginals (``ce`` sets it). False by default.
* ``sparse_span_targets(types, words)``: the span head builds sparse positive indices instead of
  a dense label grid (ZLPR on long inputs). False by default.

Heads read them only through ``hooks(loss)``, never by probing attributes.

And what the model directory asks of a loss:

* ``config()``: the loss's registry name and settings, which ``config.json`` saves as its ``loss``
  section and rebuilds it from. By default the settings it was built with, defaults filled in
  (``built_with``, which the registry gives every component it builds); a loss made of other
  losses reports them as they report themselves (``flooding`` its ``inner`` loss). A loss without
  ``config`` (no ``LossHooks``) is saved with the settings it was built with (``loss_config``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LossHooks:
    """Optional hooks with their defaults; subclass and override (see the module docstring)."""

    changes_decoding: bool = False
    cosine_scale: float | None = None
    crf_sequence_nll: bool = False

    def adjust_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def sparse_span_targets(self, num_types: int, words: int) -> bool:
        return False

    def config(self) -> dict[str, Any]:
        return dict(self.built_with)


DEFAULT_HOOKS = LossHooks()


def hooks(loss: nn.Module | None) -> LossHooks:
    """The hooks of ``loss``: its own when it subclasses ``LossHooks``, the defaults otherwise."""
    return loss if isinstance(loss, LossHooks) else DEFAULT_HOOKS


def loss_config(loss: nn.Module) -> dict[str, Any]:
    """The registry name and settings of a loss built by the registry, as it reports them
    (``config()``); for a loss without ``config``, those it was built with."""
    report = getattr(loss, "config", None)
    return dict(report() if callable(report) else loss.built_with)


__all__ = ["LossHooks", "DEFAULT_HOOKS", "hooks", "loss_config"]

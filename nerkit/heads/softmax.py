"""Softmax tagger: a linear layer per word, trained with any token loss of the registry.

With a margin loss (``am-softmax``) the linear layer becomes a cosine classifier
(docs/losses.md 2.8): decisions are the argmax of the cosines, and scores their softmax at the
loss's scale ``s``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from nerkit.data.spans import ScoredSpan
from nerkit.heads.base import AdjustedTaggingHead
from nerkit.heads.registry import HeadContext, register_head
from nerkit.losses import CosineClassifier, hooks, log_prior


class SoftmaxHead(AdjustedTaggingHead):
    kind = "softmax"

    def __init__(self, input_size: int, entity_types: list[str], *, scheme: str = "BIO",
                 loss: nn.Module, log_prior: torch.Tensor | None = None, posthoc_tau: float = 0.0):
        # Post-hoc logit adjustment (docs/losses.md 2.6): predict argmax z - tau * log(prior).
        super().__init__(entity_types, scheme, loss=loss, log_prior=log_prior, posthoc_tau=posthoc_tau)
        # A margin loss on cosines (am-softmax) turns the linear layer into a cosine classifier;
        # cosines live in [-1, 1] and the loss's scale turns them into usable probabilities.
        cosine_scale = hooks(loss).cosine_scale
        self.projection = (nn.Linear(input_size, len(self.tags)) if cosine_scale is None
                           else CosineClassifier(input_size, len(self.tags)))
        self.score_scale = 1.0 if cosine_scale is None else float(cosine_scale)

    def logits(self, word_vectors: torch.Tensor) -> torch.Tensor:
        return self.projection(word_vectors)  # shape: (batch, words, tags)

    def loss(self, word_vectors, batch):
        if "allowed_tags" in batch:  # partial annotations: the probability of the allowed tags
            return self.loss_function.forward_partial(self.logits(word_vectors), batch["allowed_tags"], batch["mask"])
        return self.loss_function(self.logits(word_vectors), batch["tag_ids"], batch["mask"])

    def decision_logits(self, word_vectors: torch.Tensor) -> torch.Tensor:
        return self.adjusted_logits(self.logits(word_vectors))

    def adjusted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """What decisions are the argmax of: the loss's decode-time adjustment and post-hoc tau
        applied to the projection's ``logits`` (scaled for a cosine classifier)."""
        return self.adjusted_scores(logits.float() * self.score_scale)

    def decoding_spec(self) -> dict[str, Any]:
        return {**super().decoding_spec(), "score_scale": self.score_scale}

    def decoding_scores(self, word_vectors, batch) -> dict[str, torch.Tensor]:
        return {"logits": self.logits(word_vectors)}  # shape: (batch, words, tags)

    def decode_scores(self, scores, batch) -> list[list[ScoredSpan]]:
        probabilities = torch.softmax(self.adjusted_logits(scores["logits"]), dim=-1)  # shape: (batch, words, tags)
        best, tag_ids = probabilities.max(dim=-1)  # shape: (batch, words) each
        return self.spans_from_batch(tag_ids, best, batch["mask"])



@register_head("softmax", losses=("token", "cosine"), default_loss="ce", labels="tags",
               summary="a linear layer per word (a cosine classifier for margin losses), any token loss")
def softmax_head(context: HeadContext, *, scheme: Literal["BIO", "BIOES"] = "BIO",
                 posthoc_tau: Annotated[float, Field(allow_inf_nan=False)] = 0.0,
                 posthoc_selection: dict[str, Any] | None = None) -> SoftmaxHead:
    """``posthoc_tau``: post-hoc logit adjustment at prediction, argmax z - tau * log prior (0 = off;
    negative values favour frequent tags, undoing a logit-adjusted loss's balanced decision)."""
    head = SoftmaxHead(context.input_size, context.entity_types, scheme=scheme, loss=context.loss,
                       log_prior=log_prior(context.label_counts), posthoc_tau=posthoc_tau)
    head.posthoc_selection = posthoc_selection  # how --select-for chose the tau (None: set by hand)
    return head

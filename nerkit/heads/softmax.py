"""Softmax tagger: a linear layer per word, trained with any token loss of the registry.

With a margin loss (``am-softmax``) the linear layer becomes a cosine classifier
(LOSSES.md 2.8): decisions are the argmax of the cosines, and scores their softmax at the
loss's scale ``s``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nerkit.data.spans import ScoredSpan
from nerkit.heads.base import TaggingHead
from nerkit.losses.am_softmax import CosineClassifier


class SoftmaxHead(TaggingHead):
    kind = "softmax"

    def __init__(self, input_size: int, entity_types: list[str], *, scheme: str = "BIO",
                 loss: nn.Module, log_prior: torch.Tensor | None = None, posthoc_tau: float = 0.0,
                 cosine: bool = False):
        super().__init__(entity_types, scheme)
        self.projection = CosineClassifier(input_size, len(self.tags)) if cosine else nn.Linear(input_size, len(self.tags))
        # Cosines live in [-1, 1]; the loss's scale turns them into usable probabilities.
        self.score_scale = float(getattr(loss, "s", 1.0)) if cosine else 1.0
        self.loss_function = loss
        self.posthoc_tau = posthoc_tau
        # Post-hoc logit adjustment (LOSSES.md 2.6): predict argmax z - tau * log(prior).
        self.register_buffer("log_prior", log_prior if log_prior is not None else torch.zeros(len(self.tags)),
                             persistent=False)

    def logits(self, word_vectors: torch.Tensor) -> torch.Tensor:
        return self.projection(word_vectors)  # shape: (batch, words, tags)

    def loss(self, word_vectors, batch):
        return self.loss_function(self.logits(word_vectors), batch["tag_ids"], batch["mask"])

    def decision_logits(self, word_vectors: torch.Tensor) -> torch.Tensor:
        logits = self.logits(word_vectors).float() * self.score_scale
        adjust = getattr(self.loss_function, "adjust_logits", None)
        if adjust is not None:
            logits = adjust(logits)
        if self.posthoc_tau:
            logits = logits - self.posthoc_tau * self.log_prior
        return logits

    def decode(self, word_vectors, batch) -> list[list[ScoredSpan]]:
        probabilities = torch.softmax(self.decision_logits(word_vectors), dim=-1)  # shape: (batch, words, tags)
        scores, tag_ids = probabilities.max(dim=-1)
        lengths = batch["mask"].sum(dim=1).tolist()
        return [self.spans_from_tags(tag_ids[row, :length].tolist(), scores[row, :length].tolist())
                for row, length in enumerate(lengths)]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "posthoc_tau": self.posthoc_tau}

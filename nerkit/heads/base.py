"""The head contract and the tag <-> span code that both tagging heads share.

A head owns its targets and its decoding:

* ``targets(examples, words)``: tensors for the batch, built in collation (CPU);
* ``loss(word_vectors, batch)``: a scalar;
* ``decode(word_vectors, batch)``: one list of ``ScoredSpan`` per sequence.

Decoding is two steps, so that the scores can come from elsewhere (an exported graph run by
ONNX Runtime, ``nerkit.export``) and the same decoding code still runs in nerkit:

* ``decoding_scores(word_vectors, batch)``: the tensors decoding starts from (the tagging heads'
  per-word scores, the span head's start and end vectors), named; the forward pass ends here;
* ``decode_scores(scores, batch)``: those scores (float32) -> spans (Viterbi, span selection).

``decode`` is the two in a row. A head that overrides ``decode`` only still predicts in PyTorch;
``nerkit export`` refuses it.

``config()`` is the head's settings as ``config.json`` saves them and rebuilds the head from;
nothing else writes them, so a setting changed after training (``configure_decoding``) is saved
because the head reports it.
"""

from __future__ import annotations

from typing import Any

import math

import numpy as np
import torch
from torch import nn

from nerkit.data.decoding import tag_spans
from nerkit.data.partial import allowed_tags
from nerkit.data.schemes import normalize_scheme, scheme_tags, spans_to_tags, split_tag
from nerkit.data.spans import Example, ScoredSpan
from nerkit.errors import ConfigError
from nerkit.losses import IGNORE_INDEX, hooks, loss_config, supports_partial_labels


class Head(nn.Module):
    kind: str  # the name it is registered under (``nerkit heads``)
    flat: bool = True  # whether the head can only represent non-overlapping spans

    def targets(self, examples: list[Example], words: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def loss(self, word_vectors: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, word_vectors: torch.Tensor, batch: dict[str, torch.Tensor]) -> list[list[ScoredSpan]]:
        return self.decode_scores(self.decoding_scores(word_vectors, batch), batch)

    def decoding_scores(self, word_vectors: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The named tensors decoding starts from; each has the batch on axis 0 and the words on
        axis 1 (an exported graph's outputs)."""
        raise NotImplementedError

    def decode_scores(self, scores: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> list[list[ScoredSpan]]:
        """Spans from ``decoding_scores`` (float32), one list per sequence; ``batch["mask"]`` gives
        the lengths."""
        raise NotImplementedError

    def decoding_spec(self) -> dict[str, Any] | None:
        """What the torch-free decoders (``nerkit.data.decoding``) need beyond the head's saved
        settings and the graph's scores, as JSON (``export.json`` keeps it): trained decoding
        parameters and what the loss adds at decoding. None: the head decodes in PyTorch only."""
        return None

    def config(self) -> dict[str, Any]:
        """The head's registry type and settings, which ``config.json`` saves as its ``head``
        section and rebuilds it from. By default the settings it was built with, defaults filled
        in (``built_with``, which the registry gives every component it builds); a head reports the
        settings it holds over them (a tagging head its scheme, the post-hoc tau that
        ``configure_decoding`` changes), so that what is saved is what it decodes with."""
        return dict(getattr(self, "built_with", None) or {"type": self.kind})

    def configure_decoding(self, **options: Any) -> None:
        """Change how a trained head decodes (the softmax tagger's ``posthoc_tau``); a head
        refuses the options it does not have."""
        if options:
            raise ConfigError(f"the {self.kind} head has no decoding option {', '.join(sorted(options))}")

    def learns_partial_labels(self) -> bool:
        """Whether the head, with its loss, learns from partial annotations (``Example.partial``);
        a head that does not is refused such data (a plug-in head unless it says so)."""
        return False

    #: Score cells a training batch may hold (see ``cells_per_batch``); None: no such limit.
    max_cells: int | None = None

    def cells_per_batch(self, batch_size: int, words: int) -> int | None:
        """Cells of the score tensor for ``batch_size`` sentences padded to ``words``, for heads
        whose memory grows faster than the padded word count (the span head); None otherwise."""
        return None


def decodes_from_scores(head: Head) -> bool:
    """Whether ``head`` splits decoding into ``decoding_scores`` and ``decode_scores`` (the
    built-in heads do), which running its scores elsewhere (``nerkit export``) needs."""
    return all(getattr(type(head), name) is not getattr(Head, name) for name in ("decoding_scores", "decode_scores"))


class TaggingHead(Head):
    """A head that predicts one tag per word in BIO or BIOES."""

    def __init__(self, entity_types: list[str], scheme: str):
        super().__init__()
        self.entity_types = list(entity_types)
        self.scheme = normalize_scheme(scheme)
        self.tags = scheme_tags(self.entity_types, self.scheme)
        self.tag_index = {tag: index for index, tag in enumerate(self.tags)}
        self.tag_parts = [split_tag(tag) for tag in self.tags]  # decoding reads the tags split once

    def targets(self, examples: list[Example], words: int) -> dict[str, torch.Tensor]:
        tag_ids = torch.full((len(examples), words), IGNORE_INDEX, dtype=torch.long)
        for row, example in enumerate(examples):
            tags = spans_to_tags(example.spans, len(example), self.scheme)
            tag_ids[row, :len(example)] = torch.tensor([self.tag_index[tag] for tag in tags])
        if not any(example.partial for example in examples):
            return {"tag_ids": tag_ids}
        # Partial annotations: the tags each word may have (a fully annotated row allows its own).
        allowed = torch.ones(len(examples), words, len(self.tags), dtype=torch.bool)  # shape: (batch, words, tags)
        for row, example in enumerate(examples):
            per_word = allowed_tags(example, self.tags, self.tag_index, self.scheme)
            allowed[row, :len(example)] = False
            # One indexed write per sentence: (word, tag) pairs flattened.
            words_of_pairs = [word for word, ids in enumerate(per_word) for _ in ids]
            allowed[row, words_of_pairs, [tag_id for ids in per_word for tag_id in ids]] = True
        return {"tag_ids": tag_ids, "allowed_tags": allowed}

    def learns_partial_labels(self) -> bool:
        loss = getattr(self, "loss_function", None)
        return loss is not None and supports_partial_labels(loss_config(loss)["name"])

    def spans_from_tags(self, tag_ids: list[int], tag_scores: list[float]) -> list[ScoredSpan]:
        """Turn one sequence of predicted tag ids into spans; a span's score is the mean
        of its words' scores (probabilities of the predicted tags)."""
        return tag_spans(self.tag_parts, self.scheme, np.array([tag_ids], dtype=np.int64),
                         np.array([tag_scores], dtype=np.float32), np.ones((1, len(tag_ids)), dtype=bool))[0]

    def spans_from_batch(self, tag_ids: torch.Tensor, tag_scores: torch.Tensor,
                         mask: torch.Tensor) -> list[list[ScoredSpan]]:
        """The spans of every row of a batch: tag ids and their scores of shape (batch, words), each
        row read up to its length in ``mask`` (``nerkit.data.decoding.tag_spans``, which the ONNX
        runtime decodes with too)."""
        return tag_spans(self.tag_parts, self.scheme, tag_ids.detach().cpu().numpy(),
                         tag_scores.detach().float().cpu().numpy(), mask.detach().cpu().numpy())

    def config(self) -> dict[str, Any]:
        return {**super().config(), "scheme": self.scheme}


class AdjustedTaggingHead(TaggingHead):
    """A tagging head whose decisions take the loss's ``adjust_logits`` hook and a post-hoc logit
    adjustment, ``scores - tau * log prior`` (docs/losses.md 2.6): the softmax tagger before its
    argmax, the CRF before Viterbi. ``log_prior`` is over the head's tags; ``tau`` may be changed
    after training (``configure_decoding``), and is saved with the head's settings, with the record
    of how ``--select-for`` chose it (``posthoc_selection``, ``metrics.tau_choice.TauChoice.record``)."""

    def __init__(self, entity_types: list[str], scheme: str, *, loss: nn.Module | None,
                 log_prior: torch.Tensor | None, posthoc_tau: float, posthoc_selection: dict[str, Any] | None = None):
        super().__init__(entity_types, scheme)
        self.loss_function = loss
        self.posthoc_tau = posthoc_tau
        self.posthoc_selection = posthoc_selection
        self.register_buffer("log_prior", log_prior if log_prior is not None else torch.zeros(len(self.tags)),
                             persistent=False)

    def decoding_spec(self) -> dict[str, Any]:
        """The loss's decode-time shift per tag (``adjust_logits``, which must be one: a loss that
        changes the scores otherwise decodes in PyTorch only) and the log prior tau multiplies."""
        probe = torch.randn(2, 3, len(self.tags), generator=torch.Generator().manual_seed(0))  # shape: (batch, words, tags)
        adjust = hooks(self.loss_function).adjust_logits
        with torch.no_grad():
            shift = adjust(torch.zeros(1, 1, len(self.tags))).float().flatten()  # shape: (tags,)
            if not torch.allclose(adjust(probe).float() - probe, shift.expand_as(probe), atol=1e-5):
                raise ConfigError(f"the {loss_config(self.loss_function)['name']} loss changes the scores at decoding "
                                  "(adjust_logits) by more than a shift per tag, which the ONNX runtime cannot "
                                  "apply without PyTorch; predict this model with --runtime torch")
        return {"shift": shift.tolist() if bool(shift.any()) else None, "log_prior": self.log_prior.tolist()}

    def adjusted_scores(self, scores: torch.Tensor) -> torch.Tensor:
        scores = hooks(self.loss_function).adjust_logits(scores)  # shape: (batch, words, tags)
        if self.posthoc_tau:
            scores = scores - self.posthoc_tau * self.log_prior  # shape: (batch, words, tags)
        return scores

    def config(self) -> dict[str, Any]:
        return {**super().config(), "posthoc_tau": self.posthoc_tau, "posthoc_selection": self.posthoc_selection}

    def configure_decoding(self, *, posthoc_tau: float | None = None,
                           posthoc_selection: dict[str, Any] | None = None, **options: Any) -> None:
        if posthoc_tau is not None:
            if not math.isfinite(posthoc_tau):
                raise ConfigError(f"posthoc_tau={posthoc_tau}: expected a finite number (0 = no adjustment)")
            self.posthoc_tau = float(posthoc_tau)
            # A tau given without its selection record was set by hand: the old record no longer describes it.
            self.posthoc_selection = posthoc_selection
        super().configure_decoding(**options)

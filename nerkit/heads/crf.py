"""Linear-chain CRF over word emissions, with the tag scheme's invalid transitions forbidden.

Loss: with ``ce`` (the default; any loss whose ``crf_sequence_nll`` hook is set), the
negative log-likelihood of the gold tag sequences,
summed over the batch and divided by the number of words, so its scale matches the token
losses (docs/losses.md 1.3). Any other token loss of the registry (``focal``, ``weighted-ce``,
...) is applied to the CRF's posterior marginals ``log p(y_t | x)`` from forward-backward,
which are differentiable: a class-weighted or focal CRF keeps the transition structure
and Viterbi decoding while re-weighting words by class, in the spirit of AllenNLP's
weighted CRFs. Decoding is batched Viterbi over the emissions after the loss's
``adjust_logits`` hook (so ``logit-adjusted`` with ``decision=overall`` shifts the CRF's
decisions as it does the softmax tagger's) and the post-hoc adjustment ``posthoc_tau``
(``adjusted_emissions``); each predicted span is scored with the mean
posterior marginal probability of its words' tags.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from nerkit.data import decoding
from nerkit.data.spans import ScoredSpan
from nerkit.heads.base import AdjustedTaggingHead
from nerkit.heads.registry import HeadContext, register_head
from nerkit.losses import hooks, log_prior

FORBIDDEN = decoding.FORBIDDEN  # finite: forbidden paths never give inf - inf = NaN; exp(-1e4) is 0 in float32


def transition_table(tags: list[str], scheme: str) -> torch.Tensor:
    """``allowed[a, b]``: may tag ``b`` follow tag ``a`` (``nerkit.data.decoding.transition_table``)."""
    return torch.from_numpy(decoding.transition_table(tags, scheme))


class CRFHead(AdjustedTaggingHead):
    kind = "crf"

    def __init__(self, input_size: int, entity_types: list[str], *, scheme: str = "BIO",
                 loss: nn.Module | None = None, log_prior: torch.Tensor | None = None, posthoc_tau: float = 0.0):
        super().__init__(entity_types, scheme, loss=loss, log_prior=log_prior, posthoc_tau=posthoc_tau)
        self.sequence_nll = loss is None or hooks(loss).crf_sequence_nll
        tags = len(self.tags)
        self.projection = nn.Linear(input_size, tags)
        self.transitions = nn.Parameter(torch.zeros(tags, tags))  # [from, to]
        self.start_transitions = nn.Parameter(torch.zeros(tags))
        self.end_transitions = nn.Parameter(torch.zeros(tags))
        self.register_buffer("allowed", transition_table(self.tags, self.scheme), persistent=False)
        start_allowed, end_allowed = decoding.edge_tables(self.tags, self.scheme)
        self.register_buffer("start_allowed", torch.from_numpy(start_allowed), persistent=False)
        self.register_buffer("end_allowed", torch.from_numpy(end_allowed), persistent=False)

    # ----------------------------------------------------------------- scores

    def _potentials(self):
        """Transition scores with forbidden moves set to FORBIDDEN (float32)."""
        transitions = self.transitions.float().masked_fill(~self.allowed, FORBIDDEN)
        start = self.start_transitions.float().masked_fill(~self.start_allowed, FORBIDDEN)
        end = self.end_transitions.float().masked_fill(~self.end_allowed, FORBIDDEN)
        return transitions, start, end

    def emissions(self, word_vectors: torch.Tensor) -> torch.Tensor:
        return self.projection(word_vectors).float()  # shape: (batch, words, tags)

    def _forward_alphas(self, emissions, mask):
        """All forward variables ``alpha[t]`` (log-sum over paths ending at t) and log Z."""
        transitions, start, end = self._potentials()
        alpha = start + emissions[:, 0]  # shape: (batch, tags)
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            # shape: (batch, from, to) -> log-sum over 'from'
            step = torch.logsumexp(alpha.unsqueeze(2) + transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
            alphas.append(alpha)
        log_partition = torch.logsumexp(alpha + end, dim=1)  # shape: (batch,)
        return torch.stack(alphas, dim=1), log_partition

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._forward_alphas(emissions, mask)[1]

    def sequence_score(self, emissions, tag_ids, mask):
        """Score of the given tag sequences (padding positions ignored)."""
        transitions, start, end = self._potentials()
        tags = tag_ids.clamp(min=0)  # -100 at padding -> any index; masked out below
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # shape: (batch, words)
        score = start[tags[:, 0]] + (emitted * mask).sum(dim=1)
        moves = transitions[tags[:, :-1], tags[:, 1:]]  # shape: (batch, words-1)
        score = score + (moves * mask[:, 1:]).sum(dim=1)
        last = mask.sum(dim=1) - 1
        return score + end[tags.gather(1, last.unsqueeze(1)).squeeze(1)]

    def negative_log_likelihood(self, emissions, tag_ids, mask) -> torch.Tensor:
        """Per-sequence NLL, ``log Z - score(gold)`` (>= 0)."""
        return self.log_partition(emissions, mask) - self.sequence_score(emissions, tag_ids, mask)

    def constrained_log_partition(self, emissions: torch.Tensor, allowed: torch.Tensor,
                                  mask: torch.Tensor) -> torch.Tensor:
        """log of the summed scores of the tag paths that keep to ``allowed (batch, words, tags)``:
        the forward algorithm with the other tags' emissions FORBIDDEN (exp(-1e4) is exactly 0 in
        float32, and finite: no inf - inf where a word allows few tags)."""
        return self.log_partition(emissions.masked_fill(~allowed, FORBIDDEN), mask)  # shape: (batch,)

    def partial_negative_log_likelihood(self, emissions, allowed, mask) -> torch.Tensor:
        """Per-sequence NLL of partial annotations, ``log Z - log Z(allowed paths)`` (>= 0): the
        likelihood of every tag path consistent with what is known is maximised."""
        return self.log_partition(emissions, mask) - self.constrained_log_partition(emissions, allowed, mask)

    def loss(self, word_vectors, batch):
        mask = batch["mask"]
        emissions = self.emissions(word_vectors)
        allowed = batch.get("allowed_tags")  # partial annotations only
        if self.sequence_nll:
            nll = (self.negative_log_likelihood(emissions, batch["tag_ids"], mask) if allowed is None
                   else self.partial_negative_log_likelihood(emissions, allowed, mask))
            return nll.sum() / mask.sum().clamp(min=1)
        # Normalised log-marginals act as logits: log_softmax leaves them unchanged.
        if allowed is not None:
            return self.loss_function.forward_partial(self.log_marginals(emissions, mask), allowed, mask)
        return self.loss_function(self.log_marginals(emissions, mask), batch["tag_ids"], mask)

    def learns_partial_labels(self) -> bool:
        return self.sequence_nll or super().learns_partial_labels()

    # ----------------------------------------------------------------- decoding

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The best tag sequence of each row, shape (batch, words); padding positions hold 0."""
        transitions, start, end = self._potentials()
        score = start + emissions[:, 0]  # shape: (batch, tags)
        backpointers = []
        for t in range(1, emissions.shape[1]):
            candidates = score.unsqueeze(2) + transitions  # shape: (batch, from, to)
            best, best_from = candidates.max(dim=1)
            step = best + emissions[:, t]
            score = torch.where(mask[:, t].unsqueeze(1), step, score)
            backpointers.append(best_from)
        score = score + end
        # Backtrack all rows at once: a row's best last tag enters at its own last word, and
        # before that each position takes the pointer of the tag chosen after it.
        last = mask.sum(dim=1) - 1  # shape: (batch,)
        best_last = tag = score.argmax(dim=1)  # shape: (batch,)
        path = torch.zeros_like(mask, dtype=torch.long)
        for t in range(emissions.shape[1] - 1, -1, -1):
            tag = torch.where(last == t, best_last, tag)
            path[:, t] = torch.where(t <= last, tag, 0)
            if t > 0:  # backpointers[t - 1] maps the tag at t to the best one at t - 1
                tag = backpointers[t - 1].gather(1, tag.unsqueeze(1)).squeeze(1)
        return path

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Posterior probability of each tag at each word, by forward-backward. Without gradients
        (decoding), in probability space with a rescaling at every step: a matrix product per
        step instead of a log-sum-exp over (batch, tags, tags), the same values to float precision."""
        if torch.is_grad_enabled() and (emissions.requires_grad or self.transitions.requires_grad):
            return torch.exp(self.log_marginals(emissions, mask))
        return self._scaled_marginals(emissions, mask)

    def _scaled_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        transitions, start, end = (potential.to(emissions.dtype) for potential in self._potentials())
        # exp of the transitions, each column (row, backwards) scaled to at most 1: forbidden moves
        # become exactly 0, and every tag keeps an allowed neighbour of weight >= exp(-range).
        column_max, row_max = transitions.max(dim=0).values, transitions.max(dim=1).values
        moves = torch.exp(transitions - column_max)  # shape: (from, to)
        moves_back = torch.exp(transitions - row_max.unsqueeze(1)).T  # shape: (to, from)
        words = emissions.shape[1]
        # alpha[t] and beta[t] are kept shifted so that their largest entry is 0: a constant per row
        # and word that the normalisation at the end removes, so the values never grow with length.
        alpha = _shifted(start + emissions[:, 0])  # shape: (batch, tags)
        alphas = [alpha]
        for t in range(1, words):
            step = _shifted(torch.log(torch.exp(alpha) @ moves) + column_max + emissions[:, t])
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
            alphas.append(alpha)
        beta = _shifted(end).expand(emissions.shape[0], -1)  # shape: (batch, tags)
        betas = [beta]
        for t in range(words - 2, -1, -1):
            step = _shifted(torch.log(torch.exp(_shifted(emissions[:, t + 1] + beta)) @ moves_back) + row_max)
            beta = torch.where(mask[:, t + 1].unsqueeze(1), step, betas[0])
            betas.append(beta)
        # p(y_t = c | x) is proportional to exp(alpha[t, c] + beta[t, c]) at every t.
        return torch.softmax(torch.stack(alphas, dim=1) + torch.stack(betas[::-1], dim=1), dim=2)

    def log_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``log p(y_t = c | x)`` for every word and tag, shape (batch, words, tags)."""
        transitions, _, end = self._potentials()
        alphas, log_partition = self._forward_alphas(emissions, mask)
        words = emissions.shape[1]
        beta = end.expand(emissions.shape[0], -1)  # shape: (batch, tags)
        betas = [beta]
        for t in range(words - 2, -1, -1):
            # shape: (batch, from, to) -> log-sum over 'to'
            step = torch.logsumexp(transitions + (emissions[:, t + 1] + beta).unsqueeze(1), dim=2)
            beta = torch.where(mask[:, t + 1].unsqueeze(1), step, end.expand_as(step))
            betas.append(beta)
        betas = torch.stack(betas[::-1], dim=1)  # shape: (batch, words, tags)
        return alphas + betas - log_partition.view(-1, 1, 1)

    def adjusted_emissions(self, emissions: torch.Tensor) -> torch.Tensor:
        """The emissions Viterbi decodes from: the loss's ``adjust_logits`` hook, then post-hoc
        logit adjustment (docs/losses.md 2.6), ``e - tau * log prior`` for every word and tag,
        the softmax tagger's rule applied before Viterbi; transitions are left as trained."""
        return self.adjusted_scores(emissions)  # shape: (batch, words, tags)

    def decoding_spec(self) -> dict[str, Any]:
        """With the trained transition, start and end scores (the scheme forbids moves at decoding)."""
        return {**super().decoding_spec(), "transitions": self.transitions.float().tolist(),
                "start": self.start_transitions.float().tolist(), "end": self.end_transitions.float().tolist()}

    def decoding_scores(self, word_vectors, batch) -> dict[str, torch.Tensor]:
        return {"emissions": self.emissions(word_vectors)}  # shape: (batch, words, tags)

    def decode_scores(self, scores, batch) -> list[list[ScoredSpan]]:
        mask = batch["mask"]
        emissions = self.adjusted_emissions(scores["emissions"].float())  # shape: (batch, words, tags)
        paths = self.viterbi(emissions, mask)  # shape: (batch, words)
        chosen = self.marginals(emissions, mask).gather(2, paths.unsqueeze(2)).squeeze(2)  # shape: (batch, words)
        return self.spans_from_batch(paths, chosen, mask)


def _shifted(scores: torch.Tensor) -> torch.Tensor:
    """``scores`` minus their maximum over the last axis (tags)."""
    return scores - scores.max(dim=-1, keepdim=True).values


@register_head("crf", losses=("crf", "token"), default_loss="ce", labels="tags",
               summary="linear-chain CRF, Viterbi decoding; ce = sequence NLL, other token losses on its marginals")
def crf_head(context: HeadContext, *, scheme: Literal["BIO", "BIOES"] = "BIO",
             posthoc_tau: Annotated[float, Field(allow_inf_nan=False)] = 0.0,
             posthoc_selection: dict[str, Any] | None = None) -> CRFHead:
    """``posthoc_tau``: post-hoc logit adjustment of the emissions before Viterbi, e - tau * log prior
    (0 = off; negative values favour frequent tags)."""
    head = CRFHead(context.input_size, context.entity_types, scheme=scheme, loss=context.loss,
                   log_prior=log_prior(context.label_counts), posthoc_tau=posthoc_tau)
    head.posthoc_selection = posthoc_selection  # how --select-for chose the tau (None: set by hand)
    return head

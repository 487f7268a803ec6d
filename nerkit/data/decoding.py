"""Decoding in NumPy: the heads' scores -> spans, without torch.

The ONNX runtime (``nerkit.export.runtime``) decodes with these; the heads decode with their torch
twins (batched on the model's device, GPU included), and tests/test_numpy_decoding.py holds the two
equal: the same spans, scores to float32 precision.

* tagging heads: the decision scores (``adjusted``: the loss's decode-time shift and post-hoc tau),
  the softmax tagger's argmax, the CRF's Viterbi over transitions with the scheme's invalid moves
  forbidden and its posterior marginals (the span scores), and tags -> spans;
* the span head: span scores from the start and end vectors, formed in blocks of rows over the band
  of the span length limit (memory grows with the words, never with their square), the cells over 0.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nerkit.data.schemes import allowed_transition, parts_to_spans, split_tag
from nerkit.data.spans import ScoredSpan

# Finite, so that forbidden paths never produce inf - inf = NaN; exp(-1e4) is exactly 0 in float32.
FORBIDDEN = -1e4
# The span head's variants: one projection per type (standard), or shared with a type term (efficient).
SPAN_VARIANTS = ("standard", "efficient")
# Start rows of a span decoding block under a span length limit: enough that Python's cost per block
# is small, few enough that the cells of the block outside the band cost little.
BAND_ROWS = 64


# ----------------------------------------------------------------------------- tagging heads


def transition_table(tags: Sequence[str], scheme: str) -> np.ndarray:
    """``allowed[a, b]``: may tag ``b`` follow tag ``a``. Whether it may depends only on the two
    prefixes and on whether the types are the same, so the table is decided once for each such
    case and spread by indexing: one decision per pair of tags would be tags^2 Python calls, hours
    for a crafted config.json of 20,000 types before its weights could be checked."""
    prefixes, types = zip(*(split_tag(tag) for tag in tags))
    codes = sorted(set(prefixes))

    def example(prefix: str, entity_type: str) -> str:
        return "O" if prefix == "O" else f"{prefix}-{entity_type}"

    # shape: (prefix of a, prefix of b, same type) -> allowed
    decided = np.array([[[allowed_transition(example(a, "X"), example(b, "X" if same else "Y"), scheme)
                          for same in (False, True)] for b in codes] for a in codes], dtype=bool)
    prefix_ids = np.array([codes.index(prefix) for prefix in prefixes])  # shape: (tags,)
    type_index = {name: index for index, name in enumerate(dict.fromkeys(t for t in types if t is not None))}
    type_ids = np.array([type_index.get(t, -1) for t in types])  # shape: (tags,)
    same = (type_ids[:, None] == type_ids[None, :]).astype(np.int64)  # shape: (tags, tags)
    return decided[prefix_ids[:, None], prefix_ids[None, :], same]  # shape: (tags, tags)


def edge_tables(tags: Sequence[str], scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Which tags may start a sentence and which may end one."""
    return (np.array([allowed_transition("START", tag, scheme) for tag in tags], dtype=bool),
            np.array([allowed_transition(tag, "END", scheme) for tag in tags], dtype=bool))


class CRFPotentials:
    """A CRF's trained transition, start and end scores with the scheme's forbidden moves set to
    ``FORBIDDEN`` (float32), as ``CRFHead._potentials`` gives them."""

    def __init__(self, tags: Sequence[str], scheme: str, transitions: np.ndarray, start: np.ndarray,
                 end: np.ndarray):
        start_allowed, end_allowed = edge_tables(tags, scheme)
        self.transitions = np.where(transition_table(tags, scheme), transitions, FORBIDDEN).astype(np.float32)
        self.start = np.where(start_allowed, start, FORBIDDEN).astype(np.float32)
        self.end = np.where(end_allowed, end, FORBIDDEN).astype(np.float32)

    def viterbi(self, emissions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The best tag sequence of each row, shape (batch, words); padding positions hold 0."""
        score = self.start + emissions[:, 0]  # shape: (batch, tags)
        backpointers = []
        for t in range(1, emissions.shape[1]):
            candidates = score[:, :, None] + self.transitions  # shape: (batch, from, to)
            best_from = candidates.argmax(axis=1)  # the first best, as torch's max
            step = np.take_along_axis(candidates, best_from[:, None, :], axis=1)[:, 0] + emissions[:, t]
            score = np.where(mask[:, t, None], step, score)
            backpointers.append(best_from)
        score = score + self.end
        # Backtrack all rows at once: a row's best last tag enters at its own last word, and
        # before that each position takes the pointer of the tag chosen after it.
        last = mask.sum(axis=1) - 1  # shape: (batch,)
        best_last = tag = score.argmax(axis=1)  # shape: (batch,)
        path = np.zeros(mask.shape, dtype=np.int64)
        rows = np.arange(mask.shape[0])
        for t in range(emissions.shape[1] - 1, -1, -1):
            tag = np.where(last == t, best_last, tag)
            path[:, t] = np.where(t <= last, tag, 0)
            if t > 0:  # backpointers[t - 1] maps the tag at t to the best one at t - 1
                tag = backpointers[t - 1][rows, tag]
        return path

    def marginals(self, emissions: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Posterior probability of each tag at each word by forward-backward, in probability space
        with a rescaling at every step (``CRFHead._scaled_marginals``), shape (batch, words, tags)."""
        transitions, start, end = self.transitions, self.start, self.end
        # exp of the transitions, each column (row, backwards) scaled to at most 1: forbidden moves
        # become exactly 0, and every tag keeps an allowed neighbour of weight >= exp(-range).
        column_max, row_max = transitions.max(axis=0), transitions.max(axis=1)
        moves = np.exp(transitions - column_max)  # shape: (from, to)
        moves_back = np.exp(transitions - row_max[:, None]).T  # shape: (to, from)
        words = emissions.shape[1]
        with np.errstate(divide="ignore"):  # log(0) = -inf for a tag no allowed move reaches: exp gives 0 back
            alpha = _shifted(start + emissions[:, 0])  # shape: (batch, tags)
            alphas = [alpha]
            for t in range(1, words):
                step = _shifted(np.log(np.exp(alpha) @ moves) + column_max + emissions[:, t])
                alpha = np.where(mask[:, t, None], step, alpha)
                alphas.append(alpha)
            first_beta = np.broadcast_to(_shifted(end), (emissions.shape[0], len(end)))  # shape: (batch, tags)
            beta, betas = first_beta, [first_beta]
            for t in range(words - 2, -1, -1):
                step = _shifted(np.log(np.exp(_shifted(emissions[:, t + 1] + beta)) @ moves_back) + row_max)
                beta = np.where(mask[:, t + 1, None], step, first_beta)
                betas.append(beta)
        # p(y_t = c | x) is proportional to exp(alpha[t, c] + beta[t, c]) at every t.
        return softmax(np.stack(alphas, axis=1) + np.stack(betas[::-1], axis=1))


def _shifted(scores: np.ndarray) -> np.ndarray:
    """``scores`` minus their maximum over the last axis (tags)."""
    return scores - scores.max(axis=-1, keepdims=True)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in the scores' precision."""
    exponents = np.exp(_shifted(scores))
    return exponents / exponents.sum(axis=-1, keepdims=True)


def adjusted(scores: np.ndarray, *, shift: np.ndarray | None, posthoc_tau: float, log_prior: np.ndarray) -> np.ndarray:
    """The scores a tagging head decides from (``AdjustedTaggingHead.adjusted_scores``): the loss's
    decode-time ``shift`` per tag (``logit-adjusted`` with ``decision=overall``; None: none), then
    the post-hoc adjustment ``- tau * log prior`` (docs/losses.md 2.6)."""
    scores = scores.astype(np.float32, copy=False)
    if shift is not None:
        scores = scores + shift
    if posthoc_tau:
        scores = scores - np.float32(posthoc_tau) * log_prior
    return scores


def tag_spans(tag_parts: Sequence[tuple[str, str | None]], scheme: str, tag_ids: np.ndarray, tag_scores: np.ndarray,
              mask: np.ndarray) -> list[list[ScoredSpan]]:
    """Predicted tag ids and their scores (batch, words) -> the spans of each row, read up to its
    length in ``mask``; a span's score is the mean of its words' scores."""
    found = []
    for tags, scores, length in zip(tag_ids.tolist(), tag_scores.tolist(), mask.sum(axis=1).tolist()):
        spans, _ = parts_to_spans([tag_parts[i] for i in tags[:length]], scheme)
        found.append([ScoredSpan(s.start, s.end, s.type, sum(scores[s.start:s.end]) / (s.end - s.start))
                      for s in spans])
    return found


# ----------------------------------------------------------------------------- the span head


class SpanDecoder:
    """The span head's decoding (``GlobalPointerHead.decode_scores``) from its start and end vectors
    ``q``, ``k`` (and the efficient variant's type term ``u``): every valid cell (``i <= j <
    length``, ``j - i < max_span_length``) with a score over 0 is a span ``(i, j + 1, type)``,
    scored ``sigmoid(s)``; with ``flat_decoding`` the non-overlapping ones, highest first."""

    def __init__(self, entity_types: Sequence[str], *, variant: str, head_size: int, max_span_length: int | None,
                 flat_decoding: bool, max_cells: int):
        self.entity_types, self.variant, self.head_size = list(entity_types), variant, head_size
        self.max_span_length, self.flat_decoding, self.max_cells = max_span_length, flat_decoding, max_cells

    def decode(self, pointers: dict[str, np.ndarray], mask: np.ndarray) -> list[list[ScoredSpan]]:
        batch_size, words = mask.shape
        pointers = {name: vectors.astype(np.float32, copy=False) for name, vectors in pointers.items()}
        lengths = mask.sum(axis=1)
        block = rows_per_block(self.max_cells, batch_size, len(self.entity_types), words, self.max_span_length)
        found: list[list[ScoredSpan]] = [[] for _ in range(batch_size)]
        for first in range(0, words, block):
            rows = slice(first, min(words, first + block))
            band_end = words if self.max_span_length is None else min(words, rows.stop + self.max_span_length - 1)
            columns = slice(first, band_end)  # no span ends before it starts
            scores = self.scores(pointers, lengths, rows, columns)  # shape: (batch, types, rows, columns)
            positive = scores > 0  # -inf (invalid) and NaN never are
            hits = np.argwhere(positive)  # row-major order, as scores[positive]
            probabilities = 1.0 / (1.0 + np.exp(-scores[positive]))
            for (row, type_id, start, end), probability in zip(hits.tolist(), probabilities.tolist()):
                found[row].append(ScoredSpan(start + first, end + first + 1, self.entity_types[type_id], probability))
        return [select_spans(spans, self.flat_decoding) for spans in found]

    def scores(self, pointers: dict[str, np.ndarray], lengths: np.ndarray, rows: slice, columns: slice) -> np.ndarray:
        """Masked scores of the spans starting in ``rows`` and ending in ``columns``, shape ``(batch,
        types, rows, columns)``; invalid cells are ``-inf``."""
        q, k = pointers["q"][:, rows], pointers["k"][:, columns]
        scale = np.float32(1.0 / math.sqrt(self.head_size))
        if self.variant == "standard":
            scores = np.einsum("bitd,bjtd->btij", q, k) * scale  # shape: (batch, types, rows, columns)
        else:
            u = pointers["u"]
            dot = np.einsum("bid,bjd->bij", q, k)[:, None] * scale  # shape: (batch, 1, rows, columns)
            end_term = u[:, columns, 0::2].transpose(0, 2, 1)[:, :, None, :]  # u_{j,2t}: (batch, types, 1, columns)
            start_term = u[:, rows, 1::2].transpose(0, 2, 1)[:, :, :, None]  # u_{i,2t+1}: (batch, types, rows, 1)
            scores = dot + (end_term + start_term) / 2  # shape: (batch, types, rows, columns)
        starts, ends = np.arange(rows.start, rows.stop), np.arange(columns.start, columns.stop)
        offset = ends[None, :] - starts[:, None]  # j - i, shape: (rows, columns)
        valid = offset >= 0
        if self.max_span_length is not None:
            valid = valid & (offset < self.max_span_length)
        valid = valid[None] & (ends[None, None, :] < lengths[:, None, None])  # shape: (batch, rows, columns)
        return np.where(valid[:, None], scores, np.float32(-np.inf))


def rows_per_block(max_cells: int, batch_size: int, types: int, words: int, max_span_length: int | None) -> int:
    """Start rows per span decoding block, so that one block of scores holds at most ``max_cells``
    cells (or one row when a single row is over): ``rows x words`` cells per sentence and type,
    ``rows x (rows + max_span_length - 1)`` in the band of a span length limit."""
    budget = max(1, max_cells // max(1, batch_size * types))  # cells per sentence and type
    if max_span_length is None or max_span_length >= words:
        return max(1, budget // max(1, words))
    # The largest r with r * (r + m - 1) <= budget, m = max_span_length ...
    extra = max_span_length - 1
    largest = max(1, int((math.isqrt(extra * extra + 4 * budget) - extra) // 2))
    # ... but no more than BAND_ROWS (or 4 m): of a block's r + m - 1 columns, a row has at most m
    # spans, so square blocks of thousands of rows would compute 99% of cells only to mask them.
    return min(largest, max(BAND_ROWS, 4 * max_span_length))


def select_spans(spans: list[ScoredSpan], flat: bool) -> list[ScoredSpan]:
    """All spans (nested decoding), or with ``flat`` the non-overlapping ones kept greedily from the
    highest score down (ties: earlier, shorter, by type)."""
    if not flat:
        return sorted(spans, key=lambda s: (s.start, s.end, s.type))
    taken = [False] * (max((s.end for s in spans), default=0))
    kept = []
    for span in sorted(spans, key=lambda s: (-s.score, s.start, s.end, s.type)):
        if not any(taken[span.start:span.end]):
            taken[span.start:span.end] = [True] * (span.end - span.start)
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.end, s.type))

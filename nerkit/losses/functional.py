"""Shared pieces of the token losses: validity, reduction, stable log-probabilities."""

from __future__ import annotations

import torch

from nerkit.errors import DataError

IGNORE_INDEX = -100


def valid_tokens(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Tokens that count: inside the mask and not labelled ``-100`` (docs/losses.md 1.1)."""
    return mask.bool() & (labels != IGNORE_INDEX)  # shape: (batch, words)


def gold_log_probs(logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor):
    """Return ``(log_probs [B, L, C], log p_t [B, L])`` in float32 or float64.

    Losses are computed in float32 even under bf16 autocast (docs/losses.md 1.4); labels at
    invalid positions are replaced by 0 so that ``gather`` stays in range.
    """
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    log_probs = torch.log_softmax(logits, dim=-1)  # shape: (batch, words, classes)
    safe_labels = torch.where(valid, labels, torch.zeros_like(labels))
    log_p_gold = log_probs.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)  # shape: (batch, words)
    return log_probs, log_p_gold


def token_mean(per_token: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Sum over valid tokens / number of valid tokens; an exact, attached 0 when none is valid.

    ``where`` (not multiplication) drops invalid positions, so a NaN or inf computed
    there cannot leak into the sum or the gradient.
    """
    total = torch.where(valid, per_token, torch.zeros_like(per_token)).sum()
    count = valid.sum()
    return total / count.clamp(min=1)


def sqrt_balanced_mean(values: torch.Tensor, valid: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """The mean with each valid entry weighted by the inverse square root of its class's count
    (positives or negatives) in the batch (docs/losses.md 4.5):
    ``(sqrt(n_pos) mean_pos + sqrt(n_neg) mean_neg) / (sqrt(n_pos) + sqrt(n_neg))``.
    An exact, attached 0 when nothing is valid; the plain mean of the one class present otherwise."""
    positives, negatives = valid & positive, valid & ~positive
    root_pos = positives.sum().to(values.dtype).sqrt()
    root_neg = negatives.sum().to(values.dtype).sqrt()
    weighted = root_pos * token_mean(values, positives) + root_neg * token_mean(values, negatives)
    return weighted / (root_pos + root_neg).clamp(min=1)


# ---------------------------------------------------------------------------------------
# Helpers added for the other losses (docs/losses.md section 1). The three functions above are
# kept as they were; the ones below are what the loss modules use.

class InvalidLabelError(DataError, ValueError):
    """A label tensor contradicts the mask or the number of classes (docs/losses.md 1.1, 1.2).

    It is a ``DataError`` (nerkit reports it without a traceback) and a ``ValueError``
    (what PyTorch code usually expects from a bad tensor argument).
    """


def upcast(x: torch.Tensor) -> torch.Tensor:
    """float32 for half/bfloat16 (and integer) inputs, float64 stays float64 (docs/losses.md 1.4)."""
    if x.dtype == torch.float64:
        return x
    return x.float()


def attached_zero(x: torch.Tensor) -> torch.Tensor:
    """An exact 0 that is still part of the graph, so every parameter sees a (zero) gradient."""
    return (upcast(x) * 0).sum()


def one_minus_exp(log_p: torch.Tensor) -> torch.Tensor:
    """``1 - p`` from ``log p`` as ``-expm1(log p)`` clipped to [0, 1] (docs/losses.md 1.4)."""
    return (-torch.expm1(log_p)).clamp(0.0, 1.0)


def _full_mask(mask: torch.Tensor | None, shape: torch.Size, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return mask.bool().expand(shape)


def token_inputs(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None):
    """Validate and prepare a multi-class token batch (docs/losses.md 1.1).

    Returns ``(z, safe_labels, valid)``:

    * ``z``: the logits upcast to float32/float64 with invalid positions replaced by 0, so
      that whatever they held (even inf or NaN) neither enters the loss nor receives a
      gradient other than an exact 0;
    * ``safe_labels``: the labels with invalid positions replaced by 0 (``gather`` stays in range);
    * ``valid``: ``mask & (label != -100)``.

    Raises ``InvalidLabelError`` if a valid token's label is outside ``[0, C)``.
    """
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"token loss: labels of shape {tuple(labels.shape)} do not match logits of shape "
            f"{tuple(logits.shape)} (expected labels of shape logits.shape[:-1])"
        )
    num_classes = logits.shape[-1]
    valid = valid_tokens(labels, _full_mask(mask, labels.shape, labels.device))  # shape: (batch, words)
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        raise InvalidLabelError(f"token loss: a valid token has a label outside [0, {num_classes})")
    z = torch.where(valid.unsqueeze(-1), upcast(logits), 0.0)  # shape: (batch, words, classes)
    safe_labels = torch.where(valid, labels, torch.zeros_like(labels))  # shape: (batch, words)
    return z, safe_labels, valid


def binary_inputs(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None):
    """Validate and prepare a binary grid: span cells or any 0/1 grid (docs/losses.md 1.2, 4.5).

    ``labels`` has the shape of ``scores`` and holds 0 or 1 (bool, int or float); ``-100``
    marks an ignored entry. ``mask`` (same shape or broadcastable; ``None`` = all valid) marks
    the valid cells. Returns ``(x, y, valid)`` with ``x`` the upcast scores (0 on invalid
    cells, so that ``-inf`` scores there cannot produce NaN), ``y`` the labels as 0./1. in the
    dtype of ``x``, and ``valid``.

    Raises ``InvalidLabelError`` for a positive label on an invalid cell (a data error,
    docs/losses.md 1.2) or a valid label other than 0 and 1.
    """
    if labels.shape != scores.shape:
        raise ValueError(
            f"binary loss: labels of shape {tuple(labels.shape)} do not match scores of shape "
            f"{tuple(scores.shape)}"
        )
    inside = _full_mask(mask, scores.shape, scores.device)
    if labels.dtype == torch.bool:
        ignored = torch.zeros_like(labels)
        positive = labels
        binary_ok = torch.ones_like(labels)
    else:
        ignored = labels == IGNORE_INDEX
        positive = labels == 1
        binary_ok = (labels == 0) | positive
    valid = inside & ~ignored
    if bool((~inside & ~ignored & (labels > 0)).any()):
        raise InvalidLabelError("binary/span loss: a positive label lies on an invalid (masked) cell")
    if bool((valid & ~binary_ok).any()):
        raise InvalidLabelError("binary/span loss: labels of valid cells must be 0 or 1")
    x = torch.where(valid, upcast(scores), 0.0)
    y = (positive & valid).to(x.dtype)
    return x, y, valid


def gold_terms(z: torch.Tensor, labels: torch.Tensor):
    """``(log_probs [..., C], log p_t [...])`` from a log-softmax, never ``log(softmax)``."""
    log_probs = torch.log_softmax(z, dim=-1)  # shape: (batch, words, classes)
    log_p_gold = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # shape: (batch, words)
    return log_probs, log_p_gold


def signed_logit(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``s = x`` for positives and ``-x`` for negatives, so ``p_t = sigma(s)`` (docs/losses.md notation)."""
    return torch.where(y > 0.5, x, -x)


def step(x: torch.Tensor) -> torch.Tensor:
    """Unit step with ``theta(0) = 1/2``: Su's ``(sign(x) + 1) / 2`` (docs/losses.md notation)."""
    return (torch.sign(x) + 1) / 2


def partial_inputs(logits: torch.Tensor, allowed: torch.Tensor, mask: torch.Tensor | None):
    """Validate and prepare a token batch with partial labels: ``allowed [B, L, C]`` (bool) holds
    the tags each token may have (one for a known tag, several where only some are ruled out).

    Returns ``(z, allowed, valid)``: the logits upcast, 0 at invalid positions (as in
    ``token_inputs``); ``allowed`` with every tag allowed at invalid positions, so that each
    log-sum-exp over it is finite; ``valid = mask``. Raises ``InvalidLabelError`` if a valid
    token allows no tag.
    """
    if allowed.shape != logits.shape:
        raise ValueError(f"partial token loss: allowed tags of shape {tuple(allowed.shape)} do not match logits of "
                         f"shape {tuple(logits.shape)}")
    valid = _full_mask(mask, logits.shape[:-1], logits.device)  # shape: (batch, words)
    if bool((valid & ~allowed.any(dim=-1)).any()):
        raise InvalidLabelError("partial token loss: a valid token allows no tag")
    z = torch.where(valid.unsqueeze(-1), upcast(logits), 0.0)  # shape: (batch, words, classes)
    allowed = allowed | ~valid.unsqueeze(-1)  # shape: (batch, words, classes)
    return z, allowed, valid


def allowed_log_probs(z: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_probs [..., C], log p(A) [...])`` with ``log p(A) = LSE(z_A) - LSE(z)``: the log of the
    summed probability of the allowed tags; one allowed tag gives ``log p_t`` exactly."""
    log_probs = torch.log_softmax(z, dim=-1)  # shape: (batch, words, classes)
    log_p_allowed = torch.logsumexp(log_probs.masked_fill(~allowed, float("-inf")), dim=-1)  # shape: (batch, words)
    return log_probs, log_p_allowed

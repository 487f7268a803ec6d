"""Class statistics: smoothed priors and class weights (docs/losses.md 1.5 and 2.2).

Everything is computed in float64 from the integer ``label_counts`` and cast at the end,
so a model reloaded from its ``config.json`` gets bit-identical priors and weights.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from nerkit.errors import ConfigError
from nerkit.losses.registry import check_choice, check_range

WEIGHT_SCHEMES = ("none", "inverse", "inverse_power", "effective_number", "log")
WEIGHT_NORMALIZATIONS = ("prior_mean", "class_mean", "none")
#: default ``beta`` per scheme (docs/losses.md 6: 0.5 for inverse_power, 0.999 for effective_number)
DEFAULT_BETA = {"inverse_power": 0.5, "effective_number": 0.999}
#: allowed ``beta`` per scheme (docs/losses.md 6)
BETA_RANGE = {"inverse_power": (0.0, 1.0), "effective_number": (0.9, 0.9999)}
#: the constant ``c`` of ENet's logarithmic weights ``1 / ln(c + pi)``
LOG_SCHEME_C = 1.02

CountsLike = Sequence[float] | torch.Tensor


def _counts(counts: CountsLike, name: str = "label_counts") -> torch.Tensor:
    """The counts as a float64 vector, checked: non-empty, finite, non-negative."""
    if isinstance(counts, torch.Tensor):
        values = counts.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            # On the CPU even while a model is built on the meta device (nerkit.tagger): the values are checked.
            values = torch.tensor([float(c) for c in counts], dtype=torch.float64, device="cpu")
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a list of numbers, got {counts!r}") from None
    if values.dim() != 1 or values.numel() == 0:
        raise ConfigError(f"{name} must be a non-empty list of per-class counts")
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ConfigError(f"{name} must hold finite counts >= 0, got {values.tolist()}")
    return values


def smoothed_counts(counts: CountsLike, pseudo_count: float = 1.0, *, name: str = "pseudo_count") -> torch.Tensor:
    """``n'_c = n_c + a`` in float64 (docs/losses.md 1.5)."""
    check_range(name, pseudo_count, 0.0, math.inf)
    return _counts(counts) + float(pseudo_count)


def smoothed_prior(counts: CountsLike, pseudo_count: float = 1.0, *, name: str = "pseudo_count") -> torch.Tensor:
    """``pi_c = n'_c / N'`` in float64 (docs/losses.md 1.5)."""
    smoothed = smoothed_counts(counts, pseudo_count, name=name)
    total = smoothed.sum()
    if total <= 0:
        raise ConfigError(f"the class counts are all 0; use {name} > 0")
    return smoothed / total


def log_prior(counts: CountsLike, pseudo_count: float = 1.0, *, dtype: torch.dtype = torch.float32,
              name: str = "pseudo_count") -> torch.Tensor:
    """``log pi_c`` with ``pi_c = (n_c + a) / sum(n + a)``, computed in float64, then cast (docs/losses.md 1.5).

    A class with smoothed count 0 would get ``log pi = -inf``, which docs/losses.md 2.6 forbids:
    that raises ``ConfigError`` (use a pseudo-count > 0).
    """
    prior = smoothed_prior(counts, pseudo_count, name=name)
    if bool((prior == 0).any()):
        raise ConfigError(
            f"a class has count 0 and {name}={pseudo_count} gives it prior 0 (log prior -inf); "
            f"use {name} > 0"
        )
    return torch.log(prior).to(dtype)


def check_weight_options(scheme: str, beta: float | None, pseudo_count: float,
                         normalize_weights: str, max_weight: float | None) -> float | None:
    """Validate the weight options of docs/losses.md 2.2; return the effective ``beta``."""
    check_choice("scheme", scheme, WEIGHT_SCHEMES)
    check_choice("normalize_weights", normalize_weights, WEIGHT_NORMALIZATIONS)
    check_range("pseudo_count", pseudo_count, 0.0, math.inf)
    if max_weight is not None:
        check_range("max_weight", max_weight, 0.0, math.inf, low_open=True)
    if scheme not in DEFAULT_BETA:
        return beta  # the scheme does not use beta
    if beta is None:
        beta = DEFAULT_BETA[scheme]
    low, high = BETA_RANGE[scheme]
    check_range("beta", beta, low, high)
    return float(beta)


def class_weights(counts: CountsLike, scheme: str = "inverse_power", beta: float | None = None,
                  pseudo_count: float = 1.0, normalize_weights: str = "prior_mean",
                  max_weight: float | None = None, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Per-class weights from training counts (docs/losses.md 2.2), float64 maths, cast to ``dtype``.

    With ``n' = counts + pseudo_count``, ``N' = sum n'``, ``pi = n' / N'`` and ``C`` classes:

    * ``none``: 1; ``inverse``: ``N' / (C n'_c)``; ``inverse_power``: ``(N' / n'_c)^beta``
      (``beta`` default 0.5, in [0, 1]); ``effective_number``: ``(1 - beta) / (1 - beta^n'_c)``
      (``beta`` default 0.999, in [0.9, 0.9999]); ``log``: ``1 / ln(1.02 + pi_c)``.
    * then ``normalize_weights``: ``prior_mean`` (``sum_c pi_c w_c = 1``), ``class_mean``
      (``mean_c w_c = 1``) or ``none``; then ``w = min(w, max_weight)`` if ``max_weight`` is set.

    ``beta`` is ignored by the schemes that have none. A class whose smoothed count is 0
    (``pseudo_count = 0`` and an unseen class) raises ``ConfigError`` for the schemes that
    divide by it.
    """
    beta = check_weight_options(scheme, beta, pseudo_count, normalize_weights, max_weight)
    raw_counts = _counts(counts)
    num_classes = raw_counts.numel()
    if scheme == "none":
        # Every normalisation maps all-ones to all-ones; no prior is needed (counts may be all 0).
        weights = torch.ones(num_classes, dtype=torch.float64)
    else:
        smoothed = raw_counts + float(pseudo_count)  # shape: (classes,)
        total = smoothed.sum()
        if total <= 0:
            raise ConfigError("the class counts are all 0; use pseudo_count > 0")
        if scheme != "log" and bool((smoothed == 0).any()):
            raise ConfigError(
                f"scheme={scheme!r} divides by the class counts and a class has count 0 with "
                f"pseudo_count={pseudo_count}; use pseudo_count > 0"
            )
        prior = smoothed / total  # shape: (classes,)
        if scheme == "inverse":
            weights = total / (num_classes * smoothed)
        elif scheme == "inverse_power":
            weights = (total / smoothed) ** beta
        elif scheme == "effective_number":
            # 1 - beta^n computed as -expm1(n log beta): exact even when beta^n is close to 1.
            weights = (1.0 - beta) / (-torch.expm1(smoothed * math.log(beta)))
        else:  # log
            weights = 1.0 / torch.log(LOG_SCHEME_C + prior)
        if normalize_weights == "prior_mean":
            weights = weights / (prior * weights).sum()
        elif normalize_weights == "class_mean":
            weights = weights / weights.mean()
    if max_weight is not None:
        weights = weights.clamp(max=float(max_weight))
    return weights.to(dtype)

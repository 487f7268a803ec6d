"""``flooding``: keep the training loss above a level ``b`` (Ishida et al. 2020; docs/losses.md 3).

A wrapper: ``forward`` takes exactly the inputs of the wrapped loss.

* ``mode="batch"`` (default): ``|L - b| + b`` on the wrapped loss ``L`` after its own
  reduction; gradient ``sign(L - b) * grad L`` (0 at ``L = b``).
* ``mode="sample"`` (iFlood): ``mean_i(|l_i - b| + b)`` over valid elements, for wrapped
  losses with per-element values (token losses and binary forms; not ``zlpr``,
  ``dice(granularity=batch)`` or ``weighted-ce(normalize=weights)``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.base import LossModule
from nerkit.losses.functional import token_mean
from nerkit.losses.hooks import hooks, loss_config
from nerkit.losses.registry import build_loss, check_choice, check_range, get_loss_spec, register_loss

MODES = ("batch", "sample")


class Flooding(LossModule):
    def __init__(self, inner: nn.Module, b: float = 0.01, mode: str = "batch") -> None:
        super().__init__()
        self.inner = inner
        self.b = float(b)
        self.mode = mode

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.mode == "sample":
            values, valid = self.inner.elementwise(*args, **kwargs)
            return token_mean((values - self.b).abs() + self.b, valid)
        loss = self.inner(*args, **kwargs)
        # torch's abs has derivative sign(0) = 0 at L = b: the sub-gradient docs/losses.md 3 asks for.
        return (loss - self.b).abs() + self.b

    # The hooks are the wrapped loss's, except the CRF's sequence NLL: flooding must see the
    # loss value it wraps, so on the CRF it wraps the loss of the posterior marginals.
    def adjust_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return hooks(self.inner).adjust_logits(logits)

    @property
    def changes_decoding(self) -> bool:
        return hooks(self.inner).changes_decoding

    @property
    def cosine_scale(self) -> float | None:
        return hooks(self.inner).cosine_scale

    def sparse_span_targets(self, num_types: int, words: int) -> bool:
        return hooks(self.inner).sparse_span_targets(num_types, words)

    def config(self) -> dict[str, Any]:
        # The wrapped loss as it reports itself, its settings in the mapping ``inner`` takes.
        return {"name": "flooding", "inner": loss_config(self.inner), "inner_params": None, "b": self.b,
                "mode": self.mode}


# Listed under every head kind a wrapped loss can serve, so that a head's check
# ``kind in applies_to`` lets it through; whether the *inner* loss fits is checked on ``inner``.
@register_loss("flooding", applies_to=("wrapper", "token", "span", "binary", "cosine"),
               decoding="as the loss it wraps",
               summary="flooding wrapper |L - b| + b around another loss (Ishida et al. 2020)")
def build_flooding(
    *,
    inner: str | dict = "ce",
    inner_params: dict | None = None,
    b: float = 0.01,
    mode: str = "batch",
    label_counts: list[int] | None = None,
    num_classes: int | None = None,
    **inner_kwargs: Any,
) -> nn.Module:
    """Flooding (docs/losses.md 3): ``inner`` is the registry name of the wrapped loss (or a mapping
    with a ``name`` key and its parameters); its hyper-parameters go in ``inner_params`` or
    directly as extra keywords. ``b`` >= 0 (in the units of the inner loss); ``mode`` batch or
    sample. ``label_counts`` / ``num_classes`` are passed on to an inner loss that takes them."""
    check_range("b", b, 0.0, math.inf, high_open=True)
    check_choice("mode", mode, MODES)
    params: dict[str, Any] = {}
    if isinstance(inner, dict):
        params.update({k: v for k, v in inner.items() if k != "name"})
        inner = inner.get("name")
    if not isinstance(inner, str):
        raise ConfigError(f"inner={inner!r} must be the registry name of a loss")
    if inner == "flooding":
        raise ConfigError("inner='flooding' is not allowed: flooding cannot wrap itself")
    if inner_params is not None:
        if not isinstance(inner_params, dict):
            raise ConfigError(f"inner_params must be a mapping, got {inner_params!r}")
        params.update(inner_params)
    params.update(inner_kwargs)
    spec = get_loss_spec(inner)
    for name, value in (("label_counts", label_counts), ("num_classes", num_classes)):
        if value is not None and name not in params and spec.accepts(name):
            params[name] = value
    wrapped = build_loss(inner, **params)
    if mode == "sample" and not getattr(wrapped, "supports_elementwise", False):
        raise ConfigError(f"mode='sample' needs per-token values, which loss {inner!r} (with these "
                          f"parameters) does not have; use mode='batch'")
    return Flooding(wrapped, b, mode)

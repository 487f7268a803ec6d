"""Small base classes shared by the loss modules (docs/losses.md section 1).

``LossModule`` gives every built-in loss the optional hooks of ``hooks.LossHooks`` with their
defaults; ``TokenLoss``
adds the plumbing of the element-wise losses (token losses, and binary forms on a grid)
so that a subclass only writes its per-token and/or per-cell formula.
"""

from __future__ import annotations

import torch
from torch import nn

from nerkit.errors import ConfigError
from nerkit.losses.hooks import LossHooks
from nerkit.losses.functional import binary_inputs, partial_inputs, sqrt_balanced_mean, token_inputs, token_mean

#: ``binary_balance`` choices of the binary forms (docs/losses.md 4.5)
BINARY_BALANCES = ("sqrt", "none")


class LossModule(LossHooks, nn.Module):
    """Base of every nerkit loss module: an ``nn.Module`` with the default hooks."""


class TokenLoss(LossModule):
    """An element-wise loss reduced by the mean over valid elements (docs/losses.md 1.3).

    Two input forms, chosen by ``form``:

    * ``"multiclass"``: ``forward(logits [B, L, C], labels [B, L] int64 (-100 allowed),
      mask [B, L] bool)``; subclasses implement ``per_token(z, labels)``.
    * ``"binary"``: ``forward(scores [...], labels [...] in {0, 1} (-100 ignored), mask [...] bool)``,
      three tensors of one shape (span cells ``[B, T, L, L]`` or any grid); subclasses
      implement ``per_cell(x, y)``.
    * ``"auto"`` (only for classes that implement both): ``binary`` when ``labels`` has the
      shape of the scores, ``multiclass`` when it has one dimension fewer. The two cases
      cannot be confused.

    ``mask=None`` means "everything valid". The result is float32 (float64 for float64
    inputs), an exact attached 0 when nothing is valid.

    ``binary_balance`` (binary form only): ``"sqrt"`` weights positive and negative entries by
    the inverse square root of their counts in the batch (``sqrt_balanced_mean``), ``"none"``
    takes the plain mean. The multi-class form always takes the plain mean.
    """

    #: the forms a subclass implements, the first one is its default
    forms: tuple[str, ...] = ("multiclass",)

    def __init__(self, form: str | None = None, binary_balance: str = "none") -> None:
        super().__init__()
        form = form or self.forms[0]
        allowed = self.forms + (("auto",) if len(self.forms) > 1 else ())
        if form not in allowed:
            raise ConfigError(f"form={form!r} is not one of {', '.join(allowed)}")
        if binary_balance not in BINARY_BALANCES:
            raise ConfigError(f"binary_balance={binary_balance!r} is not one of {', '.join(BINARY_BALANCES)}")
        self.form = form
        self.binary_balance = binary_balance

    # Whether ``elementwise`` values are meaningful per sample (for ``flooding(mode="sample")``).
    supports_elementwise: bool = True

    def resolve_form(self, logits: torch.Tensor, labels: torch.Tensor) -> str:
        if self.form != "auto":
            return self.form
        return "binary" if labels.shape == logits.shape else "multiclass"

    def per_token(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-token loss ``[B, L]`` from sanitized float logits ``z [B, L, C]`` and in-range labels."""
        raise NotImplementedError(f"{type(self).__name__} has no multi-class form")

    def per_cell(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-cell loss from sanitized float scores ``x`` and 0./1. labels ``y`` of the same shape."""
        raise NotImplementedError(f"{type(self).__name__} has no binary form")

    def elementwise(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None):
        """``(values, valid)``: the unreduced losses (exactly 0 where invalid) and the validity."""
        if self.resolve_form(logits, labels) == "binary":
            x, y, valid = binary_inputs(logits, labels, mask)
            values = self.per_cell(x, y)
        else:
            z, safe_labels, valid = token_inputs(logits, labels, mask)
            values = self.per_token(z, safe_labels)
        # ``where``, not a product: an inf computed at an invalid position must not leak.
        return torch.where(valid, values, 0.0), valid

    def per_token_partial(self, z: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Per-token loss ``[B, L]`` when each token may have any tag of ``allowed [B, L, C]``
        (partial annotations); only losses registered with ``partial_labels=True`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} has no form for partial labels")

    def forward_partial(self, logits: torch.Tensor, allowed: torch.Tensor,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of a batch with partial labels (``allowed [B, L, C]`` bool), token mean."""
        z, allowed, valid = partial_inputs(logits, allowed, mask)
        values = torch.where(valid, self.per_token_partial(z, allowed), 0.0)  # shape: (batch, words)
        return token_mean(values, valid)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        values, valid = self.elementwise(logits, labels, mask)
        if self.binary_balance == "sqrt" and self.resolve_form(logits, labels) == "binary":
            positive = labels if labels.dtype == torch.bool else labels == 1
            return sqrt_balanced_mean(values, valid, positive)
        return token_mean(values, valid)

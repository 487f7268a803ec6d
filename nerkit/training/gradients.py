"""Sparse gradients for large embedding tables when training on the CPU.

A dense embedding gradient is a new vocabulary x hidden tensor every step (30,522 x 384
floats, 47 MB, for MiniLM), zero-filled and written page by page, though a batch touches a
few hundred rows of it. With ``nn.Embedding(sparse=True)`` the backward pass yields only
those rows; they are added into a dense gradient buffer that lives from step to step and is
zeroed in place. Gradient clipping, the fused AdamW update of every row and so the training
itself are what they were with dense gradients.
"""

from __future__ import annotations

import torch
from torch import nn


class SparseEmbeddingGradients:
    def __init__(self, tables: list[nn.Embedding]):
        self.tables = tables
        for table in tables:
            table.sparse = True
            # A sparse gradient arriving while .grad is None would become .grad itself, and the
            # fused optimizer takes dense gradients only: keep a dense buffer there from the start.
            if table.weight.grad is None:
                table.weight.grad = torch.zeros_like(table.weight)

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.zero_grad(set_to_none=True)``, except that the tables' buffers are kept and zeroed."""
        kept = [(table.weight, table.weight.grad) for table in self.tables]
        optimizer.zero_grad(set_to_none=True)
        for weight, grad in kept:
            grad.zero_()
            weight.grad = grad

    def close(self) -> None:
        """Dense gradients again, and no buffers held."""
        for table in self.tables:
            table.sparse = False
            table.weight.grad = None

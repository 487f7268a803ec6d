"""Exponential moving average of the weights (Polyak averaging).

Training keeps updating the live weights; evaluation and the saved model use the average,
which is smoother than any single step's weights and usually a little better on unseen
data. The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so
the random initial weights are forgotten quickly.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float, *, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must lie in (0, 1), got {decay}")
        self.decay, self.updates = decay, updates
        self.average = {name: parameter.detach().float().clone()
                        for name, parameter in model.named_parameters() if parameter.requires_grad}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after an optimizer step)."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        for name, parameter in model.named_parameters():
            if name in self.average:
                self.average[name].lerp_(parameter.detach().float(), weight)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Inside the block the model carries the averaged weights; its own come back after."""
        live = {}
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in self.average:
                    live[name] = parameter.detach().clone()
                    parameter.copy_(self.average[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    if name in live:
                        parameter.copy_(live[name])

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {name: tensor.contiguous().cpu() for name, tensor in self.average.items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = set(self.average) ^ set(tensors)
        if missing:
            raise ValueError(f"weight average does not match the model: {sorted(missing)[:5]}")
        for name, tensor in tensors.items():
            self.average[name].copy_(tensor)

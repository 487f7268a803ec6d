"""The encoder contract: examples -> features (on the CPU, in collation) -> word vectors.

Every encoder returns one vector per *word* (``[batch, words, output_size]``), whatever
it does inside, so every head works with every encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from nerkit.data.spans import Example


class Encoder(nn.Module):
    output_size: int

    def featurize(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        """Tensors for a batch; must include ``mask [batch, words]`` (bool)."""
        raise NotImplementedError

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return word vectors of shape ``(batch, words, output_size)``."""
        raise NotImplementedError

    def input_lengths(self, examples: list[Example]) -> list[int]:
        """The length of each example in the encoder's own units, for length-grouped batching
        under a token budget: words here; sub-words (with special tokens) for transformers."""
        return [len(example) for example in examples]

    def config(self) -> dict[str, Any]:
        """Everything ``build_encoder`` needs to rebuild this encoder (JSON-serialisable)."""
        raise NotImplementedError

    def save_files(self, directory: Path) -> None:
        """Write vocabularies or tokenizer files beside the weights."""

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate group; transformers separate the pretrained body."""
        return {"encoder": list(self.parameters())}

    def featurizer_spec(self, export_dir: Path) -> dict[str, Any] | None:
        """How the ONNX runtime featurizes for this encoder without torch (JSON, saved in
        ``export.json``; files it needs may be written into ``export_dir``), or None when it
        featurizes only here: such an encoder predicts with ``--runtime torch`` only."""
        return None

    def report(self) -> str | None:
        """A line for the user about the inputs seen since loading (transformers: how many
        needed overlapping windows), or None."""
        return None

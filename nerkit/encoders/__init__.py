"""Encoders: examples -> word vectors ``[batch, words, hidden]``."""

from __future__ import annotations

from pathlib import Path

from nerkit.config import EncoderConfig
from nerkit.data.spans import Example
from nerkit.encoders.base import Encoder
from nerkit.encoders.bilstm import BiLSTMEncoder

_BILSTM_SETTINGS = ("word_dim", "char_dim", "char_filters", "char_kernel", "case_dim", "hidden_size",
                    "num_layers", "dropout", "word_dropout")


def build_encoder(config: EncoderConfig, *, examples: list[Example] | None = None,
                  directory: Path | None = None) -> Encoder:
    """A new encoder from training ``examples``, or a saved one from ``directory``."""
    if config.type == "bilstm":
        settings = {name: getattr(config, name) for name in _BILSTM_SETTINGS}
        settings["dropout"] = 0.5 if config.dropout is None else config.dropout
        if directory is not None:
            return BiLSTMEncoder.from_directory(directory, settings)
        return BiLSTMEncoder.from_examples(examples, min_count=config.min_count, **settings)
    from nerkit.encoders.transformer import TransformerEncoder  # imports transformers only when needed

    if directory is not None:
        return TransformerEncoder.from_directory(directory, config)
    return TransformerEncoder.from_pretrained_model(config)


__all__ = ["Encoder", "BiLSTMEncoder", "build_encoder"]

"""Encoders: examples -> word vectors ``[batch, words, hidden]``. Each registers itself in
``ENCODERS`` (``nerkit encoders`` lists them); importing this package imports the built-in ones.
The transformer module imports ``transformers`` only when a transformer encoder is built."""

from __future__ import annotations

from nerkit.encoders.base import Encoder
from nerkit.encoders.registry import ENCODERS, EncoderContext, register_encoder
from nerkit.encoders.bilstm import BiLSTMEncoder  # noqa: E402  (registers "bilstm")
from nerkit.encoders import transformer  # noqa: E402,F401  (registers "transformer")

__all__ = ["ENCODERS", "Encoder", "EncoderContext", "BiLSTMEncoder", "register_encoder"]

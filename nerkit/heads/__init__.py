"""Heads: word vectors -> loss and decoded spans. Each registers itself in ``HEADS``
(``nerkit heads`` lists them); importing this package imports the built-in ones."""

from __future__ import annotations

from nerkit.heads.base import Head, TaggingHead, decodes_from_scores
from nerkit.heads.registry import HEADS, HeadContext, register_head
from nerkit.heads.crf import CRFHead  # noqa: E402  (registers "crf")
from nerkit.heads.global_pointer import GlobalPointerHead  # noqa: E402  (registers "span")
from nerkit.heads.softmax import SoftmaxHead  # noqa: E402  (registers "softmax")

__all__ = ["HEADS", "Head", "HeadContext", "TaggingHead", "SoftmaxHead", "CRFHead", "GlobalPointerHead",
           "decodes_from_scores", "register_head"]

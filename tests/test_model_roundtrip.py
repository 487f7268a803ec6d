"""One round trip for every registered encoder x head (flair's ``BaseModelTest`` pattern): train a
few steps through ``nerkit.train``, load, train on in memory, save, load again, and the copy
computes the same loss and predicts the same spans and scores. A head and an encoder registered
here, each one file's worth of code and one registration, go through the same test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from torch import nn

from nerkit import Tagger, load_config, train
from nerkit.data.synthetic import synthetic_examples, synthetic_texts
from nerkit.data.vocab import Vocabulary
from nerkit.encoders import ENCODERS, Encoder, EncoderContext, register_encoder
from nerkit.errors import ConfigError
from nerkit.heads import HEADS, HeadContext, TaggingHead, register_head
from nerkit.registry import describe

from conftest import TINY_ENCODER

# ----------------------------------------------------------------------------- a plug-in head


class HiddenLayerTagger(TaggingHead):
    """A tagging head with one hidden layer before the tag scores, decoded by argmax."""

    kind = "test-hidden-layer"

    def __init__(self, input_size: int, entity_types: list[str], *, scheme: str, hidden: int, loss: nn.Module):
        super().__init__(entity_types, scheme)
        self.scores = nn.Sequential(nn.Linear(input_size, hidden), nn.Tanh(), nn.Linear(hidden, len(self.tags)))
        self.loss_function = loss

    def loss(self, word_vectors, batch):
        return self.loss_function(self.scores(word_vectors), batch["tag_ids"], batch["mask"])

    def decode(self, word_vectors, batch):
        probabilities = torch.softmax(self.scores(word_vectors).float(), dim=-1)  # shape: (batch, words, tags)
        scores, tag_ids = probabilities.max(dim=-1)
        lengths = batch["mask"].sum(dim=1).tolist()
        return [self.spans_from_tags(tag_ids[row, :n].tolist(), scores[row, :n].tolist())
                for row, n in enumerate(lengths)]


@register_head("test-hidden-layer", losses=("token",), default_loss="ce", labels="tags")
def hidden_layer_tagger(context: HeadContext, *, scheme: Literal["BIO", "BIOES"] = "BIO",
                        hidden: int = 16) -> HiddenLayerTagger:
    """a tagging head with a hidden layer (a test plug-in)"""
    return HiddenLayerTagger(context.input_size, context.entity_types, scheme=scheme, hidden=hidden,
                             loss=context.loss)


# ----------------------------------------------------------------------------- a plug-in encoder


class BagOfWordsEncoder(Encoder):
    """Each word's vector is its embedding alone: no context at all."""

    def __init__(self, words: Vocabulary, *, dim: int):
        super().__init__()
        self.words, self.dim, self.output_size = words, dim, dim
        self.embedding = nn.Embedding(len(words), dim, padding_idx=0)

    def featurize(self, examples):
        width = max(len(example) for example in examples)
        word_ids = torch.zeros(len(examples), width, dtype=torch.long)
        for row, example in enumerate(examples):
            word_ids[row, :len(example)] = torch.tensor([self.words.lookup(token.lower()) for token in example.tokens])
        lengths = torch.tensor([len(example) for example in examples])
        return {"word_ids": word_ids, "mask": torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)}

    def forward(self, features):
        return self.embedding(features["word_ids"])  # shape: (batch, words, dim)

    def config(self) -> dict[str, Any]:
        return {"type": "test-bag-of-words", "dim": self.dim}

    def save_files(self, directory: Path) -> None:
        self.words.save(directory / "bag-of-words.json")


@register_encoder("test-bag-of-words")
def bag_of_words(context: EncoderContext, *, dim: int = 8) -> BagOfWordsEncoder:
    """word embeddings without context (a test plug-in)"""
    if context.directory is not None:
        return BagOfWordsEncoder(Vocabulary.load(context.directory / "bag-of-words.json"), dim=dim)
    from collections import Counter

    counts = Counter(token.lower() for example in context.examples for token in example.tokens)
    return BagOfWordsEncoder(Vocabulary.from_counts(counts), dim=dim)


# ----------------------------------------------------------------------------- the round trip

TEXTS = synthetic_texts(20) + ["", "Angela Merkel visited Paris with Jean-Pierre Dubois ."]


def encoder_settings(name: str, bert_dir: Path) -> dict[str, Any]:
    if name == "bilstm":
        return {f"encoder.{key.split('.')[1]}": value for key, value in TINY_ENCODER.items()}
    if name == "transformer":
        return {"encoder.model": str(bert_dir)}
    return {}


def continue_training(tagger, examples, steps: int = 3) -> None:
    """More steps in memory, so the weights differ from anything on disk."""
    optimizer = torch.optim.Adam(tagger.parameters(), lr=0.01)
    tagger.train()
    for step in range(steps):
        tagger(tagger.collate(examples[8 * step: 8 * step + 8])).backward()
        optimizer.step()
        optimizer.zero_grad()
    tagger.eval()


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("encoder", ENCODERS.names())
class TestModelRoundTrip:
    @pytest.fixture
    def trained(self, tmp_path, bert_dir, encoder, head) -> Path:
        values = {"encoder.type": encoder, **encoder_settings(encoder, bert_dir), "head.type": head,
                  "training.max_steps": 4, "training.progress": False, "training.token_budget": 400,
                  "training.max_sentences": 16, "data.dev": None, "output": str(tmp_path / "run")}
        train(load_config(values=values))
        return tmp_path / "run"

    def test_trained_model_directory_describes_itself(self, trained, encoder, head):
        description = json.loads((trained / "config.json").read_text(encoding="utf-8"))
        assert description["encoder"]["type"] == encoder and description["head"]["type"] == head
        assert description["head"].keys() - {"type"} == {s.name for s in HEADS.get(head).settings}

    def test_save_load_computes_and_predicts_the_same(self, trained, tmp_path):
        examples = synthetic_examples("train")[:24]
        tagger = Tagger.from_pretrained(trained)
        continue_training(tagger, examples)
        tagger.save_pretrained(tmp_path / "copy")
        loaded = Tagger.from_pretrained(tmp_path / "copy")

        state, loaded_state = tagger.state_dict(), loaded.state_dict()
        assert state.keys() == loaded_state.keys()
        assert all(torch.equal(state[name], loaded_state[name]) for name in state)
        batch = tagger.collate(examples[:8])
        with torch.no_grad():
            assert torch.equal(tagger(batch), loaded(loaded.collate(examples[:8])))
        assert loaded.predict(TEXTS) == tagger.predict(TEXTS)
        before, after = tagger.predict_examples(examples), loaded.predict_examples(examples)
        assert [[s[:3] for s in spans] for spans in after] == [[s[:3] for s in spans] for spans in before]
        assert [s.score for spans in after for s in spans] == pytest.approx(
            [s.score for spans in before for s in spans], abs=1e-6)


def test_the_plugins_take_part_in_every_listing_and_check():
    assert "test-hidden-layer" in HEADS.names() and "test-bag-of-words" in ENCODERS.names()
    assert "test-hidden-layer  [token]  a tagging head with a hidden layer (a test plug-in) (default loss: ce)" in (
        describe(HEADS))
    assert "    hidden: int = 16" in describe(HEADS)
    config = load_config(values={"head.type": "test-hidden-layer", "head.hidden": "32"})
    assert config.head.settings() == {"scheme": "BIO", "hidden": 32}
    with pytest.raises(ConfigError, match=r"head.hiden: not a setting of the head 'test-hidden-layer' "
                                          r"\(its settings: scheme, hidden\)"):
        load_config(values={"head.type": "test-hidden-layer", "head.hiden": 32})
    with pytest.raises(ConfigError, match=r"loss 'zlpr' does not fit the test-hidden-layer head"):
        Tagger.build(load_config(values={"head.type": "test-hidden-layer", "loss.name": "zlpr",
                                         "encoder.type": "test-bag-of-words"}), synthetic_examples("train")[:16])

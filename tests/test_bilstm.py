"""The BiLSTM encoder's features: characters once per distinct token of a batch, the memo of
token ids, and the same word vectors whether the character CNN runs per token (prediction) or
per occurrence (training, where each occurrence gets its own dropout)."""

from __future__ import annotations

import pytest
import torch

from nerkit.data.spans import Example
from nerkit.data import features
from nerkit.encoders.bilstm import BiLSTMEncoder

TINY = {"word_dim": 6, "char_dim": 4, "char_filters": 5, "case_dim": 2, "hidden_size": 4}
TRAIN = [Example("Angela Merkel visited Paris on Monday .".split()),
         Example("the bank in Paris said the city grew 3.5 % .".split())]
# Repeated tokens within and across rows, an unseen word, unseen characters, a one-letter word.
BATCH = [Example("Paris said the the city , Paris .".split()),
         Example(["Zürich", "a", "the", "Ωmega"]),
         Example(["said"])]


def encoder(**settings) -> BiLSTMEncoder:
    torch.manual_seed(0)
    return BiLSTMEncoder.from_examples(TRAIN, **{**TINY, **settings})


def test_characters_are_given_once_per_distinct_token():
    features = encoder().featurize(BATCH)
    distinct = {token for example in BATCH for token in example.tokens}
    assert features["char_ids"].shape == (len(distinct) + 1, max(map(len, distinct)))
    assert not features["char_ids"][0].any()  # row 0: padding
    index = features["token_index"]
    assert index.shape == features["word_ids"].shape == (3, 8)
    assert not index[~features["mask"]].any() and index[features["mask"]].min() >= 1
    model = encoder()
    for row, example in enumerate(BATCH):
        for column, token in enumerate(example.tokens):
            chars = features["char_ids"][index[row, column]]
            assert chars[:len(token)].tolist() == [model.chars.lookup(char) for char in token]
            assert not chars[len(token):].any()
    # One row per distinct token: "Paris", "the" and "said" share theirs.
    assert index[0, 0] == index[0, 6] and index[0, 2] == index[0, 3] == index[1, 2] and index[0, 1] == index[2, 0]


def test_per_token_and_per_occurrence_character_features_agree():
    """Prediction (eval) runs the CNN once per distinct token and gathers; training runs it per
    occurrence. With every dropout at 0 the two must give the same word vectors."""
    model = encoder(dropout=0.0, word_dropout=0.0)
    features = model.featurize(BATCH)
    model.eval()
    with torch.no_grad():
        per_token = model(features)
    model.train()
    with torch.no_grad():
        per_occurrence = model(features)
    mask = features["mask"]
    torch.testing.assert_close(per_token[mask], per_occurrence[mask], rtol=1e-6, atol=1e-6)


def test_the_token_memo_never_changes_the_features(monkeypatch):
    model = encoder()
    fresh = model.featurize(BATCH)
    again = model.featurize(BATCH)  # every token memoised now
    monkeypatch.setattr(features, "TOKEN_CACHE_SIZE", 2)  # the memo starts afresh every third token
    model.word_features.featurizer.forget()
    small = model.featurize(BATCH)
    for name, tensor in fresh.items():
        assert torch.equal(tensor, again[name]) and torch.equal(tensor, small[name]), name
    assert len(model.word_features.featurizer._memo) <= 2


@pytest.mark.parametrize("examples", [[Example(["x"])], [Example(["x"]), Example(["y", "x"])]])
def test_one_character_tokens_are_as_wide_as_the_kernel(examples):
    model = encoder()
    model.eval()
    with torch.no_grad():
        vectors = model(model.featurize(examples))
    assert vectors.shape == (len(examples), max(map(len, examples)), model.output_size)
    assert torch.isfinite(vectors).all()

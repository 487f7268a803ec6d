"""Train a few steps, save, load, predict the same: for every head (the BiLSTM encoder;
the transformer encoder has its own tests). The model directory is plain files."""

from __future__ import annotations

import json

import pytest
import torch

from nerkit import Tagger
from nerkit.data.synthetic import ENTITY_TYPES, synthetic_texts
from nerkit.data.text import tokenize

HEADS = ["softmax", "crf"]

TEXTS = synthetic_texts(30) + [
    "  Angela   Merkel met Emmanuel Macron in  Paris on Monday . ",
    "",
    "   ",
    "Angela Merkel visited 北京 and São Paulo with Jean-Pierre Dubois.",
    "THE UNITED NATIONS MET IN GENEVA",
    "x",
]

PICKLE_SUFFIXES = {".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy"}


def continue_training(tagger: Tagger, examples, steps: int = 3) -> None:
    """A few more optimizer steps in memory, so the weights (CRF transitions included)
    differ from anything on disk."""
    optimizer = torch.optim.Adam(tagger.parameters(), lr=0.01)
    tagger.train()
    for step in range(steps):
        batch = tagger.collate(examples[8 * step: 8 * step + 8])
        tagger(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    tagger.eval()


def assert_no_pickles(directory) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            assert path.suffix not in PICKLE_SUFFIXES, path
            head = path.read_bytes()[:2]
            assert head[:1] != b"\x80" and head != b"PK", f"{path} looks like a pickle or a torch.save zip"


@pytest.mark.parametrize("head", HEADS)
def test_model_directory_is_plain_files(trained_models, head):
    directory = trained_models[head]
    names = {path.name for path in directory.iterdir()}
    assert {"config.json", "model.safetensors", "words.json", "chars.json"} <= names
    assert_no_pickles(directory)
    description = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    assert description["head"]["type"] == head
    assert description["entity_types"] == sorted(ENTITY_TYPES)
    assert description["encoder"]["hidden_size"] == 16  # the tiny settings reached the model
    words = json.loads((directory / "words.json").read_text(encoding="utf-8"))
    assert isinstance(words, list) and all(isinstance(word, str) for word in words) and len(words) > 100


@pytest.mark.parametrize("head", HEADS)
def test_save_load_predicts_the_same(trained_models, synthetic_train, synthetic_dev, tmp_path, head):
    tagger = Tagger.from_pretrained(trained_models[head])
    continue_training(tagger, synthetic_train)
    tagger.save_pretrained(tmp_path / "copy")
    assert_no_pickles(tmp_path / "copy")
    loaded = Tagger.from_pretrained(tmp_path / "copy")

    saved_state, loaded_state = tagger.state_dict(), loaded.state_dict()
    assert saved_state.keys() == loaded_state.keys()
    assert all(torch.equal(saved_state[name], loaded_state[name]) for name in saved_state)
    assert (loaded.entity_types, loaded.label_names, loaded.label_counts) == (
        tagger.entity_types, tagger.label_names, tagger.label_counts)

    expected, actual = tagger.predict(TEXTS), loaded.predict(TEXTS)
    assert actual == expected  # spans, types, texts and (rounded) scores
    assert sum(len(record["entities"]) for record in expected) > 0

    examples = synthetic_dev[:60]
    expected_spans, actual_spans = tagger.predict_examples(examples), loaded.predict_examples(examples)
    assert [[s[:3] for s in spans] for spans in actual_spans] == [[s[:3] for s in spans] for spans in expected_spans]
    for before, after in zip(expected_spans, actual_spans):
        assert [s.score for s in after] == pytest.approx([s.score for s in before], abs=1e-6)


@pytest.mark.parametrize("head", HEADS)
def test_predicted_offsets_map_back_to_the_text(trained_models, head):
    tagger = Tagger.from_pretrained(trained_models[head])
    results = tagger.predict(TEXTS)
    assert [record["text"] for record in results] == TEXTS
    found = 0
    for record in results:
        text = record["text"]
        _, offsets = tokenize(text)
        token_starts, token_ends = {s for s, _ in offsets}, {e for _, e in offsets}
        previous_end = 0
        for entity in record["entities"]:
            found += 1
            assert set(entity) == {"start", "end", "type", "text", "score"}
            assert text[entity["start"]:entity["end"]] == entity["text"]
            assert entity["start"] in token_starts and entity["end"] in token_ends
            assert entity["start"] >= previous_end  # a flat head: in order, no overlap
            previous_end = entity["end"]
            assert entity["type"] in ENTITY_TYPES
            assert 0.0 < entity["score"] <= 1.0
    assert found >= 5, "the tiny model should find some entities after 100 steps"
    # One text in, one record out; empty and blank texts give no entities.
    single = tagger.predict(TEXTS[0])
    assert single == results[0]
    assert results[TEXTS.index("")]["entities"] == [] and results[TEXTS.index("   ")]["entities"] == []


@pytest.mark.parametrize("head", HEADS)
def test_prediction_does_not_depend_on_batching(trained_models, synthetic_dev, head):
    tagger = Tagger.from_pretrained(trained_models[head])
    examples = synthetic_dev[:40]
    together = tagger.predict_examples(examples)
    one_by_one = [tagger.predict_examples([example])[0] for example in examples]
    assert [[s[:3] for s in spans] for spans in together] == [[s[:3] for s in spans] for spans in one_by_one]
    for a, b in zip(together, one_by_one):
        assert [s.score for s in a] == pytest.approx([s.score for s in b], abs=1e-5)


def test_a_save_that_fails_midway_leaves_the_previous_model_intact(trained_models, tmp_path, monkeypatch):
    tagger = Tagger.from_pretrained(trained_models["crf"])
    tagger.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with torch.no_grad():
        next(tagger.parameters()).add_(1.0)  # a different model, so a torn write would show

    def broken(directory):
        raise OSError("disk full")

    monkeypatch.setattr(tagger.encoder, "save_files", broken)
    with pytest.raises(OSError):
        tagger.save_pretrained(tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".saving-")] == []
    Tagger.from_pretrained(tmp_path)  # still loads

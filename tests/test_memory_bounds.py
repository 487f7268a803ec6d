"""Memory bounded by the input's size, not its shape (issue 23): the BiLSTM's character ids have at
most ``max_token_chars`` columns, the span head decodes only spans up to ``max_span_length`` words
(the training data's longest entity unless set, saved with the model) and computes only that band
of cells, and the model directory saves the head's settings as the head reports them.

The peak-memory figures for lines of 1 KB to 1 MB are printed by ``benchmarks/memory_bound.py``."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from nerkit import Tagger, load_config
from nerkit.data.spans import Example
from nerkit.data.synthetic import synthetic_examples
from nerkit.encoders import bilstm, word_features
from nerkit.errors import ConfigError
from nerkit.data.decoding import BAND_ROWS
from nerkit.heads.global_pointer import GlobalPointerHead
from nerkit.losses import build_loss
from nerkit.modeldir import MANIFEST_FILE

from conftest import tiny_config


def distinct_words(count: int) -> list[str]:
    """``count`` different lower-case words of 3 letters and more."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [letters[i % 26] + letters[i // 26 % 26] + letters[i // 676 % 26] + "x" * (i % 5) for i in range(count)]


@pytest.fixture(scope="module")
def bilstm_model(tmp_path_factory):
    """An untrained tiny BiLSTM softmax tagger, saved."""
    directory = tmp_path_factory.mktemp("bilstm")
    torch.manual_seed(0)
    Tagger.build(tiny_config(directory, head__type="softmax"), synthetic_examples("train")).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def span_model(tmp_path_factory):
    """An untrained tiny BiLSTM span tagger (about half its cells score over 0: the most spans a
    line can give), saved."""
    directory = tmp_path_factory.mktemp("span")
    torch.manual_seed(0)
    tagger = Tagger.build(tiny_config(directory, head__type="span"), synthetic_examples("train", nested=True))
    tagger.save_pretrained(directory)
    return directory


def old_copy(directory, tmp_path, change):
    """A copy of a model directory as an older nerkit wrote it: no manifest, ``change`` applied to
    its config.json."""
    copy = tmp_path / "old"
    shutil.copytree(directory, copy)
    (copy / MANIFEST_FILE).unlink()
    description = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    change(description)
    (copy / "config.json").write_text(json.dumps(description), encoding="utf-8")
    return copy


# ----------------------------------------------------------------------------- the character CNN


def test_the_character_ids_of_a_batch_are_bounded_by_max_token_chars(bilstm_model):
    """2,000 distinct words and one 2,000-character token: (2,002 x 50) character ids, not 2,000 wide."""
    encoder = Tagger.from_pretrained(bilstm_model).encoder
    long_token = "Ab" + "c" * 1996 + "yz"
    tokens = distinct_words(2000) + [long_token]
    features = encoder.featurize([Example(tokens=tokens)])
    assert encoder.max_token_chars == bilstm.DEFAULT_MAX_TOKEN_CHARS == 50
    assert tuple(features["char_ids"].shape) == (2002, 50)  # padding row + distinct tokens
    row = features["char_ids"][features["token_index"][0, -1]].tolist()
    chars = encoder.chars.lookup
    # The first 24 and the last 25 characters, a padding id (a word edge to the CNN) between them.
    assert row == [*map(chars, long_token[:24]), 0, *map(chars, long_token[-25:])]
    # The word embedding and the casing still read the whole token.
    assert features["word_ids"][0, -1] == encoder.words.lookup(bilstm.normalize_word(long_token))
    assert features["case_ids"][0, -1] == bilstm.casing(long_token)


def test_tokens_within_the_limit_are_read_whole_and_predictions_agree_with_the_capped_rows(bilstm_model):
    tagger = Tagger.from_pretrained(bilstm_model)
    encoder = tagger.encoder
    short = ["Angela", "visited", "x" * 50]  # 50 characters: at the limit, read whole
    features = encoder.featurize([Example(tokens=short)])
    assert features["char_ids"][features["token_index"][0, 2]].tolist() == [encoder.chars.lookup("x")] * 50
    # A token's character features depend only on its first and last characters past the limit.
    first = encoder.featurize([Example(tokens=["Paris", "A" * 30 + "b" * 500 + "C" * 30])])
    second = encoder.featurize([Example(tokens=["Paris", "A" * 30 + "q" * 900 + "C" * 30])])
    assert torch.equal(first["char_ids"], second["char_ids"])


def test_the_character_cnn_in_passes_gives_the_features_of_one_pass(bilstm_model, monkeypatch):
    tagger = Tagger.from_pretrained(bilstm_model)
    batch = tagger.encode([Example(tokens=distinct_words(300)), Example(tokens=["a" * 80, "Berlin"])])
    with torch.inference_mode():
        whole = tagger.encoder(batch)
        monkeypatch.setattr(word_features, "CHAR_CELLS_PER_PASS", 120)  # a few tokens per pass
        passes = []
        original = tagger.encoder.word_features._char_features
        monkeypatch.setattr(tagger.encoder.word_features, "_char_features",
                            lambda ids: passes.append(len(ids)) or original(ids))
        in_passes = tagger.encoder(batch)
    assert len(passes) > 50 and max(passes) * batch["char_ids"].shape[1] <= 120
    assert torch.allclose(whole, in_passes, atol=1e-6)


def test_a_model_saved_before_max_token_chars_loads_with_the_default(bilstm_model, tmp_path):
    copy = old_copy(bilstm_model, tmp_path, lambda description: description["encoder"].pop("max_token_chars"))
    tagger = Tagger.from_pretrained(copy)
    assert tagger.encoder.max_token_chars == 50
    text = "Angela Merkel visited " + "Paris" * 30
    assert tagger.predict([text]) == Tagger.from_pretrained(bilstm_model).predict([text])


@pytest.mark.parametrize("value", [2, 0, "many"])
def test_a_max_token_chars_under_3_is_refused_naming_the_setting(value):
    with pytest.raises(ConfigError, match="max_token_chars"):
        load_config(values={"encoder.max_token_chars": value})


# ----------------------------------------------------------------------------- the span head


def test_the_span_head_limit_defaults_to_the_longest_training_entity_and_is_saved(span_model):
    longest = max(s.end - s.start for e in synthetic_examples("train", nested=True) for s in e.spans)
    description = json.loads((span_model / "config.json").read_text(encoding="utf-8"))
    assert description["head"]["max_span_length"] == longest == 4
    assert Tagger.from_pretrained(span_model).head.max_span_length == longest


def test_a_set_max_span_length_wins_over_the_training_data(tmp_path):
    tagger = Tagger.build(tiny_config(tmp_path, head__type="span", head__max_span_length=2),
                          synthetic_examples("train", nested=True))
    tagger.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["head"]["max_span_length"] == 2


def test_a_span_model_decodes_a_long_line_into_a_linear_number_of_spans(span_model):
    tagger = Tagger.from_pretrained(span_model)
    words = 1000
    (spans,) = tagger.predict_examples([Example(tokens=distinct_words(words))])
    limit, types = tagger.head.max_span_length, len(tagger.entity_types)
    assert spans  # the untrained head finds spans everywhere: the bound below is reached, not idle
    assert max(span.end - span.start for span in spans) <= limit
    assert len(spans) <= words * limit * types  # not the O(words^2) of every positive cell


def counting_cells(head: GlobalPointerHead, monkeypatch) -> list[int]:
    """The cells of every score block ``head`` computes from now on."""
    blocks: list[int] = []
    original = head.scores_from_pointers

    def scores_from_pointers(*args, **kwargs):
        scores = original(*args, **kwargs)
        blocks.append(scores.numel())
        return scores

    monkeypatch.setattr(head, "scores_from_pointers", scores_from_pointers)
    return blocks


@pytest.mark.parametrize("variant", ["standard", "efficient"])
def test_span_decoding_computes_only_the_band_of_the_span_length_limit(variant, monkeypatch):
    """3,000 words, limit 5, 3 types: the cells computed grow with words x limit, and the spans
    are those of the full grid restricted to the band (checked on a shorter line)."""
    torch.manual_seed(0)
    head = GlobalPointerHead(8, ["A", "B", "C"], loss=build_loss("zlpr"), variant=variant, head_size=4,
                             max_span_length=5, max_cells=3 * 200 * 200).eval()
    words = 3000
    word_vectors = torch.randn(1, words, 8)
    mask = torch.ones(1, words, dtype=torch.bool)
    blocks = counting_cells(head, monkeypatch)
    with torch.no_grad():
        (spans,) = head.decode(word_vectors, {"mask": mask})
    assert max(blocks) <= head.max_cells
    # rows x (rows + limit - 1) cells per block of at most BAND_ROWS rows: linear in the words
    # (the whole grid would be 3 x words^2, 40 times more).
    assert sum(blocks) <= 3 * words * (BAND_ROWS + 5)
    assert spans and max(span.end - span.start for span in spans) <= 5
    # The band gives exactly the spans of the whole grid's valid cells.
    short = word_vectors[:, :300]
    with torch.no_grad():
        grid = head.span_logits(short, mask[:, :300])[0]  # shape: (types, words, words)
        (banded,) = head.decode(short, {"mask": mask[:, :300]})
    expected = {(i, j + 1, head.entity_types[t]) for t, i, j in (grid > 0).nonzero().tolist()}
    assert {(span.start, span.end, span.type) for span in banded} == expected


def test_max_span_length_can_be_lowered_after_training_and_is_saved(span_model, tmp_path):
    tagger = Tagger.from_pretrained(span_model)
    tagger.configure_decoding(max_span_length=2)
    (spans,) = tagger.predict_examples([Example(tokens=distinct_words(50))])
    assert spans and max(span.end - span.start for span in spans) <= 2
    tagger.save_pretrained(tmp_path / "lowered")
    assert Tagger.from_pretrained(tmp_path / "lowered").head.max_span_length == 2


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_a_bad_max_span_length_for_decoding_is_refused(span_model, value):
    with pytest.raises(ConfigError, match="max_span_length"):
        Tagger.from_pretrained(span_model).configure_decoding(max_span_length=value)


def test_a_span_model_saved_with_no_limit_still_loads_and_decodes_any_length(span_model, tmp_path, caplog):
    """Before the limit was recorded, span models saved max_span_length: null (spans of any length)."""
    copy = old_copy(span_model, tmp_path, lambda description: description["head"].update(max_span_length=None))
    tagger = Tagger.from_pretrained(copy)
    assert tagger.head.max_span_length is None
    assert caplog.text.count("without head.max_span_length") == 1  # said once, not by the skeleton too
    assert "configure_decoding(max_span_length=N)" in caplog.text
    (spans,) = tagger.predict_examples([Example(tokens=distinct_words(30))])
    assert max(span.end - span.start for span in spans) > 4


# ----------------------------------------------------------------------------- saved head settings


def test_the_model_directory_saves_the_head_settings_the_head_reports(bilstm_model, tmp_path):
    tagger = Tagger.from_pretrained(bilstm_model)
    tagger.configure_decoding(posthoc_tau=0.5)
    tagger.save_pretrained(tmp_path / "tuned")
    description = json.loads((tmp_path / "tuned" / "config.json").read_text(encoding="utf-8"))
    assert description["head"] == tagger.head.config() == {"type": "softmax", "scheme": "BIO", "posthoc_tau": 0.5,
                                                           "posthoc_selection": None}
    assert Tagger.from_pretrained(tmp_path / "tuned").head.posthoc_tau == 0.5


# ----------------------------------------------------------------------------- the transformer


def test_the_transformer_reads_a_long_input_in_passes_that_give_the_one_pass_result(bert_dir, tmp_path, monkeypatch):
    from nerkit.encoders import transformer

    torch.manual_seed(0)
    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir),
                                 "head.type": "softmax", "output": str(tmp_path)})
    tagger = Tagger.build(config, synthetic_examples("train")[:50]).eval()
    batch = tagger.encode([Example(tokens=["berlin", "visited", "the", "city"] * 150)])  # windows of 128
    calls = []
    original = tagger.encoder.model.forward
    monkeypatch.setattr(tagger.encoder.model, "forward", lambda **inputs: calls.append(len(inputs["input_ids"]))
                        or original(**inputs))
    with torch.inference_mode():
        whole = tagger.encoder(batch)
        monkeypatch.setattr(transformer, "PIECES_PER_PASS", 2 * batch["input_ids"].shape[1])  # two windows a pass
        in_passes = tagger.encoder(batch)
    windows = batch["input_ids"].shape[0]
    assert windows >= 5 and calls == [windows] + [2] * (windows // 2) + [1] * (windows % 2)
    assert torch.allclose(whole, in_passes, atol=1e-5)

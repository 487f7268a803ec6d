"""The transformer encoder's word-level features (casing, characters, static word vectors) and
its BiLSTM on top; the frozen table of words added from a vectors file, in both encoders.

A featured tiny BERT trains a few steps, saves, loads and predicts exactly the same, and its
ONNX export predicts what PyTorch predicts; each feature alone widens the output as it should,
and a transformer without features saves what it saved before they existed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

transformers = pytest.importorskip("transformers")

from nerkit import Tagger, load_config  # noqa: E402
from nerkit.data.synthetic import synthetic_examples, synthetic_texts  # noqa: E402
from nerkit.encoders import ENCODERS, EncoderContext  # noqa: E402
from nerkit.encoders.bilstm import BiLSTMEncoder  # noqa: E402
from nerkit.errors import ConfigError, NerkitError  # noqa: E402
from nerkit.training.averaging import WeightAverage  # noqa: E402
from nerkit.training.loop import _optimizer  # noqa: E402
from nerkit_cli.main import app  # noqa: E402

from conftest import TINY_ENCODER, TINY_TRAINING  # noqa: E402

HAVE_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
WINDOW = 32  # sub-words per window: the longest synthetic word has 15
HIDDEN = 32  # the tiny BERT's hidden size
DIM = 4  # the test's word vectors
# Words of the vectors file: three the synthetic corpus has, two it never has (added as extras).
VECTOR_WORDS = ["the", "paris", "said", "zzyzx", "qwertyuiop"]
TEXTS = synthetic_texts(12) + ["Angela Merkel visited Paris and Zzyzx .", "x", "",
                               " ".join(["Siemens said the University of Berlin will visit Paris ."] * 4)]
# The settings a transformer saved before word features existed: nothing more may be saved by default.
PLAIN_SETTINGS = {"type", "model", "pooling", "window_overlap", "max_window", "long_inputs", "dropout"}


def write_vectors(path: Path) -> Path:
    lines = [" ".join([word, *(f"{0.25 * (row + 1) * (-1) ** column:g}" for column in range(DIM))])
             for row, word in enumerate(VECTOR_WORDS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def transformer_config(bert_dir: Path, output: Path | None = None, **settings):
    values = {"encoder.type": "transformer", "encoder.model": str(bert_dir), "encoder.max_window": WINDOW,
              "head.type": "crf", **{key: value for key, value in TINY_TRAINING.items() if value is not None},
              "data.dev": None, **{f"encoder.{key}": value for key, value in settings.items()}}
    if output is not None:
        values["output"] = str(output)
    return load_config(values=values)


FEATURED = {"case_dim": 4, "char_dim": 6, "char_filters": 8, "word_dim": DIM, "word_vectors_extra": 10,
            "lstm_hidden": 8, "dropout": 0.0, "word_dropout": 0.0}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    return write_vectors(tmp_path_factory.mktemp("vectors") / "vectors.txt")


def train_steps(tagger, config, examples, steps: int = 3) -> torch.optim.Optimizer:
    """A few optimizer steps as the training loop takes them (its optimizer, its weight average)."""
    optimizer = _optimizer(tagger, config)
    average = WeightAverage(tagger, 0.9)
    tagger.train()
    for step in range(steps):
        batch = tagger.collate(examples[8 * step:8 * step + 8])
        optimizer.zero_grad()
        tagger(batch).backward()
        optimizer.step()
        average.update(tagger)
    tagger.eval()
    tagger.weight_average = average  # for the test to look at
    return optimizer


def entities(records: list[dict]) -> list[list[tuple]]:
    return [[(e["start"], e["end"], e["type"], e["score"]) for e in record["entities"]] for record in records]


# ----------------------------------------------------------------------------- round trip and export


def test_a_featured_transformer_trains_saves_loads_predicts_the_same_and_exports(bert_dir, vectors, tmp_path):
    config = transformer_config(bert_dir, word_vectors=str(vectors), **FEATURED)
    examples = synthetic_examples("train")[:40]
    torch.manual_seed(0)
    tagger = Tagger.build(config, examples)
    encoder = tagger.encoder
    assert encoder.output_size == 2 * 8
    before = [parameter.detach().clone() for parameter in encoder.lstm.parameters()]
    train_steps(tagger, config, examples)
    assert any(not torch.equal(old, new) for old, new in zip(before, encoder.lstm.parameters()))  # it learned
    expected = tagger.predict(TEXTS)
    assert sum(len(record["entities"]) for record in expected) > 0

    directory = tmp_path / "model"
    tagger.save_pretrained(directory)
    vectors_copy = vectors.read_bytes()
    vectors.unlink()  # loading never needs the vectors file
    try:
        loaded = Tagger.from_pretrained(directory)
    finally:
        vectors.write_bytes(vectors_copy)
    assert {"words.json", "chars.json"} <= {path.name for path in directory.iterdir()}
    saved = json.loads((directory / "config.json").read_text(encoding="utf-8"))["encoder"]
    assert {key: saved[key] for key in ("case_dim", "char_dim", "char_filters", "word_dim", "lstm_hidden")} == \
        {"case_dim": 4, "char_dim": 6, "char_filters": 8, "word_dim": DIM, "lstm_hidden": 8}
    assert saved["trained_words"] == encoder.word_features.trained_words
    assert "zzyzx" in loaded.encoder.word_features.words  # a word of the file training never saw
    assert entities(loaded.predict(TEXTS)) == entities(expected)
    for name, tensor in tagger.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name

    if not HAVE_ONNX:
        pytest.skip('onnx and onnxruntime are not installed: pip install "nerkit[onnx]"')
    from nerkit.export import SCORE_TOLERANCE, export_onnx
    from nerkit.export.graph import max_difference, torch_scores

    summary = export_onnx(directory)
    manifest = json.loads((summary.directory / "export.json").read_text(encoding="utf-8"))
    assert {"word_ids", "case_ids", "char_ids", "token_index", "lengths"} <= set(manifest["inputs"])
    onnx_tagger = Tagger.from_pretrained(directory, runtime="onnx")
    features = loaded.encode([example for example in synthetic_examples("dev")[:20]])
    arrays = onnx_tagger.encode([example for example in synthetic_examples("dev")[:20]])  # without torch
    assert all(torch.equal(torch.from_numpy(arrays[name]), features[name]) for name in features)
    actual = {name: torch.from_numpy(value) for name, value in onnx_tagger.scores(arrays).items()}
    difference = max_difference(torch_scores(loaded, features), actual, features["mask"])
    assert difference <= SCORE_TOLERANCE
    onnx_records = onnx_tagger.predict(TEXTS)
    assert [[entity[:3] for entity in row] for row in entities(onnx_records)] == \
        [[entity[:3] for entity in row] for row in entities(expected)]


def test_nerkit_train_trains_a_featured_transformer(bert_dir, vectors, tmp_path):
    """Through the training loop (Accelerate, weight average, checkpoint) and the command line."""
    settings = {**FEATURED, "word_vectors": str(vectors)}
    arguments = ["train", "--no-progress", "--output", str(tmp_path / "run"), "--max-steps", "2",
                 "--set", "encoder.type=transformer", "--set", f"encoder.model={bert_dir}",
                 "--set", f"encoder.max_window={WINDOW}", "--set", "data.dev=null", "--set", "training.cpu_threads=1",
                 "--set", "training.average_decay=0.9",
                 *[argument for key, value in settings.items() for argument in ("--set", f"encoder.{key}={value}")]]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    tagger = Tagger.from_pretrained(tmp_path / "run")
    assert tagger.encoder.lstm is not None and tagger.encoder.word_features.trained_words is not None
    assert tagger.predict("Angela Merkel visited Paris .")["text"] == "Angela Merkel visited Paris ."


# ----------------------------------------------------------------------------- sizes and defaults


def build(bert_dir: Path, examples=None, **settings):
    torch.manual_seed(0)
    return ENCODERS.get("transformer").build(EncoderContext(examples=examples or synthetic_examples("train")[:20]),
                                             model=str(bert_dir), max_window=WINDOW, **settings)


@pytest.mark.parametrize("settings, width", [
    ({"case_dim": 5}, HIDDEN + 5),
    ({"char_dim": 6, "char_filters": 7}, HIDDEN + 7),
    ({"word_dim": 3}, HIDDEN + 3),
    ({"word_dim": DIM, "word_vectors": "VECTORS"}, HIDDEN + DIM),
    ({"lstm_hidden": 9}, 18),
    ({"case_dim": 5, "char_dim": 6, "char_filters": 7, "word_dim": 3}, HIDDEN + 15),
], ids=["casing", "chars", "words", "vectors", "lstm", "all"])
def test_each_feature_widens_the_output_by_its_size(bert_dir, vectors, settings, width):
    settings = {key: str(vectors) if value == "VECTORS" else value for key, value in settings.items()}
    encoder = build(bert_dir, **settings).eval()
    assert encoder.output_size == width
    examples = synthetic_examples("dev")[:3]
    with torch.no_grad():
        word_vectors = encoder(encoder.featurize(examples))
    assert word_vectors.shape == (3, max(map(len, examples)), width)
    assert set(encoder.config()) == PLAIN_SETTINGS | {"word_dim", "word_dropout", "freeze_word_vectors", "case_dim",
                                                      "char_dim", "char_filters", "char_kernel", "max_token_chars",
                                                      "lstm_hidden"}


def test_a_transformer_without_features_saves_what_it_saved_before(bert_dir, tmp_path):
    encoder = build(bert_dir)
    assert encoder.word_features is None and encoder.lstm is None and encoder.output_size == HIDDEN
    assert encoder.config() == {"type": "transformer", "model": str(bert_dir), "pooling": "first",
                                "window_overlap": None, "max_window": WINDOW, "long_inputs": "window", "dropout": 0.1}
    pretrained = transformers.AutoModel.from_pretrained(bert_dir)
    assert set(encoder.state_dict()) == {f"model.{name}" for name in pretrained.state_dict()}
    for name, tensor in pretrained.state_dict().items():
        assert torch.equal(encoder.state_dict()[f"model.{name}"], tensor), name
    featurized = encoder.featurize(synthetic_examples("dev")[:2])
    assert set(featurized) == {"input_ids", "attention_mask", "word_window", "word_start", "word_end", "lengths",
                               "mask"}
    # A model directory saved by the plain transformer has no file of the features, and loads back
    # as it was: its config.json lacks every new setting.
    config = transformer_config(bert_dir)
    tagger = Tagger.build(config, synthetic_examples("train")[:20])
    tagger.save_pretrained(tmp_path / "model")
    assert {path.name for path in (tmp_path / "model").iterdir()} == {"config.json", "model.safetensors", "encoder",
                                                                     "model-manifest.json"}
    saved = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))["encoder"]
    assert set(saved) == PLAIN_SETTINGS
    loaded = Tagger.from_pretrained(tmp_path / "model")
    assert loaded.encoder.word_features is None and loaded.encoder.lstm is None
    assert entities(loaded.predict(TEXTS)) == entities(tagger.eval().predict(TEXTS))


def test_the_features_learn_at_the_heads_rate_and_the_body_at_the_encoders(bert_dir):
    encoder = build(bert_dir, case_dim=4, lstm_hidden=4)
    groups = encoder.parameter_groups()
    body = {id(parameter) for parameter in encoder.model.parameters()}
    assert {id(parameter) for parameter in groups["encoder"]} == body
    fresh = {id(parameter) for parameter in groups["head"]}
    assert {id(encoder.word_features.case_embedding.weight), id(encoder.lstm.weight_ih_l0)} <= fresh
    assert not fresh & body


# ----------------------------------------------------------------------------- the frozen table of added words


@pytest.mark.parametrize("encoder_type", ["bilstm", "transformer"])
def test_words_added_from_the_file_are_frozen_and_left_out_of_optimizer_and_average(bert_dir, vectors, encoder_type):
    if encoder_type == "bilstm":
        config = load_config(values={**TINY_ENCODER, "encoder.word_dim": DIM, "encoder.word_vectors": str(vectors),
                                     "encoder.word_vectors_extra": 10, "training.learning_rate": 0.1})
    else:
        config = transformer_config(bert_dir, word_dim=DIM, word_vectors=str(vectors), word_vectors_extra=10)
    examples = synthetic_examples("train")[:24]
    torch.manual_seed(0)
    tagger = Tagger.build(config, examples)
    features = tagger.encoder.word_features
    words = features.words
    # The words of the file training did not see, in file order, past the training vocabulary.
    unseen = [word for word in VECTOR_WORDS if word not in {token.lower() for e in examples for token in e.tokens}]
    assert features.trained_words is not None and words.entries[features.trained_words:] == unseen
    added = features.added_word_embedding.weight
    assert added.shape == (len(unseen), DIM) and not added.requires_grad
    assert added[unseen.index("zzyzx")].tolist() == [1.0, -1.0, 1.0, -1.0]  # the file's 4th word: 0.25 * 4
    trained, added_before = features.word_embedding.weight.detach().clone(), added.detach().clone()
    optimizer = train_steps(tagger, config, examples)
    optimized = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    assert id(added) not in optimized and id(features.word_embedding.weight) in optimized
    assert not any(name.endswith("added_word_embedding.weight") for name in tagger.weight_average.average)
    assert torch.equal(added, added_before)
    assert not torch.equal(features.word_embedding.weight, trained)  # the training vocabulary did learn
    # Looked up through the one word_vectors function: an added word's row comes from the frozen table.
    ids = torch.tensor([[words.index["the"], words.index["zzyzx"], words.index["qwertyuiop"]]])
    looked_up = features.word_vectors(ids)[0]
    assert torch.equal(looked_up[1:], added_before[[unseen.index("zzyzx"), unseen.index("qwertyuiop")]])
    assert torch.equal(looked_up[0], features.word_embedding.weight[words.index["the"]])


def test_a_bilstm_saved_with_one_table_of_words_still_loads_and_predicts_the_same(vectors, tmp_path):
    """Models saved before the split hold the added words in word_embedding and no trained_words:
    such a directory is written here from the split model's weights, then loaded."""
    config = load_config(values={**TINY_ENCODER, "encoder.word_dim": DIM, "encoder.word_vectors": str(vectors),
                                 "encoder.word_vectors_extra": 10})
    torch.manual_seed(0)
    split = Tagger.build(config, synthetic_examples("train")[:24]).eval()
    encoder = split.encoder
    settings = {key: value for key, value in encoder.config().items() if key not in ("type", "trained_words")}
    one_table = BiLSTMEncoder(encoder.words, encoder.chars, **settings)
    assert one_table.word_features.trained_words is None
    weights = dict(encoder.state_dict())
    weights["word_embedding.weight"] = torch.cat([weights["word_embedding.weight"],
                                                  weights.pop("added_word_embedding.weight")])
    one_table.load_state_dict(weights)
    split.encoder = one_table
    old = tmp_path / "old"
    split.save_pretrained(old)
    description = json.loads((old / "config.json").read_text(encoding="utf-8"))
    assert "trained_words" not in description["encoder"]
    assert set(json.loads((old / "model-manifest.json").read_text(encoding="utf-8"))["files"]) >= {"words.json"}

    loaded = Tagger.from_pretrained(old)
    assert loaded.encoder.word_features.trained_words is None
    assert not hasattr(loaded.encoder, "added_word_embedding")
    assert loaded.encoder.word_embedding.weight.shape == (len(encoder.words), DIM)
    split.encoder = encoder
    assert entities(loaded.predict(TEXTS)) == entities(split.predict(TEXTS))
    assert sum(len(row) for row in entities(loaded.predict(TEXTS))) > 0


def test_a_bilstm_without_added_words_keeps_its_tensor_names():
    """The state-dict keys of a BiLSTM as main wrote them before WordFeatures: models saved then load."""
    encoder = BiLSTMEncoder.from_examples(synthetic_examples("train")[:5])
    assert list(encoder.state_dict()) == [
        "word_embedding.weight", "char_embedding.weight", "case_embedding.weight", "char_cnn.weight", "char_cnn.bias",
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "lstm.weight_ih_l0_reverse",
        "lstm.weight_hh_l0_reverse", "lstm.bias_ih_l0_reverse", "lstm.bias_hh_l0_reverse"]
    assert encoder.config() == {"type": "bilstm", "word_dim": 100, "char_dim": 30, "char_filters": 50,
                                "char_kernel": 3, "case_dim": 8, "hidden_size": 200, "num_layers": 1, "dropout": 0.5,
                                "word_dropout": 0.05, "freeze_word_vectors": False, "max_token_chars": 50}


# ----------------------------------------------------------------------------- settings that make no sense


BAD_SETTINGS = {
    "negative casing": (["encoder.case_dim=-1"], "encoder.case_dim: Input should be greater than or equal to 0"),
    "negative lstm": (["encoder.lstm_hidden=-4"], "encoder.lstm_hidden: Input should be greater than or equal to 0"),
    "filters without a character embedding": (["encoder.char_filters=8"], "encoder.char_filters needs encoder.char_dim"),
    "a character embedding without filters": (["encoder.char_dim=8"], "encoder.char_dim needs encoder.char_filters"),
    "extra words without a file": (["encoder.word_dim=4", "encoder.word_vectors_extra=5"],
                                   "encoder.word_vectors_extra needs encoder.word_vectors"),
    "frozen without a file": (["encoder.word_dim=4", "encoder.freeze_word_vectors=true"],
                              "encoder.freeze_word_vectors needs encoder.word_vectors"),
    "vectors without a word embedding": (["encoder.word_vectors=VECTORS"], "encoder.word_vectors is a setting of the "
                                                                           "word embedding, which is off"),
    "min_count without a word embedding": (["encoder.min_count=2"], "encoder.min_count=2 is a setting of the word"),
    "trained_words given": (["encoder.word_dim=4", "encoder.trained_words=5"], "encoder.trained_words is not a setting"),
}


@pytest.mark.parametrize("fault", BAD_SETTINGS)
def test_settings_that_make_no_sense_exit_2_naming_the_setting(bert_dir, vectors, tmp_path, fault):
    overrides, expected = BAD_SETTINGS[fault]
    overrides = [item.replace("VECTORS", str(vectors)) for item in overrides]
    arguments = ["train", "--no-progress", "--output", str(tmp_path / "run"), "--max-steps", "1",
                 "--set", "encoder.type=transformer", "--set", f"encoder.model={bert_dir}",
                 "--set", f"encoder.max_window={WINDOW}", "--set", "data.dev=null",
                 *[argument for item in overrides for argument in ("--set", item)]]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "config.json").exists()


def test_bad_settings_are_config_errors_in_the_api_too(bert_dir):
    with pytest.raises(ConfigError, match="encoder.char_filters needs encoder.char_dim"):
        build(bert_dir, char_filters=4)


@pytest.mark.parametrize("damage, expected", [
    (lambda path: path.write_text('["the", "par', encoding="utf-8"), "words.json is not a readable vocabulary "
                                                                     "(JSONDecodeError"),
    (lambda path: path.write_text('{"the": 1}', encoding="utf-8"), "words.json holds a dict"),
    (lambda path: path.unlink(), "words.json"),
])
def test_a_damaged_vocabulary_of_the_features_is_refused_naming_the_file(bert_dir, vectors, tmp_path, damage, expected):
    config = transformer_config(bert_dir, word_dim=DIM, word_vectors=str(vectors))
    Tagger.build(config, synthetic_examples("train")[:20]).save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "model-manifest.json").unlink()  # the consistency checks, not the manifest's
    damage(tmp_path / "model" / "words.json")
    with pytest.raises(NerkitError) as raised:
        Tagger.from_pretrained(tmp_path / "model")
    message = str(raised.value)
    assert str(tmp_path / "model") in message and expected in message and "\n" not in message

"""Transformer encoder, offline: a tiny BERT (WordPiece vocabulary written here) and a tiny
RoBERTa-style model with a byte-level BPE tokenizer trained on the fly."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from nerkit import Tagger, load_config, train  # noqa: E402
from nerkit.encoders import ENCODERS, EncoderContext  # noqa: E402
from nerkit.data.spans import Example  # noqa: E402
from nerkit.data.synthetic import synthetic_examples, synthetic_texts  # noqa: E402
from nerkit.encoders.transformer import TransformerEncoder  # noqa: E402
from nerkit.errors import ConfigError, DataError  # noqa: E402

from conftest import write_tiny_bert  # noqa: E402

@pytest.fixture(scope="module")
def context_free_bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("context-free-bert"), layers=0, context_free=True)


@pytest.fixture(scope="module")
def roberta_dir(tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer

    directory = tmp_path_factory.mktemp("tiny-roberta")
    corpus = [" ".join(example.tokens) for example in synthetic_examples("train")[:300]]
    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(corpus, vocab_size=300, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(directory))
    tokenizer = transformers.RobertaTokenizer(vocab=str(directory / "vocab.json"), merges=str(directory / "merges.txt"),
                                              add_prefix_space=True)
    config = transformers.RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                                        pad_token_id=tokenizer.pad_token_id)
    transformers.RobertaModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _encoder(model_dir, **settings) -> TransformerEncoder:
    return ENCODERS.get("transformer").build(EncoderContext(), model=str(model_dir), **settings)


def _word_text(encoder, features, row, word):
    window, start, end = (int(features[k][row, word]) for k in ("word_window", "word_start", "word_end"))
    pieces = features["input_ids"][window, start:end].tolist()
    return encoder.tokenizer.decode(pieces).replace(" ", "").replace("##", "")


@pytest.mark.parametrize("which", ["bert", "roberta"])
def test_every_word_maps_to_exactly_its_own_sub_words(which, bert_dir, roberta_dir):
    encoder = _encoder(bert_dir if which == "bert" else roberta_dir)
    tokens = ["Angela", "Merkel", "visited", "Xyzzyqqxyz", "Paris", ",", "Berlin", "and", "U.S.", "(", "CITY", ")", "."]
    features = encoder.featurize([Example(tokens), Example(tokens[:3])])
    for word, token in enumerate(tokens):
        assert _word_text(encoder, features, 0, word) == token.lower() if which == "bert" else token
    # The made-up word really is split into many pieces, and pieces do not overlap words.
    start, end = int(features["word_start"][0, 3]), int(features["word_end"][0, 3])
    assert end - start >= 3
    assert int(features["word_start"][0, 4]) == end
    assert features["mask"].tolist()[1] == [True] * 3 + [False] * (len(tokens) - 3)


def test_a_word_the_tokenizer_drops_gets_the_unknown_token(bert_dir):
    encoder = _encoder(bert_dir)
    features = encoder.featurize([Example(["Paris", "\u200b", "Berlin"])])  # zero-width space: no pieces
    start, end = int(features["word_start"][0, 1]), int(features["word_end"][0, 1])
    assert features["input_ids"][0, start:end].tolist() == [encoder.tokenizer.unk_token_id]


@pytest.mark.parametrize("pooling", ["first", "mean"])
def test_windows_merge_to_the_single_window_result(context_free_bert_dir, pooling):
    long_example = Example([t for e in synthetic_examples("dev")[:6] for t in e.tokens])
    whole = _encoder(context_free_bert_dir, pooling=pooling).eval()
    windowed = _encoder(context_free_bert_dir, pooling=pooling, max_window=24, window_overlap=6).eval()
    whole_features = whole.featurize([long_example])
    windowed_features = windowed.featurize([long_example])
    assert whole_features["input_ids"].shape[0] == 1
    assert windowed_features["input_ids"].shape[0] > 5  # really split
    assert windowed_features["input_ids"].shape[1] <= 24
    with torch.no_grad():
        torch.testing.assert_close(windowed(windowed_features), whole(whole_features), rtol=0, atol=1e-5)


def test_each_word_takes_the_window_where_it_is_furthest_from_an_edge(bert_dir):
    encoder = _encoder(bert_dir, max_window=10, window_overlap=4)
    tokens = ["the", "visited", "in", "on", "with", "and", "of", "said", "a", "to", "city", "bank"]
    features = encoder.featurize([Example(tokens)])
    windows = features["input_ids"].shape[0]
    assert windows >= 2 and encoder.windowed_inputs == 1
    for word in range(len(tokens)):
        chosen = int(features["word_window"][0, word])
        position = int(features["word_start"][0, word])
        text_length = int(features["attention_mask"][chosen].sum()) - 2
        distance = min(position - 1, text_length - position)
        assert distance >= 0  # the word lies inside its chosen window's text
        # No window that holds the word offers a larger margin on both sides.
        for other in range(windows):
            ids = features["input_ids"][other].tolist()
            if other != chosen and encoder.tokenizer.convert_tokens_to_ids(tokens[word]) in ids:
                other_position = ids.index(encoder.tokenizer.convert_tokens_to_ids(tokens[word]))
                other_length = int(features["attention_mask"][other].sum()) - 2
                assert distance >= min(other_position - 1, other_length - other_position)


def test_over_long_inputs_can_be_made_an_error(bert_dir):
    encoder = _encoder(bert_dir, max_window=10, long_inputs="error")
    with pytest.raises(DataError, match="window"):
        encoder.featurize([Example(["the"] * 20, source="doc.txt line 7")])


def test_slow_tokenizers_are_refused(bert_dir):
    fast = _encoder(bert_dir)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ConfigError, match="fast"):
        TransformerEncoder(fast.model, SlowTokenizer(), fast.settings)


@pytest.mark.parametrize("head", ["softmax", "crf", "span"])
def test_train_save_load_predicts_the_same(tmp_path, bert_dir, head):
    config = load_config(values={
        "encoder.type": "transformer", "encoder.model": str(bert_dir), "head.type": head, "data.dev": None,
        "training.max_steps": 6, "training.progress": False, "training.learning_rate": 1e-3,
        "output": str(tmp_path / "run"),
    })
    train(config)
    first = Tagger.from_pretrained(tmp_path / "run")
    second = Tagger.from_pretrained(tmp_path / "run")  # needs nothing but the model directory
    assert (tmp_path / "run" / "encoder" / "tokenizer.json").is_file()
    texts = synthetic_texts(12)
    assert first.predict(texts) == second.predict(texts)
    reference = first.predict_examples(synthetic_examples("dev")[:20])
    # The bare model directory still works after the original model directory is gone.
    for path in bert_dir.iterdir():
        path.rename(path.with_suffix(path.suffix + ".moved"))
    try:
        assert Tagger.from_pretrained(tmp_path / "run").predict_examples(synthetic_examples("dev")[:20]) == reference
    finally:
        for path in bert_dir.iterdir():
            path.rename(path.with_name(path.name.removesuffix(".moved")))


def test_predict_reports_how_many_inputs_needed_windows(tmp_path, bert_dir):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    config = load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir),
                                 "encoder.max_window": 16, "head.type": "softmax"})
    Tagger.build(config, synthetic_examples("train")[:40]).save_pretrained(tmp_path / "model")
    texts = tmp_path / "texts.txt"
    texts.write_text("Paris .\n" + " ".join(["the city of Berlin said ."] * 12) + "\nBerlin\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(texts), "--model", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 3
    assert "3 inputs; 1 longer than the encoder's window" in result.stderr


def test_input_lengths_are_the_sub_words_the_model_processes(bert_dir):
    encoder = _encoder(bert_dir, max_window=16, window_overlap=4)
    short, long_one = Example(["Angela", "visited", "Xyzzyq", "."]), Example(["the", "city", "of", "Berlin"] * 6)
    for example in (short, long_one):
        features = encoder.featurize([example])
        assert encoder.input_lengths([example]) == [int(features["attention_mask"].sum())]
    assert encoder.input_lengths([short])[0] > len(short)  # sub-words and [CLS]/[SEP], not words

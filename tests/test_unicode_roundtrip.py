"""Unicode round trips (issue 23): nerkit reads back its own predictions for any text.

Random Unicode text (every general category but the surrogates Cs, astral planes, combining
sequences, ZWJ emoji sequences, variation selectors, flags, spaces carrying marks) is split by
the tokenizer, its token runs written as doccano, Label Studio and offsets records, and read
back as training data: every span's ``text[start:end]`` is exact and no token boundary falls
inside a grapheme cluster (a user-perceived character). The same through a tiny trained
model's predictions, ``nerkit convert`` and training. Models recorded with
``nerkit-words-v1`` keep splitting text by that rule, and their output reads back too.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

from conftest import tiny_config
from nerkit import Tagger, read_examples, train
from nerkit.data.formats import FORMATS, doccano, labelstudio, offsets
from nerkit.data.formats.convert import convert
from nerkit.data.formats.records import AnnotatedText, CharSpan, Where
from nerkit.data.spans import ScoredSpan
from nerkit.data.synthetic import synthetic_texts
from nerkit.data.text import (TOKENIZER_RULE, TOKENIZER_V1, clusters, example_from_text, is_blank, plain, tokenize,
                              whole_characters)
from nerkit.errors import DataError
from nerkit.predict.formats import stream_predictions
from nerkit.predict.predictor import entities_with_offsets

CHARACTER_FORMATS = {"doccano": doccano, "labelstudio": labelstudio, "offsets": offsets}
SUFFIXES = {"doccano": ".jsonl", "labelstudio": ".json", "offsets": ".jsonl"}

# ----------------------------------------------------------------------------- random text

ZWJ = "\u200d"
ANY = st.characters(exclude_categories=("Cs",))  # every general category but lone surrogates
ASTRAL = st.characters(min_codepoint=0x10000, exclude_categories=("Cs",))
WORD = st.text(st.characters(categories=("Lu", "Ll", "Lo", "Nd")), min_size=1, max_size=6)
MARKS = st.one_of(st.characters(min_codepoint=0x300, max_codepoint=0x36F),  # combining diacritics
                  st.characters(min_codepoint=0x20D0, max_codepoint=0x20F0),  # for symbols (keycap U+20E3)
                  st.sampled_from(["\u093F", "\u094D", "\u0940", "\u0E31", "\u3099", "\u200C", ZWJ]))
SELECTORS = st.one_of(st.sampled_from(["\uFE0E", "\uFE0F"]),  # text and emoji presentation
                      st.characters(min_codepoint=0xE0100, max_codepoint=0xE01EF))  # ideographic variants
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
REGIONAL_INDICATORS = st.characters(min_codepoint=0x1F1E6, max_codepoint=0x1F1FF)
# Pieces where rules meet: a space or NBSP carrying a mark, an Arabic number sign before a space,
# invisible characters, line separators other than \n, what the word rule treats specially.
ODD_PIECES = [" ", "  ", "\t", "\u00A0", " \u0301", "\u00A0\u0308", "\u0600 ", "\u0600\u0661", "\u200B", "\uFEFF",
              "\u00AD", "\u200C", ZWJ, "\u2028", "\x85", "\x1c", "\x00", "\x7f", "\r\n", "-", ".", "'s", "n't", "U.S.",
              "1,000", "\u4E2D\u56FD", "\u1100\u1161\u11A8", "e\u0301", "Oslo"]
PIECES = st.one_of(
    ANY, ASTRAL, WORD, st.sampled_from(ODD_PIECES),
    st.tuples(ANY | WORD, st.lists(MARKS, min_size=1, max_size=3)).map(lambda t: t[0] + "".join(t[1])),
    st.tuples(EMOJI | st.sampled_from(["\u2764", "\u263A", "1", "#", "\u845B"]), SELECTORS).map("".join),
    st.lists(EMOJI, min_size=2, max_size=4).map(ZWJ.join),
    st.lists(REGIONAL_INDICATORS, min_size=1, max_size=5).map("".join),  # flags, and a lone indicator
)
TEXTS = st.lists(PIECES, max_size=12).map("".join)
LINES = TEXTS.map(lambda text: text.replace("\n", " ").replace("\r", " "))  # one text per line of input


def boundaries(text: str) -> set[int]:
    """Where a token may start or end: between grapheme clusters."""
    return {start for start, _ in clusters(text)} | {len(text)}


def assert_whole_characters(text: str, token_offsets) -> None:
    allowed = boundaries(text)
    cuts = [(start, end) for start, end in token_offsets if start not in allowed or end not in allowed]
    assert not cuts, f"tokens cut a character of {text!r}: {[text[s:e] for s, e in cuts]}"


# ----------------------------------------------------------------------------- the rule


def test_the_new_rule_keeps_characters_whole_and_the_old_one_is_still_there():
    cases = {
        "Cafe\u0301 Noir": ["Cafe\u0301", "Noir"],  # a combining accent stays on its letter
        "\u0939\u093F\u0928\u094D\u0926\u0940 \u092D\u093E\u0937\u093E": ["\u0939\u093F\u0928\u094D\u0926\u0940",
                                                                         "\u092D\u093E\u0937\u093E"],  # Devanagari
        "\U0001F468\u200D\U0001F373 cooks": ["\U0001F468\u200D\U0001F373", "cooks"],  # a ZWJ sequence
        "\u2764\uFE0F U.S. doesn't": ["\u2764\uFE0F", "U.S.", "does", "n't"],  # a variation selector
        "\u845B\U000E0100\u57CE": ["\u845B\U000E0100", "\u57CE"],  # an ideographic variation sequence
        "\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645": ["\u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645"],
        "a \u0301b": ["a", "b"],  # a space carrying an accent separates, like a space
        "x\u200By\uFEFFz\x00!": ["x", "y", "z", "!"],  # invisible characters separate and are in no token
        "\U0001F1F3\U0001F1F4\U0001F1F3": ["\U0001F1F3\U0001F1F4", "\U0001F1F3"],  # a flag, then a lone indicator
    }
    for text, tokens in cases.items():
        assert tokenize(text)[0] == tokens, text
    # Models that recorded the first rule split as they were trained to: accents apart.
    assert tokenize("Cafe\u0301 Noir", rule=TOKENIZER_V1)[0] == ["Cafe", "\u0301", "Noir"]
    assert tokenize("x\u200By", rule=TOKENIZER_V1)[0] == ["x", "\u200B", "y"]


@settings(max_examples=300, deadline=None)
@given(text=TEXTS)
def test_no_token_boundary_falls_inside_a_character(text):
    tokens, token_offsets = tokenize(text)
    assert tokens == [text[start:end] for start, end in token_offsets]
    assert_whole_characters(text, token_offsets)
    assert all(token and not any(c.isspace() for c in token) for token in tokens)  # CoNLL columns hold them
    assert all(end <= start for (_, end), (start, _) in zip(token_offsets, token_offsets[1:]))
    # What no token holds is blank (whitespace, or invisible characters only).
    in_tokens = {position for start, end in token_offsets for position in range(start, end)}
    assert all(is_blank(text[start:end]) for start, end in clusters(text) if start not in in_tokens)


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(max_codepoint=0x7F)))
def test_plain_text_splits_as_before(text):
    # Plain ASCII takes a short cut past the cluster walk (every ASCII character is a cluster of
    # its own, "\r\n" aside): its tokens are those of the first rule, as the long way gives them.
    from nerkit.data.text import _offsets_by_cluster

    if plain(text):
        assert tokenize(text)[1] == tokenize(text, rule=TOKENIZER_V1)[1] == _offsets_by_cluster(text)
    else:  # control characters (NUL) are tokens to the first rule, blank to the second
        assert tokenize(text)[1] == _offsets_by_cluster(text)


# ----------------------------------------------------------------------------- character formats


@st.composite
def annotated_texts(draw):
    """Texts with flat spans over runs of their tokens, as a flat model predicts them."""
    records = []
    for _ in range(draw(st.integers(1, 3))):
        text = draw(TEXTS)
        if not tokenize(text)[0]:
            text += " x"  # a file needs one text with a token
        token_offsets = tokenize(text)[1]
        spans, position = [], 0
        while position < len(token_offsets) and draw(st.booleans()):
            first = draw(st.integers(position, len(token_offsets) - 1))
            last = draw(st.integers(first + 1, len(token_offsets)))
            spans.append(CharSpan(token_offsets[first][0], token_offsets[last - 1][1], draw(st.sampled_from("AB"))))
            position = last
        records.append(AnnotatedText(text, spans, Where("<test>")))
    return records


def surfaces(example) -> list[tuple[str, str]]:
    return sorted((span.type, example.text[example.offsets[span.start][0]:example.offsets[span.end - 1][1]])
                  for span in example.spans)


@pytest.mark.parametrize("fmt", sorted(CHARACTER_FORMATS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=annotated_texts())
def test_token_spans_read_back_exactly_as_training_data(fmt, records):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"data{SUFFIXES[fmt]}"
        FORMATS[fmt].write_records(records, path)
        examples = read_examples(path, format=fmt)
        assert [example.text for example in examples] == [record.text for record in records]
        for record, example in zip(records, examples):
            assert surfaces(example) == sorted((span.type, record.text[span.start:span.end]) for span in record.spans)
            assert_whole_characters(example.text, example.offsets)
        # ... and through the token formats, which hold what the tokens are.
        for target in ("conll", "jsonl"):
            convert(path, Path(directory) / f"data.{target}", to=target)
            again = read_examples(Path(directory) / f"data.{target}", format=target)
            assert [(e.tokens, e.spans) for e in again] == [(e.tokens, e.spans) for e in examples]


@pytest.mark.parametrize("fmt,record,span,character", [
    ("doccano", {"text": "Cafe\u0301 Noir", "label": [[0, 4, "ORG"]]}, "0-4 'Cafe'", "e\u0301"),
    ("offsets", {"text": "I \u2764\uFE0F it", "entities": [{"start": 2, "end": 3, "type": "X"}]}, "2-3 '\u2764'",
     "\u2764\uFE0F"),
    ("labelstudio", [{"data": {"text": "\U0001F468\u200D\U0001F373 cooks"}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 0, "end": 2, "labels": ["PER"]}}]}]}], "0-2",
     "\U0001F468\u200D\U0001F373"),
])
def test_a_boundary_inside_a_character_is_refused_with_the_span(tmp_path, fmt, record, span, character):
    path = tmp_path / f"data{SUFFIXES[fmt]}"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_examples(path, format=fmt)
    message = str(caught.value)
    assert str(path) in message and span in message and f"inside the character {character!r}" in message
    from nerkit_cli.main import app

    result = CliRunner().invoke(app, ["convert", str(path), str(tmp_path / "out.conll"), "--to", "conll"])
    assert result.exit_code == 2 and "inside the character" in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------------- models


def record_tokens(monkeypatch, owner, name: str) -> list[list[str]]:
    """The tokens of every example list that ``owner.name`` gets from now on (it still runs)."""
    seen: list[list[str]] = []
    original = getattr(owner, name)

    def recording(*args, **options):
        examples = next(argument for argument in args if isinstance(argument, list))
        seen.extend(example.tokens for example in examples)
        return original(*args, **options)

    monkeypatch.setattr(owner, name, recording)
    return seen


def with_rule(model: Path, directory: Path, rule: str) -> Path:
    """A copy of ``model`` that records the tokenizer ``rule``, as a model of an older nerkit does."""
    shutil.copytree(model, directory)
    with_rule_in_place(directory, rule)
    return directory


@pytest.fixture(scope="module")
def v1_model(trained_models, tmp_path_factory) -> Path:
    return with_rule(trained_models["crf"], tmp_path_factory.mktemp("v1") / "model", TOKENIZER_V1)


def entity_lines() -> list[str]:
    """Sentences the tiny models find entities in, with accents, emoji and marks around them."""
    texts = synthetic_texts(6)
    return [f"{texts[0]} Cafe\u0301 \U0001F468\u200D\U0001F373", f"\u2764\uFE0F {texts[1]} \u0939\u093F\u0928",
            f"{texts[2]} a \u0301b x\u200By", *texts[3:]]


def predictions_file(tagger, lines, fmt: str, path: Path, **options) -> Path:
    """What ``nerkit predict --format fmt`` writes; Label Studio's pre-annotations accepted as
    annotations, as a person does before the tasks are exported for training."""
    sink = io.StringIO()
    stream_predictions(tagger, lines, sink, format=fmt, name="input.txt", **options)
    written = sink.getvalue()
    if fmt == "labelstudio":
        tasks = json.loads(written)
        for task in tasks:
            task["annotations"] = [{"was_cancelled": False, "result": task.pop("predictions")[0]["result"]}]
        written = json.dumps(tasks, ensure_ascii=False)
    path.write_text(written, encoding="utf-8")
    return path


def read_predictions(tagger, lines, fmt: str, directory: Path, split_sentences: bool = False) -> list:
    """The predictions of ``lines`` as the training data that nerkit reads back from them, after
    checking that every entity of ``tagger.predict`` came back exactly, by the token formats too."""
    directory.mkdir(exist_ok=True)
    path = predictions_file(tagger, lines, fmt, directory / f"predicted{SUFFIXES[fmt]}",
                            **({"split_sentences": True} if split_sentences else {}))
    examples = read_examples(path, format=fmt)
    # A text without a token (empty, blank) is left out of training data, and has no entity.
    expected = [record for record in tagger.predict(lines, split_sentences=split_sentences)
                if tokenize(record["text"])[0]]
    assert [example.text for example in examples] == [record["text"] for record in expected]
    for record, example in zip(expected, examples):
        assert surfaces(example) == sorted((e["type"], record["text"][e["start"]:e["end"]]) for e in record["entities"])
        assert all(e["text"] == record["text"][e["start"]:e["end"]] for e in record["entities"])
        assert_whole_characters(example.text, example.offsets)
    for target in ("conll", "jsonl", "doccano"):
        convert(path, directory / f"converted.{target}", to=target)
        again = read_examples(directory / f"converted.{target}", format=target)
        assert [(e.tokens, e.spans) for e in again] == [(e.tokens, e.spans) for e in examples]
    return examples


@pytest.fixture(scope="module")
def crf_tagger(trained_models):
    return Tagger.from_pretrained(trained_models["crf"])


@pytest.mark.parametrize("fmt", sorted(CHARACTER_FORMATS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, min_size=1, max_size=3), split_sentences=st.booleans())
def test_predictions_of_random_text_read_back(crf_tagger, fmt, lines, split_sentences):
    assert crf_tagger.tokenizer_rule == TOKENIZER_RULE
    with tempfile.TemporaryDirectory() as directory:
        read_predictions(crf_tagger, [*lines, *entity_lines()[:1]], fmt, Path(directory), split_sentences)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_predictions_convert_and_train(trained_models, tmp_path, head):
    tagger = Tagger.from_pretrained(trained_models[head])
    lines = entity_lines() + ["Cafe\u0301 \u0600 x \U0001F1F3", "", "\u00A0\u0308 \uFEFF"]
    examples = read_predictions(tagger, lines, "doccano", tmp_path / "doccano")
    assert sum(len(example.spans) for example in examples) > 0  # the predictions hold entities to learn
    result = train(tiny_config(tmp_path / "again", data__train=str(tmp_path / "doccano" / "converted.conll"),
                               training__max_steps=2))
    assert Tagger.from_pretrained(result.output).tokenizer_rule == TOKENIZER_RULE


def test_a_model_of_the_first_rule_loads_and_splits_text_by_it(v1_model, trained_models, tmp_path, monkeypatch):
    text = "Angela Merkel visited Pari\u0301s ; \u2764\uFE0F x\u200By"
    for model, rule in ((v1_model, TOKENIZER_V1), (trained_models["crf"], TOKENIZER_RULE)):
        tagger = Tagger.from_pretrained(model)
        assert tagger.tokenizer_rule == rule
        seen = record_tokens(monkeypatch, tagger, "encode")
        tagger.predict(text)
        tagger.predict(text, split_sentences=True)
        assert seen == [tokenize(text, rule=rule)[0]] * 2
    # `nerkit evaluate` splits character-offset data by the model's rule too.
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"text": text, "label": [[22, 28, "LOC"]]}, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    import nerkit.evaluation

    scored = record_tokens(monkeypatch, nerkit.evaluation, "score_predictions")
    nerkit.evaluation.evaluate_model(v1_model, str(path), device="cpu")
    assert scored == [tokenize(text, {22, 28}, rule=TOKENIZER_V1)[0]]


def test_predictions_of_a_first_rule_model_convert_and_train(v1_model, tmp_path):
    tagger = Tagger.from_pretrained(v1_model)
    examples = read_predictions(tagger, entity_lines(), "offsets", tmp_path / "offsets")
    assert sum(len(example.spans) for example in examples) > 0
    train(tiny_config(tmp_path / "again", data__train=str(tmp_path / "offsets" / "converted.jsonl"),
                      training__max_steps=2))


@settings(max_examples=200, deadline=None)
@given(text=TEXTS, data=st.data())
def test_first_rule_entities_come_out_in_whole_characters(text, data):
    # The first rule cuts characters (an accent off its letter, an emoji sequence apart); a model
    # of it may label any token. Every token an entity, with random scores: the output still
    # starts and ends between characters, holds something visible, and stays flat.
    example = example_from_text(text, rule=TOKENIZER_V1)
    spans = [ScoredSpan(index, index + 1, "X", data.draw(st.floats(0, 1))) for index in range(len(example))]
    entities = entities_with_offsets(example, spans, TOKENIZER_V1)
    allowed = boundaries(text)
    assert all(e["start"] in allowed and e["end"] in allowed and e["text"] == text[e["start"]:e["end"]]
               for e in entities)
    assert all(whole_characters(text, e["start"], e["end"]) == (e["start"], e["end"]) for e in entities)
    assert all(left["end"] <= right["start"] for left, right in zip(entities, entities[1:]))
    # Only entities of blank characters, or sharing one with a better-scored entity, are gone.
    if any(whole_characters(text, start, end) for start, end in example.offsets):
        assert entities


def test_a_resumed_run_of_the_first_rule_splits_its_data_by_it(tmp_path, monkeypatch):
    # A checkpoint written by a nerkit that split text by the first rule goes on learning from
    # text split the same way, and the model it saves still records that rule.
    text = "Angela Merkel visited Pari\u0301s , Cafe\u0301 Noir ."
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": text, "label": [[0, 13, "PER"], [22, 28, "LOC"]]},
                                       ensure_ascii=False) + "\n" for _ in range(4)), encoding="utf-8")
    config = tiny_config(tmp_path / "run", data__train=str(path), training__max_steps=2)
    train(config)
    with_rule_in_place(tmp_path / "run" / "checkpoint", TOKENIZER_V1)
    import nerkit.training.handlers

    learned = record_tokens(monkeypatch, Tagger, "prepare")  # what training learns from
    tested = record_tokens(monkeypatch, nerkit.training.handlers, "evaluate")  # the final test
    train(tiny_config(tmp_path / "run", data__train=str(path), data__test=str(path), training__max_steps=4),
          resume=True)
    assert learned == tested == [tokenize(text, {0, 13, 22, 28}, rule=TOKENIZER_V1)[0]] * 4
    assert Tagger.from_pretrained(tmp_path / "run").tokenizer_rule == TOKENIZER_V1


def with_rule_in_place(directory: Path, rule: str) -> None:
    description = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    description["tokenizer"] = rule
    (directory / "config.json").write_text(json.dumps(description), encoding="utf-8")
    (directory / "model-manifest.json").unlink(missing_ok=True)  # a deliberate edit: the manifest would refuse it

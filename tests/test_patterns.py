"""Rules beside the model (``nerkit.predict.rules``): pattern files, matching on whole tokens,
fill and override, the source of every entity, patterns saved in a model directory, and the
errors of malformed or hostile pattern files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerkit import Tagger
from nerkit.data.readers import write_jsonl_example
from nerkit.data.spans import ScoredSpan
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import DataError, NerkitError
from nerkit.modeldir import MANIFEST_FILE, read_manifest
from nerkit.predict.rules import PATTERNS_FILE, RuleSpan, Rules, read_patterns, save_patterns, word_shape
from nerkit_cli.main import app

from conftest import untrained_tagger_dir

runner = CliRunner()


def invoke(*arguments):
    return runner.invoke(app, [str(argument) for argument in arguments])


def rules(*patterns: dict, mode: str = "fill") -> Rules:
    return Rules(read_patterns(list(patterns)), mode=mode)


def found(rules: Rules, text: str) -> list[tuple[str, str]]:
    """The rule entities of ``text`` (split on spaces) as (surface, label)."""
    tokens = text.split()
    return [(" ".join(tokens[span.start:span.end]), span.type) for span in rules.matches(tokens)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained softmax tagger: its random tags give model entities for rules to meet."""
    return untrained_tagger_dir(tmp_path_factory.mktemp("rules-model"))


@pytest.fixture
def fresh_model(model_dir, tmp_path) -> Path:
    """A copy of the model directory that a test may change."""
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


# ----------------------------------------------------------------------------- matching


def test_a_phrase_matches_in_its_case_unless_case_insensitive():
    sensitive = rules({"label": "ORG", "pattern": "Acme Corp"})
    assert found(sensitive, "shares of Acme Corp rose") == [("Acme Corp", "ORG")]
    assert found(sensitive, "shares of ACME corp rose") == []
    folded = rules({"label": "ORG", "pattern": "Acme Corp", "case_sensitive": False})
    assert found(folded, "shares of ACME corp rose") == [("ACME corp", "ORG")]


def test_a_phrase_is_split_by_the_models_tokenizer():
    """"Acme Corp." is three tokens for nerkit's tokenizer (the full stop is one), as in a text."""
    tagger_rules = rules({"label": "ORG", "pattern": "Acme Corp."})
    assert found(tagger_rules, "at Acme Corp . today") == [("Acme Corp .", "ORG")]
    assert found(tagger_rules, "at Acme Corp today") == []


def test_phrases_match_whole_tokens_only(model_dir):
    tagger = Tagger.from_pretrained(model_dir, patterns=[{"label": "ORG", "pattern": "Acme"}])
    record = tagger.predict("Acmes and Acme-based firms met Acme today.")
    rule_entities = [(e["start"], e["text"]) for e in record["entities"] if e["source"] == "rule"]
    # "Acmes" and the hyphenated compound "Acme-based" are one token each: no match inside them.
    assert all(text == "Acme" and start == record["text"].rindex("Acme") for start, text in rule_entities)
    assert found(rules({"label": "ORG", "pattern": "Acme"}), "Acmes Acme-based Acme") == [("Acme", "ORG")]


def test_token_patterns_with_lower_text_regex_and_shape():
    tagger_rules = rules(
        {"label": "GPE", "pattern": [{"lower": "new"}, {"lower": "york"}]},
        {"label": "DATE", "pattern": [{"shape": "dddd"}, {"REGEX": "^(BC|AD)$"}]},
        {"label": "ORG", "pattern": [{"ORTH": "Bank"}, {"text": "of"}, {"shape": "Xxxxx"}]},
    )
    assert found(tagger_rules, "from NEW York in 1999 AD to Bank of Spain") == [
        ("NEW York", "GPE"), ("1999 AD", "DATE"), ("Bank of Spain", "ORG")]
    assert found(tagger_rules, "bank of Spain in 199 AD , New Jersey") == []


def test_word_shape_is_spacys():
    assert [word_shape(token) for token in ("Apple", "USA", "2024", "20240", "U.S.", "e-mail", "C3PO")] == \
        ["Xxxxx", "XXX", "dddd", "dddd", "X.X.", "x-xxxx", "XdXX"]


def test_overlapping_matches_keep_the_longest_then_the_earliest():
    tagger_rules = rules({"label": "LOC", "pattern": "New York"},
                         {"label": "ORG", "pattern": "New York Times"},
                         {"label": "MISC", "pattern": "Times Square"},
                         {"label": "PER", "pattern": "York"},
                         {"label": "A", "pattern": "b c"}, {"label": "B", "pattern": "c d"})
    assert found(tagger_rules, "the New York Times Square") == [("New York Times", "ORG")]
    assert found(tagger_rules, "a b c d e") == [("b c", "A")]  # two of one length: the earlier
    assert found(tagger_rules, "in York") == [("York", "PER")]


def test_the_first_pattern_of_a_phrase_wins_and_the_shadowed_one_is_reported(caplog):
    tagger_rules = rules({"label": "ORG", "pattern": "Jaguar"}, {"label": "ANIMAL", "pattern": "Jaguar"},
                         {"label": "ORG", "pattern": "Jaguar"})
    assert found(tagger_rules, "a Jaguar") == [("Jaguar", "ORG")]
    assert "1 phrase patterns repeat an earlier phrase with another label" in caplog.text
    assert "line 2 (ANIMAL) repeats line 1 (ORG)" in caplog.text


def test_fill_adds_rules_where_the_model_found_nothing_and_override_lets_rules_win():
    tokens = "Mr Acme Corp met Jane Doe in Paris".split()
    model = [ScoredSpan(0, 2, "PER", 0.9), ScoredSpan(7, 8, "LOC", 0.8)]
    patterns = ({"label": "ORG", "pattern": "Acme Corp"}, {"label": "PER", "pattern": "Jane Doe"})
    filled = rules(*patterns).apply(tokens, model)
    assert sorted((s.start, s.end, s.type, isinstance(s, RuleSpan)) for s in filled) == [
        (0, 2, "PER", False), (4, 6, "PER", True), (7, 8, "LOC", False)]
    overridden = rules(*patterns, mode="override").apply(tokens, model)
    assert sorted((s.start, s.end, s.type, isinstance(s, RuleSpan)) for s in overridden) == [
        (1, 3, "ORG", True), (4, 6, "PER", True), (7, 8, "LOC", False)]
    assert all(span.score == 1.0 for span in overridden if isinstance(span, RuleSpan))


def test_a_large_phrase_list_loads_and_matches(tmp_path):
    """100,000 phrases in a file: every one written is found, and no more."""
    path = tmp_path / "names.jsonl"
    lines = [json.dumps({"label": "ORG" if index % 2 else "PER", "pattern": f"Name{index} Co{index % 7}"})
             for index in range(100_000)]
    write_lines(path, lines)
    tagger_rules = Rules(read_patterns(path))
    assert len(tagger_rules) == 100_000
    assert found(tagger_rules, "Name99999 Co4 met Name12 Co5 and Name12 Co4 .") == [
        ("Name99999 Co4", "ORG"), ("Name12 Co5", "PER")]
    for index in range(0, 100_000, 997):
        phrase = f"Name{index} Co{index % 7}"
        assert found(tagger_rules, f"at {phrase} ,") == [(phrase, "ORG" if index % 2 else "PER")]


# ----------------------------------------------------------------------------- through the tagger


def model_only(model_dir, texts):
    return [record["entities"] for record in Tagger.from_pretrained(model_dir).predict(texts)]


TEXTS = [" ".join(example.tokens) + " Near Acme Corp and Lake Zürich ." for example in synthetic_examples("dev")[:12]]
PATTERNS = [{"label": "ORG", "pattern": "Acme Corp", "id": "acme"},
            {"label": "LOC", "pattern": [{"lower": "lake"}, {"shape": "Xxxxx"}]}]


def test_fill_mode_keeps_every_model_entity_and_marks_sources(trained_models):
    """A trained model tags the names of the texts and leaves the lower-case "acme corp" to the rule."""
    model_dir = trained_models["crf"]
    texts = [" ".join(example.tokens) + " and acme corp ." for example in synthetic_examples("dev")[:12]]
    patterns = [{"label": "ORG", "pattern": "ACME Corp", "case_sensitive": False, "id": "acme"}]
    alone = model_only(model_dir, texts)
    records = Tagger.from_pretrained(model_dir, patterns=patterns).predict(texts)
    assert any(e["source"] == "model" for record in records for e in record["entities"])
    assert any(e["source"] == "rule" for record in records for e in record["entities"])
    for record, model_entities in zip(records, alone):
        from_model = [e for e in record["entities"] if e["source"] == "model"]
        assert [{**e, "source": "model"} for e in model_entities] == from_model
        for entity in record["entities"]:
            if entity["source"] == "rule":
                assert (entity["text"], entity["type"], entity["score"], entity["pattern_id"]) == \
                    ("acme corp", "ORG", 1.0, "acme")
                assert not any(m["start"] < entity["end"] and entity["start"] < m["end"] for m in from_model)


def test_override_mode_drops_the_model_entities_rules_overlap(model_dir):
    alone = model_only(model_dir, TEXTS)
    records = Tagger.from_pretrained(model_dir, patterns=PATTERNS, patterns_mode="override").predict(TEXTS)
    for record, model_entities in zip(records, alone):
        rule_entities = [e for e in record["entities"] if e["source"] == "rule"]
        assert [e["text"] for e in rule_entities] == ["Acme Corp", "Lake Zürich"]
        kept = [e for e in model_entities
                if not any(r["start"] < e["end"] and e["start"] < r["end"] for r in rule_entities)]
        assert [{**e, "source": "model"} for e in kept] == [e for e in record["entities"] if e["source"] == "model"]


def test_without_patterns_entities_have_no_source_field(model_dir):
    assert all("source" not in e for entities in model_only(model_dir, TEXTS) for e in entities)


def test_cli_predict_writes_the_source_of_every_entity(model_dir, tmp_path):
    texts = write_lines(tmp_path / "texts.txt", TEXTS)
    patterns = write_lines(tmp_path / "patterns.jsonl", [json.dumps(p) for p in PATTERNS])
    result = invoke("predict", texts, "--model", model_dir, "--patterns", patterns, "--patterns-mode", "override",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(TEXTS)
    assert all(e["source"] in ("model", "rule") for record in records for e in record["entities"])
    assert all(any(e["text"] == "Acme Corp" and e["source"] == "rule" and e["pattern_id"] == "acme"
                   for e in record["entities"]) for record in records)


def test_cli_predict_conll_output_carries_rule_tags(model_dir, tmp_path):
    """CoNLL has no place for a source: the rule entities are tags like the model's."""
    conll = write_lines(tmp_path / "in.conll", ["Acme\tNNP", "Corp\tNNP", "rose\tVBD", ""])
    patterns = write_lines(tmp_path / "patterns.jsonl", ['{"label": "ORG", "pattern": "Acme Corp"}'])
    result = invoke("predict", conll, "--model", model_dir, "--format", "conll", "--patterns", patterns,
                    "--patterns-mode", "override", "--device", "cpu")
    assert result.exit_code == 0, result.output
    tags = [line.split()[-1] for line in result.stdout.splitlines() if line.strip()]
    assert tags[:2] == ["B-ORG", "I-ORG"]


def test_cli_evaluate_scores_the_predictions_with_rules(model_dir, tmp_path):
    """Rules written from the gold entities, in override mode, find (nearly) all of them."""
    examples = synthetic_examples("dev")[:20]
    gold = write_lines(tmp_path / "gold.jsonl", [write_jsonl_example(e) for e in examples])
    spans = {(" ".join(e.tokens[s.start:s.end]), s.type) for e in examples for s in e.spans}
    patterns = write_lines(tmp_path / "patterns.jsonl",
                           [json.dumps({"label": label, "pattern": text}) for text, label in sorted(spans)])
    plain, ruled = tmp_path / "plain.json", tmp_path / "ruled.json"
    assert invoke("evaluate", model_dir, gold, "--output", plain, "--device", "cpu").exit_code == 0
    result = invoke("evaluate", model_dir, gold, "--output", ruled, "--patterns", patterns, "--patterns-mode",
                    "override", "--device", "cpu")
    assert result.exit_code == 0, result.output
    before, after = (json.loads(path.read_text())["micro"] for path in (plain, ruled))
    assert after["recall"] >= 0.9 and after["recall"] > before["recall"]


def test_serve_answers_with_rule_entities(model_dir):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from nerkit.serve import create_app

    tagger = Tagger.from_pretrained(model_dir, patterns=PATTERNS, patterns_mode="override")
    with TestClient(create_app(tagger, model_name="tiny")) as client:
        response = client.post("/predict", json={"texts": TEXTS[:2]})
    assert response.status_code == 200
    for record in response.json()["results"]:
        assert [e["text"] for e in record["entities"] if e["source"] == "rule"] == ["Acme Corp", "Lake Zürich"]


def test_the_onnx_runtime_applies_the_rules(fresh_model):
    pytest.importorskip("onnxruntime")
    from nerkit.export import export_onnx

    export_onnx(fresh_model, int8=False)
    options = {"patterns": PATTERNS, "patterns_mode": "override"}
    torch_records = Tagger.from_pretrained(fresh_model, **options).predict(TEXTS[:3])
    onnx_records = Tagger.from_pretrained(fresh_model, runtime="onnx", **options).predict(TEXTS[:3])
    rule_texts = [[e["text"] for e in r["entities"] if e["source"] == "rule"] for r in onnx_records]
    assert all("Acme Corp" in texts for texts in rule_texts)
    strip = lambda records: [[{k: v for k, v in e.items() if k != "score"} for e in r["entities"]] for r in records]
    assert strip(onnx_records) == strip(torch_records)


# ----------------------------------------------------------------------------- saved in the model directory


def test_saved_patterns_travel_with_the_model_directory(fresh_model, tmp_path):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": "Acme Corp"}'])
    result = invoke("patterns", "add", fresh_model, patterns)
    assert result.exit_code == 0, result.output
    assert PATTERNS_FILE in read_manifest(fresh_model)
    more = write_lines(tmp_path / "q.jsonl", ['{"label": "LOC", "pattern": "Lake Geneva"}'])
    assert invoke("patterns", "add", fresh_model, more).exit_code == 0  # added to the saved ones
    moved = Path(shutil.move(str(fresh_model), tmp_path / "elsewhere"))
    record = Tagger.from_pretrained(moved, patterns_mode="override").predict("Acme Corp by Lake Geneva")
    assert [(e["text"], e["type"]) for e in record["entities"] if e["source"] == "rule"] == \
        [("Acme Corp", "ORG"), ("Lake Geneva", "LOC")]
    assert [p.pattern for p in read_patterns(moved / PATTERNS_FILE)] == ["Acme Corp", "Lake Geneva"]
    # The tagger saves the patterns it holds with the model.
    Tagger.from_pretrained(moved).save_pretrained(tmp_path / "copy")
    assert [p.pattern for p in read_patterns(tmp_path / "copy" / PATTERNS_FILE)] == ["Acme Corp", "Lake Geneva"]
    assert invoke("patterns", "add", moved, patterns, "--replace").exit_code == 0
    assert [p.pattern for p in read_patterns(moved / PATTERNS_FILE)] == ["Acme Corp"]


def test_saved_rules_override_through_the_cli(fresh_model, tmp_path):
    save_patterns(fresh_model, [{"label": "ORG", "pattern": "Acme Corp"}])
    texts = write_lines(tmp_path / "t.txt", ["Acme Corp rose ."])
    result = invoke("predict", texts, "--model", fresh_model, "--patterns-mode", "override", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert [e["text"] for e in json.loads(result.stdout)["entities"] if e["source"] == "rule"] == ["Acme Corp"]


def test_a_pattern_file_changed_after_saving_is_refused(fresh_model, tmp_path):
    save_patterns(fresh_model, [{"label": "ORG", "pattern": "Acme Corp"}])
    with open(fresh_model / PATTERNS_FILE, "a", encoding="utf-8") as stream:
        stream.write('{"label": "ORG", "pattern": "Evil"}\n')
    with pytest.raises(NerkitError, match=f"{PATTERNS_FILE} was changed"):
        Tagger.from_pretrained(fresh_model)


def test_a_pattern_file_not_in_the_manifest_is_refused(fresh_model):
    (fresh_model / PATTERNS_FILE).write_text('{"label": "ORG", "pattern": "Acme"}\n', encoding="utf-8")
    with pytest.raises(NerkitError, match=f"holds {PATTERNS_FILE}, which its {MANIFEST_FILE} does not list"):
        Tagger.from_pretrained(fresh_model)


def test_a_damaged_saved_pattern_file_names_its_line(fresh_model, tmp_path):
    """A directory without a manifest (written before manifests) is checked line by line."""
    (fresh_model / MANIFEST_FILE).unlink()
    write_lines(fresh_model / PATTERNS_FILE, ['{"label": "ORG", "pattern": "Acme"}', '{"label": "ORG"'])
    texts = write_lines(tmp_path / "t.txt", ["Acme rose ."])
    result = invoke("predict", texts, "--model", fresh_model, "--device", "cpu")
    assert result.exit_code == 2
    assert f"{fresh_model / PATTERNS_FILE} line 2: not valid JSON" in " ".join(result.output.split())


def test_html_and_unicode_patterns_round_trip(fresh_model):
    patterns = [{"label": "ORG", "pattern": "AT&T <b>Zoë</b>", "id": "<script>"},
                {"label": "LOC", "pattern": "東京 Zürich\u2028", "case_sensitive": False}]
    save_patterns(fresh_model, patterns)
    saved = read_patterns(fresh_model / PATTERNS_FILE)
    assert [p.record() for p in saved] == patterns
    assert len((fresh_model / PATTERNS_FILE).read_text(encoding="utf-8").splitlines()) == 2
    text = "see AT&T <b>Zoë</b> in 東京 ZÜRICH today"
    record = Tagger.from_pretrained(fresh_model, patterns_mode="override").predict(text)
    assert [(e["text"], e["type"]) for e in record["entities"] if e["source"] == "rule"] == \
        [("AT&T <b>Zoë</b>", "ORG"), ("東京 ZÜRICH", "LOC")]


# ----------------------------------------------------------------------------- hostile and malformed files


def test_a_catastrophic_regex_is_stopped_and_names_its_line(model_dir, tmp_path):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": "Acme"}',
                                                  '{"label": "X", "pattern": [{"regex": "(a|aa)+$"}]}'])
    texts = write_lines(tmp_path / "t.txt", ["a" * 60 + "b is here"])
    result = invoke("predict", texts, "--model", model_dir, "--patterns", patterns, "--device", "cpu")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"{patterns} line 2: the regex '(a|aa)+$' took more than" in message and "Traceback" not in message


MALFORMED = [
    ('{"label": "ORG", "pattern": "Acme"', "not valid JSON"),
    ('["ORG", "Acme"]', "a JSON array, expected a pattern object"),
    ('{"label": "ORG", "pattern": "Acme", "kind": "phrase"}', "unknown key 'kind'"),
    ('{"label": "ORG"}', "no 'pattern'"),
    ('{"label": 3, "pattern": "Acme"}', "label 3: expected a non-empty string"),
    ('{"label": "ORG", "pattern": 3}', "pattern is a JSON number"),
    ('{"label": "ORG", "pattern": "  "}', "the pattern is empty"),
    ('{"label": "ORG", "pattern": []}', "the pattern is an empty list"),
    ('{"label": "ORG", "pattern": [{}]}', "token 0 of the pattern is {}"),
    ('{"label": "ORG", "pattern": [{"lower": "acme"}, {"op": "+"}]}', "token 1 of the pattern: unknown key 'op'"),
    ('{"label": "ORG", "pattern": [{"lower": 3}]}', "lower is 3, expected a non-empty string"),
    ('{"label": "ORG", "pattern": [{"lower": "Acme"}]}', "lower 'Acme' has upper-case letters"),
    ('{"label": "ORG", "pattern": [{"regex": "(a"}]}', "regex '(a' does not compile"),
    ('{"label": "ORG", "pattern": "Acme", "case_sensitive": "no"}', "case_sensitive 'no': expected true or false"),
    ('{"label": "ORG", "pattern": [{"lower": "acme"}], "case_sensitive": false}', "case_sensitive applies to a phrase"),
    ('{"label": "ORG", "pattern": "Acme", "id": [1]}', "id [1]: expected a string or an integer"),
    ('{"label": "ORG", "pattern": "Acme", "score": NaN}', "NaN is not JSON"),
]


@pytest.mark.parametrize("line, fragment", MALFORMED, ids=[fragment for _, fragment in MALFORMED])
def test_a_malformed_line_is_named_with_exit_code_2(model_dir, tmp_path, line, fragment):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": "Acme Corp"}', "", line])
    texts = write_lines(tmp_path / "t.txt", ["Acme Corp"])
    for command in (["predict", texts, "--model", model_dir], ["evaluate", model_dir, "synthetic:dev"]):
        result = invoke(*command, "--patterns", patterns, "--device", "cpu")
        assert result.exit_code == 2, result.output
        message = " ".join(result.output.split())
        assert f"{patterns} line 3: " in message and fragment in message and "Traceback" not in message


def test_patterns_add_refuses_a_malformed_file_and_leaves_the_directory_as_it_was(fresh_model, tmp_path):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": ""}'])
    before = sorted(path.name for path in fresh_model.iterdir())
    result = invoke("patterns", "add", fresh_model, patterns)
    assert result.exit_code == 2 and f"{patterns} line 1: the pattern is empty" in " ".join(result.output.split())
    assert sorted(path.name for path in fresh_model.iterdir()) == before


def test_patterns_add_refuses_what_is_not_a_model_directory(tmp_path):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": "Acme"}'])
    result = invoke("patterns", "add", tmp_path / "nowhere", patterns)
    assert result.exit_code == 2 and "no such model directory" in result.output


def test_a_label_the_model_does_not_know_is_a_new_type(model_dir):
    """Rules may add a type the model never learned (as spaCy's EntityRuler does)."""
    tagger = Tagger.from_pretrained(model_dir, patterns=[{"label": "PRODUCT", "pattern": "iPhone"}],
                                    patterns_mode="override")
    assert "PRODUCT" not in tagger.entity_types
    assert [(e["text"], e["type"]) for e in tagger.predict("a new iPhone")["entities"] if e["source"] == "rule"] == \
        [("iPhone", "PRODUCT")]


def test_a_phrase_that_holds_no_token_is_refused(model_dir):
    with pytest.raises(DataError, match=r"pattern 2: the phrase '\\u200b' holds no token"):
        Tagger.from_pretrained(model_dir, patterns=[{"label": "ORG", "pattern": "Acme"},
                                                    {"label": "ORG", "pattern": "\u200b"}])


def test_serve_refuses_a_malformed_pattern_file_before_it_listens(model_dir, tmp_path):
    patterns = write_lines(tmp_path / "p.jsonl", ['{"label": "ORG", "pattern": "Acme"}', '{"pattern": "Acme"}'])
    result = invoke("serve", "--model", model_dir, "--patterns", patterns, "--port", "0", "--device", "cpu")
    assert result.exit_code == 2
    assert f"{patterns} line 2: no 'label'" in " ".join(result.output.split())


def test_bad_options_are_refused(model_dir, tmp_path):
    texts = write_lines(tmp_path / "t.txt", ["Acme"])
    result = invoke("predict", texts, "--model", model_dir, "--patterns", tmp_path / "missing.jsonl")
    assert result.exit_code == 2 and "no such pattern file" in result.output
    result = invoke("predict", texts, "--model", model_dir, "--patterns-mode", "merge")
    assert result.exit_code == 2 and "--patterns-mode 'merge': expected fill or override" in result.output
    with pytest.raises(NerkitError, match="got one dict"):
        read_patterns({"label": "ORG", "pattern": "Acme"})
    with pytest.raises(DataError, match="pattern 2: unknown key 'lable'"):
        read_patterns([{"label": "ORG", "pattern": "Acme"}, {"lable": "ORG", "pattern": "Acme"}])

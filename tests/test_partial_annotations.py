"""Partial annotations (issue 26, item 3): sources that annotate some types only, ``-`` tags, the
losses that learn from every reading consistent with what is known, and their bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from conftest import LEARNS_QUICKLY, TINY_SET_ARGS, tiny_config
from test_crf import BruteForce, logsumexp, make_head, make_inputs

from nerkit.config import load_config
from nerkit.data.formats.conll import read_conll, write
from nerkit.data.partial import allowed_tags, declare_annotated_types
from nerkit.data.schemes import scheme_tags
from nerkit.data.spans import Example, Span
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError, DataError
from nerkit.heads.global_pointer import GlobalPointerHead
from nerkit.losses import build_loss

SCHEMES = ["BIO", "BIOES"]


def random_allowed(lengths: list[int], tags: int, seed: int) -> torch.Tensor:
    """Random allowed tag sets, O always among them, so some valid path exists."""
    generator = torch.Generator().manual_seed(seed)
    allowed = torch.rand(len(lengths), max(lengths), tags, generator=generator) < 0.4
    allowed[..., 0] = True
    return allowed


# ----------------------------------------------------------------------------- the losses

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_constrained_crf_forward_equals_brute_force_over_allowed_paths(scheme, seed):
    lengths = [4, 3, 1]
    head = make_head(scheme, seed).double()
    emissions, mask = make_inputs(lengths, len(head.tags), seed)
    allowed = random_allowed(lengths, len(head.tags), seed)
    brute = BruteForce(head)
    constrained = head.constrained_log_partition(emissions, allowed, mask)
    nll = head.partial_negative_log_likelihood(emissions, allowed, mask)
    removed = 0
    for row, length in enumerate(lengths):
        scores = brute.all_scores(emissions[row], length)
        valid = {path: score for path, score in scores.items() if brute.is_valid(path)}
        kept = [score for path, score in valid.items() if all(allowed[row, t, tag] for t, tag in enumerate(path))]
        removed += len(valid) - len(kept)
        assert constrained[row].item() == pytest.approx(logsumexp(kept), abs=1e-9)
        assert nll[row].item() == pytest.approx(logsumexp(valid.values()) - logsumexp(kept), abs=1e-9)
    assert removed > 0  # the constraint removes paths, so the check can fail


@pytest.mark.parametrize("scheme", SCHEMES)
def test_constrained_crf_loss_with_a_fully_known_path_is_the_crf_loss(scheme):
    lengths = [4, 2, 3]
    head = make_head(scheme, 5).double()
    emissions, mask = make_inputs(lengths, len(head.tags), 5)
    gold = head.viterbi(emissions, mask)  # a valid path under the scheme
    allowed = torch.nn.functional.one_hot(gold, len(head.tags)).bool()
    full = head.negative_log_likelihood(emissions, gold.masked_fill(~mask, -100), mask)
    partial = head.partial_negative_log_likelihood(emissions, allowed, mask)
    # Equal to the float32 rounding of the potentials (the head keeps its transitions in float32):
    # one path's score summed in another order.
    assert torch.allclose(partial, full, rtol=0, atol=1e-6)
    assert not torch.allclose(head.partial_negative_log_likelihood(emissions, allowed | ~allowed, mask), full,
                              atol=1e-3)  # all tags allowed: the loss is 0, not the CRF's


def test_partial_ce_equals_ce_when_one_tag_is_allowed_and_is_the_allowed_set_probability():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 7, (2, 5), generator=generator)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    one_hot = torch.nn.functional.one_hot(labels, 7).bool()
    for name, params in [("ce", {}), ("weighted-ce", {"label_counts": [50, 3, 9, 1, 4, 20, 2]}),
                         ("weighted-ce", {"label_counts": [50, 3, 9, 1, 4, 20, 2], "normalize": "weights"})]:
        loss = build_loss(name, **params)
        assert loss.forward_partial(logits, one_hot, mask).item() == pytest.approx(
            loss(logits, labels.masked_fill(~mask, -100), mask).item(), abs=1e-12)
    # Several allowed tags: -log of their summed probability, token mean over valid tokens.
    allowed = torch.rand(2, 5, 7, generator=generator) < 0.5
    allowed[..., 2] = True
    probabilities = torch.softmax(logits.detach(), dim=-1)
    expected = [-math.log(float(probabilities[b, t][allowed[b, t]].sum()))
                for b in range(2) for t in range(5) if mask[b, t]]
    value = build_loss("ce").forward_partial(logits, allowed, mask)
    assert value.item() == pytest.approx(sum(expected) / len(expected), abs=1e-12)
    value.backward()
    assert logits.grad[1, 3:].abs().max() == 0  # padding gets no gradient


def test_span_head_gives_no_loss_to_unannotated_types_and_cells_over_unknown_words():
    torch.manual_seed(0)
    head = GlobalPointerHead(8, ["LOC", "PER"], loss=build_loss("zlpr"), max_span_length=4)
    example = Example(["a", "b", "c", "d"], [Span(0, 1, "PER")], annotated_types=frozenset({"PER"}),
                      missing=[False, False, True, False])
    batch = {"mask": torch.ones(1, 4, dtype=torch.bool), **head.targets([example], 4)}
    scores = head.span_logits(torch.randn(1, 4, 8), batch["mask"]).detach().requires_grad_()
    head.loss_from_scores(scores, batch).backward()
    gradient = scores.grad[0]  # shape: (types, words, words)
    assert gradient[0].abs().max() == 0  # LOC: not annotated by this source
    assert gradient[1, 0, 0] != 0 and gradient[1, 0, 1] != 0  # PER cells of known words
    assert gradient[1, 1, 2] == 0 and gradient[1, 2, 3] == 0 and gradient[1, 0, 3] == 0  # over the '-' word
    full = Example(example.tokens, example.spans)
    full_batch = {"mask": batch["mask"], **head.targets([full], 4)}
    assert "span_known" not in full_batch  # the fully annotated path is today's


# ----------------------------------------------------------------------------- the data

def test_conll_dash_tags_read_as_missing_in_any_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("Angela B-PER\nMerkel I-PER\nvisited -\nParis B-LOC\n\nHe O\nslept O\n", encoding="utf-8")
    first, second = read_conll(path)
    assert first.spans == [Span(0, 2, "PER"), Span(3, 4, "LOC")]
    assert first.missing == [False, False, True, False] and first.partial and first.annotated_types is None
    assert second.missing is None and not second.partial
    tags = scheme_tags(["LOC", "PER"], "BIO")
    index = {tag: number for number, tag in enumerate(tags)}
    allowed = allowed_tags(first, tags, index, "BIO")
    assert allowed[2] == list(range(len(tags)))  # '-': any tag
    assert allowed[0] == [index["B-PER"]] and allowed[3] == [index["B-LOC"]]


def test_outside_a_partial_sources_spans_a_word_is_o_or_an_unannotated_type():
    example = Example(["Angela", "met", "Acme"], [Span(0, 1, "PER")], annotated_types=frozenset({"PER"}))
    tags = scheme_tags(["ORG", "PER"], "BIOES")
    index = {tag: number for number, tag in enumerate(tags)}
    allowed = allowed_tags(example, tags, index, "BIOES")
    assert allowed[0] == [index["S-PER"]]
    assert sorted(tags[i] for i in allowed[1]) == ["B-ORG", "E-ORG", "I-ORG", "O", "S-ORG"]


def test_priors_count_only_what_partial_data_fixes():
    from nerkit.config import HeadConfig
    from nerkit.tagger import count_labels

    partial = Example(["Angela", "met", "Bob", "today"], [Span(0, 1, "PER")], annotated_types=frozenset({"PER"}))
    unknown = Example(["in", "Paris", "now"], [Span(1, 2, "LOC")], missing=[False, False, True])
    head = HeadConfig.model_validate({"type": "softmax", "scheme": "BIO"})
    names, counts = count_labels([partial, unknown], head, ["LOC", "PER"])
    assert dict(zip(names, counts)) == {"O": 1, "B-LOC": 1, "I-LOC": 0, "B-PER": 1, "I-PER": 0}


# ----------------------------------------------------------------------------- training

def halves(tmp_path):
    """The synthetic training split in two halves, the first annotated with PER only, the second
    with LOC only (the other types' tags removed), as CoNLL files."""
    examples = synthetic_examples("train")
    middle = len(examples) // 2

    def only(part, entity_type):
        return [dataclasses.replace(e, spans=[s for s in e.spans if s.type == entity_type]) for e in part]

    write(only(examples[:middle], "PER"), tmp_path / "per.txt")
    write(only(examples[middle:], "LOC"), tmp_path / "loc.txt")
    return str(tmp_path / "per.txt"), str(tmp_path / "loc.txt")


def test_two_partial_sources_train_one_model_better_than_the_naive_reading(tmp_path):
    from nerkit import Tagger, train
    from nerkit.evaluation import evaluate
    from nerkit.training.rundir import RUN_FILE

    per, loc = halves(tmp_path)
    dev = [dataclasses.replace(e, spans=[s for s in e.spans if s.type in ("PER", "LOC")])
           for e in synthetic_examples("dev")]
    quick = {key.replace(".", "__"): value for key, value in LEARNS_QUICKLY.items()}
    scores = {}
    for reading, sources in [("partial", [{"path": per, "annotated_types": ["PER"]},
                                          {"path": loc, "annotated_types": ["LOC"]}]),
                             ("naive", [per, loc])]:
        output = tmp_path / reading
        train(tiny_config(output, head__type="crf", data__train=sources, **quick))
        report = evaluate(Tagger.from_pretrained(output), dev)
        scores[reading] = {t: report.per_type[t].f1 for t in ("PER", "LOC")}
    # The naive reading learns from each half that the other half's type is O: it finds almost
    # none of either; the partial reading learns both (0.58 and 0.50 F1 at this size).
    for entity_type in ("PER", "LOC"):
        assert scores["partial"][entity_type] > scores["naive"][entity_type] + 0.2, scores
    run = json.loads((tmp_path / "partial" / RUN_FILE).read_text())
    assert [(s["path"], s["annotated_types"]) for s in run["train_sources"]] == [(per, ["PER"]), (loc, ["LOC"])]
    saved = (tmp_path / "partial" / "config.json").read_text()
    assert "annotated_types" not in saved and "per.txt" not in saved


# ----------------------------------------------------------------------------- bad input

def test_annotated_types_naming_a_type_absent_from_the_data_is_an_error():
    examples = [Example(["Angela"], [Span(0, 1, "PER")])]
    with pytest.raises(DataError, match=r"data.train\[1\] \(b.txt\): annotated_types names 'LOC'"):
        declare_annotated_types(examples, ["PER", "LOC"], "data.train[1] (b.txt)")


def test_a_type_outside_annotated_types_is_an_error():
    examples = [Example(["Angela", "Paris"], [Span(0, 1, "PER"), Span(1, 2, "LOC")], source="a.txt line 1")]
    with pytest.raises(DataError, match=r"annotates 'LOC' \(1 entities, the first at a.txt line 1\)"):
        declare_annotated_types(examples, ["PER"], "data.train[0] (a.txt)")


@pytest.mark.parametrize("entry,expected", [
    ("[{path: a.txt, annotated_types: PER}]", "entry 0: field 'annotated_types': Input should be a valid list"),
    ("[b.txt, {pth: a.txt}]", "entry 1: field 'path': Field required; field 'pth': Extra inputs"),
    ("[a.txt, 3]", "entry 1 is 3; expected a path or a mapping"),
    ("[]", "an empty list"),
])
def test_a_malformed_train_list_entry_names_its_index_and_field(entry, expected):
    with pytest.raises(ConfigError, match="data.train: " + expected.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=[f"data.train={entry}"])


def test_a_train_list_survives_the_run_directorys_configuration(tmp_path):
    config = load_config(overrides=["data.train=[{path: a.txt, annotated_types: [PER], format: conll}, b.txt]"])
    config.to_yaml(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").data.train == config.data.train


def cli(*arguments):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def set_args(overrides):
    return [item for override in overrides for item in ("--set", override)]


@pytest.mark.parametrize("case", ["absent-type", "undeclared-type", "loss", "entry", "partial-dev"])
def test_bad_partial_input_exits_2_on_the_command_line(tmp_path, case):
    per, _ = halves(tmp_path)
    sources, extra, expected = {
        "absent-type": (f"[{{path: {per}, annotated_types: [PER, ORG]}}]", [], "annotated_types names 'ORG'"),
        "undeclared-type": ("[{path: synthetic:train, annotated_types: [PER]}]", [], "which annotated_types [PER]"),
        "loss": (f"[{{path: {per}, annotated_types: [PER]}}]", ["--loss", "focal", "--head", "softmax"],
                 "loss 'focal' cannot learn from partial annotations"),
        "entry": (f"[{{path: {per}, annotated_types: 7}}]", [], "entry 0: field 'annotated_types'"),
        "partial-dev": (f"[{{path: {per}, annotated_types: [PER]}}]", ["--dev", tmp_path / "dev.txt"],
                        "tokens whose tag is unknown"),
    }[case]
    (tmp_path / "dev.txt").write_text("Angela B-PER\nsaid -\n", encoding="utf-8")
    result = cli("train", *set_args(TINY_SET_ARGS + ["training.max_steps=2", f"data.train={sources}"]), *extra,
                 "--output", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()) and "Traceback" not in result.output


def test_the_unsupported_losses_are_named_with_those_that_support_partial_labels(tmp_path):
    from nerkit import train

    per, _ = halves(tmp_path)
    for head, loss in [("crf", "focal"), ("softmax", "dice"), ("softmax", "logit-adjusted")]:
        config = tiny_config(tmp_path / f"{head}-{loss}", head__type=head, loss__name=loss,
                             data__train=[{"path": per, "annotated_types": ["PER"]}], training__max_steps=1)
        with pytest.raises(ConfigError, match=f"loss '{loss}' cannot learn from partial annotations.*"
                                              f"losses that do on the {head} head: ce, weighted-ce$"):
            train(config)


def test_dash_tags_survive_conversion_to_conll_and_are_refused_where_a_format_cannot_hold_them(tmp_path):
    from nerkit.data.formats.convert import convert
    from nerkit.errors import NerkitError

    source = tmp_path / "in.txt"
    source.write_text("Angela B-PER\nsaid -\nhi O\n", encoding="utf-8")
    convert(source, tmp_path / "out.txt", to="conll")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "Angela B-PER\nsaid -\nhi O\n\n"
    with pytest.raises(NerkitError, match="tokens tagged '-' .* which the jsonl format cannot hold"):
        convert(source, tmp_path / "out.jsonl", to="jsonl")


def test_evaluate_and_debug_data_refuse_what_they_cannot_read_as_full_data(tmp_path, trained_models):
    gold = tmp_path / "gold.txt"
    gold.write_text("Angela B-PER\nsaid -\n", encoding="utf-8")
    result = cli("evaluate", trained_models["crf"], gold)
    assert result.exit_code == 2 and "would count them as O" in " ".join(result.output.split()), result.output
    result = cli("debug", "data", "--set", f"data.train=[{gold}, {gold}]")
    assert result.exit_code == 2 and "checks one at a time" in result.output, result.output
    assert "Traceback" not in result.output


def test_sources_of_a_list_keep_their_own_reading_options_and_distinct_documents(tmp_path):
    (tmp_path / "a.txt").write_text("-DOCSTART- O\n\nAngela B-PER\n\n-DOCSTART- O\n\nBob B-PER\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("-DOCSTART- O\n\nParis S-LOC\nhi O\n", encoding="utf-8")  # BIOES
    config = load_config(overrides=[f"data.train=[{{path: {tmp_path / 'a.txt'}, annotated_types: [PER]}}, "
                                    f"{{path: {tmp_path / 'b.txt'}, scheme: BIOES}}]", "data.scheme=BIO"])
    examples = config.data.load("train")
    assert [example.document for example in examples] == [0, 1, 2]  # b.txt's document 0 became 2
    assert [example.annotated_types for example in examples] == [frozenset({"PER"})] * 2 + [None]
    assert examples[2].spans == [Span(0, 1, "LOC")]


def test_on_flat_data_a_gold_span_fixes_the_cells_of_unannotated_types_that_overlap_it():
    torch.manual_seed(0)
    head = GlobalPointerHead(8, ["LOC", "PER"], loss=build_loss("zlpr"), max_span_length=4, flat_decoding=True)
    example = Example(["a", "b", "c", "d"], [Span(1, 2, "PER")], annotated_types=frozenset({"PER"}))
    batch = {"mask": torch.ones(1, 4, dtype=torch.bool), **head.targets([example], 4)}
    scores = head.span_logits(torch.randn(1, 4, 8), batch["mask"]).detach().requires_grad_()
    head.loss_from_scores(scores, batch).backward()
    loc = scores.grad[0, 0]  # shape: (words, words); LOC is not annotated
    assert loc[1, 1] != 0 and loc[0, 1] != 0 and loc[1, 3] != 0  # overlap the PER span: not entities
    assert loc[0, 0] == 0 and loc[2, 3] == 0 and loc[3, 3] == 0  # elsewhere: unknown


def test_partial_weighted_ce_weighs_a_token_by_the_class_weights_under_its_allowed_tags():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(1, 6, 5, generator=generator, dtype=torch.float64)
    allowed = torch.rand(1, 6, 5, generator=generator) < 0.5
    allowed[..., 1] = True
    loss = build_loss("weighted-ce", label_counts=[100, 3, 9, 1, 20])
    weights = loss.class_weight
    expected = []
    for t in range(6):
        probabilities = torch.softmax(logits[0, t], dim=0)[allowed[0, t]]
        weight = float((probabilities / probabilities.sum() * weights[allowed[0, t]]).sum())
        expected.append(weight * -math.log(float(probabilities.sum())))
    assert loss.forward_partial(logits, allowed).item() == pytest.approx(sum(expected) / 6, abs=1e-12)


def test_dash_tags_in_a_file_not_declared_partial_train_the_crf(tmp_path):
    from nerkit import train

    lines = ["Angela B-PER\nMerkel I-PER\nvisited -\nParis B-LOC\n", "He O\nsaid -\nno O\n"] * 20
    (tmp_path / "train.txt").write_text("\n".join(lines), encoding="utf-8")
    result = train(tiny_config(tmp_path / "run", data__train=str(tmp_path / "train.txt"), training__max_steps=3))
    assert result.steps == 3


def test_class_statistics_without_any_word_known_to_be_o_are_said(tmp_path, caplog):
    from nerkit import Tagger

    per, loc = halves(tmp_path)
    sources = [{"path": per, "annotated_types": ["PER"]}, {"path": loc, "annotated_types": ["LOC"]}]
    config = tiny_config(tmp_path / "run", head__type="softmax", loss__name="weighted-ce", data__train=sources)
    tagger = Tagger.build(config, config.data.load("train"))
    assert tagger.label_counts[tagger.label_names.index("O")] == 0 and tagger.label_counts[1] > 0
    assert "no training word is known to be O" in caplog.text

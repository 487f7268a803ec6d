"""The span head (GlobalPointer and Efficient GlobalPointer, docs/losses.md 4): scores against a loop
with explicit 2x2 rotation matrices, RoPE's relative-position property, decoding against brute
force over all cells, exactly zero gradient on invalid cells, the efficient variant's size and
layout, targets, the default loss, nested scores, a train/save/load round trip on nested data,
span-set F1 = seqeval F1 on flat data, the GENIA layout and the shipped configurations."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # a shared 2-core machine: two threads thrash

from nerkit import Tagger, load_config, read_examples, train  # noqa: E402
from nerkit.data.spans import Example, Span, is_flat, spans_overlap  # noqa: E402
from nerkit.data.synthetic import synthetic_examples, synthetic_texts  # noqa: E402
from nerkit.errors import ConfigError, DataError  # noqa: E402
from nerkit.heads.global_pointer import GlobalPointerHead  # noqa: E402
from nerkit.losses import build_loss  # noqa: E402
from nerkit.losses.zlpr import ZLPR  # noqa: E402
from nerkit.metrics.entity_f1 import entity_report, seqeval_report, span_set_report  # noqa: E402
from nerkit.data.sources import load_split  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TYPES = ["A", "B", "C"]
INPUT_SIZE = 6
TINY = {"encoder.hidden_size": 16, "encoder.word_dim": 16, "encoder.char_dim": 8, "encoder.char_filters": 8,
        "encoder.case_dim": 4, "training.progress": False, "training.token_budget": 200,
        "training.max_sentences": 16, "training.cpu_threads": 1, "data.dev": None}
# 100 steps at this rate without dropout reach a span-set F1 of about 0.6 on nested synthetic dev.
LEARNS_QUICKLY = {"training.learning_rate": 0.03, "encoder.dropout": 0.0, "encoder.word_dropout": 0.0,
                  "training.max_steps": 100}


def make_head(variant: str = "standard", head_size: int = 4, loss=None, seed: int = 0, **options) -> GlobalPointerHead:
    torch.manual_seed(seed)
    head = GlobalPointerHead(INPUT_SIZE, TYPES, loss=loss if loss is not None else build_loss("zlpr"),
                             variant=variant, head_size=head_size, **options)
    return head.double()


def word_mask(lengths: list[int], words: int) -> torch.Tensor:
    return torch.arange(words).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def brute_validity(lengths: list[int], words: int, max_span_length: int | None = None) -> torch.Tensor:
    """Valid cells ``[B, T, L, L]`` from docs/losses.md 1.2, by explicit loops."""
    valid = torch.zeros(len(lengths), len(TYPES), words, words, dtype=torch.bool)
    for b, length in enumerate(lengths):
        for i in range(words):
            for j in range(words):
                if i <= j < length and (max_span_length is None or j - i < max_span_length):
                    valid[b, :, i, j] = True
    return valid


def rotation(position: int, d: int) -> torch.Tensor:
    """R_p: block-diagonal, one explicit 2x2 rotation by p * 10000^(-2r/d) per channel pair."""
    matrix = torch.zeros(d, d, dtype=torch.float64)
    for r in range(d // 2):
        angle = position * 10000.0 ** (-2 * r / d)
        matrix[2 * r:2 * r + 2, 2 * r:2 * r + 2] = torch.tensor(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    return matrix


def reference_scores(head: GlobalPointerHead, word_vectors: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """s_t(i, j) of docs/losses.md 4.1 / 4.2 cell by cell, with -inf on invalid cells."""
    batch, words, _ = word_vectors.shape
    d = head.head_size
    weight, bias = head.projection.weight.detach(), head.projection.bias.detach()
    expected = torch.full((batch, len(TYPES), words, words), -math.inf, dtype=torch.float64)
    valid = brute_validity(lengths, words, head.max_span_length)
    for b in range(batch):
        for i in range(words):
            for j in range(words):
                if not valid[b, 0, i, j]:
                    continue
                p_i = weight @ word_vectors[b, i] + bias
                p_j = weight @ word_vectors[b, j] + bias
                for t in range(len(TYPES)):
                    if head.variant == "standard":
                        q = p_i[t * 2 * d:t * 2 * d + d]  # type t: first d channels of its 2d block
                        k = p_j[t * 2 * d + d:(t + 1) * 2 * d]
                        expected[b, t, i, j] = (rotation(i, d) @ q) @ (rotation(j, d) @ k) / math.sqrt(d)
                    else:
                        w_b, b_b = head.type_projection.weight.detach(), head.type_projection.bias.detach()
                        u_i, u_j = w_b @ p_i + b_b, w_b @ p_j + b_b
                        dot = (rotation(i, d) @ p_i[0::2]) @ (rotation(j, d) @ p_j[1::2]) / math.sqrt(d)
                        expected[b, t, i, j] = dot + (u_j[2 * t] + u_i[2 * t + 1]) / 2
    return expected


# --------------------------------------------------------------------------- scores


@pytest.mark.parametrize("variant", ["standard", "efficient"])
@pytest.mark.parametrize("max_span_length", [None, 3])
def test_scores_match_explicit_rotation_loop(variant, max_span_length):
    head = make_head(variant, head_size=6, max_span_length=max_span_length)
    torch.manual_seed(1)
    lengths = [7, 4]
    word_vectors = torch.randn(2, 7, INPUT_SIZE, dtype=torch.float64)
    scores = head.span_logits(word_vectors, word_mask(lengths, 7))
    expected = reference_scores(head, word_vectors, lengths)
    assert scores.shape == (2, len(TYPES), 7, 7)
    assert torch.equal(torch.isneginf(scores), torch.isneginf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(scores[finite], expected[finite], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["standard", "efficient"])
def test_identical_inputs_score_by_offset_only(variant):
    head = make_head(variant, head_size=8)
    torch.manual_seed(2)
    word_vectors = torch.randn(1, 1, INPUT_SIZE, dtype=torch.float64).expand(1, 9, INPUT_SIZE)
    scores = head.span_logits(word_vectors, word_mask([9], 9))[0]  # shape: (types, words, words)
    for shift in range(1, 5):  # R_i^T R_j = R_{j-i}: moving both ends by `shift` changes nothing
        torch.testing.assert_close(scores[:, shift:, shift:], scores[:, :9 - shift, :9 - shift],
                                   rtol=1e-10, atol=1e-12)
    # ... and the offset does matter: RoPE is on (without it every cell would be equal here).
    by_offset = torch.stack([scores[:, 0, k] for k in range(9)], dim=1)  # shape: (types, offsets)
    assert (by_offset.max(dim=1).values - by_offset.min(dim=1).values).min() > 1e-3


@pytest.mark.parametrize("variant", ["standard", "efficient"])
def test_shifting_a_sequence_leaves_its_scores_unchanged(variant):
    head = make_head(variant, head_size=8)
    torch.manual_seed(3)
    words = torch.randn(1, 6, INPUT_SIZE, dtype=torch.float64)
    shifted = torch.cat([torch.randn(1, 3, INPUT_SIZE, dtype=torch.float64), words], dim=1)  # same words at 3..8
    scores = head.span_logits(words, word_mask([6], 6))
    scores_shifted = head.span_logits(shifted, word_mask([9], 9))
    torch.testing.assert_close(scores_shifted[:, :, 3:, 3:], scores, rtol=1e-10, atol=1e-12)


def test_efficient_variant_size_shapes_and_bf16():
    d, types = 8, len(TYPES)
    standard, efficient = make_head("standard", head_size=d), make_head("efficient", head_size=d)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(standard) == types * 2 * d * (INPUT_SIZE + 1)  # docs/losses.md 4.1
    assert count(efficient) == 2 * d * (INPUT_SIZE + 1) + types * 2 * (2 * d + 1)  # docs/losses.md 4.2
    assert efficient.projection.out_features == 2 * d and efficient.type_projection.out_features == 2 * types
    word_vectors = torch.randn(3, 5, INPUT_SIZE, dtype=torch.float64)
    assert efficient.span_logits(word_vectors, word_mask([5, 2, 1], 5)).shape == (3, types, 5, 5)
    # In bf16 the invalid cells are -inf too (no overflowing constant) and the loss stays finite.
    low = efficient.to(torch.bfloat16)
    scores = low.span_logits(word_vectors.to(torch.bfloat16), word_mask([5, 2, 1], 5))
    assert scores.dtype == torch.bfloat16
    assert torch.equal(torch.isneginf(scores), ~brute_validity([5, 2, 1], 5))
    examples = [Example(list("abcde"), [Span(0, 2, "A")]), Example(list("ab"), []), Example(["a"], [Span(0, 1, "C")])]
    batch = {"mask": word_mask([5, 2, 1], 5), **low.targets(examples, 5)}
    assert torch.isfinite(low.loss_from_scores(scores, batch))


# --------------------------------------------------------------------------- decoding


def brute_force_spans(scores: torch.Tensor, lengths: list[int], max_span_length: int | None):
    """{(start, end, type): sigmoid(score)} per sequence, from every cell."""
    found = []
    for b, length in enumerate(lengths):
        spans = {}
        for t, name in enumerate(TYPES):
            for i in range(scores.shape[2]):
                for j in range(scores.shape[3]):
                    valid = i <= j < length and (max_span_length is None or j - i < max_span_length)
                    if valid and scores[b, t, i, j] > 0:
                        spans[(i, j + 1, name)] = 1 / (1 + math.exp(-float(scores[b, t, i, j])))
        found.append(spans)
    return found


@pytest.mark.parametrize("variant", ["standard", "efficient"])
def test_decoding_matches_brute_force_over_all_cells(variant):
    head = make_head(variant, head_size=6, max_span_length=4, seed=4)
    torch.manual_seed(5)
    lengths = [8, 5, 1]
    word_vectors = torch.randn(3, 8, INPUT_SIZE, dtype=torch.float64)
    mask = word_mask(lengths, 8)
    expected = brute_force_spans(head.span_logits(word_vectors, mask).detach(), lengths, 4)
    assert 0 < sum(map(len, expected)) < 3 * (8 + 5 + 1) * 4  # some cells positive, some not
    for max_cells in (10**9, 7, 1):  # one block, a few start rows per block, one start row per block
        head.max_cells = max_cells
        decoded = head.decode(word_vectors, {"mask": mask})
        for spans, reference in zip(decoded, expected):
            assert {(s.start, s.end, s.type) for s in spans} == set(reference)
            assert len(spans) == len(reference)
            for span in spans:
                assert span.score == pytest.approx(reference[(span.start, span.end, span.type)], abs=1e-6)
            assert spans == sorted(spans, key=lambda s: (s.start, s.end, s.type))


def test_flat_decoding_keeps_non_overlapping_spans_greedily():
    head = make_head(head_size=6, seed=6)
    torch.manual_seed(7)
    word_vectors = torch.randn(2, 9, INPUT_SIZE, dtype=torch.float64)
    batch = {"mask": word_mask([9, 6], 9)}
    nested = head.decode(word_vectors, batch)
    head.flat_decoding = True
    flat = head.decode(word_vectors, batch)
    assert any(not is_flat(spans) for spans in nested)
    for all_spans, kept in zip(nested, flat):
        assert is_flat(kept) and set(kept) <= set(all_spans) and kept
        for span in set(all_spans) - set(kept):  # each dropped span lost to a kept one scored at least as high
            assert any(spans_overlap(span, other) and other.score >= span.score for other in kept)
        # greedy from the top: the best span always survives
        assert max(all_spans, key=lambda s: s.score) in kept


# --------------------------------------------------------------------------- losses and targets


@pytest.mark.parametrize("name,params", [("zlpr", {"sparse": False}), ("zlpr", {"sparse": True}), ("bce", {}),
                                         ("focal", {}), ("flooding", {"inner": "zlpr", "b": 0.5})])
def test_invalid_cells_get_exactly_zero_gradient(name, params):
    head = make_head(head_size=4, loss=build_loss(name, **params), max_span_length=4)
    lengths = [6, 3]
    examples = [Example(list("abcdef"), [Span(0, 3, "A"), Span(1, 2, "B"), Span(2, 6, "C")]),
                Example(list("abc"), [Span(2, 3, "A")])]
    batch = {"mask": word_mask(lengths, 6), **head.targets(examples, 6)}
    assert ("span_index" in batch) == (params.get("sparse") is True)
    torch.manual_seed(8)
    word_vectors = torch.randn(2, 6, INPUT_SIZE, dtype=torch.float64, requires_grad=True)
    scores = head.span_logits(word_vectors, batch["mask"])
    scores.retain_grad()
    loss = head.loss_from_scores(scores, batch)
    loss.backward()
    valid = brute_validity(lengths, 6, 4)
    assert torch.isfinite(loss)
    assert torch.equal(scores.grad[~valid], torch.zeros_like(scores.grad[~valid]))  # lower triangle, padding, too long
    assert scores.grad[valid].abs().sum() > 0
    assert torch.isfinite(word_vectors.grad).all() and word_vectors.grad.abs().sum() > 0
    # Whatever the invalid cells hold, the loss is the same.
    garbage = torch.where(valid, scores.detach(), torch.full_like(scores, 1e4))
    assert head.loss_from_scores(garbage, batch).item() == pytest.approx(loss.item(), rel=1e-12)


def test_targets_dense_and_sparse_and_spans_too_long(caplog):
    examples = [Example(list("abcdef"), [Span(0, 3, "A"), Span(1, 2, "B"), Span(0, 6, "C")], source="x.jsonl line 7"),
                Example(list("ab"), [Span(1, 2, "A")], source="x.jsonl line 8")]
    dense_head = make_head(max_span_length=4)
    with caplog.at_level(logging.WARNING):
        labels = dense_head.targets(examples, 6)["span_labels"]
    assert labels.shape == (2, len(TYPES), 6, 6) and labels.dtype == torch.bool
    assert {tuple(cell) for cell in labels.nonzero().tolist()} == {(0, 0, 0, 2), (0, 1, 1, 1), (1, 0, 1, 1)}
    # The 6-word span C is over max_span_length=4: not a target, but reported with its source ...
    assert "x.jsonl line 7" in caplog.text and "max_span_length=4" in caplog.text
    assert dense_head.dropped_spans == {("x.jsonl line 7", Span(0, 6, "C"))}
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        dense_head.targets(examples, 6)  # ... once, not every epoch
    assert "max_span_length" not in caplog.text
    # ... and still gold for evaluation: the example keeps it, and it counts as a miss.
    assert Span(0, 6, "C") in examples[0].spans
    predicted = [[Span(0, 3, "A"), Span(1, 2, "B")], [Span(1, 2, "A")]]
    report = entity_report([e.spans for e in examples], predicted, [6, 2], TYPES)
    assert report.micro.support == 4 and report.micro.recall == pytest.approx(3 / 4)

    sparse_head = make_head(loss=build_loss("zlpr", sparse=True), max_span_length=4)
    index = sparse_head.targets(examples, 6)["span_index"]
    assert index.shape == (2, len(TYPES), 1)
    assert index[:, :, 0].tolist() == [[0 * 6 + 2, 1 * 6 + 1, -1], [1 * 6 + 1, -1, -1]]  # i * L + j
    # Dense and sparse targets give the same loss on the same scores (the dense computation for both).
    torch.manual_seed(9)
    scores = dense_head.span_logits(torch.randn(2, 6, INPUT_SIZE, dtype=torch.float64), word_mask([6, 2], 6))
    mask = word_mask([6, 2], 6)
    dense_loss = dense_head.loss_from_scores(scores, {"mask": mask, "span_labels": labels})
    sparse_loss = make_head(max_span_length=4).loss_from_scores(scores, {"mask": mask, "span_index": index})
    assert sparse_loss.item() == pytest.approx(dense_loss.item(), rel=1e-12)

    with pytest.raises(DataError, match="x.jsonl line 9.*'D'"):
        dense_head.targets([Example(["a"], [Span(0, 1, "D")], source="x.jsonl line 9")], 1)


def test_sparse_targets_follow_the_zlpr_auto_rule():
    head = make_head()  # zlpr, sparse="auto": sparse above 2**20 cells per sequence
    assert isinstance(head.loss_function, ZLPR)
    example = [Example(["w"] * 600, [Span(3, 5, "B")])]
    assert "span_index" in head.targets(example, 600)  # 3 * 600 * 600 > 2**20
    assert "span_labels" in head.targets(example[:1], 591)  # 3 * 591 * 591 < 2**20
    assert head.cells_per_batch(4, 10) == 4 * len(TYPES) * 10 * 10


def test_span_head_defaults_to_zlpr_and_refuses_an_explicit_ce(tmp_path):
    examples = synthetic_examples("train", nested=True)[:40]
    config = load_config(values={**TINY, "head.type": "span"})
    assert config.loss.name == "zlpr"
    assert isinstance(Tagger.build(config, examples).head.loss_function, ZLPR)
    assert load_config(values={**TINY, "head.type": "crf"}).loss.name == "ce"
    flooding = load_config(values={**TINY, "head.type": "span", "loss.name": "flooding"})
    assert flooding.loss.params()["inner"] == "zlpr"
    Tagger.build(flooding, examples)
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("head:\n  type: span\nloss:\n  name: ce\n", encoding="utf-8")
    for config in (load_config(values={**TINY, "head.type": "span", "loss.name": "ce"}),
                   load_config(explicit, values=TINY)):
        assert config.loss.name == "ce"
        with pytest.raises(ConfigError) as error:
            Tagger.build(config, examples)
        assert all(name in str(error.value) for name in ("'ce'", "span head", "zlpr", "bce", "focal", "flooding"))


def test_head_settings_are_validated():
    with pytest.raises(ConfigError, match="head_size"):
        load_config(values={"head.type": "span", "head.head_size": 7})
    with pytest.raises(ConfigError, match="variant"):
        load_config(values={"head.type": "span", "head.variant": "fast"})
    with pytest.raises(ConfigError, match="max_span_length"):
        load_config(values={"head.type": "span", "head.max_span_length": 0})


# --------------------------------------------------------------------------- metrics


def test_nested_scores_count_only_nested_entities():
    gold = [[Span(0, 3, "ORG"), Span(2, 3, "LOC"), Span(5, 6, "PER"), Span(7, 8, "A"), Span(7, 8, "B")],
            [Span(0, 1, "PER")]]
    predicted = [[Span(0, 3, "ORG"), Span(5, 6, "PER"), Span(4, 7, "MISC"), Span(7, 8, "A")], [Span(0, 1, "PER")]]
    report = span_set_report(gold, predicted)
    nested = report.extra["nested"]
    # gold nested: ORG(0,3) and LOC(2,3) (two types on one span do not nest); ORG found -> recall 1/2.
    # predicted nested: MISC(4,7) around PER(5,6); PER is gold -> precision 1/2.
    assert nested.support == 2
    assert (nested.precision, nested.recall, nested.f1) == pytest.approx((0.5, 0.5, 0.5))
    assert report.as_dict()["nested"]["support"] == 2 and "nested" in report.table()
    assert report.micro.support == 6


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def nested_model(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("span-model")
    train(load_config(values={**TINY, **LEARNS_QUICKLY, "head.type": "span", "head.head_size": 16,
                              "data.train": "synthetic-nested:train", "output": str(output)}))
    return output


def test_synthetic_nested_source():
    examples = load_split("synthetic-nested:dev")
    assert [e.tokens for e in examples] == [e.tokens for e in load_split("synthetic:dev")]
    assert any(not is_flat(e.spans) for e in examples)
    assert all(is_flat(e.spans) for e in load_split("synthetic:dev"))


def test_train_save_load_predicts_the_same_nested_spans(nested_model):
    description = json.loads((nested_model / "config.json").read_text(encoding="utf-8"))
    assert description["head"]["type"] == "span" and description["loss"]["name"] == "zlpr"
    first, second = Tagger.from_pretrained(nested_model), Tagger.from_pretrained(nested_model)
    assert first.head.flat is False
    dev = synthetic_examples("dev", nested=True)[:80]
    predicted = first.predict_examples(dev)
    assert predicted == second.predict_examples(dev)
    assert any(not is_flat(spans) for spans in predicted)  # nested entities come out as such
    report = entity_report([e.spans for e in dev], predicted, [len(e) for e in dev], first.entity_types)
    assert report.method == "span-set" and report.micro.f1 > 0.3 and report.extra["nested"].recall > 0
    # Raw text: nested entities with character offsets.
    texts = [" ".join(dev[i].tokens) for i, spans in enumerate(predicted) if not is_flat(spans)][:5] + synthetic_texts(5)
    results = first.predict(texts)
    assert results == second.predict(texts)
    assert any(not is_flat([Span(e["start"], e["end"], e["type"]) for e in r["entities"]]) for r in results)
    for result in results:
        for entity in result["entities"]:
            assert result["text"][entity["start"]:entity["end"]] == entity["text"] and 0 < entity["score"] <= 1


def test_flat_decoding_span_f1_equals_seqeval_on_flat_data(nested_model):
    tagger = Tagger.from_pretrained(nested_model)
    tagger.head.flat_decoding = True
    dev = synthetic_examples("dev")[:120]  # flat gold
    predicted = tagger.predict_examples(dev)
    assert all(is_flat(spans) for spans in predicted)
    gold, lengths = [e.spans for e in dev], [len(e) for e in dev]
    spans_report = span_set_report(gold, predicted, tagger.entity_types)
    seqeval = seqeval_report(gold, predicted, lengths, tagger.entity_types)
    assert seqeval.micro.f1 > 0.2  # a real comparison, not 0 = 0
    for ours, theirs in [(spans_report.micro, seqeval.micro),
                         *[(spans_report.per_type[t], seqeval.per_type[t]) for t in tagger.entity_types]]:
        assert (ours.precision, ours.recall, ours.f1, ours.support) == pytest.approx(
            (theirs.precision, theirs.recall, theirs.f1, theirs.support), abs=1e-12)


def test_genia_layout_reads_into_nested_span_targets(tmp_path):
    lines = [
        {"tokens": ["Binding", "of", "the", "p50", "subunit", "to", "the", "IL-8", "promoter", "."],
         "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-0",
         "entity_mentions": [{"start": 3, "end": 5, "entity_type": "protein", "text": "p50 subunit"},
                             {"start": 3, "end": 4, "entity_type": "protein", "text": "p50"},
                             {"start": 7, "end": 9, "entity_type": "DNA", "text": "IL-8 promoter"},
                             {"start": 7, "end": 8, "entity_type": "protein", "text": "IL-8"}]},
        {"tokens": ["Resting", "T", "cells", "were", "used", "."], "doc_id": "MEDLINE:1", "sent_id": "MEDLINE:1-1",
         "entity_mentions": [{"start": 0, "end": 3, "entity_type": "cell_type", "text": "Resting T cells"}]},
        {"tokens": ["No", "entities", "here", "."], "doc_id": "MEDLINE:2", "sent_id": "MEDLINE:2-0",
         "entity_mentions": []},
    ]
    path = tmp_path / "genia.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    examples = read_examples(path)
    assert [len(e.spans) for e in examples] == [4, 1, 0]
    assert examples[0].spans == sorted([Span(3, 5, "protein"), Span(3, 4, "protein"), Span(7, 9, "DNA"),
                                        Span(7, 8, "protein")])
    assert examples[1].source == f"{path} line 2"
    config = load_config(values={**TINY, "head.type": "span", "head.head_size": 8})
    tagger = Tagger.build(config, examples)
    assert tagger.entity_types == ["DNA", "cell_type", "protein"] and tagger.label_counts == [1, 1, 3]
    batch = tagger.collate(examples)
    positives = {tuple(cell) for cell in batch["span_labels"].nonzero().tolist()}
    assert positives == {(0, 2, 3, 4), (0, 2, 3, 3), (0, 0, 7, 8), (0, 2, 7, 7), (1, 1, 0, 2)}
    assert torch.isfinite(tagger(batch))
    nested = span_set_report([e.spans for e in examples], [[] for _ in examples]).extra["nested"]
    assert nested.support == 4


@pytest.mark.parametrize("name", ["bilstm-span.yaml", "genia-bilstm-span.yaml"])
def test_shipped_span_configs_load_and_build(name):
    config = load_config(REPO_ROOT / "configs" / name)
    assert config.head.type == "span" and config.loss.name == "zlpr"
    if name.startswith("genia"):
        assert [config.data.train, config.data.dev, config.data.test] == [
            f"../shared/data/genia/{split}.jsonl" for split in ("train", "dev", "test")]
    else:
        assert config.data.train == "synthetic-nested:train"
    examples = synthetic_examples("train", nested=True)[:16]
    tagger = Tagger.build(config, examples)
    assert isinstance(tagger.head, GlobalPointerHead) and tagger.head.head_size == config.head.head_size
    assert torch.isfinite(tagger(tagger.collate(examples[:4])))

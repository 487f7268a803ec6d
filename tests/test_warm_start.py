"""Warm start and replay (issue 26, items 1, 2 and 5): ``--init-from`` grows a trained model by the
new data's types and words with every parent row kept, ``data.replay`` mixes a fresh share of
earlier data into each epoch as a partial source, and the bad input of both."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import LEARNS_QUICKLY, TINY_ENCODER, TINY_SET_ARGS, TINY_TRAINING, tiny_config

from nerkit.config import load_config
from nerkit.data.formats.conll import write
from nerkit.data.spans import Example, Span
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import NerkitError
from nerkit.heads.crf import transition_table
from nerkit.training.sampler import BudgetBatchSampler

QUICK = {key.replace(".", "__"): value for key, value in LEARNS_QUICKLY.items()}
HEADS = ["softmax", "crf", "span"]


def without(examples: list[Example], entity_type: str) -> list[Example]:
    return [dataclasses.replace(e, spans=[s for s in e.spans if s.type != entity_type]) for e in examples]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, str]:
    """The synthetic corpus as CoNLL files: ``old`` without MISC (MISC words are O), ``new`` 300
    sentences annotated with every type, MISC included."""
    folder = tmp_path_factory.mktemp("warm-data")
    examples = synthetic_examples("train")
    write(without(examples, "MISC"), folder / "old.txt")
    write(examples[:300], folder / "new.txt")
    return {"old": str(folder / "old.txt"), "new": str(folder / "new.txt")}


@pytest.fixture(scope="module")
def parents(tmp_path_factory, corpus, bert_dir) -> dict[str, Path]:
    """One parent model per head (tiny BiLSTM) and a tiny-BERT CRF, trained without MISC."""
    from nerkit import train

    models = {}
    for head in HEADS:
        output = tmp_path_factory.mktemp(f"parent-{head}")
        train(tiny_config(output, head__type=head, data__train=corpus["old"], **QUICK))
        models[head] = output
    output = tmp_path_factory.mktemp("parent-bert")
    train(transformer_config(bert_dir, output, data__train=corpus["old"], training__max_steps=6))
    models["transformer"] = output
    return models


def transformer_config(bert_dir: Path, output: Path, **values):
    dotted = {key.replace("__", "."): value for key, value in values.items()}
    return load_config(values={"encoder.type": "transformer", "encoder.model": str(bert_dir), "head.type": "crf",
                               **TINY_TRAINING, "training.learning_rate": 1e-3, **dotted, "output": str(output)})


def child_config(kind: str, parent: Path, corpus, output: Path, bert_dir: Path, **values):
    if kind == "transformer":
        return transformer_config(bert_dir, output, data__train=corpus["new"], training__init_from=str(parent),
                                  **values)
    return tiny_config(output, data__train=corpus["new"], training__init_from=str(parent), **values)


def zero_step_child(kind, parents, corpus, tmp_path, bert_dir):
    """The child ``train`` would start from, before any step (``warm.warm_start``)."""
    from nerkit.training import warm

    config = child_config(kind, parents[kind], corpus, tmp_path / "child", bert_dir)
    parent = warm.load_parent(parents[kind])
    child = warm.warm_start(config, warm.load_parent(parents[kind]), config.data.load("train", parent.tokenizer_rule))
    return parent, child.eval()


# ----------------------------------------------------------------------------- the child at step 0

@pytest.mark.parametrize("kind", [*HEADS, "transformer"])
def test_the_child_keeps_every_parent_row_exactly_and_adds_rows_for_the_new_type(kind, parents, corpus, tmp_path,
                                                                                 bert_dir):
    parent, child = zero_step_child(kind, parents, corpus, tmp_path, bert_dir)
    assert parent.entity_types == ["LOC", "ORG", "PER"]
    assert child.entity_types == ["LOC", "ORG", "PER", "MISC"]  # the parent's order, the new type after
    old = [child.label_names.index(label) for label in parent.label_names]
    assert len(child.label_names) > len(parent.label_names)
    parent_head, child_head = parent.head.state_dict(), child.head.state_dict()
    if kind == "span":  # one block of 2 * head_size output rows per type, label-major
        block = parent_head["projection.weight"].shape[0] // len(parent.label_names)
        rows = torch.tensor([index * block + offset for index in old for offset in range(block)])
        assert torch.equal(child_head["projection.weight"][rows], parent_head["projection.weight"])
        assert torch.equal(child_head["projection.bias"][rows], parent_head["projection.bias"])
        assert child_head["projection.weight"].shape[0] == block * 4
    else:
        assert torch.equal(child_head["projection.weight"][old], parent_head["projection.weight"])
        assert torch.equal(child_head["projection.bias"][old], parent_head["projection.bias"])
    if kind in ("crf", "transformer"):
        assert torch.equal(child_head["transitions"][old][:, old], parent_head["transitions"])
        assert torch.equal(child_head["start_transitions"][old], parent_head["start_transitions"])
        # The new tags' transitions keep the scheme's constraints: I-MISC never follows B-PER.
        assert torch.equal(child.head.allowed, transition_table(child.label_names, "BIO"))
        assert not child.head.allowed[child.label_names.index("B-PER"), child.label_names.index("I-MISC")]
    parent_encoder, child_encoder = parent.encoder.state_dict(), child.encoder.state_dict()
    for name, tensor in parent_encoder.items():
        if child_encoder[name].shape == tensor.shape:
            assert torch.equal(child_encoder[name], tensor), name
        else:  # a grown vocabulary: the parent's rows first, unchanged
            assert torch.equal(child_encoder[name][:tensor.shape[0]], tensor), name


@pytest.mark.parametrize("kind", [*HEADS, "transformer"])
def test_before_any_step_the_child_scores_and_decodes_the_parents_tags_like_the_parent(kind, parents, corpus,
                                                                                      tmp_path, bert_dir):
    """The new type's rows start as a fresh model's, so the child may already guess the new type
    somewhere; over the parent's tags it scores every word exactly as the parent does, and with
    the new tags ruled out it decodes exactly the parent's entities."""
    from nerkit.heads.crf import FORBIDDEN

    parent, child = zero_step_child(kind, parents, corpus, tmp_path, bert_dir)
    dev = synthetic_examples("dev")[:60]
    parent_spans = [[(s.start, s.end, s.type) for s in spans] for spans in parent.predict_examples(dev)]
    assert sum(map(len, parent_spans)) > 20  # the parent finds entities, so the comparison can fail
    if kind == "span":  # each type scores its own cells: the parent's types' spans are the parent's
        child_spans = [[(s.start, s.end, s.type) for s in spans if s.type != "MISC"]
                       for spans in child.predict_examples(dev)]
        assert child_spans == parent_spans
        return
    batch = parent.encode(dev)
    parent_scores, child_scores = parent.model_scores(batch), child.model_scores(child.encode(dev))
    [name] = parent_scores
    old = [child.label_names.index(label) for label in parent.label_names]
    assert torch.equal(child_scores[name][..., old], parent_scores[name])
    new = [index for index in range(len(child.label_names)) if index not in old]
    child_scores[name][..., new] = FORBIDDEN
    decoded = child.head.decode_scores(child_scores, batch)
    assert [[(s.start, s.end, s.type) for s in spans] for spans in decoded] == \
        [[(s.start, s.end, s.type) for s in spans] for spans in parent.head.decode_scores(parent_scores, batch)]
    assert [[(s.start, s.end, s.type) for s in spans] for spans in parent.head.decode_scores(parent_scores, batch)] \
        == parent_spans


def test_the_child_learns_the_new_type_and_records_its_parent(parents, corpus, tmp_path, bert_dir):
    from nerkit import Tagger, train
    from nerkit.evaluation import evaluate
    from nerkit.training.rundir import RUN_FILE

    output = tmp_path / "child"
    train(child_config("crf", parents["crf"], corpus, output, bert_dir, **QUICK))
    dev = synthetic_examples("dev")
    before = evaluate(Tagger.from_pretrained(parents["crf"]), dev)
    after = evaluate(Tagger.from_pretrained(output), dev)
    assert "MISC" not in before.per_type or before.per_type["MISC"].f1 == 0
    assert after.per_type["MISC"].f1 > 0.3, after.per_type  # learnt from 300 sentences in 100 steps
    run = json.loads((output / RUN_FILE).read_text())
    manifest = (Path(parents["crf"]) / "model-manifest.json").read_bytes()
    assert run["parent"] == {"path": str(parents["crf"]), "manifest_sha256": hashlib.sha256(manifest).hexdigest()}
    assert "parent" not in json.loads((Path(parents["crf"]) / RUN_FILE).read_text())


# ----------------------------------------------------------------------------- the vocabulary

def test_the_vocabulary_grows_and_a_frozen_added_word_moves_to_the_trained_table(tmp_path):
    from nerkit import Tagger

    vectors = tmp_path / "vectors.txt"
    generator = torch.Generator().manual_seed(0)
    lines = [f"{word} " + " ".join(f"{v:.4f}" for v in torch.randn(16, generator=generator).tolist())
             for word in ["the", "visited", "zanzibar", "quokka", "yonder", "wombat"]]
    vectors.write_text("\n".join(lines) + "\n", encoding="utf-8")
    old = [Example(["Angela", "visited", "the", "city"], [Span(0, 1, "PER")])]
    config = tiny_config(tmp_path / "m", encoder__word_vectors=str(vectors), encoder__word_vectors_extra=3)
    encoder = Tagger.build(config, old).encoder
    features = encoder.word_features
    assert features.trained_words == 6 and "zanzibar" in features.words  # pad, unk, 4 words; 3 added
    assert "wombat" not in features.words  # past word_vectors_extra
    trained_before = features.word_embedding.weight.detach().clone()
    added_before = dict(zip(features.words.entries[6:], features.added_word_embedding.weight.detach().clone()))
    new = [Example(["Zanzibar", "yonder", "Kiwi", "visited", "Wombat"], [Span(0, 1, "LOC")])]
    encoder.grow_vocabulary(new, {"word_vectors": str(vectors)})
    words = features.words
    assert words.entries[:6] == ["<pad>", "<unk>", "angela", "city", "the", "visited"]
    # The training words moved from the frozen table, the new one, then what stays frozen.
    assert words.entries[6:] == ["yonder", "zanzibar", "kiwi", "wombat", "quokka"]
    assert features.trained_words == 10 and encoder.settings["trained_words"] == 10
    table = features.word_embedding.weight
    assert torch.equal(table[:6], trained_before)  # the parent's rows unchanged
    assert torch.equal(table[words.index["zanzibar"]], added_before["zanzibar"])  # moved with its vector
    assert torch.equal(table[words.index["yonder"]], added_before["yonder"])
    wombat = torch.tensor([float(v) for v in lines[-1].split()[1:]])
    assert torch.allclose(table[words.index["wombat"]], wombat)  # a new word: its vector from the file
    assert not torch.allclose(table[words.index["kiwi"]], torch.zeros(16))  # not in the file: a fresh draw
    assert table.requires_grad and not features.added_word_embedding.weight.requires_grad
    assert torch.equal(features.added_word_embedding.weight[0], added_before["quokka"])
    # The grown tables are the encoder's registered ones: saved, counted by the optimizer, used.
    assert encoder.state_dict()["word_embedding.weight"].shape[0] == 10
    ids = encoder.featurize(new)["word_ids"][0].tolist()
    assert ids == [words.index[word] for word in ["zanzibar", "yonder", "kiwi", "visited", "wombat"]]


# ----------------------------------------------------------------------------- patterns

def test_the_parents_patterns_travel_to_the_child_and_a_resumed_run_keeps_its_own(parents, corpus, tmp_path,
                                                                                   bert_dir):
    from nerkit import Tagger, train
    from nerkit.predict.rules import PATTERNS_FILE, save_patterns

    parent = tmp_path / "parent"
    train(tiny_config(parent, data__train=corpus["old"], training__max_steps=3))
    save_patterns(parent, [{"label": "ORG", "pattern": "Acme Corp"}])
    child = tmp_path / "child"
    train(child_config("crf", parent, corpus, child, bert_dir, training__max_steps=3))
    assert (child / PATTERNS_FILE).read_text() == (parent / PATTERNS_FILE).read_text()
    assert Tagger.from_pretrained(child).rules is not None
    # `nerkit patterns add` on a run's model, then --resume: the next save keeps them.
    save_patterns(child, [{"label": "LOC", "pattern": "Lake Placid"}])
    saved = (child / PATTERNS_FILE).read_text()
    resumed = train(child_config("crf", parent, corpus, child, bert_dir, training__max_steps=6), resume=True)
    assert (child / PATTERNS_FILE).read_text() == saved
    # The grown model's optimizer state comes back onto the same parameters (a mismatch gave NaN).
    assert resumed.steps == 6 and all(math.isfinite(record["loss"]) for record in resumed.history)


# ----------------------------------------------------------------------------- replay

def test_each_epoch_replays_a_fresh_seeded_share_and_every_new_sentence():
    lengths = [5] * 100
    replay = [(range(40, 100), 0.25)]
    sampler = BudgetBatchSampler(lengths, token_budget=50, max_sentences=8, seed=3, replay=replay)
    epochs = [sorted(index for batch in sampler.batches(epoch) for index in batch) for epoch in range(3)]
    for indices in epochs:
        assert indices[:40] == list(range(40))  # the new data whole, once
        assert len(indices) == 40 + 15 and len(set(indices)) == len(indices)  # 25% of 60 replayed sentences
    assert epochs[0][40:] != epochs[1][40:]  # a fresh sample per epoch
    again = BudgetBatchSampler(lengths, token_budget=50, max_sentences=8, seed=3, replay=replay)
    assert sorted(i for batch in again.batches(1) for i in batch) == epochs[1]  # seeded: resumable


def test_a_replayed_sentence_allows_the_new_type_where_it_was_not_annotated(corpus, tmp_path):
    from nerkit.heads.crf import CRFHead

    config = load_config(values={"data.replay": f"{corpus['old']}:0.5"})
    [replayed] = config.data.load_replay()
    assert config.data.replay[0].fraction == 0.5
    assert all(example.annotated_types == {"LOC", "ORG", "PER"} for example in replayed)
    head = CRFHead(8, ["LOC", "ORG", "PER", "MISC"], scheme="BIO")
    example = next(e for e, full in zip(replayed, synthetic_examples("train")) if any(s.type == "MISC" for s in full.spans))
    misc = next(s for s in next(f for f in synthetic_examples("train") if f.tokens == example.tokens).spans
                if s.type == "MISC")
    targets = head.targets([example], len(example))
    allowed = targets["allowed_tags"][0, misc.start]
    assert allowed[head.tag_index["B-MISC"]] and allowed[head.tag_index["O"]]  # MISC or O: unknown, not O
    assert not allowed[head.tag_index["B-PER"]]  # an annotated type outside its spans is known to be absent
    # The loss is the partial one: every path consistent with what is known, not the all-O reading.
    emissions = torch.randn(1, len(example), len(head.tags), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(1, len(example), dtype=torch.bool)
    partial = head.partial_negative_log_likelihood(emissions, targets["allowed_tags"], mask)
    full = head.negative_log_likelihood(emissions, targets["tag_ids"], mask)
    assert partial.item() < full.item() - 1e-3


def test_training_with_replay_samples_the_replay_data(corpus, tmp_path):
    from nerkit import train

    result = train(tiny_config(tmp_path / "run", data__train=corpus["new"],
                               data__replay=[{"path": corpus["old"], "fraction": 0.1}], training__epochs=1,
                               training__max_steps=None))
    with_replay = result.steps
    alone = train(tiny_config(tmp_path / "alone", data__train=corpus["new"], training__epochs=1,
                              training__max_steps=None)).steps
    old_sentences = len(synthetic_examples("train"))
    assert with_replay > alone  # a tenth of the old data joined the epoch
    assert with_replay < alone * (300 + old_sentences) / 300 / 2  # ... and not all of it


# ----------------------------------------------------------------------------- bad input

def cli(*arguments):
    from typer.testing import CliRunner

    from nerkit_cli.main import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def set_args(overrides):
    return [item for override in overrides for item in ("--set", override)]


@pytest.fixture(scope="module")
def bioes_parent(tmp_path_factory, corpus) -> Path:
    from nerkit import train

    output = tmp_path_factory.mktemp("parent-bioes")
    train(tiny_config(output, head__scheme="BIOES", data__train=corpus["old"], training__max_steps=3))
    return output


@pytest.mark.parametrize("case", ["damaged", "missing", "scheme", "hidden-size", "head", "unknown-replay-type",
                                  "fraction", "resume"])
def test_bad_warm_start_input_exits_2_with_a_message(case, parents, bioes_parent, corpus, tmp_path):
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(bioes_parent, parent)
    arguments, expected = {
        "damaged": ([], "is not a loadable nerkit model"),
        "missing": (["--init-from", tmp_path / "nowhere"], "no such model directory"),
        "scheme": (["--set", "head.scheme=BIO"], "head.scheme: the parent has 'BIOES', the configuration asks for 'BIO'"),
        "hidden-size": (["--set", "encoder.hidden_size=32"], "encoder.hidden_size: the parent has 16, the "
                                                               "configuration asks for 32"),
        "head": (["--head", "softmax"], "head.type: the parent has 'crf', the configuration asks for 'softmax'"),
        "unknown-replay-type": (["--set", f"data.replay={corpus['new']}:0.5"],
                                "annotates 'MISC' (first at"),
        "fraction": (["--set", f"data.replay={corpus['old']}:1.5"],
                     "data.replay: entry 0: field 'fraction': Input should be less than or equal to 1"),
        "resume": (["--resume", tmp_path / "run"], "give one of them, not both"),
    }[case]
    if case == "damaged":
        weights = parent / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-100])
    init = [] if case == "missing" else ["--init-from", parent]
    result = cli("train", *set_args(TINY_SET_ARGS + ["training.max_steps=2"]), "--train", corpus["new"], *init,
                 *arguments, "--output", tmp_path / "run", "--no-progress")
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()) and "Traceback" not in result.output
    if case == "unknown-replay-type":
        assert "the parent model" in result.output and "LOC, ORG, PER" in result.output
    assert not (tmp_path / "run" / "model.safetensors").exists()  # refused before anything is trained


def test_a_warm_start_inherits_the_parents_architecture_when_the_configuration_names_none(bioes_parent, corpus,
                                                                                           tmp_path):
    config = load_config(values={"training.init_from": str(bioes_parent), "data.train": corpus["new"]})
    assert config.head.settings()["scheme"] == "BIOES"
    assert {key: config.encoder.settings()[key.split(".")[1]] for key in TINY_ENCODER} == \
        {key: value for key, value in TINY_ENCODER.items()}
    with pytest.raises(NerkitError, match="encoder.type: the parent has 'bilstm', the configuration asks for "
                                          "'transformer'"):
        from nerkit.training import warm

        other = load_config(values={"training.init_from": str(bioes_parent), "encoder.type": "transformer",
                                    "encoder.model": "x"})
        warm.check_unchangeable(other, warm.load_parent(bioes_parent), bioes_parent)

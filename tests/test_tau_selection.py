"""A post-hoc tau selection that knows its noise (issue 29, item 1): tau moves from 0 only when a
cross-fitted gain's paired bootstrap interval excludes 0 and micro F1 falls by at most a bound;
the search never steps across a collapse; the choice is recorded with the model, in run.json and
in `nerkit compare`'s output.

Most tests decode fake score tensors: each dev sentence holds one candidate span whose scores
over (O, A, B) are drawn at random, decoded as the softmax tagger decodes, argmax of
``scores - tau * log prior``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import LEARNS_QUICKLY, tiny_config
from nerkit import Tagger, load_config, train
from nerkit.compare import compare, write_comparison
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError, NerkitError
from nerkit.evaluation import select_posthoc_tau
from nerkit.metrics.bootstrap import UnitCounts, f1_from_counts
from nerkit.metrics.tau_choice import TAU_GRID, choose_tau
from nerkit.modeldir import MANIFEST_FILE

QUICK = {key.replace(".", "__"): value for key, value in LEARNS_QUICKLY.items()}
TYPES = ["A", "B"]  # B is the rare type
LOG_PRIOR = np.log(np.array([0.80, 0.18, 0.02]))  # over (O, A, B)


def fake_model(sentences: int, *, rare_bias: float, seed: int = 0):
    """``counts_at(tau)`` of a fake tagger: sentence i holds one candidate span whose gold label is
    O, A or B (70 %, 25 %, 5 %); its scores are 3 for the gold label plus unit Gaussian noise, and
    ``rare_bias`` is subtracted from B's score (the model under-predicts the rare type)."""
    rng = np.random.default_rng(seed)
    gold = rng.choice(3, size=sentences, p=[0.70, 0.25, 0.05])  # shape: (sentences,)
    scores = rng.normal(size=(sentences, 3)) + 3.0 * np.eye(3)[gold]  # shape: (sentences, labels)
    scores[:, 2] -= rare_bias

    def counts_at(tau: float) -> UnitCounts:
        predicted = (scores - tau * LOG_PRIOR).argmax(-1)  # shape: (sentences,)
        return outcome_counts(gold, predicted)

    return counts_at


def outcome_counts(gold: np.ndarray, predicted: np.ndarray) -> UnitCounts:
    """Per-sentence counts of one candidate span: label 0 is O, 1 and 2 the types A and B."""
    tp, fp, fn = (np.zeros((len(gold), len(TYPES)), dtype=np.int64) for _ in range(3))
    rows = np.arange(len(gold))
    hit = (gold == predicted) & (gold > 0)
    tp[rows[hit], gold[hit] - 1] = 1
    wrong = gold != predicted
    guessed, missed = wrong & (predicted > 0), wrong & (gold > 0)
    fp[rows[guessed], predicted[guessed] - 1] = 1
    fn[rows[missed], gold[missed] - 1] = 1
    return UnitCounts(TYPES, tp, fp, fn)


def redrawn_for_each_tau(gold: np.ndarray, rng: np.random.Generator, right: Callable[[float], float]):
    """``counts_at(tau)`` of a fake tagger that decodes a fresh draw at every tau: each label is
    gold with probability ``right(tau)``, else drawn uniformly (the same draw when a tau returns)."""
    draws = {}

    def counts_at(tau: float) -> UnitCounts:
        if tau not in draws:
            draws[tau] = np.where(rng.random(len(gold)) < right(tau), gold, rng.choice(3, size=len(gold)))
        return outcome_counts(gold, draws[tau])

    return counts_at


def dev_f1(counts: UnitCounts, metric: str) -> float:
    return float(f1_from_counts(counts.tp.sum(0), counts.fp.sum(0), counts.fn.sum(0))[metric])


def test_a_gain_that_is_noise_keeps_tau_zero():
    # Every tau decodes a fresh draw from the same distribution: the curve's wiggles are noise only.
    rng = np.random.default_rng(4)
    gold = rng.choice(3, size=400, p=[0.6, 0.3, 0.1])
    choice = choose_tau(redrawn_for_each_tau(gold, rng, lambda tau: 0.8), "macro", seed=1)
    # The winner's curse is there to be taken: the old rule (argmax over the grid) would have moved.
    assert max(choice.scores.values()) > choice.scores[0.0]
    assert choice.tau == 0.0 and choice.reason.startswith("kept tau 0")
    assert choice.gain is not None and choice.gain.low <= 0.0


def test_a_tau_that_wins_one_half_by_chance_and_loses_the_other_is_named_a_loss():
    # Every tau but 0 is a worse model (74 % of its labels right against 80 %), each with its own
    # noise: one may win a half of dev by chance, and then loses on the other half. The reason
    # says so instead of calling a significant loss "within dev's noise".
    rng = np.random.default_rng(8)
    gold = rng.choice(3, size=1000, p=[0.6, 0.3, 0.1])
    choice = choose_tau(redrawn_for_each_tau(gold, rng, lambda tau: 0.8 if tau == 0.0 else 0.74), "macro", seed=1)
    assert choice.tau == 0.0 and choice.gain.high < 0.0
    assert "is a loss" in choice.reason and "within dev's noise" not in choice.reason


def test_identical_models_have_a_zero_gain_and_keep_tau_zero():
    # A model whose decisions do not depend on tau at all: nothing can be confirmed.
    same = fake_model(300, rare_bias=0.0)
    choice = choose_tau(lambda tau: same(0.0), "macro")
    assert choice.tau == 0.0 and "neither half" in choice.reason
    assert choice.record()["confirmed_gain"] == {"estimate": 0.0, "low": 0.0, "high": 0.0}


def test_a_real_tail_gain_moves_tau_and_its_interval_excludes_zero():
    counts_at = fake_model(3000, rare_bias=2.5)
    choice = choose_tau(counts_at, "macro", seed=0)
    assert choice.tau > 0.0 and choice.reason.startswith("moved")
    assert choice.gain.low > 0.0 and choice.gain.estimate >= choice.gain.low
    assert all(tau > 0 for tau in choice.half_taus)
    assert choice.micro_change >= -0.01
    # The rare type's F1 rises with the chosen tau on dev.
    at_zero, chosen = counts_at(0.0), counts_at(choice.tau)
    assert dev_f1(chosen, "macro") > dev_f1(at_zero, "macro")
    # The search refined between the coarse points (finer steps than 0.25 were tried).
    assert any(tau not in TAU_GRID for tau in choice.scores)


def test_the_micro_bound_keeps_tau_zero_when_the_tail_gain_costs_micro_f1():
    # The rare type is recovered, but 60 % of the As are lost with it: macro up, micro down by far more than 1 point.
    rng = np.random.default_rng(5)
    gold = rng.choice(3, size=2000, p=[0.6, 0.3, 0.1])
    lost = (gold == 1) & (rng.random(2000) < 0.6)

    def counts_at(tau: float) -> UnitCounts:
        predicted = np.where(gold == 2, 0, gold) if tau <= 0 else np.where(lost, 0, gold)
        return outcome_counts(gold, predicted)

    assert dev_f1(counts_at(1.0), "macro") > dev_f1(counts_at(0.0), "macro") + 0.2
    assert dev_f1(counts_at(1.0), "micro") < dev_f1(counts_at(0.0), "micro") - 0.05
    kept = choose_tau(counts_at, "macro")
    assert kept.tau == 0.0 and "micro bound" in kept.reason
    assert choose_tau(counts_at, "macro", micro_bound=1.0).tau > 0.0  # without the bound it would move


def test_the_search_never_steps_across_a_collapse():
    # A CRF-like curve: a real gain up to tau 0.6, a collapse from 0.8 (the rare tag everywhere),
    # and a trap beyond it (perfect decisions from tau 1.5) that only a search stepping across finds.
    counts_at = fake_model(3000, rare_bias=2.5)
    sentences = len(counts_at(0.0).tp)
    gold = np.argmax(np.c_[np.zeros(sentences), counts_at(0.0).tp + counts_at(0.0).fn], axis=1)
    asked = []

    def curve(tau: float) -> UnitCounts:
        asked.append(tau)
        if tau >= 1.5:
            return outcome_counts(gold, gold)
        if tau >= 0.8:
            return outcome_counts(gold, np.full(sentences, 2))
        return counts_at(min(tau, 0.6))

    choice = choose_tau(curve, "macro")
    assert choice.collapsed and min(c for c in choice.collapsed if c > 0) <= 1.0
    assert 0.0 < choice.tau < 0.8
    assert max(asked) <= 1.0  # the walk stopped at the first collapse it met (tau 1 on the coarse grid)
    fence = min(c for c in choice.collapsed if c > 0)
    assert all(tau < fence for tau in choice.scores if tau > 0 and tau not in choice.collapsed)
    assert choice.record()["collapsed_at"] == choice.collapsed


def test_a_trained_crf_never_takes_a_collapsed_tau(trained_models):
    tagger = Tagger.from_pretrained(trained_models["crf"])
    dev = synthetic_examples("dev")
    choice = select_posthoc_tau(tagger, dev, "macro", (-50.0, 0.0, 0.5, 50.0, 100.0), refinements=2)
    assert 50.0 in choice.collapsed and 100.0 not in choice.scores  # never decoded beyond the collapse
    assert choice.micro[50.0] < choice.micro[0.0] / 2
    assert choice.tau not in choice.collapsed and abs(choice.tau) < 50.0


def test_dev_is_halved_by_document_when_documents_exist(trained_models):
    tagger = Tagger.from_pretrained(trained_models["softmax"])
    dev = [dataclasses.replace(example, document=f"doc-{index // 10}")
           for index, example in enumerate(synthetic_examples("dev")[:100])]
    choice = select_posthoc_tau(tagger, dev, "macro", (0.0, 1.0), refinements=0, resamples=50)
    assert choice.settings["unit"] == "document" and choice.settings["units"] == 10
    by_sentence = select_posthoc_tau(tagger, synthetic_examples("dev")[:100], "macro", (0.0, 1.0), refinements=0,
                                     resamples=50)
    assert by_sentence.settings["unit"] == "sentence" and by_sentence.settings["units"] == 100


def test_a_bad_micro_bound_is_refused(trained_models):
    tagger = Tagger.from_pretrained(trained_models["softmax"])
    with pytest.raises(NerkitError, match="micro_bound"):
        select_posthoc_tau(tagger, synthetic_examples("dev")[:10], "macro", micro_bound=5.0)
    with pytest.raises(ConfigError, match="select_micro_bound"):
        load_config(values={"training.select_micro_bound": -1})


def test_the_record_is_saved_with_the_head_in_run_json_and_reloaded(tmp_path):
    config = tiny_config(tmp_path, head__type="crf", data__dev="synthetic:dev", training__select_for="macro", **QUICK)
    result = train(config)
    record = json.loads(json.dumps(result.posthoc.record()))
    assert set(record) >= {"tau", "confirmed_gain", "reason", "half_taus", "micro_bound", "collapsed_at"}
    assert record["micro_bound"] == 0.01 and record["tau"] == result.posthoc.tau
    saved_head = json.loads((tmp_path / "config.json").read_text())["head"]
    assert saved_head["posthoc_selection"] == record and saved_head["posthoc_tau"] == record["tau"]
    assert json.loads((tmp_path / "run.json").read_text())["posthoc_selection"] == record
    reloaded = Tagger.from_pretrained(tmp_path)
    assert reloaded.head.posthoc_selection == record
    # A tau set by hand afterwards is no longer the selection's: its record goes.
    reloaded.configure_decoding(posthoc_tau=0.5)
    assert reloaded.head.config()["posthoc_selection"] is None


def test_a_model_saved_before_records_loads_as_before(tmp_path):
    Tagger.build(tiny_config(tmp_path, head__type="softmax", head__posthoc_tau=0.75),
                 synthetic_examples("train")[:64]).save_pretrained(tmp_path)
    description = json.loads((tmp_path / "config.json").read_text())
    assert description["head"].pop("posthoc_selection") is None  # a tau set by hand has no record
    (tmp_path / "config.json").write_text(json.dumps(description))  # as nerkit wrote it before issue 29
    (tmp_path / MANIFEST_FILE).unlink()  # the manifest's digest was of the file as written
    loaded = Tagger.from_pretrained(tmp_path)
    assert loaded.head.posthoc_tau == 0.75 and loaded.head.posthoc_selection is None


def test_compare_shows_each_runs_tau_gain_and_reason(tmp_path):
    config = tiny_config(tmp_path, head__type="softmax", data__dev="synthetic:dev", data__test="synthetic:test",
                         training__select_for="macro", training__max_steps=3)
    comparison = compare(config, ["ce"], seeds=[1], bootstrap=20)
    run = comparison.runs[0]
    assert run.posthoc_selection is not None and run.posthoc_selection["tau"] == run.posthoc_tau
    text = comparison.markdown()
    assert "Post-hoc tau chosen on dev for macro F1" in text
    line = next(line for line in text.splitlines() if line.startswith("- `ce` seed 1:"))
    assert f"tau {run.posthoc_tau:g}" in line and run.posthoc_selection["reason"] in line and "gain" in line
    write_comparison(comparison, tmp_path / "report")
    saved = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert saved["runs"][0]["posthoc_selection"] == json.loads(json.dumps(run.posthoc_selection))


def test_train_help_says_what_select_for_will_and_will_not_do():
    from nerkit_cli.main import app

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    text = " ".join(result.output.split())
    assert "keeps tau 0" in text and "will not find a gain smaller than dev's noise" in text



def test_the_record_and_the_default_bound_leave_the_configuration_hash_as_before():
    # compare --resume matches finished runs by this hash: runs trained before issue 29 must still match.
    import hashlib

    from nerkit.training.rundir import config_hash

    plain = load_config(values={"head.type": "crf", "training.select_for": "macro"})
    old_tree = plain.to_dict()  # the tree as nerkit resolved it before issue 29, hashed as it hashed it then
    del old_tree["head"]["posthoc_selection"], old_tree["training"]["select_micro_bound"], old_tree["output"]
    del old_tree["training"]["progress"], old_tree["training"]["init_from"], old_tree["data"]["replay"]
    del old_tree["encoder"]["trained_words"]  # the other fields this round added, at their defaults
    assert config_hash(plain) == hashlib.sha256(json.dumps(old_tree, sort_keys=True).encode("utf-8")).hexdigest()
    recorded = load_config(values={"head.type": "crf", "training.select_for": "macro",
                                   "head.posthoc_selection": {"tau": 0.5}})
    assert config_hash(recorded) == config_hash(plain)
    bounded = load_config(values={"head.type": "crf", "training.select_for": "macro",
                                  "training.select_micro_bound": 2.0})
    assert config_hash(bounded) != config_hash(plain)
    # The default configuration's hash as commit 014689e (before this round's fields) computed it.
    assert config_hash(load_config()) == "0e00d4921c3ff958e4e43ef3c00114d508126dc70aee27ea6409c04404ffc446"

"""Decision rules for the tail (issue 14, item 3): the post-hoc tau of the softmax tagger and the
CRF, chosen after training on dev for the F1 the user names (training.select_for /
--select-for), saved with the model, shown by `nerkit compare`, and never tuned on test.
How the choice guards against dev's noise and the CRF's collapse (issue 29): test_tau_selection.py."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import LEARNS_QUICKLY, TINY_SET_ARGS, tiny_config
from nerkit import Tagger, load_config, train
from nerkit.compare import compare, write_comparison
from nerkit.data import sources
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError
from nerkit.evaluation import TAU_GRID, evaluate, select_posthoc_tau
from nerkit.training import handlers

QUICK = {key.replace(".", "__"): value for key, value in LEARNS_QUICKLY.items()}


def test_the_grid_runs_from_minus_two_to_two_in_quarters():
    assert TAU_GRID[0] == -2.0 and TAU_GRID[-1] == 2.0 and 0.0 in TAU_GRID
    assert all(b - a == 0.25 for a, b in zip(TAU_GRID, TAU_GRID[1:]))


def test_crf_emissions_are_shifted_by_tau_log_prior_before_viterbi():
    tagger = Tagger.build(tiny_config("unused", head__type="crf"), synthetic_examples("train")[:64]).eval()
    batch = tagger.encode(synthetic_examples("dev")[:4])
    with torch.no_grad():
        emissions = tagger.head.emissions(tagger.encoder(batch))
        plain = tagger.head.adjusted_emissions(emissions)
        tagger.configure_decoding(posthoc_tau=-0.75)
        adjusted = tagger.head.adjusted_emissions(emissions)
    counts = torch.tensor(tagger.label_counts, dtype=torch.float64) + 1.0
    shift = 0.75 * torch.log(counts / counts.sum()).float()
    torch.testing.assert_close(plain, emissions)
    torch.testing.assert_close(adjusted - plain, shift.expand_as(plain), rtol=0, atol=1e-5)
    # A large tau makes the rarest tags win everywhere Viterbi allows it: decisions do change.
    tagger.configure_decoding(posthoc_tau=0.0)
    before = tagger.decode(batch)
    tagger.configure_decoding(posthoc_tau=50.0)
    assert tagger.decode(batch) != before
    with pytest.raises(ConfigError, match="finite"):
        tagger.configure_decoding(posthoc_tau=float("nan"))


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_posthoc_tau_is_saved_and_reloaded(tmp_path, head):
    tagger = Tagger.build(tiny_config(tmp_path, head__type=head, head__posthoc_tau=-1.25),
                          synthetic_examples("train")[:64])
    tagger.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["head"]["posthoc_tau"] == -1.25
    assert Tagger.from_pretrained(tmp_path).head.posthoc_tau == -1.25


@pytest.mark.parametrize("metric", ["micro", "macro"])
def test_selection_scores_the_named_metric_and_moves_only_with_a_confirmed_gain(trained_models, metric):
    # Issue 29 changed this test: the best dev tau is no longer taken as it is (it must survive
    # cross-fitting), and the grid is refined between the best tau and its neighbours.
    tagger = Tagger.from_pretrained(trained_models["softmax"])
    dev = synthetic_examples("dev")
    grid = (-1.0, 0.0, 0.5, 1.5)
    choice = select_posthoc_tau(tagger, dev, metric, grid)
    assert set(grid) - set(choice.collapsed) <= set(choice.scores) and choice.metric == metric
    assert tagger.head.posthoc_tau == choice.tau  # left configured
    assert tagger.head.posthoc_selection == choice.record()
    if choice.tau == 0.0:
        assert choice.reason.startswith("kept tau 0")
    else:
        assert choice.gain.low > 0 and choice.reason.startswith("moved")
    for tau in choice.scores:  # the scores are the named metric's, tau by tau
        tagger.configure_decoding(posthoc_tau=tau)
        assert choice.scores[tau] == pytest.approx(getattr(evaluate(tagger, dev), metric).f1, rel=1e-12)
    assert select_posthoc_tau(tagger, dev, metric, grid, refinements=0).scores.keys() <= set(grid)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_selection_runs_the_encoder_once_and_scores_as_full_evaluations_do(trained_models, head, monkeypatch):
    tagger = Tagger.from_pretrained(trained_models[head])
    dev = synthetic_examples("dev")
    forward, calls = tagger.encoder.forward, []
    monkeypatch.setattr(tagger.encoder, "forward", lambda batch: calls.append(1) or forward(batch))
    evaluate(tagger, dev)
    batches, calls[:] = len(calls), []
    grid = (-1.0, 0.0, 1.0, 3.0)
    choice = select_posthoc_tau(tagger, dev, "macro", grid)
    assert len(calls) == batches > 1  # one evaluation's worth, not one per tau
    assert tagger.score_runtime is None  # the replay is gone afterwards
    assert len(set(choice.scores.values())) > 1  # the taus do decide differently
    for tau in choice.scores:
        tagger.configure_decoding(posthoc_tau=tau)
        assert choice.scores[tau] == pytest.approx(evaluate(tagger, dev).macro.f1, rel=1e-12)


def test_selection_replays_a_score_runtime_and_puts_it_back_even_on_error(trained_models):
    tagger = Tagger.from_pretrained(trained_models["crf"])
    dev, calls = synthetic_examples("dev")[:40], []

    def runtime(batch):  # stands in for the ONNX runtime of `--runtime onnx`
        calls.append(1)
        return tagger.model_scores(batch)

    tagger.score_runtime = runtime
    select_posthoc_tau(tagger, dev, "micro", (0.0, 0.5, 1.0))
    assert tagger.score_runtime is runtime and len(calls) == 1
    with pytest.raises(ConfigError, match="finite"):
        select_posthoc_tau(tagger, dev, "micro", (0.0, float("inf")))
    assert tagger.score_runtime is runtime


def test_ties_go_to_the_smallest_adjustment(trained_models):
    tagger = Tagger.from_pretrained(trained_models["crf"])
    choice = select_posthoc_tau(tagger, synthetic_examples("dev")[:40], "macro", (-1e-9, 1e-9, 0.0))
    assert len(set(choice.scores.values())) == 1 and choice.tau == 0.0


@pytest.fixture
def guarded_selection(monkeypatch):
    """Record what the selection is given, and make any read of the test split while it runs fail."""
    state = {"selecting": False, "given": []}
    real_select = handlers.select_posthoc_tau

    def select(tagger, examples, metric, *args, **kwargs):
        state["given"].append([example.tokens for example in examples])
        state["selecting"] = True
        try:
            return real_select(tagger, examples, metric, *args, **kwargs)
        finally:
            state["selecting"] = False

    real_load = sources.load_split

    def load_split(source, *args, **kwargs):
        if state["selecting"] and source.endswith(":test"):
            raise AssertionError(f"the test data ({source}) was read while the post-hoc tau was being chosen")
        return real_load(source, *args, **kwargs)

    monkeypatch.setattr(handlers, "select_posthoc_tau", select)
    monkeypatch.setattr(sources, "load_split", load_split)
    return state


def test_training_chooses_tau_on_dev_saves_it_and_never_reads_test(tmp_path, guarded_selection):
    config = tiny_config(tmp_path, head__type="crf", data__dev="synthetic:dev", data__test="synthetic:test",
                         training__select_for="macro", **QUICK)
    result = train(config)
    dev_tokens = [example.tokens for example in synthetic_examples("dev")]
    assert guarded_selection["given"] == [dev_tokens]
    choice = result.posthoc
    assert choice is not None and choice.metric == "macro" and choice.tau in choice.scores
    # Issue 29: the best dev tau is kept only when its cross-fitted gain is confirmed (test_tau_selection.py).
    assert choice.tau == 0.0 or choice.gain.low > 0
    saved = Tagger.from_pretrained(tmp_path)
    assert saved.head.posthoc_tau == choice.tau
    assert json.loads((tmp_path / "config.json").read_text())["head"]["posthoc_tau"] == choice.tau
    # The final test, after the selection, scores the saved model with its tau.
    assert result.test_report is not None
    assert result.test_report.macro.f1 == evaluate(saved, synthetic_examples("test")).macro.f1


def test_selection_needs_dev_data_and_a_head_with_a_tau():
    with pytest.raises(ConfigError, match="data.dev"):
        load_config(values={"training.select_for": "macro", "data.dev": None})
    with pytest.raises(ConfigError, match="span head"):
        load_config(values={"training.select_for": "micro", "head.type": "span"})
    with pytest.raises(ConfigError, match="select_for"):
        load_config(values={"training.select_for": "weighted"})
    assert load_config(values={"training.select_for": "micro", "head.type": "softmax"}).training.select_for == "micro"


def test_train_command_reports_the_chosen_tau(tmp_path):
    from nerkit_cli.main import app

    arguments = ["train", *[item for a in TINY_SET_ARGS for item in ("--set", a)], "--dev", "synthetic:dev",
                 "--select-for", "micro", "--output", str(tmp_path / "model"), "--no-progress"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "chosen on dev for micro F1" in result.stdout
    wrong = CliRunner().invoke(app, [*arguments[:-3], "--select-for", "both", "--output", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "select_for" in wrong.output


def test_compare_shows_each_runs_tau_and_paired_differences(tmp_path, guarded_selection):
    config = load_config(values={"encoder.hidden_size": 12, "encoder.word_dim": 12, "encoder.char_filters": 8,
                                 "encoder.char_dim": 8, "training.progress": False, "head.type": "softmax",
                                 "training.max_steps": 3, "data.dev": "synthetic:dev", "data.test": "synthetic:test",
                                 "training.select_for": "macro", "output": str(tmp_path)})
    comparison = compare(config, ["ce", "focal:gamma=1"], seeds=[1, 2], bootstrap=50)
    assert len(guarded_selection["given"]) == 4  # one selection per run, each on dev
    assert all(len(given) == len(synthetic_examples("dev")) for given in guarded_selection["given"])
    assert all(run.posthoc_tau == run.posthoc_selection["tau"] for run in comparison.runs)
    header, rows = comparison.rows()
    assert header[:2] == ["loss", "tau"]
    assert rows[0][1] == ", ".join(f"{run.posthoc_tau:g}" for run in comparison.runs if run.label == "ce")
    text = comparison.markdown()
    assert "Paired differences to `ce` on test" in text and "50 bootstrap resamples of the 250 sentences" in text
    differences = comparison.differences["test"]["focal:gamma=1"]
    assert set(differences) == {"micro", "macro", "LOC", "MISC", "ORG", "PER"}
    assert all(d.low <= d.estimate <= d.high or d.low == d.high for d in differences.values())
    written = {path.name for path in write_comparison(comparison, tmp_path / "report")}
    assert {"comparison.json", "comparison.md"} <= written
    assert ("comparison-test.png" in written) == (importlib.util.find_spec("matplotlib") is not None)
    saved = json.loads((tmp_path / "report" / "comparison.json").read_text())
    assert saved["baseline"] == "ce" and saved["select_for"] == "macro"
    assert set(saved["differences"]["dev"]["focal:gamma=1"]["micro"]) == {"estimate", "low", "high", "excludes_zero"}
    assert saved["runs"][0]["test"]["micro"]["f1_ci"] == list(comparison.runs[0].test["micro"]["f1_ci"])
    assert saved["intervals"]["test"]["ce"]["macro"]["low"] <= saved["intervals"]["test"]["ce"]["macro"]["high"]

"""The loss registry wired through the product: every loss trains the heads it fits,
label counts travel with the model, post-hoc adjustment, the CRF's marginal losses,
and `nerkit compare`."""

from __future__ import annotations

import json
import math

import pytest
import torch

from nerkit import Tagger, load_config, train
from nerkit.compare import compare, parse_loss, write_comparison
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError
from nerkit.heads import HEADS
from nerkit.losses import available_losses

TINY = {"encoder.hidden_size": 12, "encoder.word_dim": 12, "encoder.char_filters": 8, "encoder.char_dim": 8,
        "training.progress": False, "data.dev": None}


def _fitting(head: str) -> list[str]:
    return sorted({spec.name for kind in HEADS.get(head).metadata["losses"] for spec in available_losses(kind)})


@pytest.mark.parametrize("head,loss", [(h, n) for h in ("softmax", "crf", "span") for n in _fitting(h)])
def test_every_fitting_loss_trains_without_nan(tmp_path, head, loss):
    config = load_config(values={**TINY, "head.type": head, "loss.name": loss, "training.max_steps": 4,
                                 "output": str(tmp_path)})
    tagger = Tagger.build(config, synthetic_examples("train", nested=head == "span")[:64])
    batch = tagger.collate(synthetic_examples("train")[:8])
    value = tagger(batch)
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(p.grad).all() for p in tagger.parameters() if p.grad is not None)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tagger.parameters())


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_a_loss_that_does_not_fit_is_refused_with_the_ones_that_do(head):
    config = load_config(values={**TINY, "head.type": head, "loss.name": "zlpr"})
    with pytest.raises(ConfigError) as error:
        Tagger.build(config, synthetic_examples("train")[:32])
    assert "zlpr" in str(error.value) and "focal" in str(error.value)
    wrapped = load_config(values={**TINY, "head.type": head, "loss.name": "flooding"}, overrides=["loss.inner=zlpr"])
    with pytest.raises(ConfigError, match="zlpr"):
        Tagger.build(wrapped, synthetic_examples("train")[:32])


def test_hyper_parameters_reach_the_loss_and_are_validated():
    config = load_config(values={**TINY, "head.type": "softmax", "loss.name": "focal"}, overrides=["loss.gamma=3"])
    tagger = Tagger.build(config, synthetic_examples("train")[:32])
    assert tagger.head.loss_function.gamma == 3
    with pytest.raises(ConfigError, match="gamma"):
        Tagger.build(load_config(values={**TINY, "loss.name": "focal", "head.type": "softmax"},
                                 overrides=["loss.gamma=9"]), synthetic_examples("train")[:32])


def test_label_counts_are_saved_and_rebuild_the_same_weights(tmp_path):
    config = load_config(values={**TINY, "head.type": "softmax", "loss.name": "weighted-ce",
                                 "training.max_steps": 2, "output": str(tmp_path)})
    train(config)
    saved = json.loads((tmp_path / "config.json").read_text())
    examples = synthetic_examples("train")
    outside = sum(1 for e in examples for i in range(len(e)) if not any(s.start <= i < s.end for s in e.spans))
    assert saved["label_names"][0] == "O" and saved["label_counts"][0] == outside
    assert sum(saved["label_counts"]) == sum(len(e) for e in examples)
    loaded = Tagger.from_pretrained(tmp_path)
    rebuilt = Tagger.build(config, examples)
    assert loaded.label_counts == rebuilt.label_counts
    weights = [b for n, b in loaded.head.loss_function.named_buffers()]
    assert weights and all(torch.equal(a, b) for a, (_, b) in zip(weights, rebuilt.head.loss_function.named_buffers()))


def test_posthoc_tau_shifts_decisions_by_the_log_prior():
    config = load_config(values={**TINY, "head.type": "softmax"})
    tagger = Tagger.build(config, synthetic_examples("train")[:64]).eval()
    batch = tagger.collate(synthetic_examples("dev")[:4])
    with torch.no_grad():
        vectors = tagger.encoder(batch)
        plain = tagger.head.decision_logits(vectors)
        tagger.head.posthoc_tau = 1.5
        adjusted = tagger.head.decision_logits(vectors)
    counts = torch.tensor(tagger.label_counts, dtype=torch.float64) + 1.0
    expected_shift = -1.5 * torch.log(counts / counts.sum()).float()
    torch.testing.assert_close(adjusted - plain, expected_shift.expand_as(plain), rtol=0, atol=1e-5)


def test_crf_token_losses_use_normalised_marginals():
    config = load_config(values={**TINY, "head.type": "crf", "loss.name": "focal"}, overrides=["loss.gamma=0"])
    tagger = Tagger.build(config, synthetic_examples("train")[:64])
    batch = tagger.collate(synthetic_examples("train")[:6])
    vectors = tagger.encoder(batch)
    emissions = tagger.head.emissions(vectors)
    marginals = tagger.head.marginals(emissions, batch["mask"])
    torch.testing.assert_close(marginals.sum(-1)[batch["mask"]], torch.ones(int(batch["mask"].sum())))
    # focal with gamma 0 on marginals is the mean negative log-marginal of the gold tags.
    gold = marginals.gather(-1, batch["tag_ids"].clamp(min=0).unsqueeze(-1)).squeeze(-1)[batch["mask"]]
    torch.testing.assert_close(tagger.head.loss(vectors, batch), -gold.log().mean(), rtol=1e-5, atol=1e-6)


def test_parse_loss_reads_settings():
    assert parse_loss("focal:gamma=1:alpha=null") == ("focal", {"gamma": 1, "alpha": None})
    with pytest.raises(ConfigError):
        parse_loss(":gamma=1")


def test_compare_trains_each_loss_and_writes_table_json_and_plot(tmp_path):
    config = load_config(values={**TINY, "head.type": "softmax", "training.max_steps": 3,
                                 "data.dev": "synthetic:dev", "data.test": "synthetic:test", "output": str(tmp_path)})
    comparison = compare(config, ["ce", "focal:gamma=1"], seeds=[1, 2])
    assert [r.label for r in comparison.runs] == ["ce", "ce", "focal:gamma=1", "focal:gamma=1"]
    assert (tmp_path / "focal_gamma-1" / "seed-2" / "model.safetensors").is_file()
    header, rows = comparison.rows()
    assert header[:3] == ["loss", "dev micro", "dev macro"] and "test micro" in header
    frequency = comparison.type_frequency
    assert list(frequency.values()) == sorted(frequency.values(), reverse=True)
    mean, spread, count = comparison.cell("ce", "test", "micro")
    runs = [100 * r.test["micro"]["f1"] for r in comparison.runs if r.label == "ce"]
    assert count == 2 and math.isclose(mean, sum(runs) / 2)
    written = write_comparison(comparison, tmp_path / "report")
    names = {p.name for p in written}
    assert {"comparison.json", "comparison.md"} <= names
    assert json.loads((tmp_path / "report" / "comparison.json").read_text())["runs"][0]["loss"] == "ce"


def test_gradient_accumulation_takes_one_step_per_group_of_micro_batches(tmp_path):
    config = load_config(values={**TINY, "training.max_steps": 3, "training.gradient_accumulation": 4,
                                 "training.max_sentences": 8, "output": str(tmp_path)})
    result = train(config)
    state = json.loads((tmp_path / "checkpoint" / "trainer_state.json").read_text())
    assert result.steps == 3 and state["step"] == 3
    history = state["handlers"]["history"]["records"]
    assert history[0]["step"] == 3 and history[0]["batches"] == 12  # 3 steps x 4 micro-batches
    assert result.history[0]["words_per_second"] > 0


@pytest.mark.parametrize("loss,inner,cosine", [("flooding", "ce", False), ("flooding", "am-softmax", True),
                                               ("am-softmax", None, True), ("ce", None, False)])
def test_only_margin_losses_turn_the_softmax_head_into_a_cosine_classifier(loss, inner, cosine):
    overrides = [f"loss.inner={inner}"] if inner else []
    config = load_config(values={**TINY, "head.type": "softmax", "loss.name": loss}, overrides=overrides)
    tagger = Tagger.build(config, synthetic_examples("train")[:32])
    assert (type(tagger.head.projection).__name__ == "CosineClassifier") == cosine
    assert (getattr(tagger.head.projection, "bias", None) is not None) == (not cosine)

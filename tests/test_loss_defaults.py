"""Every registered loss works at its defaults (issue 14, item 1): on each built-in head that
takes it, trained on the bundled synthetic corpus exactly like the head's default loss (ce;
zlpr for the span head), it reaches at least 80% of that loss's dev entity F1.

Cheap settings keep the file to a couple of minutes on a busy 2-core machine: the tiny BiLSTM,
no dropout, one torch thread, the same 150 optimizer steps for every run (two epochs of the
1,200 training sentences in batches of at most 16) with AdamW at 0.03 decaying linearly to 0,
and batches featurised once per head. The loop is nerkit's training step (loss, gradient
clipping at training.max_grad_norm, AdamW) without the run directory, checkpoints and dev
evaluation of ``nerkit.train``, which would cost more than the training itself here.
"""

from __future__ import annotations

import random

import pytest
import torch

from conftest import tiny_config
from nerkit.data.batching import budget_batches
from nerkit.data.spans import Example
from nerkit.data.synthetic import synthetic_examples
from nerkit.evaluation import evaluate
from nerkit.heads import HEADS
from nerkit.losses import available_losses
from nerkit.predict import Tagger

STEPS = 150
LEARNING_RATE = 0.03
BAR = 0.8  # share of the default loss's dev F1 every other loss must reach
SETTINGS = {"encoder.dropout": 0.0, "encoder.word_dropout": 0.0}
HEAD_SETTINGS = {"span": {"head.head_size": 16}}  # the span head's default 64 channels dwarf the tiny encoder


def fitting_losses(head: str) -> list[str]:
    return sorted({spec.name for kind in HEADS.get(head).metadata["losses"] for spec in available_losses(kind)})


def default_loss(head: str) -> str:
    return HEADS.get(head).metadata["default_loss"]


def corpus(head: str, split: str) -> list[Example]:
    return synthetic_examples(split, nested=head == "span")  # the span head learns the nested corpus


_features: dict[str, list] = {}


def dev_f1(head: str, loss: str, train_examples: list[Example] | None = None, **loss_settings) -> float:
    """Dev micro F1 after STEPS steps of ``loss`` (its defaults, unless ``loss_settings``) on ``head``."""
    values = {**SETTINGS, **HEAD_SETTINGS.get(head, {}), "head.type": head, "loss.name": loss,
              **{f"loss.{key}": value for key, value in loss_settings.items()}}
    config = tiny_config("unused", **{key.replace(".", "__"): value for key, value in values.items()})
    train_examples = train_examples or corpus(head, "train")
    torch.manual_seed(13)
    tagger = Tagger.build(config, train_examples)
    examples = tagger.prepare(train_examples)
    key = f"{head}:{len(examples)}"  # the vocabulary and so the features depend on the data only
    if key not in _features:
        batches = budget_batches([len(e) for e in examples], token_budget=200, max_sentences=16, shuffle=True, seed=13)
        _features[key] = [([examples[i] for i in batch], tagger.encoder.featurize([examples[i] for i in batch]))
                          for batch in batches]
    batches = _features[key]
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / STEPS)
    tagger.train()
    for step in range(STEPS):
        batch_examples, features = batches[step % len(batches)]
        batch = {**features, **tagger.head.targets(batch_examples, features["mask"].shape[1])}
        value = tagger(batch)
        optimizer.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_norm_(tagger.parameters(), config.training.max_grad_norm)
        optimizer.step()
        schedule.step()
    return evaluate(tagger.eval(), corpus(head, "dev")).micro.f1


_references: dict[str, float] = {}


def reference_f1(head: str) -> float:
    if head not in _references:
        _references[head] = dev_f1(head, default_loss(head))
    return _references[head]


HEAD_NAMES = ("softmax", "crf", "span")
CASES = [(head, loss) for head in HEAD_NAMES for loss in fitting_losses(head) if loss != default_loss(head)]


def test_the_reference_losses_learn_something_worth_comparing_with():
    for head in HEAD_NAMES:
        assert reference_f1(head) > 0.5, f"{head} with {default_loss(head)}: dev F1 {reference_f1(head):.3f}"


@pytest.mark.parametrize("head,loss", CASES, ids=[f"{h}-{l}" for h, l in CASES])
def test_every_loss_at_its_defaults_reaches_most_of_the_default_loss(head, loss):
    reference = reference_f1(head)
    f1 = dev_f1(head, loss)
    print(f"{head} {loss}: dev F1 {f1:.3f}, {default_loss(head)} {reference:.3f} ({f1 / reference:.2f})")
    assert f1 >= BAR * reference, f"{loss} on {head}: dev F1 {f1:.3f} < {BAR} x {default_loss(head)}'s {reference:.3f}"


def long_tailed_train(keep: float = 0.2) -> list[Example]:
    """The synthetic training set with each sentence that holds an entity kept with probability
    ``keep`` (entity-free sentences always): ``O`` then covers about 90% of the words."""
    rng = random.Random(0)
    return [example for example in synthetic_examples("train") if not example.spans or rng.random() < keep]


def test_dice_learns_where_o_dominates_and_its_per_token_form_collapses():
    """The failure behind the new default (docs/losses.md 2.7): when ``O`` dominates, the paper's
    per-token Dice stops predicting entities at all; the set-level default keeps learning."""
    train = long_tailed_train()
    reference = dev_f1("softmax", "ce", train)
    set_level = dev_f1("softmax", "dice", train)
    per_token = dev_f1("softmax", "dice", train, granularity="token")
    print(f"long-tailed: ce {reference:.3f}, dice {set_level:.3f}, dice per token {per_token:.3f}")
    assert reference > 0.5
    assert per_token < 0.2 * reference
    assert set_level >= 0.5 * reference

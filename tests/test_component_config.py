"""Each component's settings have one source of truth: the encoder, head and loss report their
own (``config()``), and ``config.json`` saves exactly what they report, for every built-in
encoder x head and a few losses; every setting of the head's and the loss's registry entry is
there, and the saved sections rebuild an identical model. A change made after the model is built
(``configure_decoding``) is saved because the head reports it, and plug-ins that do not report
their settings are saved with those they were built with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
import torch
from torch import nn

from nerkit import Tagger, load_config
from nerkit.data.schemes import scheme_tags
from nerkit.data.synthetic import synthetic_examples
from nerkit.heads import HEADS, HeadContext, register_head
from nerkit.losses import LOSSES, loss_config, register_loss

from conftest import TINY_ENCODER
from test_model_roundtrip import HiddenLayerTagger

ENCODER_NAMES = ["bilstm", "transformer"]
# Each built-in head with losses of its kinds: plain, from label counts, with settings, wrapped.
HEADS_AND_LOSSES = [
    ("softmax", {"loss.name": "ce"}),
    ("softmax", {"loss.name": "weighted-ce", "loss.scheme": "effective_number", "loss.beta": 0.99}),
    ("softmax", {"loss.name": "focal", "loss.gamma": 1.5}),
    ("softmax", {"loss.name": "flooding", "loss.inner": "ce", "loss.b": 0.05}),
    ("crf", {"loss.name": "ce"}),
    ("crf", {"loss.name": "flooding", "loss.inner": "focal", "loss.b": 0.1}),
    ("span", {"loss.name": "zlpr"}),
    ("span", {"loss.name": "focal", "loss.gamma": 1.0}),
]
EXAMPLES = synthetic_examples("train")[:60]


def build(encoder: str, head: str, values: dict, *, bert_dir: Path | None = None) -> Tagger:
    settings = (dict(TINY_ENCODER) if encoder == "bilstm" else
                {"encoder.model": str(bert_dir), "encoder.max_window": 16})
    torch.manual_seed(0)
    return Tagger.build(load_config(values={"encoder.type": encoder, **settings, "head.type": head, **values}),
                        EXAMPLES)


def saved_config(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text(encoding="utf-8"))


def setting_names(registry, name: str) -> set[str]:
    return {setting.name for setting in registry.get(name).settings}


def tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, the unsaved ones too (the loss's class weights, the priors)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


@pytest.mark.parametrize("head, loss", HEADS_AND_LOSSES, ids=[f"{h}-{l['loss.name']}" for h, l in HEADS_AND_LOSSES])
@pytest.mark.parametrize("encoder", ENCODER_NAMES)
def test_config_json_saves_what_each_component_reports(tmp_path, bert_dir, encoder, head, loss):
    tagger = build(encoder, head, loss, bert_dir=bert_dir)
    tagger.save_pretrained(tmp_path)
    saved = saved_config(tmp_path)
    assert saved["encoder"] == tagger.encoder.config()
    assert saved["head"] == tagger.head.config()
    assert saved["loss"] == loss_config(tagger.loss_function)
    # Every setting of the registry entries, the defaults included: nothing is left to a default
    # that a later nerkit might change.
    assert set(saved["head"]) == {"type"} | setting_names(HEADS, head)
    assert set(saved["loss"]) == {"name"} | setting_names(LOSSES, loss["loss.name"])
    assert all(saved["loss"][key.removeprefix("loss.")] == value for key, value in loss.items() if key != "loss.inner")
    if loss["loss.name"] == "flooding":  # the wrapped loss as it reports itself, its settings with it
        inner = saved["loss"]["inner"]
        assert inner == loss_config(tagger.loss_function.inner) and inner["name"] == loss["loss.inner"]
        assert set(inner) == {"name"} | setting_names(LOSSES, loss["loss.inner"])
    # The saved sections rebuild the same model: the same settings reported, the same tensors.
    loaded = Tagger.from_pretrained(tmp_path)
    assert {**loaded.component_settings(), **loaded.config} == {key: saved[key] for key in (
        "encoder", "head", "loss", "document_context", "tokenizer", "data") if key in saved}
    expected, rebuilt = tensors(tagger), tensors(loaded)
    assert rebuilt.keys() == expected.keys()
    assert all(torch.equal(rebuilt[name], expected[name]) for name in expected)


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_a_decoding_change_is_saved_because_the_head_reports_it(tmp_path, head):
    """``posthoc_tau`` set after building lives on the head alone; the model holds no copy of the
    head's settings that could say otherwise, and the directory saves the head's report."""
    tagger = build("bilstm", head, {})
    tagger.configure_decoding(posthoc_tau=0.75)
    assert "head" not in tagger.config and tagger.component_settings()["head"]["posthoc_tau"] == 0.75
    tagger.save_pretrained(tmp_path / "model")
    assert saved_config(tmp_path / "model")["head"]["posthoc_tau"] == 0.75
    reloaded = Tagger.from_pretrained(tmp_path / "model")
    assert reloaded.head.posthoc_tau == 0.75
    reloaded.configure_decoding(posthoc_tau=-0.5)  # and again, on a loaded model
    reloaded.save_pretrained(tmp_path / "model")
    assert saved_config(tmp_path / "model")["head"]["posthoc_tau"] == -0.5


def test_the_span_heads_decoding_limit_is_saved_as_it_reports_it(tmp_path):
    """What the head derives from the training data (``max_span_length``: the longest entity)
    and what ``configure_decoding`` changes are both its own report."""
    tagger = build("bilstm", "span", {})
    longest = max(span.end - span.start for example in EXAMPLES for span in example.spans)
    tagger.save_pretrained(tmp_path / "model")
    assert saved_config(tmp_path / "model")["head"]["max_span_length"] == longest
    tagger.configure_decoding(max_span_length=2)
    tagger.save_pretrained(tmp_path / "model")
    assert saved_config(tmp_path / "model")["head"]["max_span_length"] == 2
    assert Tagger.from_pretrained(tmp_path / "model").head.max_span_length == 2


BUILT_IN_HEAD_SETTINGS = {
    "softmax": {"scheme": "BIOES", "posthoc_tau": 0.5, "posthoc_selection": {"tau": 0.5, "reason": "moved"}},
    "crf": {"scheme": "BIOES", "posthoc_tau": -0.25, "posthoc_selection": {"tau": -0.25, "reason": "moved"}},
    "span": {"variant": "efficient", "head_size": 8, "max_span_length": 3, "flat_decoding": True, "max_cells": 4096},
}


@pytest.mark.parametrize("head", sorted(BUILT_IN_HEAD_SETTINGS))
def test_every_built_in_head_reports_every_setting_of_its_factory_itself(head):
    """Built by its factory alone (not through the registry, which records what it built a
    component with), a built-in head still reports each of its settings as it holds them."""
    assert {name for name in HEADS.names() if HEADS.get(name).factory.__module__.startswith("nerkit.")} \
        == set(BUILT_IN_HEAD_SETTINGS)
    settings = BUILT_IN_HEAD_SETTINGS[head]
    assert set(settings) == setting_names(HEADS, head)  # every setting, none at its default
    spec = HEADS.get(head)
    entity_types = ["LOC", "PER"]
    labels = entity_types if spec.metadata["labels"] == "types" else scheme_tags(entity_types, settings["scheme"])
    context = HeadContext(input_size=8, entity_types=entity_types, loss=LOSSES.get(spec.metadata["default_loss"]).factory(),
                          label_names=labels, label_counts=[1] * len(labels))
    built = spec.factory(context, **settings)
    assert not hasattr(built, "built_with")
    assert built.config() == {"type": head, **settings}


# ----------------------------------------------------------------------------- plug-ins


@register_head("test-config-two-layer", losses=("token",), default_loss="ce", labels="tags")
def two_layer_tagger(context: HeadContext, *, scheme: Literal["BIO", "BIOES"] = "BIO",
                     hidden: int = 4) -> HiddenLayerTagger:
    """A plug-in tagging head that reports only what ``TaggingHead`` knows (its scheme), not its
    own setting ``hidden``."""
    return HiddenLayerTagger(context.input_size, context.entity_types, scheme=scheme, hidden=hidden,
                             loss=context.loss)


class PlainScaledCE(nn.Module):
    """A plug-in loss with no nerkit base class, hence no ``config()``."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, logits, labels, mask):
        counted = mask & (labels != -100)
        return self.scale * nn.functional.cross_entropy(logits[counted], labels[counted])


@register_loss("test-config-scaled-ce", applies_to=("token",))
def scaled_ce(*, scale: float = 1.0, shift: int = 0) -> nn.Module:
    return PlainScaledCE(scale + shift)


def test_plug_ins_that_do_not_report_their_settings_are_saved_with_those_they_were_built_with(tmp_path):
    tagger = build("bilstm", "test-config-two-layer",
                   {"head.hidden": 6, "head.scheme": "BIOES", "loss.name": "test-config-scaled-ce",
                    "loss.scale": 2.0})
    tagger.save_pretrained(tmp_path / "model")
    saved = saved_config(tmp_path / "model")
    assert saved["head"] == {"type": "test-config-two-layer", "scheme": "BIOES", "hidden": 6}
    # Defaults filled in: the loss is rebuilt as it was built, whatever a later default says.
    assert saved["loss"] == {"name": "test-config-scaled-ce", "scale": 2.0, "shift": 0}
    loaded = Tagger.from_pretrained(tmp_path / "model")
    assert loaded.head.scores[0].out_features == 6 and loaded.loss_function.scale == 2.0
    assert loaded.component_settings() == {key: saved[key] for key in ("encoder", "head", "loss")}

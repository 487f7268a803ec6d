"""Every shipped configuration loads, validates and builds a model (litgpt's
test_config_hub, STYLE.md 4). The folder is globbed: a new config is tested by existing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nerkit import Tagger, load_config
from nerkit.config import SYNTHETIC

from conftest import REPO_ROOT, SHARED_DATA, tiny_vectors_like

CONFIG_DIR = REPO_ROOT / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("*.yaml")) + sorted(CONFIG_DIR.glob("*.yml"))
IDS = [path.name for path in CONFIGS]


def test_the_config_folder_is_not_empty():
    assert CONFIGS, f"no YAML configuration in {CONFIG_DIR}"


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_config_loads_and_round_trips(path, tmp_path):
    config = load_config(path)
    config.to_yaml(tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_config_builds_a_model_that_trains_and_decodes(path, synthetic_train, request):
    config = load_config(path)
    values = {}
    if config.encoder.type == "transformer" and not Path(config.encoder.model).is_dir():
        # A hub name cannot be fetched offline: the same configuration with a tiny local BERT.
        values["encoder.model"] = str(request.getfixturevalue("bert_dir"))
    if config.encoder.settings().get("word_vectors"):
        # Vectors a benchmark makes (benchmarks/glove_vectors.py): tiny ones in the same formats.
        values.update(tiny_vectors_like(config.encoder.settings(), request.getfixturevalue("tmp_path")))
    config = load_config(path, values=values)
    examples = synthetic_train[:60]
    tagger = Tagger.build(config, examples)
    assert tagger.head.kind == config.head.type
    batch = tagger.collate(tagger.prepare(examples[:6], overlapping=config.data.overlapping))
    loss = tagger(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tagger.parameters())
    decoded = tagger.decode(batch)
    assert len(decoded) == 6


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_config_data_sources_exist(path):
    """The bundled corpus by a split it has; files relative to the repository root (where
    `nerkit train` runs), checked when the shared data folder is present."""
    from nerkit.data.sources import load_split

    data = load_config(path).data
    for source in (data.train, data.dev, data.test):
        if not source or source.startswith("hf:"):
            continue
        if source.split(":", 1)[0].startswith(SYNTHETIC):
            assert load_split(source), f"{path.name}: {source} is empty"
        elif SHARED_DATA.is_dir():
            file_part = source if (REPO_ROOT / source).exists() else source.rsplit(":", 1)[0]  # DIR:split
            assert (REPO_ROOT / file_part).exists(), f"{path.name}: {source} not found relative to {REPO_ROOT}"

"""Weight averaging (training.average_decay): the moving average against its formula, the
swap in and out, what is saved, and exact resumption with an average."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from nerkit import train
from nerkit.errors import NerkitError
from nerkit.training.averaging import WeightAverage

from conftest import tiny_config
from test_training import RESUME, assert_same_weights, run_until_crash, weights


def test_average_follows_the_formula():
    """a_0 = w_0, a_n = d_n a_(n-1) + (1 - d_n) w_n with d_n = min(decay, (1 + n) / (10 + n)),
    checked in float64 against a run of random weights."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    average = WeightAverage(model, 0.95)
    expected = {name: p.detach().double().clone() for name, p in model.named_parameters()}
    for n in range(1, 200):  # the warm-up reaches 0.95 at n = 171
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randn_like(parameter))
        average.update(model)
        decay = min(0.95, (1 + n) / (10 + n))
        for name, parameter in model.named_parameters():
            expected[name] = decay * expected[name] + (1 - decay) * parameter.detach().double()
    assert average.updates == 199 and average.current_decay() == 0.95
    for name, value in expected.items():
        torch.testing.assert_close(average.average[name].double(), value, rtol=1e-5, atol=1e-6)


def test_applied_swaps_the_average_in_and_the_live_weights_back():
    model = nn.Linear(4, 2)
    average = WeightAverage(model, 0.9)
    with torch.no_grad():
        model.weight.add_(1.0)
    live = {name: p.detach().clone() for name, p in model.named_parameters()}
    with average.applied(model):
        assert torch.equal(model.weight, average.average["weight"])
        assert not torch.equal(model.weight, live["weight"])
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, live[name]) and parameter.requires_grad


def test_the_live_weights_come_back_after_an_exception():
    model = nn.Linear(2, 2)
    average = WeightAverage(model, 0.9)
    with torch.no_grad():
        model.weight.mul_(3.0)
    live = model.weight.detach().clone()
    with pytest.raises(RuntimeError), average.applied(model):
        raise RuntimeError
    assert torch.equal(model.weight, live)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_outside_the_open_unit_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(2, 2), decay)


def test_the_saved_model_is_the_average(tmp_path):
    """Without dev data the last model is saved: it must carry the averaged weights (the
    checkpoint's average file), not the live ones (the checkpoint's model)."""
    train(tiny_config(tmp_path, **{**RESUME, "training__average_decay": 0.9}))
    saved, live = weights(tmp_path), weights(tmp_path / "checkpoint")
    averaged = load_file(str(tmp_path / "checkpoint" / "average.safetensors"))
    assert set(averaged) <= set(saved)
    assert all(torch.equal(saved[name], averaged[name]) for name in averaged)
    assert any(not torch.equal(saved[name], live[name]) for name in averaged)


def test_resume_with_an_average_matches_an_uninterrupted_run(monkeypatch, tmp_path):
    settings = {**RESUME, "training__average_decay": 0.9}
    reference = tmp_path / "uninterrupted"
    train(tiny_config(reference, **settings))
    resumed = tmp_path / "resumed"
    config = tiny_config(resumed, **settings)
    run_until_crash(monkeypatch, config, after_step=6)
    train(config, resume=True)
    assert_same_weights(resumed, reference)


def test_resume_asking_for_an_average_the_checkpoint_lacks_is_an_error(tmp_path):
    train(tiny_config(tmp_path, **{**RESUME, "training__max_steps": 3}))
    with pytest.raises(NerkitError, match="average"):
        train(tiny_config(tmp_path, **{**RESUME, "training__average_decay": 0.9}), resume=True)

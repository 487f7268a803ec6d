"""Checkpoints in safetensors + JSON, written atomically.

A checkpoint is a directory: the model (a full model directory, so it can be loaded like
any other), ``optimizer.safetensors`` + ``optimizer.json`` (the optimizer's tensors and
its non-tensor structure), ``average.safetensors`` when the run averages its weights,
``rng-rank{N}.safetensors`` with the random states of process N (one file per process of
the run), and ``trainer_state.json`` (position, process count, scheduler and the state of
each training handler: best model, early stopping, history...). Nothing is pickled, so
resuming never runs code from a file. Only the main process writes one.

Atomicity: the new checkpoint is written to ``NAME.tmp`` and fsynced; then the old one is
renamed to ``NAME.old``, the new one to ``NAME``, and the old one removed. A crash at any
moment leaves either ``NAME`` or ``NAME.old`` complete, and ``latest_checkpoint`` finds it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from nerkit.atomic import atomic_write_text, fsync_path, fsync_tree

logger = logging.getLogger(__name__)

FORMAT = 2  # of trainer_state.json and the files beside it; 1 had one rng.safetensors and no handler sections
OPTIMIZER_TENSORS, OPTIMIZER_STRUCTURE, STATE_FILE, AVERAGE_FILE = (
    "optimizer.safetensors", "optimizer.json", "trainer_state.json", "average.safetensors")


def rng_file(process_index: int) -> str:
    return f"rng-rank{process_index}.safetensors"


def optimizer_to_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, param_state in state["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{param_id}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], structure: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in list(tensors.items()) + list(structure["scalars"].items()):
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    return {"state": state, "param_groups": structure["param_groups"]}


def rng_state() -> dict[str, torch.Tensor]:
    """This process's random states as tensors: torch's CPU generator, its CUDA device's
    generator when it has one, and Python's ``random`` (version and Mersenne Twister words,
    plus the cached Gaussian, NaN for none)."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    version, internal, gauss = random.getstate()
    tensors["python"] = torch.tensor([version, *internal], dtype=torch.int64)
    tensors["python_gauss"] = torch.tensor([math.nan if gauss is None else gauss], dtype=torch.float64)
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    version, *internal = tensors["python"].tolist()
    gauss = tensors["python_gauss"].item()
    random.setstate((version, tuple(internal), None if math.isnan(gauss) else gauss))


def save_checkpoint(directory: Path, *, tagger, optimizer, scheduler, trainer_state: dict[str, Any],
                    rng_states: list[dict[str, torch.Tensor]],
                    average: dict[str, torch.Tensor] | None = None) -> None:
    """Write a checkpoint atomically; ``rng_states`` holds every process's random states, in process order."""
    directory = Path(directory)
    temporary = directory.with_name(directory.name + ".tmp")
    previous = directory.with_name(directory.name + ".old")
    shutil.rmtree(temporary, ignore_errors=True)
    tagger.save_pretrained(temporary)
    tensors, structure = optimizer_to_files(optimizer)
    save_file(tensors, str(temporary / OPTIMIZER_TENSORS))
    (temporary / OPTIMIZER_STRUCTURE).write_text(json.dumps(structure), encoding="utf-8")
    for process_index, tensors in enumerate(rng_states):
        save_file(tensors, str(temporary / rng_file(process_index)))
    if average is not None:
        save_file(average, str(temporary / AVERAGE_FILE))
    fsync_tree(temporary)  # everything else on the disk before the state file says it is complete
    state = {**trainer_state, "scheduler": scheduler.state_dict()}
    # Written last and fsynced: latest_checkpoint takes its presence as proof of a complete checkpoint.
    atomic_write_text(temporary / STATE_FILE, json.dumps(state))
    if directory.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(directory, previous)
    os.replace(temporary, directory)
    fsync_path(directory.parent)
    shutil.rmtree(previous, ignore_errors=True)


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest complete checkpoint: ``NAME.tmp`` when a crash came after it was complete and
    before the swap (it is then swapped in, and the log says so), else ``NAME``, else ``NAME.old``
    if a crash interrupted the swap. An incomplete ``NAME.tmp`` is removed, and the log says so."""
    directory = Path(directory)
    temporary = directory.with_name(directory.name + ".tmp")
    previous = directory.with_name(directory.name + ".old")
    if temporary.is_dir():
        if (temporary / STATE_FILE).is_file():  # written last: everything else is there
            logger.warning("%s is a complete checkpoint whose swap was interrupted: using it", temporary)
            if directory.exists():
                shutil.rmtree(previous, ignore_errors=True)
                os.replace(directory, previous)
            os.replace(temporary, directory)
            fsync_path(directory.parent)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            logger.warning("removing %s, a checkpoint whose writing was interrupted", temporary)
            shutil.rmtree(temporary)
    for candidate in (directory, previous):
        if (candidate / STATE_FILE).is_file():
            return candidate
    return None


def load_trainer_state(directory: Path) -> dict[str, Any]:
    return json.loads((Path(directory) / STATE_FILE).read_text(encoding="utf-8"))


def load_optimizer_state(directory: Path) -> dict[str, Any]:
    directory = Path(directory)
    structure = json.loads((directory / OPTIMIZER_STRUCTURE).read_text(encoding="utf-8"))
    return optimizer_from_files(load_file(str(directory / OPTIMIZER_TENSORS)), structure)


def load_rng(directory: Path, process_index: int) -> dict[str, torch.Tensor]:
    """The random states process ``process_index`` saved."""
    return load_file(str(Path(directory) / rng_file(process_index)))


def load_average(directory: Path) -> dict[str, torch.Tensor] | None:
    """The weight average saved with a checkpoint, if the run keeps one."""
    path = Path(directory) / AVERAGE_FILE
    return load_file(str(path)) if path.is_file() else None

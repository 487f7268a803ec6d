"""A run directory knows which run it holds, so runs are never mixed or silently replaced.

``run.json`` records a run id, a hash of the resolved configuration and a fingerprint of each
data source (a file's size and sha256; a directory's files; a named corpus by its name). It is
written when a run starts, before anything else, and every checkpoint carries the run id and
the configuration hash it was written under.

* A new run into a directory that holds another run or model is refused unless ``overwrite``,
  which replaces the directory as a whole. The default output (``runs/default``) is the
  exception a beginner needs: the previous run there is moved aside to ``runs/default-N`` and
  the log says so, so ``nerkit train`` twice just works and destroys nothing.
* ``--resume`` refuses a checkpoint of another run (its run id differs from ``run.json``'s),
  and training data that changed since the run started; a changed configuration (more epochs)
  is allowed and recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nerkit.atomic import atomic_write_text
from nerkit.config import DEFAULT_OUTPUT, RUN_CONFIG_FILE, Config, TrainingConfig
from nerkit.errors import NerkitError
from nerkit.modeldir import MANIFEST_FILE

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
# Names nerkit writes into a run directory: anything else there is not ours to replace.
RUN_CONTENTS = {RUN_FILE, RUN_CONFIG_FILE, "config.json", "model.safetensors", "history.json", "history.png",
                "patterns.jsonl",  # `nerkit patterns add` on the run's model, or a warm start's parent's
                "checkpoint", "checkpoint.tmp", "checkpoint.old", "words.json", "chars.json", "encoder",
                "history.json.tmp", MANIFEST_FILE, "onnx"}  # onnx: what `nerkit export` writes by default
# (history.json.tmp: what a run killed mid-write left before nerkit.atomic, whose temporary files start with a dot)


# Fields added after runs were first hashed, with their defaults.
ADDED_FIELDS = {("training", "select_micro_bound"): TrainingConfig.model_fields["select_micro_bound"].default,
                ("training", "init_from"): None, ("data", "replay"): None, ("encoder", "trained_words"): None}


def config_hash(config: Config) -> str:
    """sha256 of the resolved configuration, without what does not change the model (where it
    is written, whether a progress bar is shown)."""
    tree = config.to_dict()
    tree.pop("output", None)
    tree["training"].pop("progress", None)
    # What --select-for writes after training, not a setting of it (a configuration holds none).
    tree["head"].pop("posthoc_selection", None)
    # Fields added after runs were first hashed: at their defaults the hash is the one runs trained
    # before them had (compare --resume recognises those runs).
    for (section, key), default in ADDED_FIELDS.items():
        if key in tree.get(section, {}) and tree[section][key] == default:
            del tree[section][key]
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode("utf-8")).hexdigest()


def _file_digest(path: Path, digest) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def source_fingerprint(source: str | None) -> str | None:
    """A data source as it is now: ``sha256:...`` of a file or of a directory's files (names and
    contents, in order), or the source's own name for the bundled corpus and hub datasets."""
    if source is None:
        return None
    path = Path(source)
    if not path.exists():  # synthetic:SPLIT, hf:NAME, DIR:split
        head = Path(source.rpartition(":")[0])
        if not (source.rpartition(":")[0] and head.is_dir()):
            return f"name:{source}"
        path = head
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode("utf-8") + b"\0")
        _file_digest(file, digest)
    return f"sha256:{digest.hexdigest()}"


@dataclass
class RunRecord:
    run_id: str
    config_hash: str
    data: dict[str, str | None]  # split -> fingerprint
    resumed_with: list[str] = field(default_factory=list)  # configuration hashes of later resumes
    finished: str | None = None  # why training ended, once it has (None: under way, or killed)
    # data.train as a list: each source's path, declared types and fingerprint; None for one source.
    train_sources: list[dict[str, Any]] | None = None
    # training.select_for: how the post-hoc tau was chosen (metrics.tau_choice.TauChoice.record)
    posthoc_selection: dict[str, Any] | None = None
    # A warm start's parent model (training.init_from): its path and the sha256 of its manifest.
    parent: dict[str, str] | None = None

    @classmethod
    def for_config(cls, config: Config) -> "RunRecord":
        return cls(uuid.uuid4().hex, config_hash(config), data_fingerprints(config),
                   train_sources=train_sources(config))

    @classmethod
    def load(cls, directory: Path) -> "RunRecord | None":
        path = directory / RUN_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise NerkitError(f"{path}: not a run record nerkit can read ({error}); the run directory is "
                              "damaged: start a new run with --overwrite") from None

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        record = asdict(self)
        if record["train_sources"] is None:  # one source: run.json as before lists existed
            del record["train_sources"]
        if record["posthoc_selection"] is None:  # no selection: run.json as before selections were recorded
            del record["posthoc_selection"]
        if record["parent"] is None:  # a run from scratch
            del record["parent"]
        atomic_write_text(directory / RUN_FILE, json.dumps(record, indent=2))


def data_fingerprints(config: Config) -> dict[str, str | None]:
    fingerprints = {split: source_fingerprint(getattr(config.data, split)) for split in ("dev", "test")}
    return {"train": train_fingerprint(config), **fingerprints}


def train_fingerprint(config: Config) -> str | None:
    """The training data's fingerprint; for a list of sources, each source's, with the types it
    declares, in order."""
    replayed = "".join(f" + replay {source_fingerprint(source.path)} x{source.fraction}"
                       for source in config.data.replay or [])
    if isinstance(config.data.train, str):
        return source_fingerprint(config.data.train) + replayed if replayed else source_fingerprint(config.data.train)
    return " + ".join(f"{source_fingerprint(source.path)}"
                      f"{'' if source.annotated_types is None else ' [' + ','.join(source.annotated_types) + ']'}"
                      for source in config.data.train) + replayed


def train_sources(config: Config) -> list[dict[str, Any]] | None:
    """Which sources train the run (run.json), when data.train is a list of them."""
    if isinstance(config.data.train, str):
        return None
    return [{"path": source.path, "annotated_types": source.annotated_types,
             "fingerprint": source_fingerprint(source.path)} for source in config.data.train]


@dataclass
class NewRun:
    """What starting a run in ``output`` will do: ``action`` is ``fresh`` (nothing there),
    ``replace`` (--overwrite) or ``move-aside`` (the default output, previous run kept at ``aside``)."""

    record: RunRecord
    action: str
    aside: Path | None = None


def plan_new_run(config: Config, *, overwrite: bool = False) -> NewRun:
    """Check that a new run may start in ``config.output`` (on every process, before anything is
    written); ``begin_run`` then does it on the main process."""
    output = Path(config.output)
    record = RunRecord.for_config(config)
    if not (output.is_dir() and any(output.iterdir())):
        if output.exists() and not output.is_dir():
            raise NerkitError(f"--output {output} is a file, not a directory")
        return NewRun(record, "fresh")
    foreign = sorted(p.name for p in output.iterdir() if p.name not in RUN_CONTENTS and not p.name.startswith("."))
    if foreign:
        raise NerkitError(f"{output} holds files nerkit did not write ({', '.join(foreign[:5])}); choose an empty "
                          "or new --output directory")
    if overwrite:
        return NewRun(record, "replace")
    if output == Path(DEFAULT_OUTPUT):
        return NewRun(record, "move-aside", _free_name(output))
    previous = RunRecord.load(output)
    described = f"run {previous.run_id[:8]}" if previous else "a model or run"
    raise NerkitError(f"{output} already holds {described}. Pass --overwrite to replace it, --resume {output} to "
                      "continue it, or choose another --output directory")


def begin_run(config: Config, new_run: NewRun) -> None:
    """Clear ``config.output`` as planned and record the new run (main process only)."""
    output = Path(config.output)
    if new_run.action == "replace":
        logger.info("--overwrite: replacing the previous contents of %s", output)
        shutil.rmtree(output)
    elif new_run.action == "move-aside":
        os.replace(output, new_run.aside)
        logger.warning("%s held a previous run: moved it to %s; the new run goes to %s", output, new_run.aside, output)
    new_run.record.write(output)


def _free_name(directory: Path) -> Path:
    number = 1
    while directory.with_name(f"{directory.name}-{number}").exists():
        number += 1
    return directory.with_name(f"{directory.name}-{number}")


def check_resume(config: Config, checkpoint_state: dict[str, Any], checkpoint_dir: Path) -> RunRecord:
    """The run record of ``config.output`` if ``checkpoint_dir`` belongs to that run and the
    training data is unchanged; with the resuming configuration's hash recorded."""
    output = Path(config.output)
    record = RunRecord.load(output)
    if record is None:
        raise NerkitError(f"{output} has a checkpoint but no {RUN_FILE}: it was written by an older nerkit or "
                          "is not a run directory; start a new run (--overwrite) instead of resuming")
    saved_id = checkpoint_state.get("run_id")
    if saved_id != record.run_id:
        raise NerkitError(f"{checkpoint_dir} belongs to run {str(saved_id)[:8]}, but {output} holds run "
                          f"{record.run_id[:8]}: the directory mixes two runs. Start again with --overwrite")
    changed = [split for split, fingerprint in data_fingerprints(config).items()
               if split == "train" and fingerprint != record.data.get(split)]
    if changed:
        raise NerkitError(f"the training data ({config.data.train_names()}) is not the data run {record.run_id[:8]} "
                          "started with (its size or content changed, or another source is named); resuming would mix "
                          "two data sets. Start a new run instead")
    written_under = checkpoint_state.get("config_hash")
    if written_under != record.config_hash and written_under not in record.resumed_with:
        raise NerkitError(f"{checkpoint_dir} was written under a configuration run {record.run_id[:8]} never had "
                          f"(hash {str(written_under)[:8]}, the run's: {record.config_hash[:8]}): the directory "
                          "mixes two runs. Start again with --overwrite")
    current = config_hash(config)
    if current != written_under and current not in record.resumed_with:
        logger.info("resuming run %s with a changed configuration (recorded in %s)", record.run_id[:8], RUN_FILE)
        record.resumed_with.append(current)
    return record


__all__ = ["RUN_FILE", "NewRun", "RunRecord", "begin_run", "check_resume", "config_hash", "plan_new_run",
           "source_fingerprint"]

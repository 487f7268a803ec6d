"""Warm start (``training.init_from``, ``nerkit train --init-from MODEL_DIR``): a new run that
begins from a trained model instead of random weights.

The parent is loaded through the one checked path (``Tagger.from_pretrained``), so a damaged
directory fails as it would for prediction. The child keeps the parent's encoder and head
weights, its vocabulary and its types, in the parent's order; the types of the new data that the
parent lacks are added after them, and their rows of the head start as a fresh model's would
(the CRF's new transitions too, under the scheme's constraints, which the child's own transition
table imposes). Every parent row is copied unchanged, so before the first step the child scores
the parent's tags exactly as the parent does. A BiLSTM's vocabulary grows with the new data's
words (``WordFeatures.grow``). The optimizer and schedule start fresh: only weights travel.

What fixes the architecture cannot change: the encoder's type and sizes, the head's type and
scheme. ``nerkit.config.parent_sections`` gives a warm start's configuration the parent's
settings as defaults, so only a setting the configuration names differently is refused here.
The patterns saved with the parent (``patterns.jsonl``) travel to the child's model directory.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from nerkit import modeldir
from nerkit.config import NOT_INHERITED, Config, HeadConfig
from nerkit.data.partial import first_with_types
from nerkit.data.spans import Example
from nerkit.errors import ConfigError, NerkitError
from nerkit.predict import Tagger
from nerkit.tagger import count_labels, flat_examples

logger = logging.getLogger(__name__)

# Encoder and head settings a warm start may change: regularisation, where new word vectors come
# from, and how the head decodes or bounds its memory. Every other setting fixes weights' shapes
# or meanings.
CHANGEABLE = NOT_INHERITED | {"dropout", "word_dropout", "freeze_word_vectors", "posthoc_tau", "max_cells",
                              "flat_decoding", "max_span_length"}


def load_parent(directory: str | Path) -> Tagger:
    """The parent model, loaded and verified like any model directory (its manifest, config.json
    and weights); any fault is one error naming the directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NerkitError(f"--init-from {directory}: no such model directory; give the directory of a trained "
                          "nerkit model (the --output of an earlier `nerkit train`)")
    return Tagger.from_pretrained(directory)


def parent_record(directory: str | Path) -> dict[str, str]:
    """What run.json records of the parent: where it was and the sha256 of its manifest, which
    names every file of the model with its own sha256 (so the hash identifies the whole model)."""
    folder = modeldir.locate(Path(directory))
    manifest = folder / modeldir.MANIFEST_FILE
    if not manifest.is_file():
        raise NerkitError(f"--init-from {directory}: the model has no {modeldir.MANIFEST_FILE} (saved by an older "
                          "nerkit), so the new run could not record which model it started from; load and save it "
                          "again with this nerkit (Tagger.from_pretrained(...).save_pretrained(...)) first")
    return {"path": str(directory), "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest()}


def check_unchangeable(config: Config, parent: Tagger, directory: str | Path) -> None:
    """Refuse settings that would need other weights than the parent's, naming each with the
    parent's value and the one asked for."""
    asked = {"encoder": {"type": config.encoder.type, **config.encoder.settings()},
             "head": {"type": config.head.type, **config.head.settings()}}
    saved = {"encoder": parent.encoder.config(), "head": parent.head.config()}
    problems = []
    for section in ("encoder", "head"):
        for key, value in saved[section].items():
            if key in CHANGEABLE or key not in asked[section] or asked[section][key] == value:
                continue
            problems.append(f"{section}.{key}: the parent has {value!r}, the configuration asks for "
                            f"{asked[section][key]!r}")
            if key == "type":
                break  # another component: its other settings mean nothing beside the parent's
    if problems:
        raise ConfigError(f"--init-from {directory}: a warm start keeps the parent's architecture, and these settings "
                          f"differ from it: {'; '.join(problems)}. Leave them unset (the parent's are used) or train "
                          "a new model without --init-from")


def refuse_unknown_replay_types(replay_sets: list[list[Example]], config: Config, known: list[str],
                                whose: str) -> None:
    """A replay source annotates only types the model has: replay keeps old types, it never adds one."""
    for index, (source, examples) in enumerate(zip(config.data.replay or [], replay_sets)):
        found = sorted({span.type for example in examples for span in example.spans} - set(known))
        if found:
            raise NerkitError(f"data.replay[{index}] ({source.path}) annotates {', '.join(map(repr, found))} "
                              f"(first at {first_with_types(examples, found)}), which {whose} does not have (its types: "
                              f"{', '.join(known)}); replay earlier data of the model's types, and put data of a "
                              "new type in data.train")


def warm_start(config: Config, parent: Tagger, train_examples: list[Example], *,
               replay_examples: list[Example] = ()) -> Tagger:
    """The child model of ``parent`` for training on ``train_examples`` (and replayed ones): the
    parent's weights, vocabulary and types, grown by the new data's types and words."""
    labelled = [*train_examples, *replay_examples]
    if HeadConfig.registry().get(config.head.type).metadata["labels"] == "tags":
        labelled = flat_examples(labelled, config.data.overlapping, warn=False)
    found = sorted({span.type for example in labelled for span in example.spans})
    added_types = [entity_type for entity_type in found if entity_type not in parent.entity_types]
    entity_types = [*parent.entity_types, *added_types]
    if added_types:
        logger.info("warm start: adding the types %s to the parent's %s", ", ".join(added_types),
                    ", ".join(parent.entity_types))
    grow = getattr(parent.encoder, "grow_vocabulary", None)
    if grow is not None:
        grow(labelled, config.encoder.settings())
    label_names, label_counts = count_labels(labelled, config.head, entity_types)
    model_config = {**parent.config, "document_context": config.data.document_context, "data": config.data.reading()}
    longest_entity = max((span.end - span.start for example in labelled for span in example.spans), default=1)
    child = Tagger._assemble(config.head, config.loss, model_config, parent.encoder, entity_types, label_names,
                             label_counts, longest_entity=longest_entity)
    copy_head_rows(parent.head, child.head, parent.label_names, child.label_names)
    return child


def copy_head_rows(parent_head: torch.nn.Module, child_head: torch.nn.Module, parent_labels: list[str],
                   child_labels: list[str]) -> None:
    """Copy every tensor of the parent's head into the child's, each parent label's rows to that
    label's place in the child. An axis whose size differs holds ``labels x block`` rows (a
    tagging head's tags; the span head's types times its 2d or 2 channels, label-major as the
    heads view them); the child's rows of new labels keep their fresh initialisation. The loss's
    own tensors (class weights from label counts) stay the child's: they follow the new data."""
    position = {label: index for index, label in enumerate(child_labels)}
    moved = torch.tensor([position[label] for label in parent_labels])  # shape: (parent labels,)
    child_state = child_head.state_dict()
    with torch.no_grad():
        for name, old in parent_head.state_dict().items():
            if name.startswith("loss_function."):
                continue
            new = child_state[name]
            indices = []
            for axis, (old_size, new_size) in enumerate(zip(old.shape, new.shape)):
                if old_size == new_size:
                    indices.append(torch.arange(old_size))
                    continue
                block, rest = divmod(old_size, len(parent_labels))
                if rest or new_size != block * len(child_labels):
                    raise NerkitError(f"cannot grow the head's {name} from shape {list(old.shape)} to "
                                      f"{list(new.shape)}: axis {axis} is not one row block per label")
                # Label l's block of rows [l*block, (l+1)*block) moves to its place in the child.
                indices.append((moved.unsqueeze(1) * block + torch.arange(block)).reshape(-1))
            new[torch.meshgrid(*indices, indexing="ij")] = old  # the child's state_dict shares its storage

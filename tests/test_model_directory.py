"""A model directory is one unit (``nerkit.modeldir``): written through a staging folder and a
manifest, killed at any moment it loads as the old model or the new one, and a damaged or
edited copy ends in one ``NerkitError`` naming the directory, never a traceback. An encoder
is loaded from safetensors only, never from a pickle."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny_config
from nerkit import Tagger, load_config, modeldir
from nerkit.config import HeadConfig
from nerkit.data.synthetic import synthetic_examples
from nerkit.errors import ConfigError, NerkitError
from nerkit.modeldir import MANIFEST_FILE, STAGING_PREFIX

RUN_FILES = {"history.json": "[]", "train_config.yaml": "seed: 1\n", "checkpoint/trainer_state.json": "{}"}


def build(examples, value: float | None = None) -> Tagger:
    """A tiny untrained tagger; with ``value``, every weight set to it (so a loaded copy shows
    which save it came from)."""
    torch.manual_seed(0)
    tagger = Tagger.build(tiny_config("unused", head__type="softmax"), examples)
    if value is not None:
        fill(tagger, value)
    return tagger


def fill(tagger: Tagger, value: float) -> None:
    with torch.no_grad():
        for parameter in tagger.parameters():
            parameter.fill_(value)


def weight_value(tagger: Tagger) -> float:
    """The one value all weights hold (asserted: a mix of two saves would hold two)."""
    values = torch.cat([parameter.detach().flatten() for parameter in tagger.parameters()])
    assert torch.all(values == values[0]), "the weights come from more than one save"
    return float(values[0])


@pytest.fixture(scope="module")
def two_vocabularies():
    """Training examples for two models whose vocabularies (and embedding shapes) differ, so a
    mix of their files cannot load."""
    examples = synthetic_examples("train")
    return examples[:40], examples[40:100]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, two_vocabularies):
    """A saved tiny model, its files and its predictions on dev sentences."""
    directory = tmp_path_factory.mktemp("saved") / "model"
    tagger = build(two_vocabularies[0])
    tagger.save_pretrained(directory)
    dev = synthetic_examples("dev")[:30]
    predictions = tagger.predict_examples(dev)
    assert sum(map(len, predictions)) > 0  # so that "predicts the same" can fail
    return directory, dev, predictions


def copy_of(directory: Path, parent: Path) -> Path:
    target = parent / "copy"
    shutil.copytree(directory, target)
    return target


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}


# ----------------------------------------------------------------------------- writing


def test_the_manifest_names_every_model_file_with_its_size_and_sha256(saved):
    directory = saved[0]
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    files = {name: data for name, data in files_of(directory).items() if name != MANIFEST_FILE}
    assert set(manifest["files"]) == set(files) == {"config.json", "model.safetensors", "words.json", "chars.json"}
    for name, data in files.items():
        assert manifest["files"][name]["size"] == len(data)
        assert manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert not list(directory.glob(STAGING_PREFIX + "*")) and not list(directory.rglob("*.incoming"))


def test_a_save_into_a_run_directory_keeps_the_runs_files_and_drops_only_the_old_models_files(
        tmp_path, two_vocabularies, monkeypatch):
    for name, text in RUN_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    first = build(two_vocabularies[0], 1.0)
    real_save_files = first.encoder.save_files

    def with_an_extra_file(folder):  # an encoder of the first model wrote one more file
        real_save_files(folder)
        (folder / "extra").mkdir()
        (folder / "extra" / "tokens.json").write_text("[]", encoding="utf-8")

    monkeypatch.setattr(first.encoder, "save_files", with_an_extra_file)
    first.save_pretrained(tmp_path)
    assert (tmp_path / "extra" / "tokens.json").is_file()
    build(two_vocabularies[1], 2.0).save_pretrained(tmp_path)

    assert not (tmp_path / "extra").exists()  # named by the previous manifest only
    assert {name: (tmp_path / name).read_text(encoding="utf-8") for name in RUN_FILES} == RUN_FILES
    assert weight_value(Tagger.from_pretrained(tmp_path)) == 2.0


def test_a_previous_manifest_naming_files_outside_the_directory_removes_nothing(tmp_path, two_vocabularies):
    directory = tmp_path / "model"
    build(two_vocabularies[0]).save_pretrained(directory)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["files"]["../victim.txt"] = {"size": 7, "sha256": "0" * 64}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(NerkitError, match="not a file inside the model directory"):
        Tagger.from_pretrained(directory)
    build(two_vocabularies[1]).save_pretrained(directory)
    assert victim.read_text(encoding="utf-8") == "keep me"
    Tagger.from_pretrained(directory)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads file names of descriptors from /proc")
def test_every_file_and_folder_reaches_the_disk_before_the_manifest_commits(tmp_path, two_vocabularies,
                                                                            monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_place = os.fsync, modeldir.place

    def recording_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def recording_place(source, target):
        events.append(("place", str(target)))
        real_place(source, target)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(modeldir, "place", recording_place)
    directory = tmp_path / "model"
    build(two_vocabularies[0]).save_pretrained(directory)

    places = [index for index, (kind, _) in enumerate(events) if kind == "place"]
    before = {path for kind, path in events[:places[0]] if kind == "fsync"}
    staging = {Path(path).parent for path in before if Path(path).name == "config.json"}
    assert len(staging) == 1 and staging.pop().name.startswith(STAGING_PREFIX)
    staged = {Path(path).name for path in before if STAGING_PREFIX in path}
    assert {"config.json", "model.safetensors", "words.json", "chars.json"} <= staged
    manifest_stem = Path(MANIFEST_FILE).stem
    assert any(name.startswith(f".{manifest_stem}.") and ".tmp" in name for name in staged)  # its temporary file
    assert any(Path(path).name.startswith(STAGING_PREFIX) for path in before)  # the staging folder itself
    assert events[places[-1]] == ("place", str(directory / MANIFEST_FILE))  # the commit point comes last
    assert ("fsync", str(directory)) in events[places[-2]:places[-1]]  # the swapped files' entries before it
    assert ("fsync", str(directory)) in events[places[-1]:]


def test_an_interrupted_staging_folder_is_ignored_and_removed_by_the_next_save(tmp_path, two_vocabularies):
    build(two_vocabularies[0], 1.0).save_pretrained(tmp_path)
    stale = tmp_path / (STAGING_PREFIX + "killed")
    stale.mkdir()
    (stale / "config.json").write_text("{", encoding="utf-8")  # killed while writing, no manifest yet
    assert weight_value(Tagger.from_pretrained(tmp_path)) == 1.0
    build(two_vocabularies[1], 2.0).save_pretrained(tmp_path)
    assert not stale.exists()
    assert weight_value(Tagger.from_pretrained(tmp_path)) == 2.0


class Crash(BaseException):
    """Stands for a kill: not an Exception, so no ``except Exception`` cleans up after it."""


def crash_at(monkeypatch, function_name: str, after_calls: int) -> None:
    """Make ``modeldir.<function_name>`` crash on its call number ``after_calls`` (0-based)."""
    real = getattr(modeldir, function_name)
    calls = []

    def crashing(*args):
        if len(calls) == after_calls:
            raise Crash(f"{function_name} call {after_calls}")
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(modeldir, function_name, crashing)


# The swap places 4 model files then the manifest (5 calls of place), then discards.
CRASH_POINTS = [("place", calls) for calls in range(5)] + [("discard", 0)]


@pytest.mark.parametrize("function_name,after_calls", CRASH_POINTS)
def test_a_crash_at_any_step_of_the_swap_leaves_the_old_or_the_new_model(tmp_path, two_vocabularies, monkeypatch,
                                                                          function_name, after_calls):
    old, new = build(two_vocabularies[0], 1.0), build(two_vocabularies[1], 2.0)
    old.save_pretrained(tmp_path)
    (tmp_path / "history.json").write_text("[]", encoding="utf-8")
    with monkeypatch.context() as patch:
        crash_at(patch, function_name, after_calls)
        with pytest.raises(Crash):
            new.save_pretrained(tmp_path)
    loaded = Tagger.from_pretrained(tmp_path)
    value = weight_value(loaded)
    # Before the first file is swapped the old manifest still matches; from then on (the two models'
    # files all differ) the new model is read from its complete staging folder, then from the directory.
    assert value == (1.0 if (function_name, after_calls) == ("place", 0) else 2.0)
    assert len(loaded.encoder.words) == len((old if value == 1.0 else new).encoder.words)

    build(two_vocabularies[0], 3.0).save_pretrained(tmp_path)  # finishes the interrupted save, then its own
    assert weight_value(Tagger.from_pretrained(tmp_path)) == 3.0
    assert not list(tmp_path.glob(STAGING_PREFIX + "*")) and not list(tmp_path.rglob("*.incoming"))
    assert (tmp_path / "history.json").read_text(encoding="utf-8") == "[]"


def save_forever(directory: Path, models: list[Tagger], completed) -> None:
    """The body of the process that is killed: save the two models in turn, all weights set to a
    growing number; ``completed`` holds the last number whose save returned."""
    number = completed.value
    while True:
        number += 1
        model = models[number % 2]
        fill(model, float(number))
        model.save_pretrained(directory)
        completed.value = number


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 of a forked process")
def test_kill_9_at_random_moments_leaves_the_old_or_the_new_model_loadable(tmp_path, two_vocabularies):
    """Kills a saving process (SIGKILL, no cleanup at all) at random moments, 12 times; each time
    the directory loads as the last completed save or the one in progress, and the next save
    cleans up. Forked rather than spawned: a fresh Python importing torch takes seconds."""
    models = [build(two_vocabularies[0]), build(two_vocabularies[1])]
    directory = tmp_path / "run"
    for name, text in RUN_FILES.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    fill(models[0], 0.0)
    models[0].save_pretrained(directory)
    loaded_value, interrupted, context, rng = 0.0, 0, multiprocessing.get_context("fork"), random.Random(11)
    for round_number in range(1, 13):
        start = round_number * 1000  # numbers of this round: start + 1, start + 2, ...
        completed = context.Value("q", start, lock=False)
        process = context.Process(target=save_forever, args=(directory, models, completed), daemon=True)
        process.start()
        time.sleep(rng.uniform(0.02, 0.25))
        process.kill()
        process.join()
        assert process.exitcode == -9
        interrupted += bool(list(directory.glob(STAGING_PREFIX + "*")))
        last = completed.value
        allowed = {loaded_value if last == start else float(last), float(last + 1)}
        loaded = Tagger.from_pretrained(directory)
        loaded_value = weight_value(loaded)
        assert loaded_value in allowed, f"round {round_number}: loaded {loaded_value}, expected one of {allowed}"
        assert len(loaded.encoder.words) == len(models[int(loaded_value) % 2].encoder.words)
    assert interrupted >= 4  # the kills did land inside saves (nearly all do: the process saves without pause)
    fill(models[1], -1.0)
    models[1].save_pretrained(directory)
    assert weight_value(Tagger.from_pretrained(directory)) == -1.0
    assert not list(directory.glob(STAGING_PREFIX + "*")) and not list(directory.rglob("*.incoming"))
    assert {name: (directory / name).read_text(encoding="utf-8") for name in RUN_FILES} == RUN_FILES


# ----------------------------------------------------------------------------- reading


def edit_config(change):
    def apply(directory: Path) -> None:
        description = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        change(description)
        (directory / "config.json").write_text(json.dumps(description, indent=2), encoding="utf-8")
    return apply


def truncate(name: str, size: int):
    def apply(directory: Path) -> None:
        (directory / name).write_bytes((directory / name).read_bytes()[:size])
    return apply


def one_type_fewer(description):
    dropped = description["entity_types"].pop()
    keep = [index for index, name in enumerate(description["label_names"]) if not name.endswith("-" + dropped)]
    description["label_names"] = [description["label_names"][index] for index in keep]
    description["label_counts"] = [description["label_counts"][index] for index in keep]


# (damage, what the message must say) on a copy whose manifest was removed: the consistency checks.
UNCHECKED_FAULTS = {
    "missing weights": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
    "truncated weights": (truncate("model.safetensors", 1000), "model.safetensors is not a readable safetensors"),
    "random weights": (lambda d: (d / "model.safetensors").write_bytes(os.urandom(5000)),
                       "model.safetensors is not a readable safetensors"),
    "truncated config": (truncate("config.json", 100), "config.json is not valid JSON"),
    "binary config": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe\x00"), "config.json is not valid JSON"),
    "config not an object": (lambda d: (d / "config.json").write_text("[1, 2]"), "holds a list"),
    "entity types reordered": (edit_config(lambda c: c["entity_types"].reverse()),
                               "label_names of config.json do not follow from its entity_types"),
    "bad label name": (edit_config(lambda c: c["label_names"].__setitem__(-1, "B-XX")), "expected ['O', 'B-LOC'"),
    "label names not a list": (edit_config(lambda c: c.__setitem__("label_names", 3)),
                               "'label_names' must be a list of distinct names"),
    "label counts too short": (edit_config(lambda c: c["label_counts"].pop()), "8 label_counts for 9 label_names"),
    "one label fewer than the weights": (edit_config(one_type_fewer),
                                         "weights do not fit the model its config.json describes (7 labels"),
    "unknown format version": (edit_config(lambda c: c.__setitem__("format_version", 9)), "format version 9"),
    "unknown head": (edit_config(lambda c: c["head"].__setitem__("type", "nohead")),
                     "names the head 'nohead', which is not registered"),
    "bad encoder setting": (edit_config(lambda c: c["encoder"].__setitem__("hidden_size", "big")), "hidden_size"),
    "missing vocabulary": (lambda d: (d / "words.json").unlink(), "words.json"),
    "truncated vocabulary": (truncate("words.json", 10), "JSONDecodeError"),
    "no config": (lambda d: (d / "config.json").unlink(), "not a nerkit model directory (no config.json)"),
}


@pytest.mark.parametrize("fault", UNCHECKED_FAULTS)
def test_a_damaged_model_without_manifest_is_refused_by_the_consistency_checks(saved, tmp_path, fault):
    damage, expected = UNCHECKED_FAULTS[fault]
    copy = copy_of(saved[0], tmp_path)
    (copy / MANIFEST_FILE).unlink()
    damage(copy)
    with pytest.raises(NerkitError) as raised:
        Tagger.from_pretrained(copy)
    message = str(raised.value)
    assert str(copy) in message and expected in message and "\n" not in message


@pytest.mark.parametrize("fault", UNCHECKED_FAULTS)
def test_a_damaged_model_with_manifest_is_refused_naming_the_changed_file(saved, tmp_path, fault):
    damage, _ = UNCHECKED_FAULTS[fault]
    copy = copy_of(saved[0], tmp_path)
    before = files_of(copy)
    damage(copy)
    changed = sorted(name for name, data in before.items() if files_of(copy).get(name) != data)
    with pytest.raises(NerkitError) as raised:
        Tagger.from_pretrained(copy)
    message = str(raised.value)
    assert str(copy) in message and MANIFEST_FILE in message and "\n" not in message
    assert all(f"{name} was changed" in message or f"{name} is missing" in message for name in changed)


def test_entity_types_reordered_in_config_json_no_longer_swap_the_predicted_types(saved, tmp_path):
    """Before manifests, reversing entity_types was accepted and Merkel came out as a LOC."""
    copy = copy_of(saved[0], tmp_path)
    edit_config(lambda c: c["entity_types"].reverse())(copy)
    with pytest.raises(NerkitError, match=r"config\.json was changed .*delete model-manifest\.json"):
        Tagger.from_pretrained(copy)


def test_a_directory_saved_before_manifests_still_loads_and_predicts_the_same(saved, tmp_path):
    directory, dev, predictions = saved
    copy = copy_of(directory, tmp_path)
    (copy / MANIFEST_FILE).unlink()  # exactly the files nerkit wrote before manifests (format 2)
    assert Tagger.from_pretrained(copy).predict_examples(dev) == predictions


def test_a_format_1_directory_still_loads_and_predicts_the_same(saved, tmp_path):
    """Format 1 saved the fields of every built-in head in one head section."""
    directory, dev, predictions = saved
    copy = copy_of(directory, tmp_path)
    (copy / MANIFEST_FILE).unlink()
    registry = HeadConfig.registry()
    every_field = {setting.name: setting.default for name in ("softmax", "crf", "span")
                   for setting in registry.get(name).settings if setting.name != "scheme"}
    edit_config(lambda c: c.update(format_version=1, head={**every_field, **c["head"]}))(copy)
    assert Tagger.from_pretrained(copy).predict_examples(dev) == predictions


def test_a_missing_directory_is_one_clear_error(tmp_path):
    with pytest.raises(NerkitError, match="no such model directory"):
        Tagger.from_pretrained(tmp_path / "nothing")


# ----------------------------------------------------------------------------- fuzzing damaged copies

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=False, width=32) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8)


@st.composite
def damages(draw, names: list[str]):
    """One damage to one file: truncated at a random offset, random bytes flipped, deleted, or
    replaced with random JSON."""
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "json"]))
    if kind == "truncate":
        return kind, name, draw(st.floats(0, 1, exclude_max=True))
    if kind == "flip":
        return kind, name, draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                                         min_size=1, max_size=4))
    return kind, name, draw(JSON_VALUES) if kind == "json" else None


def apply_damage(directory: Path, damage) -> bool:
    """Damage a file; whether its bytes changed."""
    kind, name, argument = damage
    path = directory / name
    before = path.read_bytes()
    if kind == "delete":
        path.unlink()
        return True
    if kind == "truncate":
        after = before[:int(argument * len(before))]
    elif kind == "flip":
        after = bytearray(before)
        for offset, mask in argument:
            after[int(offset * len(after))] ^= mask
        after = bytes(after)
    else:
        after = json.dumps(argument).encode()
    path.write_bytes(after)
    return after != before


def load_or_refuse(directory: Path) -> Tagger | None:
    """The loaded model, or None after a NerkitError that names the directory in one paragraph;
    any other exception fails the test."""
    try:
        return Tagger.from_pretrained(directory)
    except NerkitError as error:
        assert str(directory) in str(error) and "\n" not in str(error), str(error)
        return None


FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.data())
def test_a_damaged_copy_is_refused_unless_only_the_manifest_was_harmlessly_damaged(saved, data):
    directory, dev, predictions = saved
    damage = data.draw(damages(sorted(files_of(directory))))
    with tempfile.TemporaryDirectory() as parent:
        copy = copy_of(directory, Path(parent))
        changed = apply_damage(copy, damage)
        loaded = load_or_refuse(copy)
        if changed and damage[1] != MANIFEST_FILE:
            assert loaded is None, f"{damage[:2]} went unnoticed"
        if loaded is not None:
            assert loaded.predict_examples(dev) == predictions


@FUZZ
@given(data=st.data())
def test_a_damaged_copy_without_manifest_loads_or_is_refused(saved, data):
    directory = saved[0]
    damage = data.draw(damages(sorted(name for name in files_of(directory) if name != MANIFEST_FILE)))
    with tempfile.TemporaryDirectory() as parent:
        copy = copy_of(directory, Path(parent))
        (copy / MANIFEST_FILE).unlink()
        apply_damage(copy, damage)
        loaded = load_or_refuse(copy)
        if damage[0] == "delete":  # every file is needed
            assert loaded is None


CONFIG_KEYS = ["format_version", "encoder", "head", "loss", "entity_types", "label_names", "label_counts",
               "document_context"]


@FUZZ
@given(key=st.sampled_from(CONFIG_KEYS), inner=st.none() | st.text(min_size=1, max_size=12), value=JSON_VALUES)
def test_random_values_in_config_json_without_manifest_load_or_are_refused(saved, key, inner, value):
    """Random JSON for a key of config.json, or for a setting inside a section. (Integers stay
    small: a hand-edited legacy config asking for a huge layer allocates it before the weights'
    shapes are compared.)"""
    directory = saved[0]
    with tempfile.TemporaryDirectory() as parent:
        copy = copy_of(directory, Path(parent))
        (copy / MANIFEST_FILE).unlink()

        def change(description):
            if inner is not None and isinstance(description.get(key), dict):
                description[key][inner] = value
            else:
                description[key] = value

        edit_config(change)(copy)
        load_or_refuse(copy)


def transformer_config(model: Path, head: str = "softmax"):
    return load_config(values={"encoder.type": "transformer", "encoder.model": str(model), "head.type": head,
                               "data.dev": None, "output": "unused"})


@pytest.fixture(scope="module")
def saved_transformer(tmp_path_factory, bert_dir, two_vocabularies):
    directory = tmp_path_factory.mktemp("transformer") / "model"
    config = transformer_config(bert_dir, head="crf")
    torch.manual_seed(0)
    Tagger.build(config, two_vocabularies[0]).save_pretrained(directory)
    return directory


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), keep_manifest=st.booleans())
def test_a_damaged_transformer_model_loads_or_is_refused(saved_transformer, data, keep_manifest):
    names = sorted(name for name in files_of(saved_transformer) if keep_manifest or name != MANIFEST_FILE)
    damage = data.draw(damages(names))
    with tempfile.TemporaryDirectory() as parent:
        copy = copy_of(saved_transformer, Path(parent))
        if not keep_manifest:
            (copy / MANIFEST_FILE).unlink()
        changed = apply_damage(copy, damage)
        loaded = load_or_refuse(copy)
        if damage[1] != MANIFEST_FILE and (changed and keep_manifest or damage[0] == "delete"):
            assert loaded is None, f"{damage[:2]} went unnoticed"  # every file is needed


@pytest.mark.parametrize("name", ["encoder/tokenizer.json", "encoder/tokenizer_config.json", "encoder/config.json"])
def test_a_transformer_model_without_its_tokenizer_files_is_refused(saved_transformer, tmp_path, name):
    """Without tokenizer.json transformers would quietly build a tokenizer that turns every word
    into [UNK]; a JSON list instead of an object made it fail with an AttributeError."""
    copy = copy_of(saved_transformer, tmp_path)
    (copy / MANIFEST_FILE).unlink()
    (copy / name).unlink()
    with pytest.raises(NerkitError, match=f"{name}, a file of the transformer encoder, is missing"):
        Tagger.from_pretrained(copy)
    (copy / name).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(NerkitError, match=f"{name} holds a list, not a JSON object"):
        Tagger.from_pretrained(copy)


# ----------------------------------------------------------------------------- encoders: safetensors only


@pytest.fixture
def pickled_bert(tmp_path, bert_dir, monkeypatch):
    """The tiny BERT with its weights only as pytorch_model.bin (written here with torch.save);
    torch.load is made to fail the test if anything calls it."""
    from safetensors.torch import load_file

    directory = tmp_path / "pickled-bert"
    shutil.copytree(bert_dir, directory)
    torch.save(load_file(str(directory / "model.safetensors")), directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called: a pickle was loaded")

    monkeypatch.setattr(torch, "load", refuse)
    return directory


def test_an_encoder_with_only_pytorch_model_bin_is_refused_with_how_to_convert(pickled_bert):
    config = transformer_config(pickled_bert)
    with pytest.raises(ConfigError) as raised:
        Tagger.build(config, synthetic_examples("train")[:20])
    message = str(raised.value)
    assert "pytorch_model.bin" in message and "safetensors" in message
    assert f"AutoModel.from_pretrained('{pickled_bert}').save_pretrained('{pickled_bert}')" in message


def test_an_encoder_config_naming_a_pickled_weights_file_is_refused(pickled_bert, bert_dir):
    """transformers reads a ``transformers_weights`` file named in config.json even with
    use_safetensors=True; nerkit refuses it."""
    shutil.copy(bert_dir / "model.safetensors", pickled_bert / "model.safetensors")
    (pickled_bert / "pytorch_model.bin").rename(pickled_bert / "adapter_model.bin")
    description = json.loads((pickled_bert / "config.json").read_text(encoding="utf-8"))
    (pickled_bert / "config.json").write_text(json.dumps({**description, "transformers_weights": "adapter_model.bin"}),
                                              encoding="utf-8")
    config = transformer_config(pickled_bert)
    with pytest.raises(ConfigError, match="adapter_model.bin"):
        Tagger.build(config, synthetic_examples("train")[:20])


def test_an_unknown_dtype_in_the_encoders_config_is_refused(saved_transformer, tmp_path):
    """What hypothesis found: one flipped byte turned "float32" into "float22" in encoder/config.json,
    and transformers' AttributeError escaped the load as a traceback."""
    copy = tmp_path / "model"
    shutil.copytree(saved_transformer, copy)
    (copy / modeldir.MANIFEST_FILE).unlink()  # without a manifest only the consistency checks run
    encoder_config = copy / "encoder" / "config.json"
    encoder_config.write_text(encoder_config.read_text(encoding="utf-8").replace('"float32"', '"float22"'),
                              encoding="utf-8")
    with pytest.raises(NerkitError, match="its files cannot rebuild the model .*AttributeError.*float22"):
        Tagger.from_pretrained(copy)

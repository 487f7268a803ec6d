"""The export's description, ``export.json``, beside the graphs: what the runtime needs to feed
them and to tell a stale export from a current one.

    {"format_version": 2, "nerkit_version": "0.1.0", "torch_version": "2.13.0", "opset": 17,
     "encoder": "bilstm", "head": "crf", "inputs": ["word_ids", ...], "outputs": ["emissions"],
     "files": {"fp32": "model.onnx", "int8": "model.int8.onnx"},
     "weights_sha256": "...", "graph_sha256": {"fp32": "...", "int8": "..."},
     "verified_max_difference": 1.2e-06,
     "int8": {"method": "static", "per_channel": true, "calibration_file": "train.txt",
              "calibration_sentences": 256, ...}}

``int8`` says how the int8 graph was made (``nerkit/export/quantize.py``; absent without one);
the runtime does not read it: either graph runs the same way.

``head`` names the head whose ``decode_scores`` turns the graph's ``outputs`` into spans;
``weights_sha256`` is the SHA-256 of the model directory's ``model.safetensors`` at export and
``graph_sha256`` that of each graph file: the export is bound to its weights and to its graphs, so
a ``model.onnx`` copied from another model, or a truncated one, is refused before ONNX Runtime
reads it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nerkit.atomic import atomic_write_text
from nerkit import extras
from nerkit.data.untrusted import read_json
from nerkit.errors import NerkitError
from nerkit.modeldir import WEIGHTS_FILE

EXPORT_SUBDIR = "onnx"  # inside the model directory: where `nerkit export` writes and the runtime looks
MANIFEST_FILE = "export.json"
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
TOKENIZER_FILE = "tokenizer.json"  # a transformer's fast tokenizer, for featurizing without torch
# 2: the BiLSTM graph reads characters once per distinct token (char_ids, token_index); 3: graph_sha256;
# 4: featurizer and decoding (predicting without torch)
FORMAT_VERSION = 4


def require(purpose: str, *modules: str) -> None:
    """Import the optional packages of the ``onnx`` extra, or say how to install them."""
    for module in modules:
        extras.require(module, "onnx", purpose)


def default_export_dir(model_dir: str | Path) -> Path:
    return Path(model_dir) / EXPORT_SUBDIR


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model_dir: str | Path) -> str:
    return file_sha256(Path(model_dir) / WEIGHTS_FILE)


# The fields the runtime reads, with their JSON types: an export.json missing one is refused whole.
REQUIRED_FIELDS = {"encoder": str, "head": str, "inputs": list, "outputs": list, "files": dict,
                   "weights_sha256": str, "graph_sha256": dict, "featurizer": dict, "decoding": dict}


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What an export description of the current format lacks or holds of the wrong type."""
    for name, kind in REQUIRED_FIELDS.items():
        if not isinstance(manifest.get(name), kind):
            return f"its field {name!r} is {'missing' if name not in manifest else 'not a ' + kind.__name__}"
    for name in ("inputs", "outputs"):
        if not manifest[name] or not all(isinstance(value, str) for value in manifest[name]):
            return f"its field {name!r} is not a list of tensor names"
    for precision, file in manifest["files"].items():
        # A bare file name: the graphs lie beside export.json, never elsewhere.
        if not isinstance(file, str) or file != Path(file).name or file in ("", ".", ".."):
            return f"files.{precision} is {file!r}, not the name of a file beside {MANIFEST_FILE}"
        if not isinstance(manifest["graph_sha256"].get(precision), str):
            return f"graph_sha256 lacks the {precision} graph"
    return None


def read_manifest(export_dir: Path, model_dir: Path) -> dict[str, Any]:
    """The manifest of ``export_dir``, refused when it is missing, unreadable or stale (exported
    from other weights than ``model_dir``'s)."""
    path = export_dir / MANIFEST_FILE
    again = again_command(model_dir, export_dir)
    if not path.is_file():
        raise NerkitError(f"{export_dir}: no ONNX export of the model {model_dir} (no {MANIFEST_FILE}); "
                          f"run {again} first, or use --runtime torch")
    try:
        manifest = read_json(path)
    except ValueError as error:
        raise NerkitError(f"{path}: not a readable export description ({error}); run {again} again") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise NerkitError(f"{path}: export format {version!r}, not the one this nerkit reads ({FORMAT_VERSION}); "
                          f"run {again} again")
    problem = manifest_problem(manifest)
    if problem is not None:
        raise NerkitError(f"{path}: not a complete export description ({problem}); run {again} again")
    if manifest.get("weights_sha256") != weights_sha256(model_dir):
        raise NerkitError(f"{export_dir} was exported from other weights than {model_dir / WEIGHTS_FILE} (the model "
                          f"was trained again or replaced after `nerkit export`); run {again} again")
    return manifest


def again_command(model_dir: Path, export_dir: Path) -> str:
    """The command that writes the export ``--runtime onnx`` looks for in ``export_dir``."""
    return f"`nerkit export {model_dir}" + ("" if export_dir == default_export_dir(model_dir)
                                           else f" --output {export_dir}") + "`"


def checked_graph(export_dir: Path, model_dir: Path, manifest: dict[str, Any], precision: str) -> Path | None:
    """The graph file of ``precision`` (None when the export has none), refused unless it is the
    file exported with this description (its SHA-256): copied from another model or truncated,
    it would compute other scores, or none."""
    name = manifest["files"].get(precision)
    if name is None:
        return None
    path = export_dir / name
    if not path.is_file() or file_sha256(path) != manifest["graph_sha256"][precision]:
        state = "is missing" if not path.is_file() else "is not the graph this export wrote (another SHA-256)"
        raise NerkitError(f"{path} {state}: it was changed, truncated or copied from another export after "
                          f"`nerkit export`; run {again_command(model_dir, export_dir)} again")
    return path


def write_manifest(export_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``export.json`` for the graphs named in ``manifest["files"]``, with their SHA-256."""
    path = export_dir / MANIFEST_FILE
    hashes = {precision: file_sha256(export_dir / name) for precision, name in manifest["files"].items()}
    atomic_write_text(path, json.dumps({"format_version": FORMAT_VERSION, **manifest, "graph_sha256": hashes},
                                       indent=2) + "\n")
    return path

"""The export's description, ``export.json``, beside the graphs: what the runtime needs to feed
them and to tell a stale export from a current one.

    {"format_version": 2, "nerkit_version": "0.1.0", "torch_version": "2.13.0", "opset": 17,
     "encoder": "bilstm", "head": "crf", "inputs": ["word_ids", ...], "outputs": ["emissions"],
     "files": {"fp32": "model.onnx", "int8": "model.int8.onnx"},
     "weights_sha256": "...", "verified_max_difference": 1.2e-06}

``head`` names the head whose ``decode_scores`` turns the graph's ``outputs`` into spans;
``weights_sha256`` is the SHA-256 of the model directory's ``model.safetensors`` at export.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

from nerkit.atomic import atomic_write_text
from nerkit.errors import NerkitError
from nerkit.tagger import WEIGHTS_FILE

EXPORT_SUBDIR = "onnx"  # inside the model directory: where `nerkit export` writes and the runtime looks
MANIFEST_FILE = "export.json"
GRAPH_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
FORMAT_VERSION = 2  # 2: the BiLSTM graph reads characters once per distinct token (char_ids, token_index)
EXTRA = 'pip install "nerkit[onnx]"'


def require(purpose: str, *modules: str) -> None:
    """Import the optional packages of the ``onnx`` extra, or say how to install them."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        packages = " and ".join(modules)
        raise NerkitError(f"{purpose} needs the optional package{'s' if len(modules) > 1 else ''} {packages} "
                          f"({', '.join(missing)} missing): {EXTRA}")


def default_export_dir(model_dir: str | Path) -> Path:
    return Path(model_dir) / EXPORT_SUBDIR


def weights_sha256(model_dir: str | Path) -> str:
    digest = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(export_dir: Path, model_dir: Path) -> dict[str, Any]:
    """The manifest of ``export_dir``, refused when it is missing, unreadable or stale (exported
    from other weights than ``model_dir``'s)."""
    path = export_dir / MANIFEST_FILE
    again = f"`nerkit export {model_dir}" + ("" if export_dir == default_export_dir(model_dir)
                                            else f" --output {export_dir}") + "`"
    if not path.is_file():
        raise NerkitError(f"{export_dir}: no ONNX export of the model {model_dir} (no {MANIFEST_FILE}); "
                          f"run {again} first, or use --runtime torch")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NerkitError(f"{path}: not a readable export description ({error}); run {again} again") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise NerkitError(f"{path}: export format {version!r}, not the one this nerkit reads ({FORMAT_VERSION}); "
                          f"run {again} again")
    if manifest.get("weights_sha256") != weights_sha256(model_dir):
        raise NerkitError(f"{export_dir} was exported from other weights than {model_dir / WEIGHTS_FILE} (the model "
                          f"was trained again or replaced after `nerkit export`); run {again} again")
    return manifest


def write_manifest(export_dir: Path, manifest: dict[str, Any]) -> Path:
    path = export_dir / MANIFEST_FILE
    atomic_write_text(path, json.dumps({"format_version": FORMAT_VERSION, **manifest}, indent=2) + "\n")
    return path

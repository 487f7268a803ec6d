"""``--runtime onnx``: the exported graph run by ONNX Runtime in place of the PyTorch encoder and
head forward. It is set as the model's ``score_runtime``: the model still tokenizes, featurizes
(transformer windows included) and decodes, from the scores the graph gives."""

from __future__ import annotations

from pathlib import Path

import torch

from nerkit.devices import check_precision, resolve_device
from nerkit.errors import NerkitError
from nerkit.export.graph import inference_session
from nerkit.export.manifest import checked_graph, default_export_dir, read_manifest, require


class OnnxScores:
    """An encoded batch -> the head's decoding scores, by ONNX Runtime."""

    def __init__(self, session, inputs: list[str], outputs: list[str], path: Path):
        self.session, self.inputs, self.outputs, self.path = session, inputs, outputs, path

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feeds = {name: batch[name].cpu().numpy() for name in self.inputs}
        values = self.session.run(self.outputs, feeds)
        return {name: torch.from_numpy(value) for name, value in zip(self.outputs, values)}

    def __repr__(self) -> str:
        return f"OnnxScores({self.path})"


def load_onnx_scores(model_dir: str | Path, export_dir: str | Path | None = None, *, device: str = "cpu",
                     precision: str = "fp32") -> OnnxScores:
    """The runtime for the export of ``model_dir`` in ``export_dir`` (default ``model_dir/onnx``):
    the fp32 or int8 graph, on the CPU (or a CUDA GPU with onnxruntime-gpu). Refuses a missing
    or stale export, saying to run ``nerkit export``."""
    require("--runtime onnx", "onnxruntime")
    import onnxruntime

    model_dir = Path(model_dir)
    export_dir = Path(export_dir) if export_dir is not None else default_export_dir(model_dir)
    manifest = read_manifest(export_dir, model_dir)
    if precision == "bf16":
        raise NerkitError("--precision bf16 is a PyTorch precision; the ONNX export runs fp32 or int8 "
                          "(--runtime torch for bf16)")
    available = onnxruntime.get_available_providers()
    gpu = "CUDAExecutionProvider" in available
    resolved = resolve_device(device) if device != "auto" else torch.device("cuda" if gpu and torch.cuda.is_available()
                                                                            else "cpu")
    check_precision(precision, resolved)
    if resolved.type == "cuda" and not gpu:
        raise NerkitError(f"--device {device} with --runtime onnx needs onnxruntime's CUDA build (onnxruntime-gpu); "
                          f"this onnxruntime has {', '.join(available)}. Use --device cpu or --runtime torch")
    providers = ([("CUDAExecutionProvider", {"device_id": resolved.index or 0}), "CPUExecutionProvider"]
                 if resolved.type == "cuda" else ["CPUExecutionProvider"])
    path = checked_graph(export_dir, model_dir, manifest, precision)
    if path is None:
        raise NerkitError(f"{export_dir}: this export has no {precision} graph (`nerkit export` writes an int8 one "
                          "unless --no-int8 is given or the encoder has no linear layer to quantize); use "
                          "--precision fp32, or export again")
    session = inference_session(path, providers)
    return OnnxScores(session, list(manifest["inputs"]), list(manifest["outputs"]), path)

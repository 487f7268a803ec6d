"""ONNX export of a trained model and the ONNX Runtime that predicts with it (optional extra:
``pip install "nerkit[onnx]"``).

    nerkit export runs/default                 # writes runs/default/onnx/
    nerkit predict texts.txt --model runs/default --runtime onnx [--precision int8]

    from nerkit import Tagger
    tagger = Tagger.from_pretrained("runs/default", runtime="onnx")

The graph computes the encoder and the head's decoding scores (``graph.py`` says why and how);
the runtime (``runtime.py``) featurizes and decodes around it in NumPy, without torch. onnx and
onnxruntime are imported only when an export is written or run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from nerkit.export.manifest import EXPORT_SUBDIR, MANIFEST_FILE

if TYPE_CHECKING:
    from nerkit.export.graph import DEFAULT_OPSET, SCORE_TOLERANCE, ExportSummary, export_onnx
    from nerkit.export.runtime import OnnxModel

__all__ = ["DEFAULT_OPSET", "EXPORT_SUBDIR", "MANIFEST_FILE", "SCORE_TOLERANCE", "ExportSummary", "OnnxModel",
           "export_onnx"]


def __getattr__(name: str):
    # Writing an export needs torch (graph.py); running one does not (runtime.py): each is imported
    # when first used, so the runtime never imports torch.
    home = {"OnnxModel": "nerkit.export.runtime"}.get(name, "nerkit.export.graph")
    if name in __all__:
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

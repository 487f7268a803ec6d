"""ONNX export of a trained model and the ONNX Runtime that predicts with it (optional extra:
``pip install "nerkit[onnx]"``).

    nerkit export runs/default                 # writes runs/default/onnx/
    nerkit predict texts.txt --model runs/default --runtime onnx [--precision int8]

    from nerkit import Tagger
    tagger = Tagger.from_pretrained("runs/default", runtime="onnx")

The graph computes the encoder and the head's decoding scores; nerkit keeps tokenizing,
featurizing and decoding (``graph.py`` says why and how). onnx and onnxruntime are imported
only when an export is written or run.
"""

from nerkit.export.graph import DEFAULT_OPSET, SCORE_TOLERANCE, ExportSummary, export_onnx
from nerkit.export.manifest import EXPORT_SUBDIR, MANIFEST_FILE
from nerkit.export.runtime import OnnxScores, load_onnx_scores

__all__ = ["DEFAULT_OPSET", "EXPORT_SUBDIR", "MANIFEST_FILE", "SCORE_TOLERANCE", "ExportSummary", "OnnxScores",
           "export_onnx", "load_onnx_scores"]

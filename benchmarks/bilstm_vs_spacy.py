"""Prediction words/s from raw text: nerkit's BiLSTM-CRF (PyTorch, ONNX Runtime; fp32 and int8)
beside spaCy's CPU "efficiency" NER pipeline trained on the same CoNLL-2003 data, one thread each,
in this one process, interleaved, medians of the repeats; and each system's test F1.

    bash benchmarks/spacy_baseline.sh train                 # spaCy's model, in its own venv
    nerkit train --config configs/conll-bilstm-crf.yaml     # nerkit's model
    python benchmarks/bilstm_vs_spacy.py --model runs/conll-bilstm-crf [--repeats 5] [--stages]
                                         [--limit N] [--onnx-ops] [--without-spacy]

Without spaCy importable, the script runs itself again with the Python of the virtual environment
``spacy_baseline.sh`` made (benchmarks/results/spacy-venv), where spaCy is; --without-spacy times
nerkit's modes alone, each against nerkit torch fp32.

The ONNX modes: fp32, int8 dynamic (``nerkit export``'s default) and int8 static (``--int8 static``,
calibrated on the first 256 sentences of the training file beside the test file). --onnx-ops
prints each ONNX graph's time per operator (ONNX Runtime's profiler): the LSTM's share.

Input: every CoNLL-2003 test sentence as raw text (its tokens joined by spaces), given as one
list. Each system returns, per text, its entities as (start, end, label) character offsets; the
time covers tokenizing, featurizing, the network, decoding and those offsets. F1: strict entity
F1 on the gold tokens of the test file (spaCy reads them as pre-tokenized Docs).
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"  # before numpy (spaCy's thinc) and torch start their thread pools

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from nerkit import Tagger, read_examples  # noqa: E402

SPACY_PYTHON = Path(__file__).parent / "results" / "spacy-venv" / "bin" / "python"
SPACY_MODEL = Path(__file__).parent / "results" / "spacy" / "model" / "model-best"


def nerkit_entities(tagger: Tagger, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    return [[(entity["start"], entity["end"], entity["type"]) for entity in record["entities"]]
            for record in tagger.predict(texts)]


def spacy_entities(nlp, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    return [[(entity.start_char, entity.end_char, entity.label_) for entity in doc.ents] for doc in nlp.pipe(texts)]


def stage_seconds(tagger: Tagger, texts: list[str]) -> dict[str, float]:
    """Where nerkit's time goes: the steps of ``tagger.predict`` run one after the other over all
    texts (the same batches), each timed on its own."""
    from nerkit.data.batching import budget_batches
    from nerkit.data.text import example_from_text
    from nerkit.predict.predictor import entities_with_offsets

    seconds: dict[str, float] = {}

    def timed(stage, function, *args):
        started = time.perf_counter()
        result = function(*args)
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - started
        return result

    encoder, head = tagger.encoder, tagger.head
    examples = timed("tokenizing", lambda: [example_from_text(text) for text in texts])
    spans = [None] * len(examples)
    with torch.inference_mode():
        for batch in budget_batches([len(example) for example in examples], token_budget=4000, max_sentences=128):
            features = timed("featurizing", encoder.featurize, [examples[i] for i in batch])
            timed("character CNN", encoder.word_features._char_features, features["char_ids"])
            vectors = timed("character CNN + LSTM", encoder, features)
            scores = timed("emissions", head.decoding_scores, vectors, features)
            for i, row in zip(batch, timed("Viterbi, marginals, spans", head.decode_scores, scores, features)):
                spans[i] = row
    timed("offsets", lambda: [entities_with_offsets(e, row) for e, row in zip(examples, spans)])
    seconds["LSTM (and embeddings)"] = seconds.pop("character CNN + LSTM") - seconds["character CNN"]
    return seconds


def load_spacy(path: Path):
    import spacy

    return spacy.load(path)


def operator_shares(path: Path, tagger: Tagger, examples, passes: int) -> dict[str, float]:
    """Each operator's share of the graph's kernel time over ``passes`` passes of the featurized
    examples (in the batches tagger.predict makes), largest first."""
    import json
    from collections import Counter

    import onnxruntime

    from nerkit.data.batching import budget_batches

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.enable_profiling, options.log_severity_level = 1, True, 3
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="nerkit-profile-")) / "ort")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [graph_input.name for graph_input in session.get_inputs()]
    batches = [tagger.encoder.featurize([examples[i] for i in batch]) for batch in
               budget_batches([len(example) for example in examples], token_budget=4000, max_sentences=128)]
    for _ in range(passes):
        for features in batches:
            session.run(None, {name: features[name].numpy() for name in inputs})
    profile = Path(session.end_profiling())
    microseconds = Counter()
    for event in json.loads(profile.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            microseconds[event["args"]["op_name"]] += event["dur"]
    profile.unlink()
    profile.parent.rmdir()
    total = sum(microseconds.values())
    return {op: time / total for op, time in microseconds.most_common()}


def f1(gold: list[set], predicted: list[set]) -> float:
    true = sum(len(g & p) for g, p in zip(gold, predicted))
    found, wanted = sum(map(len, predicted)), sum(map(len, gold))
    return 200 * true / (found + wanted) if found + wanted else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="nerkit BiLSTM model directory")
    parser.add_argument("--spacy", type=Path, default=SPACY_MODEL, help="spaCy pipeline directory")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/conll2003"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", action="store_true", help="also time each step of nerkit torch fp32")
    parser.add_argument("--limit", type=int, default=None, help="test sentences to time and score (default: all)")
    parser.add_argument("--onnx-ops", action="store_true", help="also print each ONNX graph's time per operator")
    parser.add_argument("--without-spacy", action="store_true", help="time nerkit's modes only (no spaCy model)")
    args = parser.parse_args()
    if importlib.util.find_spec("spacy") is None and not args.without_spacy:
        if not SPACY_PYTHON.is_file():
            raise SystemExit("spaCy is not installed here: run `bash benchmarks/spacy_baseline.sh train` first")
        os.execv(SPACY_PYTHON, [str(SPACY_PYTHON), __file__, *sys.argv[1:]])
    torch.set_num_threads(1)

    test = read_examples(args.data / "test.txt")[: args.limit]
    texts = [" ".join(example.tokens) for example in test]
    words = sum(len(example) for example in test)
    nlp = None if args.without_spacy else load_spacy(args.spacy)

    from nerkit.export import export_onnx

    export_dir, static_dir = (Path(tempfile.mkdtemp(prefix=f"nerkit-onnx-{kind}-")) for kind in ("dynamic", "static"))
    export_onnx(args.model, export_dir)
    export_onnx(args.model, static_dir, int8="static", calibration=args.data / "train.txt")
    systems = {
        "nerkit torch fp32": lambda: Tagger.from_pretrained(args.model),
        "nerkit torch int8": lambda: Tagger.from_pretrained(args.model, precision="int8"),
        "nerkit onnx fp32": lambda: Tagger.from_pretrained(args.model, runtime="onnx", export_dir=export_dir),
        "nerkit onnx int8": lambda: Tagger.from_pretrained(args.model, runtime="onnx", export_dir=export_dir,
                                                           precision="int8"),
        "nerkit onnx int8 static": lambda: Tagger.from_pretrained(args.model, runtime="onnx", export_dir=static_dir,
                                                                  precision="int8"),
    }
    runners = {name: (lambda tagger: lambda: nerkit_entities(tagger, texts))(load()) for name, load in systems.items()}
    if nlp is not None:
        runners["spaCy efficiency"] = lambda: spacy_entities(nlp, texts)

    # Accuracy first: strict entity F1 on the gold tokens.
    gold = [{(span.start, span.end, span.type) for span in example.spans} for example in test]
    scores = {}
    for name, load in systems.items():
        spans = load().predict_examples(test)
        scores[name] = f1(gold, [{(s.start, s.end, s.type) for s in row} for row in spans])
    if nlp is not None:
        from spacy.tokens import Doc

        docs = nlp.pipe(Doc(nlp.vocab, words=example.tokens) for example in test)
        scores["spaCy efficiency"] = f1(gold, [{(e.start, e.end, e.label_) for e in doc.ents} for doc in docs])

    for run in runners.values():
        run()  # warm up
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.repeats):  # interleaved: drift in the machine's load hits every system alike
        for name, run in runners.items():
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)

    baseline = "nerkit torch fp32" if nlp is None else "spaCy efficiency"
    base_speed = words / statistics.median(timings[baseline])
    print(f"CoNLL-2003 test as raw text: {len(texts)} texts, {words} words; one thread each; torch "
          f"{torch.__version__}" + ("" if nlp is None else f", spaCy {sys.modules['spacy'].__version__}")
          + f"; median of {args.repeats} interleaved runs")
    column = "vs spaCy" if nlp is not None else "vs torch"
    print(f"{'system':24} {'words/s':>9} {column:>9} {'test F1':>8}   runs (words/s)")
    for name, runs in timings.items():
        speed = words / statistics.median(runs)
        each = ", ".join(f"{words / seconds:,.0f}" for seconds in runs)
        print(f"{name:24} {speed:9,.0f} {speed / base_speed:8.2f}x {scores[name]:8.2f}   {each}")
    if args.onnx_ops:
        tagger = systems["nerkit torch fp32"]()
        for name, path in (("onnx fp32", export_dir / "model.onnx"), ("onnx int8", export_dir / "model.int8.onnx"),
                           ("onnx int8 static", static_dir / "model.int8.onnx")):
            shares = operator_shares(path, tagger, test, args.repeats)
            print(f"{name} graph, time per operator (ONNX Runtime profiler, {args.repeats} passes): " + ", ".join(
                f"{op} {100 * share:.1f}%" for op, share in list(shares.items())[:6]))
    if args.stages:
        tagger = systems["nerkit torch fp32"]()
        runs = [stage_seconds(tagger, texts) for _ in range(args.repeats)]
        medians = {stage: statistics.median(run[stage] for run in runs) for stage in runs[0]}
        total = sum(medians.values())
        print(f"nerkit torch fp32, step by step (median of {args.repeats}; {words / total:,.0f} words/s in all):")
        for stage, seconds in sorted(medians.items(), key=lambda item: -item[1]):
            print(f"  {stage:28} {seconds:6.2f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()

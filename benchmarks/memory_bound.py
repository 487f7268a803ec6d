"""Peak memory of prediction on hostile inputs: one line of 1 KB to 1 MB of distinct words holding
one token a tenth of its size, and one token of 10 to 100,000 characters among 200 words, through
the BiLSTM with every head (and, with ``--encoders bilstm,transformer``, a tiny BERT built here).

Each case runs in a fresh subprocess with one torch thread: it loads an untrained model (built
and saved once, default BiLSTM sizes), makes the input, and measures resident memory before
``tagger.predict([line])`` and its peak during it (Linux's VmRSS and VmHWM, the high-water mark
reset just before). ``peak MB`` is the process's peak, ``growth MB`` the peak over the memory in
use before (what predicting this one line cost), and ``ratio`` that growth over the line's size
in bytes: linear
growth keeps it flat from one size to the next, quadratic growth multiplies it by the size step.
Untrained weights are the worst case for the span head (about half its cells are positive), so
its entity count is the most a line can return; trained models return far fewer.

A case that needs more than ``--limit-mb`` of address space (RLIMIT_AS) or more than
``--timeout`` seconds is reported as such instead of taking the machine down.

    python benchmarks/memory_bound.py [--encoders bilstm,transformer] [--heads softmax,crf,span] [--limit-mb 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KB = 1024
LINE_SIZES = (KB, 10 * KB, 100 * KB, KB * KB)
TOKEN_SIZES = (10, 100, 1000, 10_000, 100_000)
WORDS_AROUND_TOKEN = 200
FAILED = {3: "over --limit-mb", 124: "over --timeout"}


def distinct_words(count: int, seed: int = 0) -> list[str]:
    """``count`` different words of 3 to 9 letters, some capitalised (the character CNN's worst
    case: every word is a row of the batch's character ids)."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < count:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9)))
        words.add(word.capitalize() if rng.random() < 0.2 else word)
    return sorted(words, key=lambda _: rng.random())


def long_token(characters: int) -> str:
    return ("Xy7" * (characters // 3 + 1))[:characters]  # letters and digits: one token for the tokenizer


def make_line(kind: str, size: int) -> str:
    """``line``: ``size`` bytes of distinct words with one token of ``size / 10`` characters in the
    middle; ``token``: one token of ``size`` characters among 200 distinct words."""
    if kind == "token":
        words = distinct_words(WORDS_AROUND_TOKEN)
        return " ".join(words[:100] + [long_token(size)] + words[100:])
    token = long_token(max(1, size // 10))
    words = distinct_words(max(1, (size - len(token)) // 7))  # 6 letters and a space on average
    line = " ".join(words[:len(words) // 2] + [token] + words[len(words) // 2:])
    return line[:size].rsplit(" ", 1)[0] if len(line) > size else line


# ----------------------------------------------------------------------------- one case (child)


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/self/status: this benchmark needs Linux")


def run_case(model: Path, kind: str, size: int) -> None:
    import torch

    from nerkit import Tagger

    torch.set_num_threads(1)
    tagger = Tagger.from_pretrained(model)
    line = make_line(kind, size)
    tagger.predict([line[:200]])  # first call's one-off allocations (kernels, caches) out of the growth
    # The high-water mark starts afresh at the memory in use now (Linux: 5 > clear_refs resets
    # VmHWM), so the peak is that of predicting this line, not of loading the model.
    Path("/proc/self/clear_refs").write_text("5")
    before = status_kb("VmRSS")
    started = time.perf_counter()
    try:
        entities = len(tagger.predict([line])[0]["entities"])
    except (MemoryError, RuntimeError) as error:  # torch reports a failed allocation as RuntimeError
        if isinstance(error, RuntimeError) and "alloc" not in str(error).lower():
            raise
        sys.exit(3)
    seconds = time.perf_counter() - started
    after = status_kb("VmHWM")
    print(json.dumps({"bytes": len(line.encode()), "before_kb": before, "peak_kb": after, "entities": entities,
                      "seconds": seconds}))


def measure(model: Path, kind: str, size: int, limit_mb: int, timeout: float) -> dict | str:
    def limit_address_space() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))

    command = [sys.executable, __file__, "--case", str(model), kind, str(size)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment,
                              preexec_fn=limit_address_space)
    except subprocess.TimeoutExpired:
        return FAILED[124]
    if done.returncode in FAILED:
        return FAILED[done.returncode]
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return f"failed ({last[0][:60]})"
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- models (parent)


def write_tiny_bert(directory: Path) -> Path:
    """A 2-layer BERT of hidden size 32 with a letter-level WordPiece vocabulary, random weights:
    no download, and every word splits into many pieces (the transformer's worst case)."""
    import torch
    import transformers

    directory.mkdir()
    letters = list(string.ascii_lowercase + string.digits)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters), *".,;:!?'\"()-"]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_models(encoder_names: list[str], heads: list[str], root: Path) -> dict[str, Path]:
    import torch

    from nerkit import Tagger, load_config
    from nerkit.data.synthetic import synthetic_examples

    encoders = {"bilstm": {}, "transformer": {}}
    encoders = {name: encoders[name] for name in encoder_names}
    if "transformer" in encoders:
        encoders["transformer"] = {"encoder.model": str(write_tiny_bert(root / "tiny-bert"))}
    models = {}
    for encoder, settings in encoders.items():
        for head in heads:
            torch.manual_seed(0)
            config = load_config(values={"encoder.type": encoder, **settings, "head.type": head,
                                         "output": str(root / "run")})
            examples = synthetic_examples("train", nested=head == "span")
            name = f"{encoder} {head}"
            models[name] = root / name.replace(" ", "-")
            Tagger.build(config, examples).save_pretrained(models[name])
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", default="softmax,crf,span")
    parser.add_argument("--encoders", default="bilstm", help="bilstm, transformer (a tiny BERT) or both")
    parser.add_argument("--kinds", default="line,token", help="line (1 KB to 1 MB), token (10 to 100,000 chars)")
    parser.add_argument("--max-size", type=int, default=KB * KB, help="skip inputs larger than this (bytes)")
    parser.add_argument("--limit-mb", type=int, default=4096, help="address space of one case")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds of one case")
    parser.add_argument("--case", nargs=3, metavar=("MODEL", "KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        model, kind, size = args.case
        return run_case(Path(model), kind, int(size))
    sizes = {"line": LINE_SIZES, "token": TOKEN_SIZES}
    for option, given, known in (("--encoders", args.encoders, ("bilstm", "transformer")),
                                 ("--heads", args.heads, ("softmax", "crf", "span")), ("--kinds", args.kinds, sizes)):
        unknown = [name for name in given.split(",") if name not in known]
        if unknown:
            parser.error(f"{option}: {', '.join(unknown)} unknown; expected some of {', '.join(known)}")
    with tempfile.TemporaryDirectory() as temporary:
        models = build_models(args.encoders.split(","), args.heads.split(","), Path(temporary))
        print(f"{'model':<20} {'case':<24} {'input':>10} {'peak MB':>8} {'growth MB':>10} {'ratio':>7} "
              f"{'entities':>9} {'seconds':>8}", flush=True)
        for name, model in models.items():
            for kind in args.kinds.split(","):
                for size in (size for size in sizes[kind] if size <= args.max_size):
                    case = f"{kind} of {size:,} " + ("bytes" if kind == "line" else "chars")
                    result = measure(model, kind, size, args.limit_mb, args.timeout)
                    if isinstance(result, str):
                        print(f"{name:<20} {case:<24} {'':>10} {result}", flush=True)
                        continue
                    growth = (result["peak_kb"] - result["before_kb"]) / KB
                    print(f"{name:<20} {case:<24} {result['bytes']:>10,} {result['peak_kb'] / KB:>8.0f} "
                          f"{growth:>10.1f} {growth * 2**20 / result['bytes']:>7.1f} {result['entities']:>9,} "
                          f"{result['seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()

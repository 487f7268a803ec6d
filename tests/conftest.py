"""Shared fixtures: tiny configurations, tiny corpora and trained tiny models.

Everything here keeps runs to seconds on a busy 2-core CPU: one torch thread (two threads
on two shared cores thrash; a 20-step run went from 0.2 s to 18 s), encoders of a few
thousand parameters and step-limited training.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch

# One intra-op thread for every test in this process; subprocesses get it from the environment.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# An encoder small enough to train in a second, big enough to learn the synthetic corpus a little.
TINY_ENCODER = {"encoder.hidden_size": 16, "encoder.word_dim": 16, "encoder.char_dim": 8,
                "encoder.char_filters": 8, "encoder.case_dim": 4}
TINY_TRAINING = {"training.progress": False, "training.token_budget": 200, "training.max_sentences": 16,
                 "training.cpu_threads": 1, "data.dev": None}
# Settings under which 100 steps reach a dev F1 of about 0.5 on the synthetic corpus, so that
# predictions contain entities (with dropout and the default learning rate they stay empty).
LEARNS_QUICKLY = {"training.learning_rate": 0.03, "encoder.dropout": 0.0, "encoder.word_dropout": 0.0,
                  "training.max_steps": 100}

# The same settings as `nerkit train --set` arguments.
TINY_SET_ARGS = [f"{key}={value}" for key, value in {**TINY_ENCODER, **TINY_TRAINING, **LEARNS_QUICKLY}.items()
                 if value is not None] + ["data.dev=null"]


def tiny_config(output: Path | str, **values: Any):
    """A validated ``Config`` with the tiny encoder and training settings; ``values`` use
    dotted keys with ``__`` for the dot (``training__max_steps=5``) or a ``dotted`` dict."""
    from nerkit import load_config

    dotted = {key.replace("__", "."): value for key, value in values.items()}
    return load_config(values={**TINY_ENCODER, **TINY_TRAINING, **dotted, "output": str(output)})


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def synthetic_train():
    from nerkit.data.synthetic import synthetic_examples

    return synthetic_examples("train")


@pytest.fixture(scope="session")
def synthetic_dev():
    from nerkit.data.synthetic import synthetic_examples

    return synthetic_examples("dev")


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> dict[str, Path]:
    """One trained tiny model directory per tagging head, trained once per session."""
    from nerkit import train

    models = {}
    for head in ("softmax", "crf"):
        output = tmp_path_factory.mktemp(f"model-{head}")
        train(tiny_config(output, head__type=head, **{k.replace(".", "__"): v for k, v in LEARNS_QUICKLY.items()}))
        models[head] = output
    return models


TINY_BERT_WORDS = ["the", "visited", "in", "on", "with", "and", "of", "said", "a", "to", "university", "bank", "city"]
TINY_BERT_PIECES = ["an", "##ge", "##la", "par", "##is", "ber", "##lin", "x", "##y", "##z", "##q", "mer", "##kel", "##s"]


def write_tiny_bert(directory: Path, *, layers: int = 2, context_free: bool = False) -> Path:
    """A 2-layer BERT with hidden size 32 and a WordPiece vocabulary written here, saved as a
    Hugging Face model directory (weights, config, tokenizer): offline and fast."""
    import transformers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    punctuation = list(".,;:!?'\"()-&$%")
    vocab = specials + TINY_BERT_WORDS + TINY_BERT_PIECES + letters + punctuation
    vocab = list(dict.fromkeys(vocab))
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizer(vocab=str(directory / "vocab.txt"), do_lower_case=True)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=512 if context_free else 128)
    torch.manual_seed(0)
    model = transformers.BertModel(config)
    if context_free:
        # No attention layers and no position signal: a word's vector depends on the word alone,
        # so windows of any size must merge to exactly the single-window result.
        with torch.no_grad():
            model.embeddings.position_embeddings.weight.zero_()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def tiny_vectors_like(settings: dict, folder: Path) -> dict[str, str]:
    """A .npy matrix of the configured dimension (and its word list, in the configured list's
    format) for a few synthetic-corpus words."""
    import numpy as np

    words = ["the", "paris", "london", "acme", "john"]
    np.save(folder / "vectors.npy", np.random.default_rng(0).normal(size=(len(words), settings["word_dim"])).astype("float32"))
    values = {"encoder.word_vectors": str(folder / "vectors.npy")}
    vocab = settings.get("word_vectors_vocab")
    if vocab:
        if vocab.endswith(".parquet"):
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({settings.get("word_vectors_vocab_column") or "index": words}), folder / "words.parquet")
            values["encoder.word_vectors_vocab"] = str(folder / "words.parquet")
        else:
            (folder / "words.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
            values["encoder.word_vectors_vocab"] = str(folder / "words.txt")
    return values


def untrained_tagger_dir(directory: Path) -> Path:
    """An untrained softmax tagger saved in ``directory``: its random tags give entities (and
    mistakes) to compare, quickly (serve, the pages, the browser)."""
    from nerkit import Tagger
    from nerkit.data.synthetic import synthetic_examples

    torch.manual_seed(0)
    Tagger.build(tiny_config(directory, head__type="softmax"), synthetic_examples("train")[:60]).save_pretrained(directory)
    return directory


@contextlib.contextmanager
def running(tagger, **settings):
    """``nerkit serve``'s application on a free port of 127.0.0.1, served by uvicorn in a thread; its URL."""
    from nerkit.serve import ServeSettings, bind, build_server, create_app

    server = build_server(create_app(tagger, model_name="tiny", settings=ServeSettings(**settings)),
                          log_level="warning")
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive(), "the server did not stop"

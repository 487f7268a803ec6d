"""Rules beside the model: loading and matching 100,000 phrase patterns over the CoNLL-2003 test
sentences, against a naive loop over patterns.

The phrases are made here, all distinct in any case: made-up names of one to three capitalised
syllable words, half of them case-insensitive, and 1,000 one- to three-token n-grams of the
test sentences so that there is something to find. Reported, each the median of --repeats runs in this one process
(one thread: matching is pure Python):

* load: reading and checking the pattern file and building the tries (``read_patterns`` +
  ``Rules``);
* matching words/s of ``Rules.matches`` alone (the model is not run), with the 100,000
  phrases, with 1,000 of them, and with 20 token patterns (regex, shape) added;
* the naive baseline: every pattern compared at every token position, on the 1,000-phrase
  subset only (on 100,000 it would take hours), and the ratio; the naive and the trie matches
  are checked to be the same.

    python benchmarks/pattern_throughput.py [--data ../shared/data/conll2003] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from nerkit import read_examples
from nerkit.data.text import tokenize
from nerkit.predict.rules import Rules, read_patterns

SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "vas", "qui", "bel", "dun", "sha", "pe", "rox", "zim", "ul", "gar", "fen"]
LABELS = ["PER", "ORG", "LOC", "MISC"]


def made_up_phrases(count: int, rng: random.Random, taken: set[str]) -> list[str]:
    """``count`` distinct phrases, none of them in ``taken`` in any case (each pattern can match)."""
    def word() -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()

    phrases: dict[str, str] = {}
    while len(phrases) < count:
        phrase = " ".join(word() for _ in range(rng.randint(1, 3)))
        if phrase.lower() not in taken:
            phrases.setdefault(phrase.lower(), phrase)
    return list(phrases.values())


def test_ngrams(sentences: list[list[str]], count: int, rng: random.Random) -> list[str]:
    """``count`` n-grams of the test sentences, distinct in any case."""
    ngrams: dict[str, str] = {}
    while len(ngrams) < count:
        tokens = rng.choice(sentences)
        start = rng.randrange(len(tokens))
        ngram = " ".join(tokens[start:start + rng.randint(1, 3)])
        ngrams.setdefault(ngram.lower(), ngram)
    return sorted(ngrams.values())


def pattern_lines(phrases: list[str], rng: random.Random) -> list[dict]:
    return [{"label": rng.choice(LABELS), "pattern": phrase, **({"case_sensitive": False} if index % 2 else {})}
            for index, phrase in enumerate(phrases)]


TOKEN_PATTERNS = ([{"label": "DATE", "pattern": [{"shape": "dddd"}]},
                   {"label": "MONEY", "pattern": [{"regex": r"^\d+(\.\d+)?$"}, {"lower": "million"}]},
                   {"label": "ORG", "pattern": [{"shape": "XXX"}, {"lower": "corp"}]}]
                  + [{"label": "MISC", "pattern": [{"lower": word}, {"shape": "Xxxxx"}]} for word in
                     ("the", "in", "of", "to", "a", "for", "on", "at", "by", "with", "from", "and", "said", "new",
                      "first", "last", "two")])


def naive_matches(patterns: list[tuple[list[str], bool, str]], tokens: list[str]) -> list[tuple[int, int, str]]:
    """Every pattern tried at every position, overlaps then resolved as ``Rules.matches`` does."""
    lowered = [token.lower() for token in tokens]
    found = []
    for order, (phrase, case_sensitive, label) in enumerate(patterns):
        keys = tokens if case_sensitive else lowered
        for start in range(len(tokens) - len(phrase) + 1):
            if keys[start:start + len(phrase)] == phrase:
                found.append((start, start + len(phrase), order, label))
    found.sort(key=lambda match: (match[0] - match[1], match[0], match[2]))
    taken, kept = [False] * len(tokens), []
    for start, end, _, label in found:
        if not any(taken[start:end]):
            taken[start:end] = [True] * (end - start)
            kept.append((start, end, label))
    return sorted(kept)


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/conll2003"))
    parser.add_argument("--phrases", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)

    sentences = [example.tokens for example in read_examples(args.data / "test.txt") if len(example)]
    words = sum(map(len, sentences))
    found_in_test = test_ngrams(sentences, 1_000, rng)
    phrases = made_up_phrases(args.phrases - 1_000, rng, {ngram.lower() for ngram in found_in_test}) + found_in_test
    rng.shuffle(phrases)
    lines = pattern_lines(phrases, rng)
    subset = lines[: args.subset]

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "patterns.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        load_seconds, rules = timed(lambda: Rules(read_patterns(path)), args.repeats)
    small = Rules(read_patterns(subset))
    with_tokens = Rules(read_patterns(lines + TOKEN_PATTERNS))

    def match_all(some_rules: Rules):
        return [some_rules.matches(tokens) for tokens in sentences]

    full_seconds, full_found = timed(lambda: match_all(rules), args.repeats)
    small_seconds, small_found = timed(lambda: match_all(small), args.repeats)
    token_seconds, _ = timed(lambda: match_all(with_tokens), args.repeats)
    naive_patterns = [([t if line.get("case_sensitive", True) else t.lower() for t in tokenize(line["pattern"])[0]],
                       line.get("case_sensitive", True), line["label"]) for line in subset]
    naive_seconds, naive_found = timed(lambda: [naive_matches(naive_patterns, tokens) for tokens in sentences],
                                       args.repeats)
    same = naive_found == [[(s.start, s.end, s.type) for s in spans] for spans in small_found]

    print(f"CoNLL-2003 test: {len(sentences)} sentences, {words} words; {len(lines)} phrase patterns "
          f"(half case-insensitive); medians of {args.repeats}, one thread")
    print(f"load {len(lines)} patterns (read, check, build tries): {load_seconds:.2f} s")
    print(f"match, trie, {len(lines)} phrases: {words / full_seconds:,.0f} words/s "
          f"({sum(map(len, full_found))} entities)")
    print(f"match, trie, {len(lines)} phrases + {len(TOKEN_PATTERNS)} token patterns: {words / token_seconds:,.0f} "
          "words/s")
    print(f"match, trie, {len(subset)} phrases: {words / small_seconds:,.0f} words/s")
    print(f"match, naive loop over patterns, {len(subset)} phrases: {words / naive_seconds:,.0f} words/s "
          f"(same matches as the trie: {same})")
    print(f"trie vs naive, both with {len(subset)} phrases: {naive_seconds / small_seconds:.0f}x faster")
    print(f"trie with {len(lines)} phrases vs naive with {len(subset)}: {naive_seconds / full_seconds:.0f}x faster; "
          f"naive on {len(lines)} would be about {naive_seconds * len(lines) / len(subset) / 60:.0f} min")


if __name__ == "__main__":
    main()

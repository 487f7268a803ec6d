"""Build the data of the long-tail loss study (docs/imbalance.md) into benchmarks/results/data/.

    python benchmarks/longtail_data.py

1. ``conll2003-longtail/train.txt``: a long-tailed copy of the CoNLL-2003 training set
   (``../shared/data/conll2003/train.txt``). Dev and test stay the full, balanced CoNLL files.

   Rule. Types are ranked by the retention the study aims at, rarest first:
   MISC < ORG < LOC < PER (targets 3 %, 10 %, 30 %, 100 % of the original entity counts;
   note that this is not the order of the original counts, where LOC 7,140 > PER 6,600).
   A sentence without entities is always kept. A sentence with entities is kept with the
   probability p[r] of its rarest type r (the first of MISC, ORG, LOC, PER that it contains).
   Draws: ``random.Random(SEED)``, one ``random()`` per sentence in file order
   (``-DOCSTART-`` blocks are not sentences), for every sentence, entity-less ones
   included; the sentence is kept iff the draw is < p (p = 1 for no entities).

   The p values are solved from the original counts so that the *expected* counts of
   MISC, ORG and LOC hit 3 %, 10 % and 30 % exactly, with p[PER] = 1:
   MISC entities occur only in MISC-rarest sentences, so p[MISC] = 0.03; ORG entities occur
   in ORG- and MISC-rarest sentences, so p[ORG] = (0.10 N_ORG - p[MISC] n[MISC, ORG]) /
   n[ORG, ORG]; likewise for LOC. They are rounded to 4 decimals. PER cannot stay at 100 %
   under this rule: two thirds of the PER mentions share a sentence with a rarer type.

2. ``weibo-char/{train,dev,test}.txt``: the Weibo NER corpus (``../shared/data/weibo``) at
   character level: each token ``CHAR + position digits`` becomes its first code point,
   tags unchanged (IOB2, types such as ``PER.NAM``), ``TOKEN<TAB>TAG`` lines.

Everything goes to benchmarks/results/data/ (git-ignored: the data must never be committed).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"
OUT = HERE / "results" / "data"

SEED = 2003
RARITY = ("MISC", "ORG", "LOC", "PER")  # rarest first
TARGET = {"MISC": 0.03, "ORG": 0.10, "LOC": 0.30, "PER": 1.00}


def read_conll(path: Path) -> list[list[str]]:
    """Sentences as lists of raw lines (``-DOCSTART-`` blocks dropped)."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(line)
    if current:
        sentences.append(current)
    return sentences


def entity_types(lines: list[str]) -> list[str]:
    """Types of the entities of one sentence (a chunk starts at B-X, or at I-X after a different tag)."""
    types, previous = [], None
    for line in lines:
        tag = line.split()[-1]
        if tag == "O":
            previous = None
            continue
        prefix, entity_type = tag.split("-", 1)
        if prefix == "B" or entity_type != previous:
            types.append(entity_type)
        previous = entity_type
    return types


def rarest(types: list[str]) -> str | None:
    return min(types, key=RARITY.index) if types else None


def keep_probabilities(sentences: list[list[str]]) -> dict[str, float]:
    """Solve p[r] so that the expected count of every type but PER hits its target."""
    totals = Counter()
    by_group: dict[str, Counter] = {r: Counter() for r in RARITY}  # by_group[r][t]: t-entities in r-rarest sentences
    for lines in sentences:
        types = entity_types(lines)
        totals.update(types)
        if types:
            by_group[rarest(types)].update(types)
    p: dict[str, float] = {"PER": 1.0}
    for t in RARITY[:-1]:  # MISC, then ORG, then LOC
        wanted = TARGET[t] * totals[t] - sum(p[r] * by_group[r][t] for r in p if r != "PER")
        p[t] = round(wanted / by_group[t][t], 4)
    return {r: p[r] for r in RARITY}


def build_conll() -> None:
    source = SHARED / "conll2003" / "train.txt"
    sentences = read_conll(source)
    p = keep_probabilities(sentences)
    rng = random.Random(SEED)
    kept, before, after = [], Counter(), Counter()
    groups_before, groups_after = Counter(), Counter()
    tokens_before = tokens_after = 0
    for lines in sentences:
        types = entity_types(lines)
        group = rarest(types) or "none"
        draw = rng.random()  # one draw per sentence, in file order, always
        keep = draw < (p[group] if types else 1.0)
        before.update(types)
        groups_before[group] += 1
        tokens_before += len(lines)
        if keep:
            kept.append(lines)
            after.update(types)
            groups_after[group] += 1
            tokens_after += len(lines)
    target = OUT / "conll2003-longtail"
    target.mkdir(parents=True, exist_ok=True)
    (target / "train.txt").write_text("\n\n".join("\n".join(lines) for lines in kept) + "\n", encoding="utf-8")

    print(f"CoNLL-2003 long-tailed training set -> {target / 'train.txt'}")
    print(f"  source {source}")
    print("  rule: keep a sentence without entities; keep a sentence with entities iff u < p[rarest type],")
    print(f"        rarest = first of {' < '.join(RARITY)} present; u = random.Random({SEED}).random(),")
    print("        one draw per sentence (all sentences, file order, -DOCSTART- blocks excluded)")
    print("  p: " + ", ".join(f"{r} {p[r]:.4f}" for r in RARITY))
    print(f"  sentences {sum(groups_before.values())} -> {len(kept)}; tokens {tokens_before} -> {tokens_after}")
    print("  sentences by rarest type: " + ", ".join(
        f"{g} {groups_before[g]} -> {groups_after[g]}" for g in ("none", *RARITY)))
    print("  | type | original entities | long-tailed entities | kept | target |")
    print("  |---|---:|---:|---:|---:|")
    for t in sorted(before, key=lambda t: -before[t]):
        print(f"  | {t} | {before[t]:,} | {after[t]:,} | {100 * after[t] / before[t]:.1f} % | {100 * TARGET[t]:.0f} % |")
    print(f"  | all | {sum(before.values()):,} | {sum(after.values()):,} | "
          f"{100 * sum(after.values()) / sum(before.values()):.1f} % | |")


def build_weibo() -> None:
    target = OUT / "weibo-char"
    target.mkdir(parents=True, exist_ok=True)
    print(f"Weibo NER, character level -> {target}")
    for split in ("train", "dev", "test"):
        out_lines, counts, messages, characters = [], Counter(), 0, 0
        previous_blank = True
        for line in (SHARED / "weibo" / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                if not previous_blank:
                    out_lines.append("")
                previous_blank = True
                continue
            token, tag = line.split("\t")
            char = token[0]
            if char.isspace():
                sys.exit(f"weibo/{split}.txt: a token starts with whitespace ({token!r}); the CoNLL reader would split it")
            out_lines.append(f"{char}\t{tag}")
            characters += 1
            messages += previous_blank
            previous_blank = False
            prefix, _, entity_type = tag.partition("-")
            if prefix == "B" or (prefix == "I" and (len(out_lines) < 2 or not out_lines[-2]
                                                    or out_lines[-2].split("\t")[1][2:] != entity_type)):
                counts[entity_type] += 1
        (target / f"{split}.txt").write_text("\n".join(out_lines).rstrip("\n") + "\n", encoding="utf-8")
        print(f"  {split}: {messages} messages, {characters} characters, {sum(counts.values())} entities: "
              + ", ".join(f"{t} {n}" for t, n in counts.most_common()))


if __name__ == "__main__":
    build_conll()
    build_weibo()

"""Raw text or tokenized examples -> batched inference -> spans with character offsets.

Inputs are read as a stream and handled in chunks: each chunk is sorted by length and
batched under a token budget, and its results come out in input order before the next
chunk is read, so memory stays flat on files of any size.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from nerkit.data.batching import budget_batches, iterate_chunks
from nerkit.data.spans import Example, ScoredSpan
from nerkit.data.text import example_from_text

CHUNK = 2048  # inputs read ahead and sorted together


def predict_spans(tagger, examples: list[Example], *, token_budget: int = 4000,
                  max_sentences: int = 128) -> list[list[ScoredSpan]]:
    """Predicted spans of each example, in input order. Empty examples get no spans."""
    results: list[list[ScoredSpan]] = [[] for _ in examples]
    non_empty = [index for index, example in enumerate(examples) if len(example) > 0]
    lengths = tagger.encoder.input_lengths([examples[index] for index in non_empty]) if non_empty else []
    was_training = tagger.training
    tagger.eval()
    try:
        for batch_indices in budget_batches(lengths, token_budget=token_budget, max_sentences=max_sentences):
            batch_examples = [examples[non_empty[i]] for i in batch_indices]
            features = tagger.encoder.featurize(batch_examples)
            features = {name: tensor.to(tagger.device) for name, tensor in features.items()}
            for i, spans in zip(batch_indices, tagger.decode(features)):
                results[non_empty[i]] = spans
    finally:
        tagger.train(was_training)
    return results


def entities_with_offsets(example: Example, spans: list[ScoredSpan]) -> list[dict[str, Any]]:
    entities = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, s.type)):
        start, end = example.offsets[span.start][0], example.offsets[span.end - 1][1]
        entities.append({"start": start, "end": end, "type": span.type, "text": example.text[start:end],
                         "score": round(float(span.score), 4)})
    return entities


def predict_texts(tagger, texts: Iterable[str], *, token_budget: int = 4000,
                  max_sentences: int = 128) -> Iterator[dict[str, Any]]:
    """Stream ``{"text", "entities"}`` records for a stream of raw texts."""
    for chunk in iterate_chunks(iter(texts), CHUNK):
        examples = [example_from_text(text) for text in chunk]
        for example, spans in zip(examples, predict_spans(tagger, examples, token_budget=token_budget,
                                                          max_sentences=max_sentences)):
            yield {"text": example.text, "entities": entities_with_offsets(example, spans)}


def predict_conll(tagger, examples: Iterable[Example], **options) -> Iterator[tuple[Example, list[ScoredSpan]]]:
    """Stream ``(example, spans)`` for tokenized examples (CoNLL in -> CoNLL out); a model
    trained with document context reads each chunk's documents as passages."""
    for chunk in iterate_chunks(iter(examples), CHUNK):
        yield from zip(chunk, tagger.predict_examples(chunk, **options))

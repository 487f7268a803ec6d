"""Raw text or tokenized examples -> batched inference -> spans with character offsets.

Inputs are read as a stream and handled in chunks: each chunk is sorted by length and
batched under a token budget, and its results come out in input order before the next
chunk is read, so memory stays flat on files of any size. Models trained with document
context read the sentences of a document together, as passages, and get their spans back
per sentence.

Everything here takes the model as an argument and uses only its batch interface
(``input_lengths``, ``encode``, ``decode``, ``tokenizer_rule``, ``document_context``): the PyTorch
model (``nerkit.tagger.TaggerModel``) or an export run by ONNX Runtime
(``nerkit.export.runtime.OnnxModel``, which predicts without torch). Nothing here imports torch,
and the model never calls back here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, NotRequired, TypedDict

from nerkit.data.batching import budget_batches, iterate_chunks
from nerkit.data.documents import join_documents, split_spans
from nerkit.data.spans import Example, ScoredSpan
from nerkit.data.text import TOKENIZER_V1, clusters, example_from_text, plain, whole_characters
from nerkit.errors import NerkitError
from nerkit.predict.rules import Rules, source_fields

if TYPE_CHECKING:  # the pipeline runs the model through its batch interface and never imports torch itself
    from nerkit.export.runtime import OnnxModel
    from nerkit.tagger import TaggerModel

    Model = TaggerModel | OnnxModel

CHUNK = 2048  # inputs read ahead and sorted together


class Entity(TypedDict):
    """One predicted entity; ``text[start:end]`` is its surface (character offsets, half-open)."""

    start: int
    end: int
    type: str
    text: str
    score: float
    # With rules (``Tagger.from_pretrained(patterns=...)``): "model" or "rule" (score 1.0), and the
    # id of the pattern that found a rule entity, where the pattern has one.
    source: NotRequired[str]
    pattern_id: NotRequired[str | int]


class Prediction(TypedDict):
    """The record of one input text: the text and its entities in reading order."""

    text: str
    entities: list[Entity]


def predict_spans(model: Model, examples: list[Example], *, token_budget: int = 4000,
                  max_sentences: int = 128) -> list[list[ScoredSpan]]:
    """Predicted spans of each example, in input order. Empty examples get no spans."""
    results: list[list[ScoredSpan]] = [[] for _ in examples]
    non_empty = [index for index, example in enumerate(examples) if len(example) > 0]
    lengths = model.input_lengths([examples[index] for index in non_empty]) if non_empty else []
    was_training = model.training
    if was_training:  # a PyTorch model in training (dev evaluation): dropout off while it predicts
        model.eval()
    try:
        for batch_indices in budget_batches(lengths, token_budget=token_budget, max_sentences=max_sentences):
            batch = model.encode([examples[non_empty[i]] for i in batch_indices])
            for i, spans in zip(batch_indices, model.decode(batch)):
                results[non_empty[i]] = spans
    finally:
        if was_training:
            model.train(True)
    return results


def predict_examples(model: Model, examples: list[Example], *, token_budget: int = 4000,
                     max_sentences: int = 128) -> list[list[ScoredSpan]]:
    """Spans for tokenized examples, in input order. With document context, the sentences of
    one document are predicted together as passages and the spans split back per sentence."""
    options = {"token_budget": token_budget, "max_sentences": max_sentences}
    if not model.document_context or all(example.document is None for example in examples):
        return with_rules(model, examples, predict_spans(model, examples, **options))
    passages = join_documents(examples, model.document_context)
    passage_spans = predict_spans(model, [passage.example for passage in passages], **options)
    results: list[list[ScoredSpan]] = [[] for _ in examples]
    for passage, spans in zip(passages, passage_spans):
        lengths = [len(examples[index]) for index, _ in passage.members]
        for (index, _), member_spans in zip(passage.members, split_spans(passage, spans, lengths)):
            results[index] = member_spans
    return with_rules(model, examples, results)


def model_rules(model: Model) -> Rules | None:
    """The rules a ``Tagger`` holds beside its model (``Tagger.from_pretrained(patterns=...)``, or
    saved in its directory); None for a model without them."""
    return getattr(model, "rules", None)


def with_rules(model: Model, examples: list[Example], predicted: list[list[ScoredSpan]]) \
        -> list[list[ScoredSpan]]:
    """The model's spans of each example merged with what its rules find (``nerkit.predict.rules``)."""
    rules = model_rules(model)
    if rules is None:
        return predicted
    return [rules.apply(example.tokens, spans) for example, spans in zip(examples, predicted)]


def entities_with_offsets(example: Example, spans: list[ScoredSpan], rule: str | None = None, *,
                          sources: bool = False) -> list[Entity]:
    """The entities of ``example`` (split from its text by the tokenizer ``rule``) in reading order;
    with ``sources`` (a tagger with rules), each says where it came from (``source``: model or rule)."""
    entities: list[Entity] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end, s.type)):
        start, end = example.offsets[span.start][0], example.offsets[span.end - 1][1]
        entities.append({"start": start, "end": end, "type": span.type, "text": example.text[start:end],
                         "score": round(float(span.score), 4), **(source_fields(span) if sources else {})})
    if rule == TOKENIZER_V1 and entities and not plain(example.text):
        return _in_whole_characters(example.text, entities)
    return entities


def _in_whole_characters(text: str, entities: list[Entity]) -> list[Entity]:
    """``nerkit-words-v1`` may put a word boundary inside a user-perceived character (between
    a letter and its combining accent, inside an emoji sequence), where a span read back is
    refused: each entity is widened to the characters it cuts and stripped of blank ones
    (``whole_characters``). An entity left with nothing is dropped; of two that did not
    overlap and now share a character, the higher-scored one is kept, so a flat model's
    output stays flat."""
    kept: list[tuple[Entity, Entity]] = []  # (as predicted, in whole characters)
    pieces = clusters(text)  # once per text: each entity then costs its own length, not the text's
    for entity in sorted(entities, key=lambda e: -e["score"]):
        whole = whole_characters(text, entity["start"], entity["end"], pieces)
        if whole is None:
            continue
        start, end = whole
        if any(start < other["end"] and other["start"] < end
               and not (entity["start"] < predicted["end"] and predicted["start"] < entity["end"])
               for predicted, other in kept):
            continue
        kept.append((entity, {**entity, "start": start, "end": end, "text": text[start:end]}))
    return sorted((whole for _, whole in kept), key=lambda e: (e["start"], -e["end"], e["type"]))


def predict_texts(model: Model, texts: Iterable[str], *, batch_size: int = CHUNK, token_budget: int = 4000,
                  max_sentences: int = 128) -> Iterator[Prediction]:
    """Stream ``{"text", "entities"}`` records for a stream of raw texts, in input order.
    ``batch_size`` texts are read ahead and sorted by length together; nothing is read
    before the first record is asked for. Arguments are checked now, texts as they come."""
    check_stream(texts, batch_size, what="texts")
    return predict_records(model, _checked_texts(texts), batch_size, whole_text, token_budget=token_budget,
                           max_sentences=max_sentences)


def check_stream(items: Any, batch_size: Any, *, what: str) -> None:
    """The arguments of a prediction stream, checked before anything is read: one text (or
    one record) where a stream was expected is a mistake that would tag each character."""
    if isinstance(items, (str, Mapping)):
        advice = "for one text use tagger.predict(text) or pass [text]" if isinstance(items, str) else "pass [record]"
        raise NerkitError(f"expected a stream of {what} and got one {type(items).__name__}; {advice}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise NerkitError(f"batch_size {batch_size!r}: expected a whole number of texts >= 1")


def whole_text(text: str) -> list[tuple[int, int]]:
    """A text as one piece: the ``split`` of ``predict_records`` without sentence splitting."""
    return [(0, len(text))]


def predict_records(model: Model, items: Iterable[tuple[Any, str]], batch_size: int,
                    split: Callable[[str], list[tuple[int, int]]], **options) -> Iterator[dict[str, Any]]:
    """The prediction pipeline, for every way in (``nerkit predict``, ``Tagger.predict`` and
    ``pipe``, ``serve``): ``(item, text)`` pairs -> pieces of each text (``split``: sentences, or
    the whole text) -> examples split into words by the model's tokenizer rule -> batches sorted
    by length under a token budget (``predict_spans``, the one step that runs the model) ->
    entities with character offsets in the text -> one record per item, in input order:
    ``{"text", "entities"}`` for a text, the record with ``"entities"`` added for a record.
    ``batch_size`` items are read ahead at a time, so memory stays flat on any stream."""
    for chunk in iterate_chunks(items, batch_size):
        # Every piece (a sentence, or a whole text) is one example, at its offset in its text.
        pieces = [[(start, text[start:end]) for start, end in split(text)] for _, text in chunk]
        examples = [example_from_text(piece, rule=model.tokenizer_rule) for item_pieces in pieces
                    for _, piece in item_pieces]
        spans = iter(with_rules(model, examples, predict_spans(model, examples, **options)))
        sources = model_rules(model) is not None
        examples_in_order = iter(examples)
        for (item, text), item_pieces in zip(chunk, pieces):
            entities: list[Entity] = []
            for start, _ in item_pieces:
                for entity in entities_with_offsets(next(examples_in_order), next(spans), model.tokenizer_rule,
                                                    sources=sources):
                    entities.append({**entity, "start": entity["start"] + start, "end": entity["end"] + start})
            yield {"text": text, "entities": entities} if isinstance(item, str) else {**item, "entities": entities}


def _checked_texts(texts: Iterable[str]) -> Iterator[tuple[str, str]]:
    for number, text in enumerate(texts, 1):
        if not isinstance(text, str):
            raise NerkitError(f"text {number} of the input is of type {type(text).__name__}, expected str")
        yield text, text


def predict_conll(model: Model, examples: Iterable[Example],
                  **options) -> Iterator[tuple[Example, list[ScoredSpan]]]:
    """Stream ``(example, spans)`` for tokenized examples (CoNLL in -> CoNLL out); a model
    trained with document context reads each chunk's documents as passages."""
    for chunk in iterate_chunks(iter(examples), CHUNK):
        yield from zip(chunk, predict_examples(model, chunk, **options))

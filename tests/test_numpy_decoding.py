"""The NumPy decoders (``nerkit.data.decoding``, what the ONNX runtime decodes with) against the
heads' torch decoders, on random scores: the same tag paths and spans, scores to float32 precision.
Batches hold padded rows, one-word rows and BIOES; the CRF's transitions are trained-like (random)
and its marginals are checked where the scaled recursion matters (long rows, large scores)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nerkit.data.decoding import CRFPotentials, SpanDecoder, adjusted, softmax, tag_spans
from nerkit.heads.crf import CRFHead
from nerkit.heads.global_pointer import GlobalPointerHead
from nerkit.heads.softmax import SoftmaxHead
from nerkit.losses import build_loss

TYPES = ["LOC", "MISC", "ORG", "PER"]


def batch(words: int, lengths: list[int], tags: int, *, scale: float = 3.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(len(lengths), words, tags, generator=generator) * scale
    mask = torch.arange(words).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return scores, mask


def same_spans(expected, actual, tolerance: float = 1e-5) -> None:
    assert [[span[:3] for span in row] for row in actual] == [[span[:3] for span in row] for row in expected]
    for mine, theirs in zip(actual, expected):
        assert all(abs(a.score - b.score) <= tolerance for a, b in zip(mine, theirs))


@pytest.mark.parametrize("scheme", ["BIO", "BIOES"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_crf_viterbi_marginals_and_spans_equal_the_heads(scheme, scale):
    head = CRFHead(8, TYPES, scheme=scheme)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in (head.transitions, head.start_transitions, head.end_transitions):
            parameter.normal_(0, 2.0)
    potentials = CRFPotentials(head.tags, scheme, head.transitions.detach().numpy(),
                               head.start_transitions.detach().numpy(), head.end_transitions.detach().numpy())
    for words, lengths in [(40, [40, 17, 1, 33]), (1, [1, 1]), (5, [5])]:
        emissions, mask = batch(words, lengths, len(head.tags), scale=scale)
        with torch.no_grad():
            paths = head.viterbi(emissions, mask)
            marginals = head.marginals(emissions, mask)
            expected = head.decode_scores({"emissions": emissions}, {"mask": mask})
        numpy_paths = potentials.viterbi(emissions.numpy(), mask.numpy())
        assert np.array_equal(numpy_paths, paths.numpy())
        numpy_marginals = potentials.marginals(emissions.numpy(), mask.numpy())
        real = mask.numpy()
        assert np.abs(numpy_marginals - marginals.numpy())[real].max() <= 1e-5
        chosen = np.take_along_axis(numpy_marginals, numpy_paths[..., None], axis=-1)[..., 0]
        same_spans(expected, tag_spans(head.tag_parts, scheme, numpy_paths, chosen, mask.numpy()))


def test_the_post_hoc_tau_and_a_loss_shift_decode_as_the_heads_do():
    counts = [50, 3, 1, 7, 2, 9, 1, 4, 900]  # BIO tags of four types and O
    loss = build_loss("logit-adjusted", label_counts=counts, tau=1.0, decision="overall")
    from nerkit.losses import log_prior

    head = SoftmaxHead(8, TYPES, loss=loss, log_prior=log_prior(counts), posthoc_tau=0.75)
    spec = head.decoding_spec()
    assert spec["shift"] is not None and spec["score_scale"] == 1.0
    logits, mask = batch(12, [12, 5, 9], len(head.tags))
    with torch.no_grad():
        expected = head.decode_scores({"logits": logits}, {"mask": mask})
    scores = adjusted(logits.numpy(), shift=np.array(spec["shift"], dtype=np.float32), posthoc_tau=0.75,
                      log_prior=np.array(spec["log_prior"], dtype=np.float32))
    probabilities = softmax(scores)
    tag_ids = probabilities.argmax(axis=-1)
    best = probabilities.max(axis=-1)
    same_spans(expected, tag_spans(head.tag_parts, head.scheme, tag_ids, best, mask.numpy()))
    assert sum(map(len, expected)) > 0


@pytest.mark.parametrize("variant", ["standard", "efficient"])
@pytest.mark.parametrize("max_span_length", [None, 3])
@pytest.mark.parametrize("flat", [False, True])
def test_span_decoding_equals_the_heads(variant, max_span_length, flat):
    loss = build_loss("zlpr")
    head = GlobalPointerHead(16, TYPES, loss=loss, variant=variant, head_size=8, max_span_length=max_span_length,
                             flat_decoding=flat, max_cells=500)  # small blocks: several per batch
    torch.manual_seed(2)
    vectors = torch.randn(3, 30, 16) * 2
    mask = torch.arange(30).unsqueeze(0) < torch.tensor([30, 11, 1]).unsqueeze(1)
    with torch.no_grad():
        pointers = head.pointers(vectors)
        expected = head.decode_scores(pointers, {"mask": mask})
    decoder = SpanDecoder(TYPES, variant=variant, head_size=8, max_span_length=max_span_length, flat_decoding=flat,
                          max_cells=500)
    actual = decoder.decode({name: value.numpy() for name, value in pointers.items()}, mask.numpy())
    assert sum(map(len, expected)) > 5
    same_spans(expected, actual)
    if max_span_length is not None:
        assert all(span.end - span.start <= max_span_length for row in actual for span in row)

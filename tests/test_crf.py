"""The CRF head against brute-force enumeration of every tag sequence (as pytorch-crf's
tests do): partition function, sequence scores, Viterbi, marginals and the loss."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nerkit.data.schemes import allowed_transition, scheme_tags
from nerkit.heads.crf import FORBIDDEN, CRFHead

TYPES = ["A", "B"]
LENGTHS = [[4, 2, 1], [1, 3, 4], [3, 3, 3]]  # batch of 3, padded to 4 words


def make_head(scheme: str, seed: int, scale: float = 1.0) -> CRFHead:
    """A head whose transition scores are random (they start at zero)."""
    generator = torch.Generator().manual_seed(seed)
    head = CRFHead(5, TYPES, scheme=scheme)
    with torch.no_grad():
        for parameter in (head.transitions, head.start_transitions, head.end_transitions):
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return head


def make_inputs(lengths: list[int], tags: int, seed: int, scale: float = 1.0):
    """float64 emissions whose padding holds large random values (they must be ignored)."""
    generator = torch.Generator().manual_seed(seed)
    words = max(lengths)
    emissions = scale * torch.randn(len(lengths), words, tags, generator=generator, dtype=torch.float64)
    mask = torch.arange(words).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    emissions = emissions.masked_fill(~mask.unsqueeze(2), 0.0)
    emissions = emissions + (~mask).unsqueeze(2) * 50 * torch.rand(emissions.shape, generator=generator,
                                                                    dtype=torch.float64)
    return emissions, mask


class BruteForce:
    """Scores computed straight from the definition, with the head's parameters in float64
    and the scheme's forbidden moves replaced by FORBIDDEN, as the head applies them."""

    def __init__(self, head: CRFHead):
        tags = scheme_tags(TYPES, head.scheme)
        assert tags == head.tags
        self.tags = range(len(tags))

        def allowed_or_penalty(value, a, b):
            return value if allowed_transition(a, b, head.scheme) else FORBIDDEN

        transitions = head.transitions.detach().double().tolist()
        self.transitions = [[allowed_or_penalty(transitions[i][j], a, b) for j, b in enumerate(tags)]
                            for i, a in enumerate(tags)]
        self.start = [allowed_or_penalty(v, "START", t) for v, t in zip(head.start_transitions.tolist(), tags)]
        self.end = [allowed_or_penalty(v, t, "END") for v, t in zip(head.end_transitions.tolist(), tags)]
        self.valid = {(a, b) for a in self.tags for b in self.tags
                      if allowed_transition(tags[a], tags[b], head.scheme)}
        self.valid_start = {t for t in self.tags if allowed_transition("START", tags[t], head.scheme)}
        self.valid_end = {t for t in self.tags if allowed_transition(tags[t], "END", head.scheme)}

    def score(self, emissions: list[list[float]], path: tuple[int, ...]) -> float:
        total = self.start[path[0]] + self.end[path[-1]]
        total += sum(emissions[t][tag] for t, tag in enumerate(path))
        total += sum(self.transitions[a][b] for a, b in zip(path, path[1:]))
        return total

    def is_valid(self, path) -> bool:
        return (path[0] in self.valid_start and path[-1] in self.valid_end
                and all(move in self.valid for move in zip(path, path[1:])))

    def paths(self, length: int):
        return itertools.product(self.tags, repeat=length)

    def all_scores(self, emissions: torch.Tensor, length: int) -> dict[tuple[int, ...], float]:
        rows = emissions[:length].tolist()
        return {path: self.score(rows, path) for path in self.paths(length)}


def logsumexp(values) -> float:
    values = list(values)
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


SCHEMES = ["BIO", "BIOES"]
CASES = [(scheme, lengths, seed) for scheme in SCHEMES for seed, lengths in enumerate(LENGTHS)]


@pytest.mark.parametrize("scheme,lengths,seed", CASES)
def test_log_partition_equals_brute_force(scheme, lengths, seed):
    head = make_head(scheme, seed)
    emissions, mask = make_inputs(lengths, len(head.tags), seed)
    brute = BruteForce(head)
    computed = head.log_partition(emissions, mask)
    assert computed.dtype == torch.float64
    for row, length in enumerate(lengths):
        scores = brute.all_scores(emissions[row], length)
        assert computed[row].item() == pytest.approx(logsumexp(scores.values()), rel=1e-9, abs=1e-9)
        # The penalty is large enough that only valid sequences count.
        valid = [s for p, s in scores.items() if brute.is_valid(p)]
        assert computed[row].item() == pytest.approx(logsumexp(valid), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("scheme,lengths,seed", CASES)
def test_sequence_score_equals_brute_force(scheme, lengths, seed):
    head = make_head(scheme, seed)
    emissions, mask = make_inputs(lengths, len(head.tags), seed)
    brute = BruteForce(head)
    generator = torch.Generator().manual_seed(100 + seed)
    for _ in range(5):
        tag_ids = torch.randint(len(head.tags), mask.shape, generator=generator).masked_fill(~mask, -100)
        computed = head.sequence_score(emissions, tag_ids, mask)
        for row, length in enumerate(lengths):
            path = tuple(tag_ids[row, :length].tolist())
            expected = brute.score(emissions[row, :length].tolist(), path)
            # The head sums the (float32) transition scores in float32: about 1e-3 absolute
            # on paths that pay a FORBIDDEN penalty of -1e4 or two.
            assert computed[row].item() == pytest.approx(expected, rel=1e-6, abs=1e-5)


@pytest.mark.parametrize("scheme,lengths,seed", CASES)
def test_viterbi_equals_brute_force_argmax(scheme, lengths, seed):
    head = make_head(scheme, seed)
    emissions, mask = make_inputs(lengths, len(head.tags), seed, scale=2.0)
    brute = BruteForce(head)
    tags = head.viterbi(emissions, mask)
    assert tags.shape == mask.shape and not tags[~mask].any()  # padding positions hold 0
    paths = [row[:length] for row, length in zip(tags.tolist(), lengths)]
    for row, length in enumerate(lengths):
        scores = brute.all_scores(emissions[row], length)
        best = max(scores, key=scores.get)
        assert tuple(paths[row]) == best
        assert brute.is_valid(best)


@pytest.mark.parametrize("scheme,lengths,seed", CASES)
@pytest.mark.parametrize("gradients", [True, False], ids=["log-space", "scaled"])
def test_marginals_equal_brute_force(scheme, lengths, seed, gradients):
    """Both ways of computing them: log-sum-exp (training, with gradients) and the rescaled
    products of decoding."""
    head = make_head(scheme, seed)
    emissions, mask = make_inputs(lengths, len(head.tags), seed)
    brute = BruteForce(head)
    with torch.set_grad_enabled(gradients):
        marginals = head.marginals(emissions, mask)
    assert marginals.shape == emissions.shape
    for row, length in enumerate(lengths):
        scores = brute.all_scores(emissions[row], length)
        log_z = logsumexp(scores.values())
        expected = torch.zeros(length, len(head.tags), dtype=torch.float64)
        for path, score in scores.items():
            probability = math.exp(score - log_z)
            for t, tag in enumerate(path):
                expected[t, tag] += probability
        torch.testing.assert_close(marginals[row, :length], expected, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(marginals[row, :length].sum(dim=1), torch.ones(length, dtype=torch.float64))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scaled_marginals_match_log_space_on_sharp_float32_scores(scheme):
    """Decoding's rescaled products against training's log-sum-exp where underflow would show:
    float32, long rows, emissions and transitions far apart (a tag 100 nats below the best)."""
    head = make_head(scheme, 5, scale=8.0)
    lengths = [40, 33, 7, 1]
    emissions, mask = make_inputs(lengths, len(head.tags), 5, scale=25.0)
    exact = torch.exp(head.double().log_marginals(emissions, mask)).detach()  # float64 reference
    head.float()
    with torch.no_grad():
        scaled = head.marginals(emissions.float(), mask)
    log_space = torch.exp(head.log_marginals(emissions.float(), mask)).detach()
    assert torch.isfinite(scaled).all()
    # Log-space alphas grow to thousands here, where float32 keeps about 1e-4; the scaled ones
    # stay near 0 and keep float32's precision.
    scaled_error = (scaled - exact)[mask].abs().max().item()
    log_space_error = (log_space - exact)[mask].abs().max().item()
    assert scaled_error <= log_space_error + 1e-6, (scaled_error, log_space_error)
    assert scaled_error < 1e-4


@pytest.mark.parametrize("scheme", SCHEMES)
def test_negative_log_likelihood_is_a_probability(scheme):
    """NLL >= 0 for any sequence, and exp(-NLL) summed over all sequences is 1."""
    head = make_head(scheme, 7, scale=2.0)
    lengths = [3, 2, 1]
    emissions, mask = make_inputs(lengths, len(head.tags), 7, scale=3.0)
    total = torch.zeros(len(lengths), dtype=torch.float64)
    for path in itertools.product(range(len(head.tags)), repeat=max(lengths)):
        tag_ids = torch.tensor([path] * len(lengths)).masked_fill(~mask, -100)
        nll = head.negative_log_likelihood(emissions, tag_ids, mask)
        assert (nll >= -1e-9).all()
        # Each shorter row sees each of its paths once per padding completion (tags^(4-length) times).
        total += torch.exp(-nll) / torch.tensor([len(head.tags) ** (max(lengths) - n) for n in lengths])
    torch.testing.assert_close(total, torch.ones(len(lengths), dtype=torch.float64))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_loss_is_nll_per_word(scheme):
    """``loss`` = summed NLL / number of real words, on float32 word vectors."""
    head = make_head(scheme, 3)
    lengths = [4, 2, 1]
    generator = torch.Generator().manual_seed(3)
    word_vectors = torch.randn(3, 4, 5, generator=generator)
    mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    tag_ids = torch.tensor([[1, 2, 0, 3], [0, 1, -100, -100], [3, -100, -100, -100]])  # BIO/BIOES-valid-ish
    brute = BruteForce(head)
    emissions = head.emissions(word_vectors).double()
    expected = 0.0
    for row, length in enumerate(lengths):
        scores = brute.all_scores(emissions[row], length)
        expected += logsumexp(scores.values()) - scores[tuple(tag_ids[row, :length].tolist())]
    loss = head.loss(word_vectors, {"mask": mask, "tag_ids": tag_ids})
    assert loss.item() == pytest.approx(expected / sum(lengths), rel=1e-4)
    loss.backward()
    assert head.transitions.grad is not None and torch.isfinite(head.transitions.grad).all()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_viterbi_never_outputs_a_forbidden_transition(scheme):
    tags = scheme_tags(TYPES, scheme)
    generator = torch.Generator().manual_seed(11)
    for seed in range(5):
        head = make_head(scheme, seed, scale=5.0)
        lengths = torch.randint(1, 9, (64,), generator=generator).tolist()
        emissions, mask = make_inputs(lengths, len(tags), seed, scale=10.0)
        for length, path in zip(lengths, head.viterbi(emissions.float(), mask).tolist()):
            path = path[:length]
            names = ["START", *(tags[i] for i in path), "END"]
            assert all(allowed_transition(a, b, scheme) for a, b in zip(names, names[1:])), names


@pytest.mark.parametrize("scheme", SCHEMES)
def test_viterbi_refuses_an_invalid_path_that_emissions_prefer(scheme):
    """Emissions that shout I-A at every word (and transitions that like I-A -> I-A)
    still give a valid path: the scheme's constraints are hard."""
    head = make_head(scheme, 0)
    i_a = head.tags.index("I-A")
    with torch.no_grad():
        head.transitions[i_a, i_a] = 20.0
        head.start_transitions[i_a] = 20.0
        head.end_transitions[i_a] = 20.0
    emissions = torch.zeros(1, 4, len(head.tags))
    emissions[..., i_a] = 30.0
    path = [head.tags[i] for i in head.viterbi(emissions, torch.ones(1, 4, dtype=torch.bool))[0].tolist()]
    names = ["START", *path, "END"]
    assert all(allowed_transition(a, b, scheme) for a, b in zip(names, names[1:])), path
    # The best valid path keeps as many I-A as the scheme allows.
    assert path == (["B-A", "I-A", "I-A", "E-A"] if scheme == "BIOES" else ["B-A", "I-A", "I-A", "I-A"])


def test_forbidden_transitions_are_masked_as_documented():
    head = make_head("BIO", 0)
    transitions, start, end = head._potentials()
    o, b_a, i_a, i_b = (head.tags.index(t) for t in ("O", "B-A", "I-A", "I-B"))
    assert transitions[o, i_a] == FORBIDDEN and transitions[b_a, i_b] == FORBIDDEN
    assert transitions[b_a, i_a] == head.transitions[b_a, i_a]
    assert start[i_a] == FORBIDDEN and start[b_a] == head.start_transitions[b_a]
    assert end[i_a] == head.end_transitions[i_a]  # an entity may run to the end in BIO

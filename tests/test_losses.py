"""Tests of nerkit.losses against docs/losses.md.

Every loss is compared, value and gradient, with an independent float64 transcription of
its formula written here from docs/losses.md (section 1.6): the references below loop over the
valid tokens / cells one at a time and use only elementary operations, never the
package's helpers. Gradients are checked both against autograd through the reference and
against central finite differences (step 1e-6) of the implementation.
Tolerances: loss rtol 1e-6, atol 1e-9; gradient atol 1e-6; masked entries exactly 0.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nerkit.errors import ConfigError, DataError
from nerkit.losses import (
    CosineClassifier,
    available_losses,
    build_loss,
    class_weights,
    get_loss_spec,
    log_prior,
)
from nerkit.losses.am_softmax import AMSoftmax
from nerkit.losses.zlpr import SPARSE_AUTO_THRESHOLD

# float(loss) on a tensor that requires grad is deliberate here (reading a value for a check).
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")

F64 = torch.float64
LOSS_TOL = dict(rtol=1e-6, atol=1e-9)
GRAD_TOL = dict(rtol=0.0, atol=1e-6)
COUNTS = [50, 3, 0, 12]  # tag counts with an unseen tag; 4 tags


# ---------------------------------------------------------------------------------------
# Inputs


def token_batch(seed: int, batch: int = 2, words: int = 5, classes: int = 4, scale: float = 3.0):
    """float64 logits, labels with some -100, mask with right padding; at least one valid token."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, words, classes, generator=g, dtype=F64) * scale
    labels = torch.randint(0, classes, (batch, words), generator=g)
    mask = torch.ones(batch, words, dtype=torch.bool)
    mask[-1, words - 2:] = False  # padding at the end of the last sequence
    labels[0, 1] = -100  # an ignored word inside a sequence
    labels[-1, words - 1] = -100
    # invalid positions hold finite garbage that must not matter
    logits[-1, words - 2:] = 1e4 * torch.randn(2, classes, generator=g, dtype=F64)
    return logits, labels, mask


def span_batch(seed: int, batch: int = 2, types: int = 2, words: int = 4, lengths=(4, 2), density: float = 0.3):
    """Scores [B, T, L, L] (-inf on invalid cells), 0/1 labels on valid cells, validity mask."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, types, words, words, dtype=torch.bool)
    for b, n in enumerate(lengths):
        for i in range(n):
            for j in range(i, n):
                mask[b, :, i, j] = True
    scores = torch.randn(batch, types, words, words, generator=g, dtype=F64) * 3
    scores = torch.where(mask, scores, -math.inf)
    labels = ((torch.rand(batch, types, words, words, generator=g) < density) & mask).long()
    return scores, labels, mask


# ---------------------------------------------------------------------------------------
# Independent float64 references, written from docs/losses.md


def lse(values: list) -> torch.Tensor:
    """log(sum exp) of a list of 0-d tensors (or floats), max-shifted."""
    v = torch.stack([torch.as_tensor(x, dtype=F64) for x in values])
    top = v.max().detach()
    return top + torch.log(torch.exp(v - top).sum())


def sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def softplus(x):
    return torch.log(1.0 + torch.exp(x))


def ce_token(z, y):
    """docs/losses.md 2.1: LSE(z) - z_y."""
    return lse(list(z)) - z[y]


def token_reference(per_token):
    """Mean over valid tokens (mask and label != -100) of per_token(z_row, y) (docs/losses.md 1.3)."""

    def loss(z, labels, mask):
        terms = []
        for b in range(z.shape[0]):
            for i in range(z.shape[1]):
                if bool(mask[b, i]) and int(labels[b, i]) != -100:
                    terms.append(per_token(z[b, i], int(labels[b, i])))
        if not terms:
            return (z * 0).sum()
        return torch.stack(terms).sum() / len(terms)

    return loss


def ref_ce(z, labels, mask):
    return token_reference(ce_token)(z, labels, mask)


def ref_weighted_ce(weights, normalize="tokens"):
    def loss(z, labels, mask):
        num, den, count = 0.0, 0.0, 0
        for b in range(z.shape[0]):
            for i in range(z.shape[1]):
                y = int(labels[b, i])
                if bool(mask[b, i]) and y != -100:
                    num = num + weights[y] * ce_token(z[b, i], y)
                    den += weights[y]
                    count += 1
        return num / (count if normalize == "tokens" else den)

    return loss


def ref_hard(m):
    def per_token(z, y):
        p_t = float(torch.exp(z[y] - lse(list(z))).detach())
        theta = 1.0 if m - p_t > 0 else (0.0 if m - p_t < 0 else 0.5)
        return theta * ce_token(z, y)

    return token_reference(per_token)


def ref_soft_logodds(K, m):
    def per_token(z, y):
        u_t = z[y] - lse([z[j] for j in range(len(z)) if j != y])
        g = sigmoid(K * (math.log(m / (1 - m)) - u_t))
        return g * ce_token(z, y)

    return token_reference(per_token)


def ref_soft_softmax(K):
    def per_token(z, y):
        weight = torch.exp(-K * z[y]) / torch.exp(-K * z).sum()
        return weight * ce_token(z, y)

    return token_reference(per_token)


def ref_focal(gamma, alpha=None):
    def per_token(z, y):
        p_t = torch.exp(z[y]) / torch.exp(z).sum()
        a = 1.0 if alpha is None else alpha[y]
        return a * (1 - p_t) ** gamma * ce_token(z, y)

    return token_reference(per_token)


def ref_log_prior(counts, a):
    total = sum(n + a for n in counts)
    return [math.log((n + a) / total) for n in counts]


def ref_logit_adjusted(tau, counts, a=1.0):
    shift = torch.tensor(ref_log_prior(counts, a), dtype=F64) * tau
    return token_reference(lambda z, y: ce_token(z + shift, y))


def ref_dice_token(alpha, gamma, square):
    def per_token(z, y):
        p = torch.exp(z) / torch.exp(z).sum()
        total = 0.0
        for c in range(len(z)):
            q = (1 - p[c]) ** alpha * p[c]
            t = 1.0 if c == y else 0.0
            den = (q**2 + t**2 + gamma) if square else (q + t + gamma)
            total = total + 1 - (2 * q * t + gamma) / den
        return total

    return token_reference(per_token)


def ref_dice_batch(alpha, gamma, square, classes=None):
    def loss(z, labels, mask):
        tokens = [(b, i) for b in range(z.shape[0]) for i in range(z.shape[1])
                  if bool(mask[b, i]) and int(labels[b, i]) != -100]
        num_classes = z.shape[-1]
        per_class = []
        for c in (range(num_classes) if classes is None else classes):
            inter, sq, sy = 0.0, 0.0, 0.0
            for b, i in tokens:
                p = torch.exp(z[b, i]) / torch.exp(z[b, i]).sum()
                q = (1 - p[c]) ** alpha * p[c]
                t = 1.0 if int(labels[b, i]) == c else 0.0
                inter = inter + q * t
                sq = sq + (q**2 if square else q)
                sy = sy + (t**2 if square else t)
            per_class.append(1 - (2 * inter + gamma) / (sq + sy + gamma))
        return sum(per_class) / len(per_class)

    return loss


def ref_am_softmax(s, m):
    def per_token(cos, y):
        logits = torch.stack([s * (cos[c] - (m if c == y else 0.0)) for c in range(len(cos))])
        return ce_token(logits, y)

    return token_reference(per_token)


def binary_reference(per_cell, balance="sqrt"):
    """Mean over valid cells of per_cell(x, y) (docs/losses.md 1.3, 4.5): with balance="sqrt" (the
    default of the binary forms) each cell weighted by 1 / sqrt(count of its class), positives or
    negatives, the weights normalised to sum to 1."""

    def loss(x, labels, mask):
        cells = [(per_cell(x.reshape(-1)[k], int(labels.reshape(-1)[k])), int(labels.reshape(-1)[k]))
                 for k in range(x.numel()) if bool(mask.reshape(-1)[k])]
        if not cells:
            return (torch.where(mask, x, 0.0) * 0).sum()
        counts = {y: sum(1 for _, label in cells if label == y) for y in (0, 1)}
        weights = [counts[y] ** -0.5 if balance == "sqrt" else 1.0 for _, y in cells]
        return sum(w * term for w, (term, _) in zip(weights, cells)) / sum(weights)

    return loss


def signed(x, y):
    return x if y == 1 else -x


def ref_bce(pos_weight, balance="sqrt"):
    return binary_reference(lambda x, y: pos_weight * y * softplus(-x) + (1 - y) * softplus(x), balance)


def ref_hard_binary(m):
    def per_cell(x, y):
        s = signed(x, y)
        p_t = float(sigmoid(s).detach())
        theta = 1.0 if m - p_t > 0 else (0.0 if m - p_t < 0 else 0.5)
        return theta * softplus(-s)

    return binary_reference(per_cell)


def ref_soft_binary(K, m, balance="sqrt"):
    return binary_reference(
        lambda x, y: sigmoid(K * (math.log(m / (1 - m)) - signed(x, y))) * softplus(-signed(x, y)), balance)


def ref_focal_binary(gamma, alpha):
    def per_cell(x, y):
        s = signed(x, y)
        a = 1.0 if alpha is None else (alpha if y == 1 else 1 - alpha)
        return a * (1 - sigmoid(s)) ** gamma * softplus(-s)

    return binary_reference(per_cell)


def ref_zlpr(scores, labels, mask):
    """docs/losses.md 4.3: per (b, t) row log(1 + sum_N e^s) + log(1 + sum_P e^-s); mean over rows with a valid cell."""
    rows = []
    flat_scores = scores.reshape(-1, scores.shape[-2] * scores.shape[-1]) if scores.dim() == 4 else scores
    flat_labels = labels.reshape(flat_scores.shape)
    flat_mask = mask.reshape(flat_scores.shape)
    for r in range(flat_scores.shape[0]):
        cells = [k for k in range(flat_scores.shape[1]) if bool(flat_mask[r, k])]
        if not cells:
            continue
        neg = [flat_scores[r, k] for k in cells if int(flat_labels[r, k]) == 0]
        pos = [-flat_scores[r, k] for k in cells if int(flat_labels[r, k]) == 1]
        rows.append(lse([0.0] + neg) + lse([0.0] + pos))
    if not rows:
        return (torch.where(mask, scores, 0.0) * 0).sum()
    return torch.stack(rows).sum() / len(rows)


def ref_class_weights(counts, scheme, beta, a, norm, max_weight=None):
    """docs/losses.md 2.2 in plain Python floats."""
    n = [c + a for c in counts]
    total = sum(n)
    num = len(n)
    pi = [x / total for x in n]
    if scheme == "none":
        w = [1.0] * num
    elif scheme == "inverse":
        w = [total / (num * x) for x in n]
    elif scheme == "inverse_power":
        w = [(total / x) ** beta for x in n]
    elif scheme == "effective_number":
        w = [(1 - beta) / (1 - beta**x) for x in n]
    elif scheme == "log":
        w = [1 / math.log(1.02 + p) for p in pi]
    if norm == "prior_mean":
        scale = sum(p * x for p, x in zip(pi, w))
        w = [x / scale for x in w]
    elif norm == "class_mean":
        scale = sum(w) / num
        w = [x / scale for x in w]
    if max_weight is not None:
        w = [min(x, max_weight) for x in w]
    return w


# ---------------------------------------------------------------------------------------
# Checking helpers


def finite_difference_grad(f, x: torch.Tensor, step: float = 1e-6) -> torch.Tensor:
    """Central differences of the scalar f at x (float64), entry by entry."""
    grad = torch.zeros_like(x)
    base = x.detach().clone()
    for k in range(x.numel()):
        if not math.isfinite(float(base.reshape(-1)[k])):
            continue  # -inf scores on invalid cells: f does not depend on them
        plus = base.clone()
        minus = base.clone()
        plus.reshape(-1)[k] += step
        minus.reshape(-1)[k] -= step
        with torch.no_grad():
            grad.reshape(-1)[k] = (f(plus) - f(minus)) / (2 * step)
    return grad


def check_against_reference(loss_fn, ref_fn, x, labels, mask, *, valid=None, fd=True):
    """Value and gradient of loss_fn vs the reference (autograd) and vs finite differences."""
    x_impl = x.clone().requires_grad_(True)
    value = loss_fn(x_impl, labels, mask)
    (grad,) = torch.autograd.grad(value, x_impl)
    x_ref = torch.where(torch.isfinite(x), x, 0.0).requires_grad_(True)
    expected = ref_fn(x_ref, labels, mask)
    (expected_grad,) = torch.autograd.grad(expected, x_ref)
    assert value.dtype == F64
    torch.testing.assert_close(value, expected.detach(), **LOSS_TOL)
    torch.testing.assert_close(grad, expected_grad, **GRAD_TOL)
    if fd:
        numeric = finite_difference_grad(lambda t: loss_fn(t, labels, mask), x)
        torch.testing.assert_close(grad, numeric, **GRAD_TOL)
    if valid is not None:
        invalid = ~valid
        while invalid.dim() < grad.dim():
            invalid = invalid.unsqueeze(-1)
        assert bool((grad.masked_select(invalid.expand_as(grad)) == 0).all()), "masked entries need exactly 0 gradient"
    return value, grad


# ---------------------------------------------------------------------------------------
# Token losses: value and gradient against the references

TOKEN_CASES = {
    "ce": (lambda: build_loss("ce"), lambda: ref_ce),
    "weighted-ce default": (
        lambda: build_loss("weighted-ce", label_counts=COUNTS),
        lambda: ref_weighted_ce(ref_class_weights(COUNTS, "inverse_power", 0.5, 1.0, "prior_mean")),
    ),
    "weighted-ce weights-normalised inverse": (
        lambda: build_loss("weighted-ce", label_counts=COUNTS, scheme="inverse", normalize="weights"),
        lambda: ref_weighted_ce(ref_class_weights(COUNTS, "inverse", None, 1.0, "prior_mean"), "weights"),
    ),
    "weighted-ce explicit": (
        lambda: build_loss("weighted-ce", class_weight=[0.5, 2.0, 1.0, 3.0]),
        lambda: ref_weighted_ce([0.5, 2.0, 1.0, 3.0]),
    ),
    "hard-truncated": (lambda: build_loss("hard-truncated"), lambda: ref_hard(0.6)),
    "hard-truncated m=0.9": (lambda: build_loss("hard-truncated", m=0.9), lambda: ref_hard(0.9)),
    "soft-truncated": (lambda: build_loss("soft-truncated"), lambda: ref_soft_logodds(1.0, 0.5)),
    "soft-truncated K=5 m=0.8": (lambda: build_loss("soft-truncated", K=5.0, m=0.8), lambda: ref_soft_logodds(5.0, 0.8)),
    "soft-truncated softmax": (
        lambda: build_loss("soft-truncated", variant="softmax", K=2.0), lambda: ref_soft_softmax(2.0)),
    "focal": (lambda: build_loss("focal"), lambda: ref_focal(2.0)),
    "focal gamma=0.5 alpha": (
        lambda: build_loss("focal", gamma=0.5, alpha=[0.2, 1.0, 3.0, 0.7]),
        lambda: ref_focal(0.5, [0.2, 1.0, 3.0, 0.7]),
    ),
    "logit-adjusted": (lambda: build_loss("logit-adjusted", label_counts=COUNTS), lambda: ref_logit_adjusted(1.0, COUNTS)),
    "logit-adjusted tau=1.5 a=0.5": (
        lambda: build_loss("logit-adjusted", label_counts=COUNTS, tau=1.5, prior_pseudo_count=0.5),
        lambda: ref_logit_adjusted(1.5, COUNTS, 0.5),
    ),
    "dice": (lambda: build_loss("dice"), lambda: ref_dice_batch(0.01, 1.0, True)),
    "dice token": (lambda: build_loss("dice", granularity="token"), lambda: ref_dice_token(0.01, 1.0, True)),
    "dice token plain": (lambda: build_loss("dice", granularity="token", alpha=0.0, gamma=0.5, square=False),
                         lambda: ref_dice_token(0.0, 0.5, False)),
    "dice token alpha=0.7": (lambda: build_loss("dice", granularity="token", alpha=0.7),
                             lambda: ref_dice_token(0.7, 1.0, True)),
    "dice batch plain": (lambda: build_loss("dice", granularity="batch", alpha=0.0, gamma=0.5, square=False),
                         lambda: ref_dice_batch(0.0, 0.5, False)),
    "dice batch classes": (
        lambda: build_loss("dice", granularity="batch", square=False, alpha=0.5, classes=[1, 3]),
        lambda: ref_dice_batch(0.5, 1.0, False, [1, 3]),
    ),
    "flooding ce": (lambda: build_loss("flooding", b=0.01), lambda: lambda z, y, m: (ref_ce(z, y, m) - 0.01).abs() + 0.01),
    "flooding below b": (
        lambda: build_loss("flooding", inner="focal", inner_params={"gamma": 1.0}, b=50.0),
        lambda: lambda z, y, m: (ref_focal(1.0)(z, y, m) - 50.0).abs() + 50.0,
    ),
    "flooding sample": (
        lambda: build_loss("flooding", b=1.0, mode="sample"),
        lambda: token_reference(lambda z, y: (ce_token(z, y) - 1.0).abs() + 1.0),
    ),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_token_loss_matches_reference(case):
    build, reference = TOKEN_CASES[case]
    loss = build()
    ref = reference()
    for seed in (0, 1):
        logits, labels, mask = token_batch(seed)
        valid = mask & (labels != -100)
        check_against_reference(loss, ref, logits, labels, mask, valid=valid, fd=seed == 0)


def test_am_softmax_matches_reference():
    g = torch.Generator().manual_seed(3)
    cos = torch.rand(2, 5, 4, generator=g, dtype=F64) * 2 - 1
    _, labels, mask = token_batch(3)
    valid = mask & (labels != -100)
    check_against_reference(build_loss("am-softmax", s=10.0, m=0.2), ref_am_softmax(10.0, 0.2), cos, labels, mask,
                            valid=valid)
    # Defaults s=30, m=0.35
    check_against_reference(build_loss("am-softmax"), ref_am_softmax(30.0, 0.35), cos, labels, mask, fd=False)


def test_am_softmax_s1_m0_is_ce_on_cosines():
    cos = torch.rand(2, 5, 4, dtype=F64) * 2 - 1
    _, labels, mask = token_batch(4)
    torch.testing.assert_close(AMSoftmax(s=1.0, m=0.0)(cos, labels, mask), ref_ce(cos, labels, mask), **LOSS_TOL)


def test_cosine_classifier():
    head = CosineClassifier(6, 3).double()
    assert [name for name, _ in head.named_parameters()] == ["weight"]  # no bias
    h = torch.randn(2, 4, 6, dtype=F64)
    h[0, 0] = 0.0  # a zero vector: norm clamped at 1e-12, cosines 0, no NaN
    cos = head(h)
    assert cos.shape == (2, 4, 3)
    w = head.weight.detach()
    for b in range(2):
        for i in range(4):
            for c in range(3):
                norm_h = max(float(h[b, i].norm()), 1e-12)
                expected = float(h[b, i] @ w[c]) / (norm_h * float(w[c].norm()))
                assert abs(float(cos.detach()[b, i, c]) - expected) < 1e-12
    assert bool((cos[0, 0] == 0).all())
    cos.sum().backward()
    assert torch.isfinite(head.weight.grad).all()


# ---------------------------------------------------------------------------------------
# Binary forms and span losses

BINARY_CASES = {
    "bce": (lambda: build_loss("bce"), lambda: ref_bce(1.0)),
    "bce pos_weight": (lambda: build_loss("bce", pos_weight=3.0), lambda: ref_bce(3.0)),
    "bce plain mean": (lambda: build_loss("bce", binary_balance="none"), lambda: ref_bce(1.0, "none")),
    "focal binary plain mean": (lambda: build_loss("focal", form="binary", binary_balance="none"),
                                lambda: binary_reference(lambda x, y: (0.25 if y == 1 else 0.75)
                                                         * (1 - sigmoid(signed(x, y))) ** 2.0
                                                         * softplus(-signed(x, y)), "none")),
    "focal binary": (lambda: build_loss("focal", form="binary"), lambda: ref_focal_binary(2.0, 0.25)),
    "focal binary auto alpha": (lambda: build_loss("focal", gamma=0.5, alpha=0.7), lambda: ref_focal_binary(0.5, 0.7)),
    "focal binary no alpha": (lambda: build_loss("focal", form="binary", alpha=None), lambda: ref_focal_binary(2.0, None)),
    "hard-truncated binary": (lambda: build_loss("hard-truncated", form="binary"), lambda: ref_hard_binary(0.6)),
    "soft-truncated binary": (lambda: build_loss("soft-truncated", form="binary", K=3.0, m=0.7),
                              lambda: ref_soft_binary(3.0, 0.7)),
    "zlpr dense": (lambda: build_loss("zlpr", sparse=False), lambda: ref_zlpr),
    "zlpr sparse": (lambda: build_loss("zlpr", sparse=True), lambda: ref_zlpr),
    "zlpr auto": (lambda: build_loss("zlpr"), lambda: ref_zlpr),
    "flooding bce": (lambda: build_loss("flooding", inner="bce", b=0.5),
                     lambda: lambda x, y, m: (ref_bce(1.0)(x, y, m) - 0.5).abs() + 0.5),
}


@pytest.mark.parametrize("case", sorted(BINARY_CASES))
def test_span_loss_matches_reference(case):
    build, reference = BINARY_CASES[case]
    loss = build()
    ref = reference()
    for seed in (0, 1):
        scores, labels, mask = span_batch(seed)
        check_against_reference(loss, ref, scores, labels, mask, valid=mask, fd=seed == 0)


def test_binary_forms_on_a_token_grid_ignore_minus_100():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 6, generator=g, dtype=F64) * 2
    y = torch.randint(0, 2, (3, 6), generator=g)
    y[0, 2] = -100
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[2, 4:] = False
    y[2, 4:] = 0
    valid = mask & (y != -100)
    ref_mask = valid.clone()
    check_against_reference(build_loss("focal", form="binary"), lambda a, b, m: ref_focal_binary(2.0, 0.25)(a, b, ref_mask),
                            x, y, mask, valid=valid)


def test_sparse_zlpr_equals_dense_with_index_labels():
    scores, labels, mask = span_batch(7, batch=3, types=3, words=5, lengths=(5, 1, 3), density=0.25)
    B, T, L, _ = scores.shape
    # positives as flat ids i * L + j, padded with -1, one duplicate added
    rows = []
    for b in range(B):
        for t in range(T):
            ids = [int(i) * L + int(j) for i, j in zip(*torch.nonzero(labels[b, t], as_tuple=True))]
            rows.append(ids)
    width = max(len(r) for r in rows) + 2
    pos_index = torch.full((B * T, width), -1, dtype=torch.long)
    for r, ids in enumerate(rows):
        ids = ids + ids[:1]  # duplicate
        pos_index[r, width - len(ids):] = torch.tensor(ids, dtype=torch.long) if ids else pos_index[r, :0]
    pos_index = pos_index.reshape(B, T, width)
    dense = build_loss("zlpr", sparse=False)
    sparse = build_loss("zlpr", sparse=True)
    x1 = scores.clone().requires_grad_(True)
    x2 = scores.clone().requires_grad_(True)
    x3 = scores.clone().requires_grad_(True)
    a = dense(x1, labels, mask)
    b = sparse(x2, mask=mask, pos_index=pos_index)
    c = dense(x3, mask=mask, pos_index=pos_index)  # index labels through the dense computation
    expected = ref_zlpr(torch.where(mask, scores, 0.0), labels, mask)
    for value in (a, b, c):
        torch.testing.assert_close(value, expected, **LOSS_TOL)
    g1, g2, g3 = (torch.autograd.grad(v, x)[0] for v, x in ((a, x1), (b, x2), (c, x3)))
    torch.testing.assert_close(g1, g2, **GRAD_TOL)
    torch.testing.assert_close(g1, g3, **GRAD_TOL)
    assert bool((g2[~mask] == 0).all())


def ref_zlpr_sparse(scores, labels, mask, eps=1e-7):
    """docs/losses.md 4.4: u = log(1 + sum_A e^s), v = LSE_P(s), neg = u + log(clamp(1 - e^(v - u), eps, 1))."""
    rows = []
    flat_scores = scores.reshape(-1, scores.shape[-2] * scores.shape[-1])
    flat_labels = labels.reshape(flat_scores.shape)
    flat_mask = mask.reshape(flat_scores.shape)
    for r in range(flat_scores.shape[0]):
        cells = [k for k in range(flat_scores.shape[1]) if bool(flat_mask[r, k])]
        if not cells:
            continue
        u = lse([0.0] + [flat_scores[r, k] for k in cells])
        positives = [flat_scores[r, k] for k in cells if int(flat_labels[r, k]) == 1]
        if positives:
            remaining = torch.clamp(-torch.expm1(lse(positives) - u), eps, 1.0)
        else:
            remaining = torch.tensor(1.0, dtype=F64)
        rows.append(u + torch.log(remaining) + lse([0.0] + [-x for x in positives]))
    return torch.stack(rows).sum() / len(rows) if rows else (scores.nan_to_num(0.0, 0.0, 0.0) * 0).sum()


def clamp_binds(scores, labels, mask, eps=1e-7):
    """Whether some row has (1 + sum_N e^s) / (1 + sum_A e^s) near or below eps (dense != sparse there)."""
    s = torch.where(mask, scores, -math.inf).reshape(-1, scores.shape[-1] ** 2).double()
    pos = (labels.bool() & mask).reshape(s.shape)
    neg_mass = torch.logsumexp(torch.cat([torch.where(pos, -math.inf, s), torch.zeros(s.shape[0], 1, dtype=F64)], 1), 1)
    all_mass = torch.logsumexp(torch.cat([s, torch.zeros(s.shape[0], 1, dtype=F64)], 1), 1)
    return bool(((neg_mass - all_mass) < math.log(100 * eps)).any())


@settings(max_examples=25, deadline=None, database=None)
@given(seed=st.integers(0, 10_000), words=st.integers(1, 5), types=st.integers(1, 3),
       density=st.floats(0.0, 1.0), scale=st.sampled_from([1.0, 5.0, 30.0]))
def test_zlpr_dense_equals_sparse_property(seed, words, types, density, scale):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, words + 1, (2,), generator=g).tolist()
    scores, labels, mask = span_batch(seed, batch=2, types=types, words=words, lengths=lengths, density=density)
    scores = torch.where(mask, scores * scale / 3, -math.inf)
    x1 = scores.clone().requires_grad_(True)
    x2 = scores.clone().requires_grad_(True)
    x3 = torch.where(mask, scores, 0.0).requires_grad_(True)
    a = build_loss("zlpr", sparse=False)(x1, labels, mask)
    b = build_loss("zlpr", sparse=True)(x2, labels, mask)
    expected = ref_zlpr_sparse(x3, labels, mask)
    torch.testing.assert_close(b, expected.detach(), **LOSS_TOL)
    grad_b = torch.autograd.grad(b, x2)[0]
    torch.testing.assert_close(grad_b, torch.autograd.grad(expected, x3)[0], **GRAD_TOL)
    if not clamp_binds(scores, labels, mask):
        torch.testing.assert_close(a, b, **LOSS_TOL)
        torch.testing.assert_close(torch.autograd.grad(a, x1)[0], grad_b, **GRAD_TOL)


def test_sparse_zlpr_clamp_binds_when_positives_dominate():
    """docs/losses.md 4.4: 1 - e^(v - u) is clamped at eps, so there sparse != dense, by design."""
    scores = torch.tensor([[[[30.0]]]], dtype=F64, requires_grad=True)  # one cell, positive, score 30
    labels = torch.ones(1, 1, 1, 1, dtype=torch.long)
    mask = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    dense = build_loss("zlpr", sparse=False)(scores, labels, mask)
    sparse = build_loss("zlpr", sparse=True)(scores, labels, mask)
    assert abs(float(dense) - math.log1p(math.exp(-30.0))) < 1e-15
    expected = math.log1p(math.exp(30.0)) + math.log(1e-7) + math.log1p(math.exp(-30.0))
    assert abs(float(sparse) - expected) < 1e-9


def test_zlpr_plain_multilabel_rows():
    g = torch.Generator().manual_seed(11)
    scores = torch.randn(4, 6, generator=g, dtype=F64) * 2
    labels = (torch.rand(4, 6, generator=g) < 0.4).long()
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[1, 3:] = False
    labels[1, 3:] = 0
    mask[3] = False  # a row without valid classes is left out of the mean
    labels[3] = 0
    check_against_reference(build_loss("zlpr", sparse=False), ref_zlpr, scores, labels, mask, valid=mask)
    check_against_reference(build_loss("zlpr", sparse=True), ref_zlpr, scores, labels, mask, valid=mask)
    # without a mask every class is valid
    no_mask = build_loss("zlpr")(scores, labels)
    torch.testing.assert_close(no_mask, ref_zlpr(scores, labels, torch.ones_like(mask)), **LOSS_TOL)
    # sparse class ids for rows
    ids = torch.tensor([[0, -1], [2, 2], [-1, -1], [5, 1]])
    dense_labels = torch.zeros(4, 6, dtype=torch.long)
    dense_labels[0, 0] = dense_labels[1, 2] = dense_labels[3, 5] = dense_labels[3, 1] = 1
    torch.testing.assert_close(build_loss("zlpr", sparse=True)(scores, pos_index=ids),
                               ref_zlpr(scores, dense_labels, torch.ones_like(mask)), **LOSS_TOL)


def test_zlpr_edge_cases():
    loss = build_loss("zlpr")
    # one-word sentence whose word is an entity: empty N, and a sentence without entities: empty P
    scores = torch.tensor([[[[2.0]]], [[[-1.5]]]], dtype=F64, requires_grad=True)
    labels = torch.tensor([[[[1]]], [[[0]]]])
    mask = torch.ones(2, 1, 1, 1, dtype=torch.bool)
    value = loss(scores, labels, mask)
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.5))) / 2
    assert abs(float(value) - expected) < 1e-12
    # length-0 sequence left out of the mean
    s, lab, m = span_batch(2, lengths=(3, 0))
    torch.testing.assert_close(loss(s, lab, m), ref_zlpr(torch.where(m, s, 0.0), lab, m), **LOSS_TOL)
    # saturated scores +-1000 on valid cells, -inf on invalid ones
    s = torch.where(m, torch.where(lab.bool(), 1000.0, -1000.0), -math.inf).to(F64).requires_grad_(True)
    value = loss(s, lab, m)
    assert float(value) == 0.0
    (grad,) = torch.autograd.grad(value, s)
    assert torch.isfinite(grad).all() and bool((grad == 0).all())
    s2 = torch.where(m, torch.where(lab.bool(), -1000.0, 1000.0), -math.inf).to(F64).requires_grad_(True)
    value = build_loss("zlpr", sparse=True)(s2, lab, m)
    assert math.isfinite(float(value)) and float(value) > 999
    (grad,) = torch.autograd.grad(value, s2)
    assert torch.isfinite(grad).all() and bool((grad[~m] == 0).all())


def test_zlpr_sparse_auto_threshold():
    loss = build_loss("zlpr")
    assert loss.use_sparse(1, 1024) is False  # 2**20 cells: not above the threshold
    assert loss.use_sparse(2, 1024) is True
    assert SPARSE_AUTO_THRESHOLD == 2**20
    assert build_loss("zlpr", sparse="false").use_sparse(100, 1000) is False
    assert build_loss("zlpr", sparse=True).use_sparse(1, 1) is True


def test_positive_label_on_invalid_cell_raises():
    scores, labels, mask = span_batch(0)
    bad = labels.clone()
    bad[0, 0, 3, 0] = 1  # lower triangle
    for name in ("bce", "zlpr", "focal", "hard-truncated"):
        with pytest.raises(DataError, match="invalid"):
            build_loss(name)(scores, bad, mask)
    bad_index = torch.tensor([[[3 * 4 + 0], [-1]], [[-1], [-1]]])  # cell (3, 0) of row (0, 0)
    with pytest.raises(ValueError, match="invalid"):
        build_loss("zlpr", sparse=True)(scores, mask=mask, pos_index=bad_index)
    with pytest.raises(ValueError):
        build_loss("zlpr")(scores, mask=mask, pos_index=torch.full((2, 2, 1), 16))  # out of range


def test_token_label_out_of_range_raises():
    logits, labels, mask = token_batch(0)
    labels[0, 0] = 4
    with pytest.raises(ValueError):
        build_loss("ce")(logits, labels, mask)


# ---------------------------------------------------------------------------------------
# Identities (docs/losses.md 1.6)


def assert_same_loss(first, second, logits, labels, mask):
    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    a = first(x1, labels, mask)
    b = second(x2, labels, mask)
    torch.testing.assert_close(a, b, **LOSS_TOL)
    torch.testing.assert_close(torch.autograd.grad(a, x1)[0], torch.autograd.grad(b, x2)[0], **GRAD_TOL)


@pytest.mark.parametrize(
    "first, second",
    [
        (lambda: build_loss("focal", gamma=0.0), lambda: build_loss("ce")),
        (lambda: build_loss("soft-truncated", K=1.0, m=0.5), lambda: build_loss("focal", gamma=1.0)),
        (lambda: build_loss("logit-adjusted", tau=0.0, label_counts=COUNTS), lambda: build_loss("ce")),
        (lambda: build_loss("logit-adjusted", tau=0.0), lambda: build_loss("ce")),
        (lambda: build_loss("hard-truncated", m=1.0), lambda: build_loss("ce")),
        (lambda: build_loss("weighted-ce", scheme="none", label_counts=COUNTS), lambda: build_loss("ce")),
        (lambda: build_loss("weighted-ce", scheme="none", normalize="weights"), lambda: build_loss("ce")),
        (lambda: build_loss("flooding", b=0.0), lambda: build_loss("ce")),
    ],
    ids=["focal0=ce", "soft(K1,m.5)=focal1", "la-tau0=ce", "la-tau0-noprior=ce", "hard-m1=ce", "wce-none=ce",
         "wce-none-weights=ce", "flood-b0=ce"],
)
def test_token_identities(first, second):
    for seed in (0, 1, 2):
        assert_same_loss(first(), second(), *token_batch(seed))


def test_soft_truncated_two_tags_equals_su_binary_form():
    """With C = 2 the log-odds form is Su's binary formula on the logit difference (docs/losses.md 2.4)."""
    logits, labels, mask = token_batch(3, classes=2)
    valid = mask & (labels != -100)
    soft = build_loss("soft-truncated", K=4.0, m=0.5)
    x = logits[..., 1] - logits[..., 0]  # binary logit of tag 1
    expected = ref_soft_binary(4.0, 0.5, "none")(x, labels.clamp(min=0), valid)  # the multiclass form: plain mean
    torch.testing.assert_close(soft(logits, labels, mask), expected, **LOSS_TOL)
    # Su's literal softmax variant also agrees at C = 2
    torch.testing.assert_close(build_loss("soft-truncated", K=4.0, variant="softmax")(logits, labels, mask),
                               expected, **LOSS_TOL)


def test_binary_identities():
    scores, labels, mask = span_batch(4)
    assert_same_loss(build_loss("focal", form="binary", gamma=0.0, alpha=None), build_loss("bce"), scores, labels, mask)
    assert_same_loss(build_loss("hard-truncated", form="binary", m=1.0), build_loss("bce"), scores, labels, mask)
    assert_same_loss(build_loss("soft-truncated", form="binary", K=1.0), build_loss("focal", form="binary", gamma=1.0,
                                                                                   alpha=None), scores, labels, mask)


def test_hard_truncation_threshold_is_half_weight():
    # p_t = exactly 0.5 (two equal logits) with m = 0.5: weight theta(0) = 1/2
    logits = torch.tensor([[[0.0, 0.0]]], dtype=F64)
    labels = torch.tensor([[0]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    value = build_loss("hard-truncated", m=0.5)(logits, labels, mask)
    assert abs(float(value) - 0.5 * math.log(2)) < 1e-15


def test_soft_truncated_tends_to_hard_truncation():
    logits, labels, mask = token_batch(6)
    soft = build_loss("soft-truncated", K=20.0, m=0.7)(logits * 5, labels, mask)
    hard = build_loss("hard-truncated", m=0.7)(logits * 5, labels, mask)
    assert abs(float(soft) - float(hard)) < 0.05 * float(hard)


# ---------------------------------------------------------------------------------------
# Edge cases shared by every loss

TOKEN_LOSSES = {
    "ce": {}, "weighted-ce": {"label_counts": COUNTS}, "hard-truncated": {}, "soft-truncated": {},
    "soft-truncated softmax": {"variant": "softmax"}, "focal": {}, "focal gamma<1": {"gamma": 0.3},
    "logit-adjusted": {"label_counts": COUNTS}, "dice": {}, "dice token": {"granularity": "token"},
    "am-softmax": {}, "flooding": {"inner": "focal"}, "weighted-ce weights": {"label_counts": COUNTS, "normalize": "weights"},
}


def make_token_loss(key):
    name = key.split(" ")[0]
    return build_loss(name, **TOKEN_LOSSES[key])


@pytest.mark.parametrize("key", sorted(TOKEN_LOSSES))
def test_all_padding_batch_gives_attached_zero(key):
    loss = make_token_loss(key)
    logits = torch.randn(2, 3, 4, requires_grad=True)
    labels = torch.full((2, 3), -100)
    labels[0, 0] = 2  # masked out below
    mask = torch.zeros(2, 3, dtype=torch.bool)
    value = loss(logits, labels, mask)
    expected = 0.02 if key == "flooding" else 0.0  # flooding: |0 - b| + b = 2b
    assert value.requires_grad
    assert float(value) == pytest.approx(expected, abs=1e-7)
    if key != "flooding":
        assert float(value) == 0.0
    (grad,) = torch.autograd.grad(value, logits)
    assert bool((grad == 0).all())


@pytest.mark.parametrize("key", sorted(TOKEN_LOSSES))
def test_saturated_logits(key):
    loss = make_token_loss(key)
    # token 0: p_t = 1 exactly; token 1: p_t = 0 exactly (gold 1000 below another); token 2: padding with huge garbage
    logits = torch.tensor([[[1000.0, 0.0, 0.0, 0.0], [1000.0, 0.0, -1000.0, 0.0], [3e30, -3e30, 0.0, 1.0]]],
                          requires_grad=True)
    if key == "am-softmax":  # cosines live in [-1, 1]
        logits = torch.tensor([[[1.0, -1.0, -1.0, -1.0], [1.0, -1.0, -1.0, -1.0], [1.0, 0.0, 0.0, 0.0]]],
                              requires_grad=True)
    labels = torch.tensor([[0, 1, 3]])
    mask = torch.tensor([[True, True, False]])
    value = loss(logits, labels, mask)
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value)
    assert torch.isfinite(grad).all()
    assert bool((grad[0, 2] == 0).all())
    if key in ("ce", "hard-truncated", "soft-truncated", "focal", "focal gamma<1"):
        # the p_t = 1 token contributes 0 with a zero gradient; the p_t = 0 token the finite CE 1000
        assert float(value) == pytest.approx(500.0, rel=1e-6)
        assert bool((grad[0, 0] == 0).all())
    if key == "logit-adjusted":
        shift = torch.tensor(ref_log_prior(COUNTS, 1.0), dtype=F64)
        expected = (1000 + shift[0]).item() - (0 + shift[1]).item()
        assert float(value) == pytest.approx(expected / 2, rel=1e-6)


@pytest.mark.parametrize("key", sorted(TOKEN_LOSSES))
def test_bf16_input_gives_float32(key):
    loss = make_token_loss(key)
    logits, labels, mask = token_batch(0)
    logits = torch.where(mask.unsqueeze(-1), logits, 0.0).clamp(-1, 1)
    value = loss(logits.to(torch.bfloat16), labels, mask)
    assert value.dtype == torch.float32
    reference = loss(logits.to(torch.bfloat16).double(), labels, mask)
    assert float(value) == pytest.approx(float(reference), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("key", sorted(TOKEN_LOSSES))
def test_invalid_positions_do_not_matter(key):
    loss = make_token_loss(key)
    logits, labels, mask = token_batch(2)
    valid = mask & (labels != -100)
    expected = loss(logits, labels, mask)
    # other finite garbage at invalid positions, and other labels there: same value
    other = torch.where(valid.unsqueeze(-1), logits, -7e5)
    torch.testing.assert_close(loss(other, labels, mask), expected, rtol=0, atol=0)
    torch.testing.assert_close(loss(logits, torch.where(mask, labels, 2), mask), expected, rtol=0, atol=0)
    # even inf / NaN there neither leaks into the value nor into the gradient
    wild = logits.clone()
    wild[~valid] = torch.tensor([math.inf, -math.inf, math.nan, 0.0], dtype=F64)
    wild.requires_grad_(True)
    value = loss(wild, labels, mask)
    torch.testing.assert_close(value.detach(), expected, rtol=0, atol=0)
    (grad,) = torch.autograd.grad(value, wild)
    assert torch.isfinite(grad).all() and bool((grad[~valid] == 0).all())


@pytest.mark.parametrize("name, kwargs", [("bce", {}), ("zlpr", {}), ("zlpr", {"sparse": True}),
                                          ("focal", {"form": "binary"}), ("soft-truncated", {"form": "binary"}),
                                          ("hard-truncated", {"form": "binary"}), ("flooding", {"inner": "zlpr"})])
def test_span_edge_cases(name, kwargs):
    loss = build_loss(name, **kwargs)
    # all-padding batch: every sequence has length 0
    scores = torch.full((2, 2, 3, 3), -math.inf, requires_grad=True)
    labels = torch.zeros(2, 2, 3, 3, dtype=torch.long)
    mask = torch.zeros(2, 2, 3, 3, dtype=torch.bool)
    value = loss(scores, labels, mask)
    assert value.requires_grad
    if name == "flooding":
        assert float(value) == pytest.approx(0.02, rel=1e-6)  # |0 - b| + b in float32
    else:
        assert float(value) == 0.0
    (grad,) = torch.autograd.grad(value, scores)
    assert bool((grad == 0).all())
    # saturated scores and bf16 input
    s, lab, m = span_batch(1)
    sat = torch.where(m, torch.where(torch.rand(s.shape) < 0.5, 1000.0, -1000.0), -math.inf).requires_grad_(True)
    value = loss(sat, lab, m)
    (grad,) = torch.autograd.grad(value, sat)
    assert torch.isfinite(value) and torch.isfinite(grad).all() and bool((grad[~m] == 0).all())
    value = loss(torch.where(m, s, -math.inf).to(torch.bfloat16), lab, m)
    assert value.dtype == torch.float32


# ---------------------------------------------------------------------------------------
# Flooding


def test_flooding_gradient_sign_and_sample_mode():
    logits, labels, mask = token_batch(0)
    ce_value = float(build_loss("ce")(logits, labels, mask))
    x = logits.clone().requires_grad_(True)
    (grad_ce,) = torch.autograd.grad(build_loss("ce")(x, labels, mask), x)
    below = build_loss("flooding", b=ce_value + 1.0)
    x = logits.clone().requires_grad_(True)
    value = below(x, labels, mask)
    assert float(value) == pytest.approx(ce_value + 2.0, rel=1e-12)
    (grad,) = torch.autograd.grad(value, x)
    torch.testing.assert_close(grad, -grad_ce, **GRAD_TOL)  # ascent below the flood level
    # L == b exactly: gradient 0
    at = build_loss("flooding", b=ce_value)
    x = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(at(x, labels, mask), x)
    assert bool((grad == 0).all())


def test_flooding_passes_context_and_hooks():
    loss = build_loss("flooding", inner="weighted-ce", inner_params={"scheme": "inverse"}, label_counts=COUNTS,
                      num_classes=4)
    logits, labels, mask = token_batch(1)
    weights = ref_class_weights(COUNTS, "inverse", None, 1.0, "prior_mean")
    expected = ref_weighted_ce(weights)(logits, labels, mask)
    torch.testing.assert_close(loss(logits, labels, mask), (expected - 0.01).abs() + 0.01, **LOSS_TOL)
    assert get_loss_spec("flooding").accepts("label_counts")
    overall = build_loss("flooding", inner={"name": "logit-adjusted", "decision": "overall"}, label_counts=COUNTS)
    z = torch.zeros(1, 1, 4)
    torch.testing.assert_close(overall.adjust_logits(z)[0, 0], log_prior(COUNTS))
    with pytest.raises(ConfigError, match="sample"):
        build_loss("flooding", inner="zlpr", mode="sample")
    with pytest.raises(ConfigError, match="sample"):
        build_loss("flooding", inner="dice", granularity="batch", mode="sample")
    with pytest.raises(ConfigError):
        build_loss("flooding", inner="no-such-loss")
    with pytest.raises(ConfigError, match="gamma"):
        build_loss("flooding", inner="focal", gamma=9.0)


# ---------------------------------------------------------------------------------------
# Priors, class weights, adjust_logits


@pytest.mark.parametrize("scheme, beta", [("none", None), ("inverse", None), ("inverse_power", 0.5),
                                          ("inverse_power", 1.0), ("effective_number", 0.999),
                                          ("effective_number", 0.9), ("log", None)])
@pytest.mark.parametrize("norm", ["prior_mean", "class_mean", "none"])
def test_class_weights(scheme, beta, norm):
    counts = [1000, 20, 0, 3, 140]
    got = class_weights(counts, scheme=scheme, beta=beta, pseudo_count=1.0, normalize_weights=norm)
    assert got.dtype == torch.float32
    expected = ref_class_weights(counts, scheme, beta, 1.0, norm)
    torch.testing.assert_close(got.double(), torch.tensor(expected, dtype=F64), rtol=1e-6, atol=0)
    clipped = class_weights(counts, scheme=scheme, beta=beta, normalize_weights=norm, max_weight=1.5)
    torch.testing.assert_close(clipped.double(), torch.tensor(ref_class_weights(counts, scheme, beta, 1.0, norm, 1.5),
                                                              dtype=F64), rtol=1e-6, atol=0)


def test_class_weight_defaults_and_prior_mean():
    counts = [900, 50, 30, 20]
    w = class_weights(counts)
    torch.testing.assert_close(w.double(), torch.tensor(ref_class_weights(counts, "inverse_power", 0.5, 1.0,
                                                                          "prior_mean"), dtype=F64), rtol=1e-6, atol=0)
    prior = torch.tensor([(n + 1) / 1004 for n in counts], dtype=F64)
    assert abs(float((prior * w.double()).sum()) - 1.0) < 1e-6
    # effective_number default beta is 0.999
    torch.testing.assert_close(class_weights(counts, scheme="effective_number").double(),
                               torch.tensor(ref_class_weights(counts, "effective_number", 0.999, 1.0, "prior_mean"),
                                            dtype=F64), rtol=1e-6, atol=0)
    with pytest.raises(ConfigError, match="pseudo_count"):
        class_weights([5, 0, 2], scheme="inverse", pseudo_count=0.0)
    with pytest.raises(ConfigError, match="beta"):
        class_weights(counts, scheme="effective_number", beta=0.5)


def test_log_prior():
    got = log_prior(COUNTS)
    assert got.dtype == torch.float32
    expected = torch.tensor(ref_log_prior(COUNTS, 1.0), dtype=F64).float()
    assert torch.equal(got, expected)
    torch.testing.assert_close(log_prior(COUNTS, pseudo_count=0.25).double(),
                               torch.tensor(ref_log_prior(COUNTS, 0.25), dtype=F64), rtol=1e-6, atol=0)
    with pytest.raises(ConfigError, match="pseudo_count"):
        log_prior(COUNTS, pseudo_count=0.0)  # the unseen tag would get log 0
    with pytest.raises(ConfigError, match="prior_pseudo_count"):
        build_loss("logit-adjusted", label_counts=COUNTS, prior_pseudo_count=0.0)


def test_adjust_logits():
    logits = torch.randn(2, 3, 4)
    for name, kwargs in [("ce", {}), ("focal", {}), ("weighted-ce", {"label_counts": COUNTS}), ("dice", {}),
                         ("logit-adjusted", {"label_counts": COUNTS}), ("am-softmax", {})]:
        assert build_loss(name, **kwargs).adjust_logits(logits) is logits
    overall = build_loss("logit-adjusted", label_counts=COUNTS, tau=1.5, decision="overall")
    expected = logits + 1.5 * torch.tensor(ref_log_prior(COUNTS, 1.0))
    torch.testing.assert_close(overall.adjust_logits(logits), expected)
    explicit = build_loss("logit-adjusted", log_prior=[-1.0, -2.0, -3.0, -0.5], decision="overall")
    torch.testing.assert_close(explicit.adjust_logits(logits), logits + torch.tensor([-1.0, -2.0, -3.0, -0.5]))
    assert overall.adjust_logits(logits.to(torch.bfloat16)).dtype == torch.float32


def test_logit_adjusted_with_explicit_log_prior():
    prior = [-0.3, -2.0, -5.0, -1.1]
    logits, labels, mask = token_batch(5)
    shift = torch.tensor(prior, dtype=F64)
    check_against_reference(build_loss("logit-adjusted", log_prior=prior, tau=0.5),
                            token_reference(lambda z, y: ce_token(z + 0.5 * shift, y)), logits, labels, mask, fd=False)


# ---------------------------------------------------------------------------------------
# Registry and configuration errors


def test_registry_names_and_kinds():
    names = {spec.name: spec.applies_to for spec in available_losses()}
    for name in ("ce", "weighted-ce", "hard-truncated", "soft-truncated", "focal", "logit-adjusted", "dice",
                 "am-softmax", "zlpr", "bce", "flooding"):
        assert name in names
    assert "token" in names["focal"] and "span" in names["focal"]
    assert "span" in names["zlpr"] and "span" in names["bce"]
    # the tagger checks `head kind in applies_to`: the wrapper must pass for token and span heads
    assert {"token", "span"} <= set(names["flooding"])
    assert {spec.name for spec in available_losses("span")} >= {"zlpr", "bce", "focal"}
    assert get_loss_spec("weighted-ce").accepts("label_counts")
    assert get_loss_spec("logit-adjusted").accepts("label_counts")
    assert not get_loss_spec("ce").accepts("label_counts")
    # context arguments are not listed as hyper-parameters
    assert "label_counts" not in [p.name for p in get_loss_spec("weighted-ce").hyper_parameters]


def test_unknown_loss_and_parameter():
    with pytest.raises(ConfigError, match="no-such"):
        build_loss("no-such-loss")
    with pytest.raises(ConfigError, match="gama"):
        build_loss("focal", gama=2.0)


@pytest.mark.parametrize(
    "name, kwargs, parameter",
    [
        ("weighted-ce", {"scheme": "sqrt", "label_counts": COUNTS}, "scheme"),
        ("weighted-ce", {"beta": 1.5, "label_counts": COUNTS}, "beta"),
        ("weighted-ce", {"scheme": "effective_number", "beta": 0.5, "label_counts": COUNTS}, "beta"),
        ("weighted-ce", {"pseudo_count": -1.0, "label_counts": COUNTS}, "pseudo_count"),
        ("weighted-ce", {"pseudo_count": 0.0, "label_counts": COUNTS}, "pseudo_count"),
        ("weighted-ce", {"normalize_weights": "max", "label_counts": COUNTS}, "normalize_weights"),
        ("weighted-ce", {"max_weight": 0.0, "label_counts": COUNTS}, "max_weight"),
        ("weighted-ce", {"normalize": "batch", "label_counts": COUNTS}, "normalize"),
        ("weighted-ce", {}, "label_counts"),
        ("weighted-ce", {"class_weight": [1.0, -1.0]}, "class_weight"),
        ("weighted-ce", {"class_weight": [1.0, 2.0], "num_classes": 4}, "class_weight"),
        ("hard-truncated", {"m": 0.4}, "m"),
        ("hard-truncated", {"m": 1.01}, "m"),
        ("soft-truncated", {"K": 0.0}, "K"),
        ("soft-truncated", {"K": 21.0}, "K"),
        ("soft-truncated", {"m": 1.0}, "m"),
        ("soft-truncated", {"m": 0.45}, "m"),
        ("soft-truncated", {"variant": "su"}, "variant"),
        ("soft-truncated", {"variant": "softmax", "m": 0.7}, "m"),
        ("focal", {"gamma": -0.1}, "gamma"),
        ("focal", {"gamma": 5.5}, "gamma"),
        ("focal", {"alpha": 1.5, "form": "binary"}, "alpha"),
        ("focal", {"alpha": 0.25, "form": "multiclass"}, "alpha"),
        ("focal", {"alpha": [1.0, 0.0, 2.0]}, "alpha"),
        ("focal", {"form": "sigmoid"}, "form"),
        ("logit-adjusted", {"tau": 2.5, "label_counts": COUNTS}, "tau"),
        ("logit-adjusted", {"tau": -0.5, "label_counts": COUNTS}, "tau"),
        ("logit-adjusted", {"decision": "argmax", "label_counts": COUNTS}, "decision"),
        ("logit-adjusted", {}, "label_counts"),
        ("logit-adjusted", {"log_prior": [0.0, -math.inf]}, "log_prior"),
        ("dice", {"alpha": 1.5}, "alpha"),
        ("dice", {"gamma": 0.0}, "gamma"),
        ("dice", {"gamma": 1.5}, "gamma"),
        ("dice", {"granularity": "sentence"}, "granularity"),
        ("dice", {"classes": [1, 2], "granularity": "token"}, "classes"),
        ("am-softmax", {"s": 4.0}, "s"),
        ("am-softmax", {"s": 65.0}, "s"),
        ("am-softmax", {"m": 0.6}, "m"),
        ("zlpr", {"sparse": "maybe"}, "sparse"),
        ("zlpr", {"eps": 0.0}, "eps"),
        ("bce", {"pos_weight": 0.0}, "pos_weight"),
        ("flooding", {"b": -0.01}, "b"),
        ("flooding", {"mode": "token"}, "mode"),
        ("flooding", {"inner": "flooding"}, "inner"),
    ],
)
def test_out_of_range_hyper_parameters_raise(name, kwargs, parameter):
    with pytest.raises(ConfigError, match=parameter):
        build_loss(name, **kwargs)


def test_focal_form_conflicts_at_forward():
    logits, labels, mask = token_batch(0)
    with pytest.raises(ConfigError, match="alpha"):
        build_loss("focal", alpha=0.5)(logits, labels, mask)  # scalar alpha is binary-only
    scores, span_labels, span_mask = span_batch(0)
    with pytest.raises(ConfigError, match="alpha"):
        build_loss("focal", alpha=[1.0, 2.0, 1.0, 1.0])(scores, span_labels, span_mask)
    with pytest.raises(ConfigError, match="alpha"):
        build_loss("focal", alpha=[1.0, 2.0, 1.0])(logits, labels, mask)  # 3 weights, 4 tags


def test_soft_truncated_needs_two_tags():
    logits = torch.zeros(1, 2, 1)
    with pytest.raises(ValueError, match="two"):
        build_loss("soft-truncated")(logits, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool))

"""The loss registry: name -> factory with keyword-only, typed hyper-parameters.

A new loss is one file and one ``@register_loss`` decoration; nothing else is edited.
The factory's keyword-only arguments are its hyper-parameters, and their annotations
and defaults are what ``nerkit losses`` prints. Factories validate their arguments and
raise ``ConfigError`` naming the parameter and its range.

Contract of the modules a factory returns (docs/losses.md section 1):

* token losses (``applies_to`` contains ``"token"``):
  ``loss(logits [B, L, C], labels [B, L] int64, mask [B, L] bool) -> scalar``.
  A token is valid iff ``mask`` is true and ``label != -100``; the reduction is the
  mean over valid tokens; an empty batch gives an exact zero still attached to the graph.
* binary forms (``"binary"``): ``loss(logits, labels, mask)``, three tensors of one shape,
  mean over valid entries.
* span losses (``"span"``): ``loss(scores [B, T, L, L], labels [B, T, L, L], mask [B, T, L, L])``.

Factories that want class statistics declare a keyword-only ``label_counts`` argument;
the tagger passes the counts it took from the training data (docs/losses.md 1.5) to exactly
those factories (see ``LossSpec.accepts``).

What a head may ask of a loss beyond ``forward`` (decode-time adjustment, a cosine
classifier, the CRF's own sequence NLL, sparse span targets) is ``nerkit.losses.hooks``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from nerkit.errors import ConfigError
from nerkit.registry import Registry, Setting, Spec

# Arguments the tagger supplies itself; they are not user hyper-parameters.
CONTEXT_ARGUMENTS = frozenset({"label_counts", "num_classes"})

HyperParameter = Setting  # the name ``nerkit losses`` and older code use


class LossSpec(Spec):
    @property
    def applies_to(self) -> tuple[str, ...]:
        return self.metadata["applies_to"]

    @property
    def hyper_parameters(self) -> list[Setting]:
        return self.settings


LOSSES = Registry("loss", group="nerkit.losses", context=CONTEXT_ARGUMENTS, spec_class=LossSpec,
                  key="name")


def register_loss(name: str, *, applies_to: tuple[str, ...], summary: str = "", decoding: str = "",
                  partial_labels: bool = False):
    """Register ``factory`` under ``name``. ``applies_to`` names the input kinds it takes:
    ``"token"`` (softmax tagger), ``"binary"``, ``"span"``, ``"crf"``, ``"wrapper"``; a head
    takes the losses of the kinds it lists when it registers (``nerkit heads``). ``decoding``
    says how the loss's hooks change what a head decodes (``nerkit losses`` prints it); empty
    when they do not. ``partial_labels``: the loss learns from partial annotations: a token loss
    implements ``forward_partial(logits, allowed, mask)`` (``TokenLoss``); on the span head every
    loss does (unknown cells are left out of the validity mask each one takes), and the flag only
    says so in ``nerkit losses``."""
    return LOSSES.register(name, summary=summary, applies_to=tuple(applies_to), decoding=decoding,
                           partial_labels=partial_labels)


def supports_partial_labels(loss_name: str) -> bool:
    """Whether the token loss registered as ``loss_name`` learns from partial annotations."""
    return bool(get_loss_spec(loss_name).metadata.get("partial_labels"))


def get_loss_spec(name: str) -> LossSpec:
    return LOSSES.get(name)


def available_losses(applies_to: str | None = None) -> list[LossSpec]:
    specs = LOSSES.specs()
    if applies_to is None:
        return specs
    return [spec for spec in specs if applies_to in spec.applies_to]


def validate_loss_params(name: str, params: dict[str, Any], *, section: str = "loss") -> dict[str, Any]:
    """The hyper-parameters ``params`` of loss ``name``, type-checked against its factory before
    it runs (``--set loss.gamma=abc`` is an error naming ``loss.gamma``), defaults not filled in."""
    spec = get_loss_spec(name)
    context = {key: params[key] for key in CONTEXT_ARGUMENTS if key in params}
    settings = {key: value for key, value in params.items() if key not in CONTEXT_ARGUMENTS}
    validated = spec.validate(settings, section=section)
    return {**{key: validated[key] for key in settings}, **context}


def build_loss(name: str, **params: Any) -> nn.Module:
    """Build the loss registered as ``name`` with the given hyper-parameters."""
    return get_loss_spec(name).build(**validate_loss_params(name, params))


def check_range(name: str, value: float, low: float, high: float, *,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ConfigError`` unless ``value`` lies in the interval (bounds as flagged)."""
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{name}={value} is out of range; expected a value in {interval}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")

"""The loss registry: name -> factory with keyword-only, typed hyper-parameters.

A new loss is one file and one ``@register_loss`` decoration; nothing else is edited.
The factory's keyword-only arguments are its hyper-parameters, and their annotations
and defaults are what ``nerkit losses`` prints. Factories validate their arguments and
raise ``ConfigError`` naming the parameter and its range.

Contract of the modules a factory returns (LOSSES.md section 1):

* token losses (``applies_to`` contains ``"token"``):
  ``loss(logits [B, L, C], labels [B, L] int64, mask [B, L] bool) -> scalar``.
  A token is valid iff ``mask`` is true and ``label != -100``; the reduction is the
  mean over valid tokens; an empty batch gives an exact zero still attached to the graph.
* binary forms (``"binary"``): ``loss(logits, labels, mask)``, three tensors of one shape,
  mean over valid entries.
* span losses (``"span"``): ``loss(scores [B, T, L, L], labels [B, T, L, L], mask [B, T, L, L])``.

Factories that want class statistics declare a keyword-only ``label_counts`` argument;
the tagger passes the counts it took from the training data (LOSSES.md 1.5) to exactly
those factories (see ``LossSpec.accepts``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from nerkit.errors import ConfigError

# Arguments the tagger supplies itself; they are not user hyper-parameters.
CONTEXT_ARGUMENTS = frozenset({"label_counts", "num_classes"})


@dataclass(frozen=True)
class HyperParameter:
    name: str
    annotation: str
    default: Any


@dataclass(frozen=True)
class LossSpec:
    name: str
    factory: Callable[..., nn.Module]
    applies_to: tuple[str, ...]
    summary: str

    @property
    def hyper_parameters(self) -> list[HyperParameter]:
        params = []
        for parameter in inspect.signature(self.factory).parameters.values():
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            if parameter.name in CONTEXT_ARGUMENTS:
                continue
            annotation = parameter.annotation
            if not isinstance(annotation, str):
                annotation = getattr(annotation, "__name__", str(annotation))
            default = None if parameter.default is inspect.Parameter.empty else parameter.default
            params.append(HyperParameter(parameter.name, annotation, default))
        return params

    def accepts(self, argument: str) -> bool:
        parameters = inspect.signature(self.factory).parameters
        return argument in parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
        )


_REGISTRY: dict[str, LossSpec] = {}


def register_loss(name: str, *, applies_to: tuple[str, ...], summary: str = ""):
    """Register ``factory`` under ``name``. ``applies_to`` names the input kinds it takes:
    ``"token"`` (softmax tagger), ``"binary"``, ``"span"``, ``"crf"``, ``"wrapper"``."""

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"loss {name!r} is registered twice")
        doc = summary or (inspect.getdoc(factory) or "").split("\n")[0]
        _REGISTRY[name] = LossSpec(name, factory, tuple(applies_to), doc)
        return factory

    return decorate


def get_loss_spec(name: str) -> LossSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown loss {name!r}; registered losses: {known}") from None


def available_losses(applies_to: str | None = None) -> list[LossSpec]:
    specs = sorted(_REGISTRY.values(), key=lambda spec: spec.name)
    if applies_to is None:
        return specs
    return [spec for spec in specs if applies_to in spec.applies_to]


def build_loss(name: str, **params: Any) -> nn.Module:
    """Build the loss registered as ``name`` with the given hyper-parameters."""
    spec = get_loss_spec(name)
    signature = inspect.signature(spec.factory)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [key for key in params if key not in signature.parameters and not takes_any]
    if unknown:
        allowed = ", ".join(p.name for p in spec.hyper_parameters) or "none"
        raise ConfigError(
            f"loss {name!r} has no hyper-parameter {', '.join(map(repr, unknown))}; "
            f"its hyper-parameters: {allowed}"
        )
    return spec.factory(**params)


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

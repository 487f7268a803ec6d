"""One shape for every registry: a name -> factory with keyword-only, typed settings.

Losses, heads and encoders each have a ``Registry`` (``nerkit.losses``, ``nerkit.heads``,
``nerkit.encoders``); data formats, which have functions rather than settings and live in the
data layer below this module, have their own of the same shape (``nerkit.data.formats.registry``).
A factory's keyword-only arguments are its settings: their annotations
(``Annotated[int, Field(ge=1)]`` for a range) and defaults are what the configuration is
validated against and what ``nerkit losses|heads|encoders`` print. Its positional arguments,
and the keyword-only names a registry lists as ``context``, are supplied by nerkit itself
(the input size of a head, the training label counts of a loss, ...).

Built-ins register exactly like plug-ins. Plug-ins arrive through ``--code FILE`` (imported
before anything else; see ``nerkit.plugins``) or through the entry-point group of each
registry (``nerkit.losses``, ``nerkit.heads``, ``nerkit.encoders``) of an installed package:
loading an entry point is enough, its decorators run on import. Entry points are looked up
lazily, the first time a registry is consulted.

Each entry remembers where it came from (``Spec.source``): the ``--code`` file or the installed
package whose import registered it, or the module of a factory registered by other code; None
for nerkit's own. A model directory saves the sources of its plug-ins, so that loading it
without them can say which file or package to give (``nerkit.plugins``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ConfigDict, ValidationError, create_model

from nerkit.entry_points import load_group
from nerkit.errors import ConfigError

# The source of what registers now (``registering_from``); None: the factory's own module says.
_current_source: dict[str, str] | None = None


@contextlib.contextmanager
def registering_from(source: dict[str, str]):
    """Every component registered inside this block came from ``source``, e.g.
    ``{"code": "/path/my_loss.py"}`` while a ``--code`` file is imported (``nerkit.plugins``),
    ``{"package": "nerkit-extra", "group": "nerkit.losses"}`` while an entry point loads."""
    global _current_source
    outer, _current_source = _current_source, dict(source)
    try:
        yield
    finally:
        _current_source = outer


def _source_of(factory: Callable[..., Any]) -> dict[str, str] | None:
    """Where a factory registered now comes from: the enclosing ``registering_from``, else the
    module that defines it (None for nerkit's own modules: built-ins need no plug-in)."""
    if _current_source is not None:
        return dict(_current_source)
    module = getattr(factory, "__module__", None) or "?"
    if module == "nerkit" or module.startswith("nerkit."):
        return None
    return {"module": module}


@dataclass(frozen=True)
class Setting:
    """One keyword-only argument of a factory, as ``nerkit losses|heads|encoders`` prints it."""

    name: str
    annotation: str
    default: Any
    required: bool


def _annotation_text(annotation: Any) -> str:
    """``int``, ``int | None``, ``'BIO' | 'BIOES'``: an annotation as a user reads it (ranges
    given with ``Annotated`` are left to the factory's docstring)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _annotation_text(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_annotation_text(argument) for argument in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(repr(argument) for argument in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and origin is None:
        return annotation.__name__
    return str(annotation).replace("typing.", "")


@dataclass(frozen=True)
class Spec:
    """A registered factory and what its registry knows about it (``metadata``: for losses
    ``applies_to``; for heads ``losses``, ``default_loss`` and ``labels``)."""

    kind: str  # "loss", "head" or "encoder": used in messages
    name: str
    factory: Callable[..., Any]
    summary: str
    context: frozenset[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    # Where it came from: {"code": FILE}, {"package": NAME, "group": GROUP} (or {"entry_point":
    # VALUE, "group": GROUP} without a package) or {"module": NAME}; None for nerkit's built-ins.
    source: dict[str, str] | None = None
    key: str = "type"  # the key of the name in a saved section: "type" ("name" for losses)

    def _setting_parameters(self) -> list[inspect.Parameter]:
        return [p for p in inspect.signature(self.factory).parameters.values()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in self.context]

    @property
    def takes_any(self) -> bool:
        """Whether the factory takes ``**settings`` (flooding passes them to the loss it wraps)."""
        return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(self.factory).parameters.values())

    @property
    def settings(self) -> list[Setting]:
        hints = self._hints()
        return [Setting(p.name, _annotation_text(hints.get(p.name, Any)),
                        None if p.default is inspect.Parameter.empty else p.default,
                        p.default is inspect.Parameter.empty)
                for p in self._setting_parameters()]

    def accepts(self, argument: str) -> bool:
        return argument in inspect.signature(self.factory).parameters or self.takes_any

    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.factory, include_extras=True)
        except Exception:  # an annotation that cannot be resolved is not checked
            return {}

    @functools.cached_property
    def _model(self):
        """A pydantic model of the settings, built once: types, ranges, defaults, no extras."""
        hints = self._hints()
        fields = {p.name: (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
                  for p in self._setting_parameters()}
        extra = "allow" if self.takes_any else "forbid"
        return create_model(f"{self.kind}_{self.name}_settings",
                            __config__=ConfigDict(extra=extra, arbitrary_types_allowed=True), **fields)

    def validate(self, values: dict[str, Any], *, section: str) -> dict[str, Any]:
        """``values`` checked and converted against the factory's settings, defaults filled in.
        Errors name ``section.field`` and, for an unknown field, the allowed ones."""
        try:
            validated = self._model.model_validate(values)
        except ValidationError as error:
            allowed = ", ".join(s.name for s in self.settings) or "none"
            problems = []
            for item in error.errors():
                where = ".".join(str(part) for part in item["loc"])
                if item["type"] == "extra_forbidden":
                    problems.append(f"{section}.{where}: not a setting of the {self.kind} {self.name!r} "
                                    f"(its settings: {allowed})")
                elif item["type"] == "missing":
                    problems.append(f"{section}.{where}: required by the {self.kind} {self.name!r}")
                else:
                    problems.append(f"{section}.{where}: {item['msg']} (got {item.get('input')!r})")
            raise ConfigError("; ".join(problems)) from None
        return {**validated.model_dump(), **(validated.model_extra or {})}

    def build(self, *context: Any, **settings: Any) -> Any:
        """The component the factory builds, given what it was built with as ``built_with``:
        ``{key: name, **settings}``, defaults filled in, context arguments left out. That is what
        a head or loss reports (``config()``) of the settings it does not hold itself: a plug-in
        that does not report its settings still has them saved with the model."""
        component = self.factory(*context, **settings)
        given = {name: value for name, value in settings.items() if name not in self.context}
        built_with = {self.key: self.name, **self.validate(given, section=self.kind)}
        with contextlib.suppress(AttributeError):  # a component that takes no attributes (a number)
            component.built_with = built_with
        return component


class Registry:
    """Name -> ``Spec`` for one kind of component, with lazily loaded entry points."""

    def __init__(self, kind: str, *, group: str, context: frozenset[str] = frozenset(),
                 spec_class: type[Spec] = Spec, key: str = "type"):
        self.kind, self.group, self.context, self.spec_class, self.key = kind, group, context, spec_class, key
        self._specs: dict[str, Spec] = {}
        self._entry_points_loaded = False

    def register(self, name: str, *, summary: str = "", **metadata_: Any):
        """Decorator: register ``factory`` under ``name``."""

        def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._specs:
                raise ConfigError(f"{self.kind} {name!r} is registered twice "
                                  f"({self._specs[name].factory.__module__} and {factory.__module__})")
            doc = summary or (inspect.getdoc(factory) or "").split("\n")[0]
            self._specs[name] = self.spec_class(self.kind, name, factory, doc, self.context, dict(metadata_),
                                                source=_source_of(factory), key=self.key)
            return factory

        return decorate

    def load_entry_points(self) -> None:
        """Import every installed plug-in of this registry's entry-point group, once."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True

        def recorded(entry_point):  # where each registration came from, for config.json's "plugins"
            return registering_from({"package": entry_point.dist.name, "group": self.group} if entry_point.dist
                                    is not None else {"entry_point": entry_point.value, "group": self.group})

        load_group(self.group, recorded)

    def get(self, name: str) -> Spec:
        if name not in self._specs:
            self.load_entry_points()
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}. A plug-in "
                              "is loaded with --code FILE or installed with an entry point "
                              f"in group {self.group!r}") from None

    def __contains__(self, name: str) -> bool:
        self.load_entry_points()
        return name in self._specs

    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._specs)

    def specs(self) -> list[Spec]:
        return [self._specs[name] for name in self.names()]


def describe(registry: Registry) -> list[str]:
    """``nerkit losses|heads|encoders``: one line per entry (name, where it applies, summary),
    then its settings with their types and defaults."""
    lines = []
    for spec in registry.specs():
        where = spec.metadata.get("applies_to") or spec.metadata.get("losses")
        tags = f"  [{', '.join(where)}]" if where else ""
        default_loss = spec.metadata.get("default_loss")
        lines.append(f"{spec.name}{tags}  {spec.summary}" + (f" (default loss: {default_loss})" if default_loss else ""))
        if spec.metadata.get("decoding"):
            lines.append(f"    changes decoding: {spec.metadata['decoding']}")
        if spec.metadata.get("partial_labels"):
            lines.append("    learns from partial annotations (annotated_types, '-' tags)")
        for setting in spec.settings:
            value = "required" if setting.required else f"= {setting.default!r}"
            lines.append(f"    {setting.name}: {setting.annotation} {value}")
    return lines


__all__ = ["Registry", "Setting", "Spec", "describe", "registering_from"]

"""The registry of data formats: name -> ``Format`` (``detect``, ``read`` and, where it can,
``write``), the fourth registry beside losses, heads and encoders.

It is its own small registry rather than a ``nerkit.registry.Registry``: the data layer imports
nothing above it (tests/test_imports.py), and a format has no settings for pydantic to check,
only functions. It keeps the same shape: built-ins register exactly like plug-ins, through
``register_format``; plug-ins arrive through ``--code FILE`` or an installed package's entry
point in group ``nerkit.formats`` (loaded lazily, the first time the registry is consulted).

A format's ``read`` and ``write`` take what they need of the reading options by keyword:
``encoding`` always; ``scheme``, ``tag_column`` and ``stats`` (``ReadStats``) when their
signatures name them. A format of ``kind`` "tokens" reads and writes ``Example`` lists, one of
kind "text" ``AnnotatedText`` lists (``records.py``), which nerkit tokenizes for training.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from nerkit.atomic import atomic_write
from nerkit.entry_points import load_group
from nerkit.errors import ConfigError

GROUP = "nerkit.formats"
KINDS = ("tokens", "text")


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # "tokens" or "text"
    detect: Callable[..., bool]  # detect(path, encoding) -> whether the content is this format's
    read: Callable[..., list]
    write: Callable[..., int] | None
    summary: str
    # Why detection chose it, for messages ("its first line has 'tokens'"): a file that then
    # does not read says which format it was read as and why, so a user can name another.
    detected_because: str
    # A format that claims whatever no other format claims (conll): detected last.
    catch_all: bool = False
    source: str | None = field(default=None, compare=False)  # the module of its reader, for messages
    # stream(records, sink, ...) -> count: the records written one by one onto an open text
    # stream, so ``nerkit predict`` keeps memory flat; a format without one is written whole by
    # ``write`` to a path.
    stream: Callable[..., int] | None = None

    @property
    def writable(self) -> bool:
        return self.write is not None or self.stream is not None

    def takes(self, function: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
        """The ``options`` that ``function`` (this format's read or write) names."""
        parameters = inspect.signature(function).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return dict(options)
        return {name: value for name, value in options.items() if name in parameters}

    def write_records(self, records, path: Path, **options: Any) -> int:
        """``records`` written to ``path`` by ``write``, or by ``stream`` onto a file that
        appears whole; ``options``: those the writer names are passed."""
        if self.write is not None:
            return self.write(records, path, **self.takes(self.write, options))
        with atomic_write(path, encoding="utf-8", newline="\n") as sink:
            return self.stream(records, sink, **self.takes(self.stream, options))


class FormatRegistry:
    """Name -> ``Format``, with lazily loaded entry points. Listed by name, like the other
    registries; detection tries them in the order they were registered."""

    kind = "format"
    group = GROUP

    def __init__(self) -> None:
        self._formats: dict[str, Format] = {}
        self._entry_points_loaded = False

    def add(self, entry: Format) -> Format:
        if entry.name in self._formats:
            raise ConfigError(f"format {entry.name!r} is registered twice ({self._formats[entry.name].source} and "
                              f"{entry.source})")
        self._formats[entry.name] = entry
        return entry

    def load_entry_points(self) -> None:
        """Import every installed plug-in of the group ``nerkit.formats``, once."""
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        load_group(GROUP)

    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._formats)

    def formats(self) -> list[Format]:
        return [self._formats[name] for name in self.names()]

    def detection_order(self) -> list[Format]:
        """The formats in the order they were registered: the built-ins first, in the order
        that tells them apart (``nerkit.data.formats``), then plug-ins."""
        self.load_entry_points()
        return list(self._formats.values())

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._formats

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> Format:
        return self.get(name)

    def get(self, name: str, option: str = "data.format") -> Format:
        """The format ``name``; another name is a ``ConfigError`` naming ``option``, the registered
        formats and the closest of them."""
        if name not in self:
            raise ConfigError(unknown_format(name, self.names(), option))
        return self._formats[name]


def unknown_format(name: Any, names: list[str], option: str = "data.format") -> str:
    closest = difflib.get_close_matches(str(name).lower(), names, n=1) if isinstance(name, str) else []
    hint = f" Did you mean {closest[0]}?" if closest else ""
    auto = "" if option == "--to" else "auto (detected from the content) or "
    named = f"{option} {name!r:.80}" if option else f"{name!r:.80}"
    return (f"{named}: not a registered format; expected {auto}one of {', '.join(names)} (`nerkit formats` lists "
            f"them). A plug-in format is loaded with --code FILE or installed with an entry point in group "
            f"{GROUP!r}.{hint}")


FORMATS = FormatRegistry()


def register_format(name: str, *, kind: str, detect: Callable[..., bool], read: Callable[..., list],
                    write: Callable[..., int] | None = None, summary: str = "", detected_because: str = "",
                    catch_all: bool = False, stream: Callable[..., int] | None = None) -> Format:
    """Register a data format under ``name``: its ``detect(path, encoding="utf-8")`` says from the
    content whether a file (or directory) is in it, ``read(path, *, encoding, ...)`` gives its
    records and ``write(records, path, ...)`` (where the format can be written) writes them and
    returns how many; ``stream(records, sink, ...)``, where it can, writes them one by one onto an
    open text stream (``nerkit predict`` streams through it; a format with ``write`` only gets
    its predictions written to the --output path). ``kind``: "tokens" (``Example`` records) or
    "text" (``AnnotatedText``).
    ``summary``: one line for ``nerkit formats`` (default: the first line of the docstring of
    ``read``'s module). Once registered, ``data.format``, ``--from`` and ``--to`` take the name (and
    ``nerkit predict --format``, where it can be written) and detection tries ``detect`` after the
    formats registered before it."""
    if not isinstance(name, str) or not name or name == "auto" or any(c.isspace() for c in name):
        raise ConfigError(f"register_format: {name!r} cannot name a format (a word without spaces, not 'auto')")
    if kind not in KINDS:
        raise ConfigError(f"register_format {name!r}: kind {kind!r}; expected {' or '.join(KINDS)}")
    for role, function in (("detect", detect), ("read", read), ("write", write), ("stream", stream)):
        if (function is not None or role not in ("write", "stream")) and not callable(function):
            raise ConfigError(f"register_format {name!r}: {role} must be a function, not {function!r:.80}")
    module = inspect.getmodule(read)
    if not summary and module is not None:
        summary = (inspect.getdoc(module) or "").split("\n")[0]
    source = getattr(module, "__file__", None) or getattr(read, "__module__", None)
    return FORMATS.add(Format(name, kind, detect, read, write, summary.strip(),
                              detected_because or f"the {name} format's detect() claimed it", catch_all,
                              str(source) if source else None, stream))


def describe_formats() -> list[str]:
    """``nerkit formats``: one line per registered format and one saying when it is detected."""
    lines = []
    for entry in FORMATS.formats():
        can = "read, write" if entry.writable else "read only"
        lines.append(f"{entry.name}  [{entry.kind}; {can}]  {entry.summary}")
        lines.append(f"    detected when {entry.detected_because}")
    return lines


__all__ = ["FORMATS", "Format", "FormatRegistry", "GROUP", "describe_formats", "register_format", "unknown_format"]

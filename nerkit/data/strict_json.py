"""JSON in and out, strictly: the one parser every JSON input of nerkit goes through (annotation
exports, training JSON lines, ``nerkit predict --input-format jsonl``), and the one writer.

Python's ``json`` module accepts more than JSON, and some of it breaks nerkit far from the file:

* ``NaN``, ``Infinity`` and ``-Infinity`` literals, and numbers beyond a 64-bit float
  (``1e999``, read as ``inf``), which ``json.dumps`` then writes back as ``Infinity``, which no
  JSON reader accepts. They are refused (an id that large belongs in a string).
* Escapes of lone UTF-16 surrogates (``"\\ud800"``): a ``str`` that cannot be encoded as UTF-8,
  so training fails when it first writes the vocabulary, after an epoch. They are refused, or
  with ``errors="replace"`` (``nerkit predict --errors replace``) read as U+FFFD and counted.
* Nesting deeper than Python's recursion limit (``RecursionError``), and integers longer than
  Python converts (``ValueError``, 4300 digits by default).

Every one of them is a ``DataError`` naming the file and line (or, in a whole-file document,
the line of a syntax error and the place in the value) and what was expected.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from typing import Any

from nerkit.errors import DataError, NerkitError

logger = logging.getLogger(__name__)

ERRORS = ("strict", "replace")
SURROGATES = re.compile("[\ud800-\udfff]")
# What a text must hold for its parsed value to hold a surrogate: an escape of one (high or low
# half; a pair is joined into one character by the parser), or one left in the text itself by a
# lenient decoder. Texts without either (nearly all) skip the walk over the value.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Line breaks that JSON leaves unescaped but str.splitlines() and JavaScript split on; escaped,
# every record stays on one line for any reader. The one table: every JSON nerkit writes with
# its text kept readable (ensure_ascii=False) goes through it (``dumps``, ``escape_line_breaks``).
LINE_BREAK_ESCAPES = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_UNESCAPED_BREAKS = str.maketrans(LINE_BREAK_ESCAPES)


class _Refused(Exception):
    """Raised by the parser's hooks; becomes a DataError with the place."""


def _constant(name: str) -> float:
    raise _Refused(f"{name} is not JSON (a JavaScript value that JSON has no number for); write the value as a "
                   "string or leave it out")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 30 else text[:27] + "..."
        raise _Refused(f"the number {shown} is beyond a 64-bit float (about 1.8e308) and would be read as infinity, "
                       "which JSON cannot write back; write it as a string (an id \"1e999\")")
    return value


_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite_float)


class JsonParser:
    """Parses the JSON texts of one input (``name``: the file, for messages). ``expected``: what
    the input should hold, added to syntax errors (``one object per line``). ``errors``:
    ``strict`` refuses lone surrogates, ``replace`` reads them as U+FFFD; ``replace_option``
    names the option that sets it, for the message (None where the command has none).
    ``report()`` logs one warning for the replacements."""

    def __init__(self, name: str, *, expected: str = "", errors: str = "strict",
                 replace_option: str | None = None):
        if errors not in ERRORS:
            raise NerkitError(f"errors={errors!r}: expected {' or '.join(ERRORS)}")
        self.name, self.expected, self.errors, self.replace_option = name, expected, errors, replace_option
        self.replaced_lines = 0

    def loads(self, text: str, line: int | None = None) -> Any:
        """The value of ``text``, the whole of line ``line`` (or of the file, when None: syntax
        errors then name their own line and column)."""
        try:
            value = _DECODER.decode(text)
        except _Refused as refusal:
            raise self._error(str(refusal), line) from None
        except json.JSONDecodeError as error:
            if line is None:
                raise self._error(f"not valid JSON ({error.msg} at column {error.colno}){self._expected()}",
                                  error.lineno) from None
            raise self._error(f"not valid JSON ({error.msg} at character {error.colno}){self._expected()}",
                              line) from None
        except RecursionError:
            raise self._error(f"JSON nested too deeply (Python reads about {sys.getrecursionlimit()} levels)"
                              f"{self._expected()}", line) from None
        except ValueError as error:  # an integer of more digits than int() converts
            limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
            what = f"more than {limit} digits" if limit else str(error)
            raise self._error(f"a number of {what}, more than Python reads; write it as a string", line) from None
        if ("\\u" in text and _SURROGATE_ESCAPE.search(text)) or not _encodable(text):
            value = self._surrogates(value, line)
        return value

    def report(self) -> None:
        if self.replaced_lines:
            lines = "1 line" if self.replaced_lines == 1 else f"{self.replaced_lines} lines"
            logger.warning("%s: %s held lone surrogate escapes (\\ud800-\\udfff), read as U+FFFD (--errors replace)",
                           self.name, lines)

    def _expected(self) -> str:
        return f"; expected {self.expected}" if self.expected else ""

    def _error(self, message: str, line: int | None) -> DataError:
        return DataError(message, path=self.name, line=line)

    def _surrogates(self, value: Any, line: int | None) -> Any:
        replaced = False

        def fix(text: str, where: str) -> str:
            nonlocal replaced
            found = SURROGATES.search(text)
            if found is None:
                return text
            if self.errors == "strict":
                option = f", or pass {self.replace_option} to read it as U+FFFD" if self.replace_option else ""
                raise self._error(f"{where} holds a lone surrogate escape ({found.group()!r}, half of a UTF-16 "
                                  f"pair without the other half), which is not text; fix what wrote the "
                                  f"file{option}", line)
            replaced = True
            return SURROGATES.sub("\ufffd", text)

        value = _map_strings(value, fix)
        self.replaced_lines += replaced
        return value


def _encodable(text: str) -> bool:
    """Whether ``text`` holds no surrogate (the fast test: C speed, where a regex scan costs more
    than parsing the line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _map_strings(value: Any, fix) -> Any:
    """``value`` with ``fix(text, where)`` applied to every string in it, field names too,
    without recursion (a value may be nested as deep as the parser allows). ``where``
    names the place: ``field data.text``, ``field spans[0].type``."""
    if isinstance(value, str):
        return fix(value, "the JSON string")
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        container, where = stack.pop()
        if isinstance(container, dict):
            if any(SURROGATES.search(key) for key in container):
                items = [(fix(key, f"a field name in {_place(where)}"), item) for key, item in container.items()]
                container.clear()
                container.update(items)
            children = [(key, f"{where}.{key}" if where else key) for key in container]
        elif isinstance(container, list):
            children = [(index, f"{where}[{index}]") for index in range(len(container))]
        else:
            continue
        for key, place in children:
            item = container[key]
            if isinstance(item, str):
                container[key] = fix(item, f"field {place}")
            elif isinstance(item, (dict, list)):
                stack.append((item, place))
    return value


def _place(where: str) -> str:
    return f"field {where}" if where else "the object"


def escape_line_breaks(json_text: str) -> str:
    """JSON text written with ``ensure_ascii=False`` with the line breaks JSON leaves raw
    (``LINE_BREAK_ESCAPES``) escaped: for the JSON files nerkit writes other than records
    (``config.json``, vocabularies, reports), whose other settings ``dumps`` would change."""
    return json_text.translate(_UNESCAPED_BREAKS)


def dumps(value: Any) -> str:
    """One line of JSON: UTF-8 text kept readable, every line break inside strings escaped, and
    never ``NaN`` or ``Infinity`` (not JSON)."""
    try:
        return escape_line_breaks(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except ValueError as error:  # a float NaN or infinity given through the Python API
        raise NerkitError(f"cannot write a record as JSON ({error}): NaN and infinity are not JSON numbers") from None

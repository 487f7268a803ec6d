"""Bytes -> text for every file nerkit reads: the encoding named by ``data.encoding``, errors
that name the file, the line and the option to set, and binary files refused as such
instead of being parsed into nonsense.

Training and evaluation files are decoded whole (they are read whole anyway), with
universal newlines as before. Prediction streams its input line by line, split on ``\\n``
only, so that every input line gives exactly one output record.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path
from typing import IO, Iterator

from nerkit.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# A file this much U+FFFD when decoded is not text in another encoding with a few odd
# bytes: random bytes are about 50-90% undecodable as UTF-8, Latin-1 prose under 5%.
UNDECODABLE_SHARE = 0.3
ENCODING_HINT = "set the file's encoding with data.encoding (for example --set data.encoding=latin-1 or cp1252)"


def check_encoding(encoding: str) -> str:
    """The codec's canonical name (``'UTF8'`` -> ``'utf-8'``); a codec Python does not know, or
    one that does not turn bytes into text (``rot13``, ``base64``), is a ``ConfigError``."""
    try:
        b"a".decode(encoding)
    except UnicodeDecodeError:
        pass  # a real text codec: one byte is just too short for UTF-16 or UTF-32
    except (LookupError, UnicodeError, TypeError) as error:
        why = str(error).split(";")[0]  # drop Python's advice to call codecs.decode()
        raise ConfigError(f"data.encoding={encoding!r}: {why}; expected a text encoding such as "
                          "utf-8, latin-1, cp1252 or utf-16") from None
    return codecs.lookup(encoding).name


def _line_and_column(decoded_prefix: str) -> tuple[int, int]:
    """Line and column (1-based) just after ``decoded_prefix``, counting ``\\r\\n``, ``\\r`` and
    ``\\n`` as line ends as the readers' universal newlines do."""
    prefix = decoded_prefix.replace("\r\n", "\n").replace("\r", "\n")
    return prefix.count("\n") + 1, len(prefix) - prefix.rfind("\n")


def _bytes(undecodable: bytes) -> str:
    return ("byte " if len(undecodable) == 1 else "bytes ") + " ".join(f"0x{byte:02x}" for byte in undecodable)


def _binary_error(path: str, why: str) -> DataError:
    return DataError(f"looks binary ({why}), not a text file; expected CoNLL columns or JSON lines as text. "
                     "If it is text in another encoding (UTF-16 holds NUL bytes), " + ENCODING_HINT, path=path)


def read_text(path, encoding: str = "utf-8") -> str:
    """The whole file at ``path`` decoded with ``encoding``; the byte-order mark of a UTF
    encoding is dropped (it is the encoding's signature, not text). A file that holds NUL
    characters or is mostly undecodable is refused as binary; a few undecodable bytes are an
    error naming the line and ``data.encoding``."""
    codec = check_encoding(encoding)
    decode_as = "utf-8-sig" if codec == "utf-8" else codec
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read the file ({error.strerror or error})", path=str(path)) from None
    try:
        text = data.decode(decode_as)
    except UnicodeDecodeError as error:
        lossy = data.decode(decode_as, errors="replace")
        if "\x00" in lossy:
            raise _binary_error(str(path), "it holds NUL bytes") from None
        undecodable = lossy.count("\ufffd") / max(len(lossy), 1)
        if undecodable > UNDECODABLE_SHARE:
            raise _binary_error(str(path), f"{undecodable:.0%} of it is not valid {encoding}") from None
        line, column = _line_and_column(data[:error.start].decode(decode_as, errors="replace"))
        raise DataError(f"not valid {encoding} text ({_bytes(data[error.start:error.end])} at character "
                        f"{column}); {ENCODING_HINT}", path=str(path), line=line) from None
    if "\x00" in text:
        raise _binary_error(str(path), "it holds NUL characters")
    return text


def iter_utf8_lines(stream: IO[bytes], *, name: str, errors: str = "strict") -> Iterator[str]:
    """The lines of a UTF-8 byte stream, for prediction: split on ``\\n`` only, a ``\\r`` just
    before it dropped (``\\r\\n`` files), a lone ``\\r`` kept as text inside its line, and the
    UTF-8 signature (a BOM starting the stream) dropped. Bytes that are not UTF-8 stop the stream
    with an error naming the line, or with ``errors='replace'`` are read as U+FFFD and counted
    in one warning."""
    if errors not in ("strict", "replace"):
        raise ConfigError(f"errors={errors!r}: expected strict or replace")
    replaced = 0
    for number, raw in enumerate(stream, start=1):
        raw = raw.removesuffix(b"\n").removesuffix(b"\r")
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if errors == "strict":
                column = len(raw[:error.start].decode("utf-8")) + 1
                binary = " (the input looks binary: it holds NUL bytes)" if b"\x00" in raw else ""
                raise DataError(f"not valid UTF-8 ({_bytes(raw[error.start:error.end])} at character "
                                f"{column}){binary}; convert the input to UTF-8, or pass --errors replace to read "
                                "such bytes as U+FFFD", path=name, line=number) from None
            replaced += 1
            yield raw.decode("utf-8", errors="replace")
    if replaced:
        logger.warning("%s: %d lines held bytes that are not UTF-8, read as U+FFFD (--errors replace)", name, replaced)

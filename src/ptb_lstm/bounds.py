"""Bounds on what a user hands over, checked before it is used: how deep a TOML or JSON file
nests, how a text file is encoded, how long a path is, and how a value is quoted in a message.

Each problem is a UserError of one short line naming the file or flag (and the field), never a
RecursionError, an OSError traceback or a message as long as the input.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from ptb_lstm.errors import UserError

# The files ptb-lstm writes nest two levels (meta -> config -> field); a TOML config one.
# The parsers recurse once per level (tomllib in Python, json in C against the interpreter's
# recursion limit), so deeper input is refused before it reaches them.
MAX_DEPTH = 32

# Byte-order marks of encodings other than UTF-8, longest first (UTF-32 LE starts like UTF-16 LE).
_OTHER_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def shown(value: object, limit: int = 40) -> str:
    """``value`` as a message quotes it: its repr cut to ``limit`` characters, and a list or
    table by its length (a megabyte-long list is not printed, nor walked)."""
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"a table of {len(value)} keys"
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]  # repr of the head only: the text may be megabytes
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def listed(names: Iterable[str], limit: int = 5) -> str:
    """The first ``limit`` of ``names``, comma-separated, and how many more there are."""
    names = list(names)
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def shown_path(path: str | os.PathLike) -> str:
    """A path as a message names it: whole up to 120 characters, else its head and tail."""
    text = os.fspath(path)
    if len(text) <= 120:
        return text
    return f"{text[:50]}...{text[-50:]} ({len(text):,} characters)"


# -- nesting ---------------------------------------------------------------------------------

# A JSON string (an unterminated one runs to the end), a bracket or a colon. The string
# pattern is the unrolled loop, linear in the string's length.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}:]', re.S)
# TOML: comments, the four kinds of strings (multi-line first), brackets, '=' and line ends.
_TOML_TOKENS = re.compile(
    r'#[^\n]*|"""[\s\S]*?(?:"""|$)|\'\'\'[\s\S]*?(?:\'\'\'|$)'
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|\'[^\'\n]*\'?|[\[\]{}=,\n]'
)


def check_json_depth(text: str, source: str) -> None:
    """Refuse JSON ``text`` that nests deeper than MAX_DEPTH, naming the field it is under;
    read iteratively, without parsing."""
    keys: list[str] = []
    depth = 0
    last_string = None
    for token in _JSON_TOKENS.finditer(text):
        kind = token.group()
        if kind.startswith('"'):
            last_string = kind
            continue
        if kind == ":" and last_string is not None and depth >= 1:
            del keys[depth - 1 :]
            keys.append(_json_key(last_string))
        elif kind in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                _too_deep(source, ".".join(keys[:3]))
        elif kind in ("]", "}"):
            depth = max(depth - 1, 0)
            del keys[depth:]
        last_string = None


def _json_key(token: str) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        key = token.strip('"')
    return _cut(key)


def check_toml_depth(text: str, source: str) -> None:
    """Refuse TOML ``text`` whose tables nest deeper than MAX_DEPTH, naming the key they
    belong to; read iteratively, without parsing. Every part of a dotted key or a table
    header is a level (``a.b.c = 1`` is three tables deep: tomllib's memory grows with the
    square of the parts), as is every array and inline table."""
    depth = 0  # open arrays and inline tables
    line_start = key_start = 0  # where the line, and the key being read, began
    table, table_parts, key = "", 0, ""
    header_start = None
    for token in _TOML_TOKENS.finditer(text):
        kind = token.group()
        if kind == "\n":
            if depth == 0:
                line_start = key_start = token.end()
        elif kind == ",":
            key_start = token.end()
        elif kind == "=":
            name = text[key_start : token.start()].strip()
            if depth == 0:
                key = _cut(name)
            if table_parts + depth + name.count(".") + 1 > MAX_DEPTH:
                _too_deep(source, ".".join(part for part in (table, key) if part))
        elif kind in ("[", "{"):
            if depth == 0 and kind == "[" and not text[line_start : token.start()].strip():
                header_start, table_parts = token.start(), 0
            depth += 1
            key_start = token.end()
            if table_parts + depth > MAX_DEPTH:
                _too_deep(source, ".".join(part for part in (table, key) if part))
        elif kind in ("]", "}"):
            depth = max(depth - 1, 0)
            if depth == 0 and header_start is not None:
                header = text[header_start : token.end()].strip("[] \t")
                table, table_parts, key = _cut(header), header.count(".") + 1, ""
                header_start = None
                if table_parts > MAX_DEPTH:
                    _too_deep(source, table)


def _cut(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def _too_deep(source: str, field: str) -> None:
    where = f" in {field}" if field else ""
    raise UserError(
        f"{source}: values nest more than {MAX_DEPTH} levels deep{where}; "
        "ptb-lstm's files hold numbers, strings and flat lists and tables"
    )


# -- text files ------------------------------------------------------------------------------


def decode_text(raw: bytes, source: str, binary_hint: bool = True) -> str:
    """UTF-8 ``raw`` as text, a leading UTF-8 byte-order mark read as nothing. A UTF-16 or
    UTF-32 file (by its byte-order mark), bytes that are not UTF-8, and, with
    ``binary_hint``, NUL bytes (a binary file, or UTF-16 without a mark) are a UserError
    naming ``source``."""
    for bom, encoding in _OTHER_BOMS:
        if raw.startswith(bom):
            raise UserError(
                f"{source}: the file is {encoding} text (it starts with a "
                f"{encoding} byte-order mark); save it as UTF-8"
            )
    if binary_hint and b"\0" in raw:
        raise UserError(
            f"{source}: holds NUL bytes, so it looks like a binary file (or "
            "UTF-16 text), not UTF-8 text; save it as UTF-8 text"
        )
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{source}: not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None


def read_text(path: str | os.PathLike, source: str | None = None, binary_hint: bool = True) -> str:
    """A file's text (``decode_text``); a path that cannot be read is a UserError naming
    ``source`` (the flag and path; the path itself by default)."""
    source = source or shown_path(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise os_error(error, source) from None
    return decode_text(raw, source, binary_hint)


# -- paths -----------------------------------------------------------------------------------

_REASONS = {
    errno.ENAMETOOLONG: "the path, or a name in it, is longer than the file system allows; "
    "choose a shorter one",
    errno.ENOENT: "does not exist",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EROFS: "the file system is read-only",
}


def os_error(error: OSError, source: str) -> UserError:
    """An OSError about a user's path as one line: ``source`` (the flag and the path), then
    what went wrong in words."""
    reason = _REASONS.get(error.errno or -1) or error.strerror or type(error).__name__
    return UserError(f"{source}: {reason}")


def check_path(value: str | os.PathLike, flag: str, room: int = 0) -> None:
    """Refuse a path the operating system cannot use, before anything uses it: a NUL
    character, a name or a whole path longer than its file system allows (less ``room``
    bytes for the names of files written inside a folder), a folder on the way that cannot
    be entered. A path that does not exist (yet) passes."""
    text = os.fspath(value)
    source = f"{flag} {shown_path(text)}"
    if "\0" in text:
        raise UserError(f"{source}: holds a NUL character, which no path can")
    path = Path(text).expanduser()
    try:
        encoded = os.fsencode(path)
    except UnicodeError:
        raise UserError(f"{source}: cannot be written in the file system's encoding") from None
    existing = _nearest_existing(path)
    name_max = _limit(existing, "PC_NAME_MAX", 255)
    path_max = _limit(existing, "PC_PATH_MAX", 4096)
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > name_max:
        raise UserError(
            f"{source}: a name in it has {longest:,} bytes, more than the "
            f"{name_max} the file system allows; choose a shorter name"
        )
    if len(encoded) + room >= path_max:
        inside = f" (with {room} bytes for the files written inside it)" if room else ""
        raise UserError(
            f"{source}: the path has {len(encoded):,} bytes{inside}, more than the "
            f"{path_max - 1} the operating system allows; choose a shorter one"
        )
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass  # the command says what is missing, in its own words
    except OSError as error:
        raise os_error(error, source) from None


def _nearest_existing(path: Path) -> Path:
    """``path`` or the nearest folder above it that exists (the current folder at worst)."""
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except (OSError, ValueError):
            continue
    return Path(".")


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):
        return default

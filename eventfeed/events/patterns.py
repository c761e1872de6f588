"""Id, name and label patterns as every filter reads them: exact, a prefix (one trailing `*`), or a
glob (`*`/`?` anywhere). The filter's Python matcher (and the triggers' matchers, built from the
filter's objects) and its SQL all classify and match a pattern here."""

from __future__ import annotations

import re
from typing import Callable, Iterable


def _kind(pattern: str) -> str:
    """exact, prefix (a single trailing `*`) or glob (`*`/`?` anywhere)."""
    star, qmark = pattern.find("*"), pattern.find("?")
    if star == -1 and qmark == -1:
        return "exact"
    if qmark == -1 and star == len(pattern) - 1:
        return "prefix"
    return "glob"


def glob_regex(pattern: str) -> str:
    """A regex that Python's re and PostgreSQL's ARE read the same way: `*` any run, `?` one
    character, everything else literal, anchored at both ends, `.` matching newlines too."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isalnum() or ch == "_":
            out.append(ch)
        else:
            out.append("\\" + ch if ch.isascii() else ch)
    return "(?s)\\A" + "".join(out) + "\\Z"


def glob_match(pattern: str, value: str) -> bool:
    kind = _kind(pattern)
    if kind == "exact":
        return value == pattern
    if kind == "prefix":
        return value.startswith(pattern[:-1])
    return re.search(glob_regex(pattern), value) is not None


def _always(_value: str) -> bool:
    return True


def _never(_value: str) -> bool:
    return False


def any_of(exact: Iterable[str] = (), prefixes: Iterable[str] = (), globs: Iterable[str] = ()) -> Callable[[str], bool]:
    """Does a value equal one of `exact`, start with one of `prefixes` (both literal) or match one
    of the glob patterns? Compiled once, for matchers that answer for every event: the exact
    values in a set, the prefixes in one str.startswith, the globs in one regex."""
    exact, prefixes, globs = frozenset(exact), tuple(prefixes), list(globs)
    if "" in prefixes:
        return _always
    # glob_regex's patterns start with the (?s) flag, which may only come first in a regex.
    either = "|".join(f"(?:{glob_regex(p).removeprefix('(?s)')})" for p in globs)
    regex = re.compile(either, re.DOTALL).search if globs else None
    if not prefixes and regex is None:
        return exact.__contains__ if exact else _never
    if not exact and regex is None:
        return lambda value: value.startswith(prefixes)

    def matches(value: str) -> bool:
        return value in exact or (bool(prefixes) and value.startswith(prefixes)) or (
            regex is not None and regex(value) is not None
        )

    return matches


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """`any(glob_match(p, value) for p in patterns)`, compiled (any_of)."""
    patterns = tuple(patterns)
    return any_of(
        exact=(p for p in patterns if _kind(p) == "exact"),
        prefixes=(p[:-1] for p in patterns if _kind(p) == "prefix"),
        globs=(p for p in patterns if _kind(p) == "glob"),
    )

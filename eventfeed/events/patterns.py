"""Id, name and label patterns as every filter reads them: exact, a prefix (one trailing `*`), or a
glob (`*`/`?` anywhere). The filter's Python matcher, its SQL and the triggers' compiled matchers
all classify and match a pattern here."""

from __future__ import annotations

import re


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

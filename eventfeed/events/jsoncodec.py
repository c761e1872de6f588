"""JSON for the ingest path: msgspec where it can, the standard library where it cannot.

msgspec parses and writes several times faster than `json`, which matters at thousands of events
a second, and keeps integers of any size exact. What it refuses (lone UTF-16 surrogates, NaN,
malformed text) goes through `json` instead, so both doors accept and refuse what they did, with
`json`'s messages (line and column).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class _Constant(Exception):
    pass


def _refuse(name: str):
    raise _Constant(name)


TOO_DEEP = "nested too deeply (arrays and objects nest at most about 900 levels)"


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises json.JSONDecodeError (or UnicodeDecodeError for bytes that are not
    UTF-8) naming what is wrong."""
    try:
        return _decode(data)
    except msgspec.DecodeError:
        pass
    except RecursionError:
        # Both parsers recurse per level and give up near Python's recursion limit: the same
        # clean refusal as malformed text, never an exception that takes a whole batch down.
        _too_deep(data)
    # NaN and Infinity are refused by name: they are not JSON, and PostgreSQL would refuse them.
    try:
        return json.loads(data, parse_constant=_refuse)
    except _Constant as e:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        raise json.JSONDecodeError(f"{e} is not a JSON number", text, max(text.find(str(e)), 0)) from None
    except RecursionError:
        _too_deep(data)


def _too_deep(data: bytes | str):
    text = data[:200].decode("utf-8", "replace") if isinstance(data, bytes) else data[:200]
    raise json.JSONDecodeError(TOO_DEEP, text, 0) from None


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as is."""
    try:
        return _encode(value).decode()
    except (UnicodeEncodeError, TypeError):
        # A lone surrogate, which validation refuses with the path it is at, or a str subclass
        # (a template's SafeString in an emitted event), which msgspec does not take for a str.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

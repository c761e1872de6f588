"""Reading input: the one time parser and the one problem collector, with one wording per rule.

Every reader of input (the event schema, Prefect's filter JSON, triggers and automations, the
feed's query string, CloudEvents) says what is wrong with a time in the same words, and collects
everything wrong as (path, rule) instead of stopping at the first problem.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable

TIME_FORMAT_RULE = "must be an ISO 8601 date-time such as 2026-11-21T09:30:00Z"
TIME_ZONE_RULE = "must include a time zone (Z or an offset like +02:00): naive times are refused, not guessed"
TIME_RANGE_RULE = "must be a year between 2 and 9998"
# PostgreSQL text cannot hold it: a query or a stored label with one would fail.
NUL_RULE = "must not contain the NUL character"


BOOLEAN_RULE = "must be true or false"
BODY_RULE = "the body must be a JSON object"


def json_type(value: Any) -> str:
    """What a JSON value is, as a rule says it: "must be a string, not a number"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def field_path(path: str, key: str) -> str:
    """The JSON path of a field: `trigger.match`, or `name` at the top."""
    return f"{path}.{key}" if path else key


class TimeRuleBroken(ValueError):
    def __init__(self, rule: str):
        super().__init__(rule)
        self.rule = rule


def parse_time(value: Any) -> datetime | None:
    """A datetime from ISO 8601 text (aware unless the text is naive), or None. For text this
    system wrote; input goes through read_time()."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def in_supported_range(value: datetime) -> bool:
    """Whether a time can be moved to UTC and a bucket or a microsecond past it: years 2 to 9998.
    Beyond that Python raises OverflowError, which would be a 500 wherever the time is used."""
    try:
        return 1 < value.astimezone(timezone.utc).year < 9999
    except OverflowError:
        return False


def read_time(value: Any) -> datetime:
    """An aware datetime in the supported range from input, or TimeRuleBroken naming the rule."""
    parsed = parse_time(value)
    if parsed is None:
        raise TimeRuleBroken(TIME_FORMAT_RULE)
    if parsed.utcoffset() is None:
        raise TimeRuleBroken(TIME_ZONE_RULE)
    if not in_supported_range(parsed):
        raise TimeRuleBroken(TIME_RANGE_RULE)
    return parsed


def as_sentence(rule: str) -> str:
    """A rule as a form error under its field: "Must be a year between 2 and 9998." """
    return rule[:1].upper() + rule[1:] + "."


class Problems:
    """Collects (path, rule) for everything wrong with one piece of input."""

    def __init__(self):
        self.problems: list = []

    def fail(self, path: str, rule: str) -> None:
        self.problems.append((path, rule))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def extend(self, problems: Iterable) -> None:
        """Problems another reader found in a part of this input (a trigger in an automation)."""
        self.problems.extend(problems)

    def wrong_type(self, path: str, expected: str, value: Any) -> None:
        self.fail(path, f"must be {expected}, not {json_type(value)}")

    def unknown_fields(self, data: dict, path: str, allowed: Iterable[str], what: str) -> None:
        """Every key of `data` that is not allowed, as Prefect's models refuse extra fields."""
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                self.fail(field_path(path, key), f"is not a field of {what} (expected one of: {', '.join(sorted(allowed))})")

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.fail(path, BOOLEAN_RULE)
            return None
        return value

    def time(self, value: Any, path: str, *, optional: bool = False) -> datetime | None:
        """A time read with read_time(); None (and a problem) when it breaks a rule. An optional
        time may be null."""
        if optional and value is None:
            return None
        try:
            return read_time(value)
        except TimeRuleBroken as e:
            self.fail(path, e.rule)
            return None

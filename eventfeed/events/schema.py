"""Validation of incoming events (Prefect's event model) with errors that name the JSON path.

`validate_event` is the single gate for both doors. It returns a `CleanEvent` or the list of
problems; it never truncates or drops anything silently.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from django.conf import settings

from . import jsoncodec
from .problems import Problems, json_type

RESOURCE_ID = "prefect.resource.id"
RESOURCE_ROLE = "prefect.resource.role"
RESOURCE_NAME = "prefect.resource.name"
MAX_EVENT_NAME = 1024
KNOWN_FIELDS = {"occurred", "event", "resource", "related", "payload", "id", "follows"}
# Read APIs return `received`; tools that copy events from another server send it back. It is
# the server's to set, so it is accepted and ignored.
IGNORED_FIELDS = {"received"}


@dataclass
class Problem:
    index: int
    path: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "path": self.path, "rule": self.rule}


@dataclass
class CleanEvent:
    id: uuid.UUID
    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    follows: uuid.UUID | None
    # The distinct words free-text search finds the event by (search_words()).
    words: list[str] = field(default_factory=list)
    received: datetime | None = None
    # About its JSON size in characters (0: not measured): ingest publishes big events in
    # messages of their own (ingest.publish).
    size: int = 0

    @property
    def resource_id(self) -> str:
        return self.resource[RESOURCE_ID]



class _Checker(Problems):
    """The collector for one event of a batch: its problems carry the event's index and path."""

    def __init__(self, index: int, base: str):
        super().__init__()
        self.index = index
        self.base = base

    def fail(self, path: str, rule: str) -> None:
        self.problems.append(Problem(self.index, self.base + path, rule))


def key_path(key: str) -> str:
    return "[" + json.dumps(key, ensure_ascii=False) + "]"


def _labels(check: _Checker, value: Any, path: str, *, role_required: bool, limit: int) -> dict[str, str] | None:
    # Nearly every resource is fine: say so in one pass before looking for what is wrong.
    if (
        type(value) is dict
        and len(value) <= limit
        and all(type(v) is str for v in value.values())
        and value.get(RESOURCE_ID, "").strip()
        and (not role_required or value.get(RESOURCE_ROLE, "").strip())
    ):
        return value
    if not isinstance(value, dict):
        check.fail(path, "must be an object of string labels")
        return None
    if len(value) > limit:
        check.fail(path, f"has {len(value)} labels; the limit is {limit} labels per resource")
    ok = True
    for key, label in value.items():
        if not isinstance(label, str):
            check.fail(path + key_path(key), f"label values must be strings, not {json_type(label)}")
            ok = False
    rid = value.get(RESOURCE_ID)
    if rid is None:
        check.fail(path + key_path(RESOURCE_ID), "is required")
        ok = False
    elif isinstance(rid, str) and not rid.strip():
        check.fail(path + key_path(RESOURCE_ID), "must not be empty")
        ok = False
    if role_required:
        role = value.get(RESOURCE_ROLE)
        if role is None:
            check.fail(path + key_path(RESOURCE_ROLE), "is required on a related resource")
            ok = False
        elif isinstance(role, str) and not role.strip():
            check.fail(path + key_path(RESOURCE_ROLE), "must not be empty")
            ok = False
    return value if ok else None


def _uuid(check: _Checker, value: Any, path: str) -> uuid.UUID | None:
    if not isinstance(value, str):
        check.fail(path, f"must be a UUID string, not {json_type(value)}")
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        check.fail(path, "must be a UUID like 0190f1c2-8a3e-7c11-9d4b-2f6a1e0c5b7d")
        return None


# A word is a run of letters, digits and underscores in the lower-cased JSON of the event. JSON
# escapes (`\n`, `\"`, `\u001b`) are skipped, so a value's backslashes never glue letters to a word.
WORD = re.compile(r"\\(?:u[0-9a-f]{4}|.)|(\w+)")
PLAIN_WORD = re.compile(r"\w+")
ASCII_SEPARATORS = str.maketrans({chr(i): " " for i in range(128) if not (chr(i).isalnum() or chr(i) == "_")})
# Longer words are indexed by their first MAX_WORD characters, and queries are cut the same way,
# so a prefix query still finds them. At most MAX_WORDS distinct words of one event are indexed:
# PostgreSQL keeps one event's words under 1 MB.
MAX_WORD = 64
MAX_WORDS = 10_000


def words(text: str) -> list[str]:
    """The distinct words of lower-cased JSON text, in order of first appearance."""
    if "\\" in text:
        seen = dict.fromkeys(WORD.findall(text))
        seen.pop("", None)  # what the escapes matched
    elif text.isascii():
        # The common case, and three times faster than the regular expression: the same words.
        seen = dict.fromkeys(text.translate(ASCII_SEPARATORS).split())
    else:
        seen = dict.fromkeys(PLAIN_WORD.findall(text))
    if max(map(len, seen), default=0) > MAX_WORD:
        seen = dict.fromkeys(w[:MAX_WORD] for w in seen)
    found = list(seen)
    return found[:MAX_WORDS] if len(found) > MAX_WORDS else found


def json_text(event: str, resource: dict[str, str], related: list[dict[str, str]], payload: dict) -> str:
    """What free text looks in: the name, every label key and value, and the payload, as JSON."""
    return jsoncodec.dumps([event, resource, related, payload]).lower()


def search_words(event: str, resource: dict[str, str], related: list[dict[str, str]], payload: dict) -> list[str]:
    return words(json_text(event, resource, related, payload))


def query_words(term: str) -> list[str]:
    """A search term's words, read exactly as an event's text is."""
    return words(jsoncodec.dumps(term).lower())


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k:
                return path + key_path(k)
            found = _find_nul(v, path + key_path(k))
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_nul(v, f"{path}[{i}]")
            if found:
                return found
    return None


def validate_event(raw: Any, index: int = 0, *, base: str | None = None, size: int | None = None):
    """Return (CleanEvent, []) or (None, problems).

    `base` prefixes every path (`[3]` for the fourth event of a batch). `size` is the event's
    serialized size when the caller knows it; otherwise it is measured only when it could matter.
    """
    check = _Checker(index, base if base is not None else "")
    if not isinstance(raw, dict):
        check.fail("", f"an event must be a JSON object, not {json_type(raw)}")
        return None, check.problems

    for key in raw:
        if key not in KNOWN_FIELDS and key not in IGNORED_FIELDS:
            check.fail("." + key if key.isidentifier() else key_path(key), "is not a field of an event")

    event_id = _uuid(check, raw["id"], ".id") if "id" in raw else check.fail(".id", "is required")

    occurred = None
    if "occurred" not in raw:
        check.fail(".occurred", "is required")
    else:
        occurred = check.time(raw["occurred"], ".occurred")
        if occurred is not None and (ahead := settings.EVENTFEED_MAX_FUTURE_SECONDS) and occurred > datetime.now(timezone.utc) + timedelta(seconds=ahead):
            # A producer's clock gone wrong: the event would sit at the top of every feed.
            check.fail(".occurred", f"is more than {ahead:,} seconds in the future (EVENTFEED_MAX_FUTURE_SECONDS)")
            occurred = None

    name = raw.get("event")
    if "event" not in raw:
        check.fail(".event", "is required")
    elif not isinstance(name, str):
        check.fail(".event", f"must be a string, not {json_type(name)}")
    elif not name.strip():
        check.fail(".event", "must not be empty")
    elif len(name) > MAX_EVENT_NAME:
        check.fail(".event", f"is {len(name)} characters; the limit is {MAX_EVENT_NAME} characters")

    resource = None
    max_labels = settings.EVENTFEED_MAX_LABELS
    if "resource" not in raw:
        check.fail(".resource", "is required")
    else:
        resource = _labels(check, raw["resource"], ".resource", role_required=False, limit=max_labels)

    related_raw = raw.get("related")
    related: list[dict[str, str]] = []
    if related_raw is None:
        related_raw = []
    if not isinstance(related_raw, list):
        check.fail(".related", f"must be an array of resources, not {json_type(related_raw)}")
    else:
        limit = settings.EVENTFEED_MAX_RELATED
        if len(related_raw) > limit:
            check.fail(".related", f"has {len(related_raw)} resources; the limit is {limit} related resources per event")
        for i, item in enumerate(related_raw):
            labels = _labels(check, item, f".related[{i}]", role_required=True, limit=max_labels)
            if labels is not None:
                related.append(labels)

    payload = raw.get("payload")
    if payload is None:
        payload = {}
    elif not isinstance(payload, dict):
        check.fail(".payload", f"must be an object, not {json_type(payload)}")

    follows = None
    if raw.get("follows") is not None:
        follows = _uuid(check, raw["follows"], ".follows")

    if check.problems:
        return _finish(check, base)

    try:
        text = json_text(name, resource, related, payload)
    except RecursionError:
        # Parsed in a shallow stack, written in a deeper one: refused like deep text.
        check.fail(".payload", jsoncodec.TOO_DEEP)
        return _finish(check, base)
    # PostgreSQL cannot store NUL characters or lone surrogates; refuse them here with a path
    # instead of failing the whole batch in the database.
    if "\\u0000" in text or "\x00" in text:
        try:
            where = next(filter(None, (_find_nul(v, "." + k) for k, v in raw.items())), None)
        except RecursionError:
            where = ""
        if where is not None:
            check.fail(where, "strings must not contain the NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        check.fail("", "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode text")
    limit = settings.EVENTFEED_MAX_EVENT_BYTES
    # The serialized size is measured only when the text could be near the limit: re-encoding
    # every event would cost ingest a second JSON dump.
    if size is None and (len(text) + 512) * 4 > limit:
        size = len(json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace"))
    if size is not None and size > limit:
        check.fail("", f"is {size:,} bytes; the limit is {limit:,} bytes per event")
    if check.problems:
        return _finish(check, base)

    return (
        CleanEvent(
            id=event_id,
            occurred=occurred,
            event=name,
            resource=resource,
            related=related,
            payload=payload,
            follows=follows,
            words=words(text),
            size=len(text),
        ),
        [],
    )


def _finish(check: _Checker, base: str | None):
    # A single event's paths read `related[1]...`, a batch's `[3].related[1]...`.
    if base is None:
        for problem in check.problems:
            problem.path = problem.path.removeprefix(".")
    return None, check.problems


def validate_batch(items: list[Any]):
    """Validate every event of a batch; all problems are reported, not just the first."""
    clean: list[CleanEvent] = []
    problems: list[Problem] = []
    for i, raw in enumerate(items):
        event, errs = validate_event(raw, i, base=f"[{i}]")
        if errs:
            problems.extend(errs)
        else:
            clean.append(event)
    return clean, problems

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

import msgspec
from django.conf import settings

from . import jsoncodec
from .problems import Problems, TimeRuleBroken, json_type, read_time

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


@dataclass(slots=True)
class CleanEvent:
    id: uuid.UUID
    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    follows: uuid.UUID | None
    # The words free-text search finds the event by (search_words()), space-separated as the
    # column's text on PostgreSQL, maybe a few twice (json_words): `words` splits them when asked.
    words_text: str = ""
    received: datetime | None = None
    # About its JSON size in characters (0: not measured): ingest publishes big events in
    # messages of their own (ingest.publish).
    size: int = 0
    # The JSON of the resource, of each related resource and of the payload as the fast path
    # wrote them once (for the words), so that COPY does not write them again; None when the
    # event was validated from a dict.
    json: tuple[bytes, list[bytes], bytes] | None = field(default=None, repr=False, compare=False)
    # Written into both tables' COPY rows: made once (str() of a UUID is Python code).
    id_text: str = field(init=False, repr=False, compare=False)
    occurred_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.id_text = str(self.id)
        self.occurred_text = self.occurred.isoformat()

    @property
    def words(self) -> list[str]:
        # Distinct: the fast path (json_words) leaves a few repeats in the text.
        return list(dict.fromkeys(self.words_text.split()))

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


# One table for ASCII JSON text: letters lower-cased, letters, digits and underscores kept, every
# other byte a space. bytes.translate with a 256-byte table is several times faster than
# str.translate, and lower() and the separators are one pass.
WORD_BYTES = bytes(
    (c + 32 if 65 <= c <= 90 else c) if c < 128 and (chr(c).isalnum() or c == 95) else 32 for c in range(256)
)
# Every byte of a word as `a`: a run of MAX_WORD + 1 of them is a word that has to be cut.
RUN_BYTES = bytes(32 if b == 32 else 97 for b in WORD_BYTES)
LONG_RUN = b"a" * (MAX_WORD + 1)


def _plain(text: bytes) -> bytes | None:
    """The words of plain JSON text, each separator a space; None when the text is not ASCII,
    has an escape or has a word longer than MAX_WORD (words() reads those)."""
    if not text.isascii() or b"\\" in text:
        return None
    spaced = text.translate(WORD_BYTES)
    return None if LONG_RUN in spaced.translate(RUN_BYTES) else spaced


# The words of a related resource's JSON, distinct, space-separated and without those of the key
# every resource has (the primary resource's give them), by that JSON: producers relate the same
# few flows, deployments, pools, queues and tags to event after event. Emptied when full.
_related_words: dict[bytes, bytes | None] = {}
RELATED_WORDS_KEPT = 4096


def json_words(name: bytes, resource: bytes, related: list[bytes], payload: bytes) -> str:
    """words() of an event given as the JSON of its parts, as the text the words column is
    written from: the same words, some of them repeated and in no useful order. PostgreSQL's
    tsvector input sorts them and drops repeats for less than it costs Python to (ingest spent
    more on de-duplicating words than on decoding the event); CleanEvent.words drops them for the
    other readers. Words never span two parts (quotes and commas separate them), so the words of
    the whole are those of the parts.

    Plain ASCII without escapes and without a word longer than MAX_WORD (nearly every event)
    is read here, each related resource from a cache; anything else by words()."""
    # A part of n characters holds at most (n + 1) / 2 words: under this, no event has more than
    # MAX_WORDS, the most words() keeps.
    size = len(name) + len(resource) + len(payload) + sum(map(len, related)) + len(related) + 3
    head = _plain(b",".join((name, resource, payload))) if size <= 2 * MAX_WORDS else None
    if head is not None:
        parts = [head]
        cache = _related_words
        for item in related:
            found = cache.get(item, False)
            if found is False:
                if len(cache) >= RELATED_WORDS_KEPT:
                    cache.clear()
                spaced = _plain(item)
                found = cache[item] = None if spaced is None else b" ".join(
                    w for w in dict.fromkeys(spaced.split()) if w not in _ID_KEY_BYTES)
            if found is None:
                break
            parts.append(found)
        else:
            return b" ".join(parts).decode()
    text = b",".join([name, resource, b"[" + b",".join(related) + b"]", payload])
    return " ".join(words(text.decode().lower()))


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


# Every resource has the key prefect.resource.id: the primary resource's JSON gives its words.
_ID_KEY_BYTES = frozenset(w.encode() for w in words(json.dumps(RESOURCE_ID)))


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
            words_text=" ".join(words(text)),
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


# -- the fast path: decode and validate in one pass ---------------------------------------------

class WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """An event as a producer sends it, typed: msgspec checks every type while it parses.

    `occurred` stays text so that it is read by read_time(), the one time parser, exactly as
    validate_event() reads it."""

    id: uuid.UUID
    occurred: str
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] | None = None
    payload: dict[str, Any] | None = None
    follows: uuid.UUID | None = None
    received: Any = None


_decode_body = msgspec.json.Decoder(list[WireEvent] | WireEvent).decode
_decode_frame = msgspec.json.Decoder(WireEvent).decode
_encode = msgspec.json.Encoder().encode


def decode_clean(body: bytes | str, *, one: bool = False, size: int | None = None) -> list[CleanEvent] | None:
    """The events of a body (an array of events or one event; with `one`, one event only) that
    is valid as a whole, parsed and checked in one pass; None when anything in it is wrong or
    unusual.

    Nothing is refused here: on None the caller takes the body through jsoncodec.loads() and
    validate_event(), which accept exactly what this accepts and name the path and the rule of
    every problem. So this only has to be right about what it accepts, and it accepts nothing
    the full path would refuse: any doubt (a type msgspec refuses, a rule broken, a NUL, a size
    near the limit) is a None. `size` is the serialized size of a single event when known.
    """
    try:
        decoded = (_decode_frame if one else _decode_body)(body)
    except (msgspec.DecodeError, RecursionError):
        return None  # msgspec.ValidationError is a DecodeError
    items = decoded if type(decoded) is list else [decoded]
    if not items or len(items) > settings.EVENTFEED_MAX_BATCH:
        return None
    ahead = settings.EVENTFEED_MAX_FUTURE_SECONDS
    latest = datetime.now(timezone.utc) + timedelta(seconds=ahead) if ahead else None
    max_labels, max_related = settings.EVENTFEED_MAX_LABELS, settings.EVENTFEED_MAX_RELATED
    max_bytes = settings.EVENTFEED_MAX_EVENT_BYTES
    # Where validate_event starts measuring the serialized size (its text is these parts and a
    # few characters more, and has no more characters than bytes): bigger events go there.
    near = max_bytes // 4 - 512 - 16
    clean = []
    for w in items:
        try:
            occurred = read_time(w.occurred)
        except TimeRuleBroken:
            return None
        if latest is not None and occurred > latest:
            return None
        name = w.event
        if not name.strip() or len(name) > MAX_EVENT_NAME:
            return None
        resource = w.resource
        if len(resource) > max_labels or not resource.get(RESOURCE_ID, "").strip():
            return None
        related = w.related
        if related is None:
            related = []
        elif len(related) > max_related:
            return None
        for labels in related:
            if (len(labels) > max_labels or not labels.get(RESOURCE_ID, "").strip()
                    or not labels.get(RESOURCE_ROLE, "").strip()):
                return None
        payload = w.payload
        if payload is None:
            payload = {}
        try:
            name_json, resource_json, payload_json = _encode(name), _encode(resource), _encode(payload)
            related_json = [_encode(labels) for labels in related]
        except (UnicodeEncodeError, RecursionError):
            return None
        length = len(name_json) + len(resource_json) + len(payload_json) + sum(map(len, related_json)) + len(related_json)
        if length > near or (size is not None and size > max_bytes):
            return None
        # A NUL character (PostgreSQL text cannot hold it) or the text "\u0000": the full path
        # tells them apart.
        if b"\\u0000" in b"".join((name_json, resource_json, payload_json, *related_json)):
            return None
        clean.append(CleanEvent(
            id=w.id, occurred=occurred, event=name, resource=resource, related=related, payload=payload,
            follows=w.follows, words_text=json_words(name_json, resource_json, related_json, payload_json),
            size=length, json=(resource_json, related_json, payload_json),
        ))
    return clean


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

"""Event validation: one test per rule, asserting the JSON path and the message."""

from __future__ import annotations

import pytest
from django.test import override_settings

from eventfeed.events.schema import MAX_WORD, MAX_WORDS, query_words, search_words, validate_batch, validate_event
from tests.conftest import make_event


def problems_of(raw, **kwargs):
    event, problems = validate_event(raw, **kwargs)
    assert event is None
    return [(p.path, p.rule) for p in problems]


def test_it_accepts_a_full_prefect_event():
    raw = make_event("prefect.flow-run.Completed", "prefect.flow-run.1", related=[
        {"prefect.resource.id": "prefect.flow.2", "prefect.resource.role": "flow"}], payload={"intended": {"to": "COMPLETED"}})
    event, problems = validate_event(raw)
    assert problems == []
    assert event.resource_id == "prefect.flow-run.1"
    assert event.related[0]["prefect.resource.role"] == "flow"
    assert {"prefect", "flow", "run", "completed", "intended"} <= set(event.words)


def test_it_requires_the_resource_id():
    raw = make_event()
    del raw["resource"]["prefect.resource.id"]
    assert problems_of(raw) == [('resource["prefect.resource.id"]', "is required")]


def test_it_refuses_an_empty_resource_id():
    raw = make_event(resource="  ")
    assert problems_of(raw) == [('resource["prefect.resource.id"]', "must not be empty")]


def test_it_requires_the_role_of_related_resources():
    raw = make_event(related=[{"prefect.resource.id": "a", "prefect.resource.role": "flow"}, {"prefect.resource.id": "b"}])
    assert problems_of(raw) == [('related[1]["prefect.resource.role"]', "is required on a related resource")]


def test_it_requires_the_id_of_related_resources():
    raw = make_event(related=[{"prefect.resource.role": "flow"}])
    assert problems_of(raw) == [('related[0]["prefect.resource.id"]', "is required")]


def test_it_refuses_non_string_label_values():
    raw = make_event()
    raw["resource"]["count"] = 3
    assert problems_of(raw) == [('resource["count"]', "label values must be strings, not a number")]


def test_it_refuses_naive_times():
    raw = make_event()
    raw["occurred"] = "2026-11-21T10:00:00"
    [(path, rule)] = problems_of(raw)
    assert path == "occurred" and "time zone" in rule


def test_it_refuses_unparseable_times():
    raw = make_event()
    raw["occurred"] = "yesterday"
    assert problems_of(raw) == [("occurred", "must be an ISO 8601 date-time such as 2026-11-21T09:30:00Z")]


def test_it_accepts_offsets_and_z():
    for value in ("2026-11-21T10:00:00Z", "2026-11-21T12:00:00+02:00", "2026-11-21T10:00:00.123456+00:00"):
        raw = make_event()
        raw["occurred"] = value
        event, problems = validate_event(raw)
        assert not problems
        assert event.occurred.utcoffset() is not None


def test_it_refuses_long_event_names():
    raw = make_event("x" * 1025)
    assert problems_of(raw) == [("event", "is 1025 characters; the limit is 1024 characters")]


def test_it_accepts_a_name_at_the_limit():
    assert validate_event(make_event("x" * 1024))[1] == []


def test_it_requires_an_event_name():
    raw = make_event()
    del raw["event"]
    assert problems_of(raw) == [("event", "is required")]


def test_it_requires_a_uuid_id():
    raw = make_event()
    raw["id"] = "not-a-uuid"
    [(path, rule)] = problems_of(raw)
    assert path == "id" and "UUID" in rule


def test_it_requires_an_id():
    raw = make_event()
    del raw["id"]
    assert problems_of(raw) == [("id", "is required")]


def test_it_checks_follows_is_a_uuid():
    raw = make_event()
    raw["follows"] = 12
    assert problems_of(raw) == [("follows", "must be a UUID string, not a number")]


def test_it_refuses_a_payload_that_is_not_an_object():
    raw = make_event()
    raw["payload"] = [1, 2]
    assert problems_of(raw) == [("payload", "must be an object, not an array")]


def test_it_refuses_unknown_fields_but_ignores_received():
    raw = make_event()
    raw["received"] = "2026-11-21T10:00:00Z"
    assert validate_event(raw)[1] == []
    raw["colour"] = "red"
    assert problems_of(raw) == [("colour", "is not a field of an event")]


@override_settings(EVENTFEED_MAX_LABELS=3)
def test_it_enforces_the_label_limit():
    raw = make_event(a="1", b="2", c="3")
    assert problems_of(raw) == [("resource", "has 4 labels; the limit is 3 labels per resource")]


@override_settings(EVENTFEED_MAX_RELATED=2)
def test_it_enforces_the_related_limit():
    related = [{"prefect.resource.id": f"r{i}", "prefect.resource.role": "tag"} for i in range(3)]
    assert problems_of(make_event(related=related)) == [("related", "has 3 resources; the limit is 2 related resources per event")]


@override_settings(EVENTFEED_MAX_EVENT_BYTES=10_000)
def test_it_enforces_the_size_limit_without_truncating():
    raw = make_event(payload={"blob": "x" * 20_000})
    [(path, rule)] = problems_of(raw)
    assert path == "" and "the limit is 10,000 bytes per event" in rule


def test_it_refuses_nul_characters_postgres_cannot_store():
    raw = make_event(payload={"deep": ["ok", "bad\x00"]})
    assert problems_of(raw) == [('payload["deep"][1]', "strings must not contain the NUL character (\\u0000)")]


def test_it_refuses_lone_surrogates():
    raw = make_event(payload={"s": "\ud800"})
    [(path, rule)] = problems_of(raw)
    assert "surrogate" in rule


def test_it_refuses_a_non_object_event():
    assert problems_of([1]) == [("", "an event must be a JSON object, not an array")]


def test_it_reports_every_problem_of_a_batch_with_indexed_paths():
    good = make_event()
    bad = make_event(related=[{"prefect.resource.id": "x"}])
    worse = make_event()
    del worse["event"]
    clean, problems = validate_batch([good, bad, worse])
    assert [(p.index, p.path) for p in problems] == [
        (1, '[1].related[0]["prefect.resource.role"]'),
        (2, "[2].event"),
    ]
    assert len(clean) == 1


@pytest.mark.parametrize("name, expected", [
    ("prefect.flow-run.Completed", "Flow run · Completed"),
    ("prefect.worker.submitted-flow-run", "Worker · Submitted flow run"),
    ("acme.order.shipped", "Acme order · Shipped"),
    ("prefect.kubernetes.pod.running", "Kubernetes pod · Running"),
    ("single", "single"),
])
def test_it_makes_event_names_readable(name, expected):
    from eventfeed.events.templatetags.eventfeed import readable_name
    assert readable_name(name) == expected


def test_it_refuses_times_that_cannot_be_moved_to_utc():
    # Year 1 at +01:00 is year 0 in UTC: storing or counting it would raise OverflowError (a 500).
    raw = make_event()
    raw["occurred"] = "0001-01-01T00:30:00+01:00"
    assert problems_of(raw) == [("occurred", "must be a year between 2 and 9998")]


def test_it_indexes_the_words_of_names_labels_and_payload():
    words = search_words("prefect.flow-run.Failed", {"prefect.resource.id": "prefect.flow-run.fr-7", "team": "Data_Eng"},
                         [{"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}],
                         {"message": "Timeout exceeded", "rows": 12})
    assert {"failed", "fr", "7", "team", "data_eng", "tag", "prod", "timeout", "exceeded", "rows", "12"} <= set(words)
    assert len(words) == len(set(words))


def test_it_never_glues_a_json_escape_to_a_word():
    # In JSON a newline is `\n` and a backslash `\\`: the letter after them starts a new word.
    words = search_words("e", {"prefect.resource.id": "x"}, [], {"log": "first\nsecond", "path": "c:\\new\\dir", "esc": "\x1bred"})
    assert {"first", "second", "new", "dir", "red"} <= set(words)
    assert not {"nsecond", "nnew", "u001bred"} & set(words)


def test_it_reads_a_query_exactly_as_an_event():
    assert query_words("Flow-Run.FAIL") == ["flow", "run", "fail"]
    assert query_words("c:\\new") == ["c", "new"]
    assert query_words("***") == []


def test_it_bounds_the_words_of_one_event():
    payload = {"long": "a" * 500, "many": " ".join(f"w{i}" for i in range(MAX_WORDS + 50))}
    words = search_words("e", {"prefect.resource.id": "x"}, [], payload)
    assert len(words) == MAX_WORDS
    assert "a" * MAX_WORD in words
    assert query_words("a" * 500) == ["a" * MAX_WORD]


def test_it_refuses_a_time_more_than_a_day_ahead_naming_the_setting():
    from datetime import datetime, timedelta, timezone

    raw = make_event()
    raw["occurred"] = (datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    [(path, rule)] = problems_of(raw)
    assert path == "occurred" and "86,400 seconds in the future" in rule and "EVENTFEED_MAX_FUTURE_SECONDS" in rule
    raw["occurred"] = (datetime.now(timezone.utc) + timedelta(hours=23)).isoformat()
    assert validate_event(raw)[1] == []


# -- the fast path (decode_clean) accepts exactly what validate_event accepts, and the same way ---

def _fields(event):
    # The fast path leaves the words' order and a few repeats to PostgreSQL (json_words).
    return (event.id, event.occurred, event.event, event.resource, event.related, event.payload, event.follows,
            sorted(event.words))


def _unusual_but_valid() -> list[dict]:
    flow = {"prefect.resource.id": "prefect.flow.1", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}
    return [
        make_event(payload={"big": 12345678901234567890123, "f": 1.5, "z": -0.0, "n": None, "t": True,
                            "nested": [{"a": [1, {"b": "ü"}]}]}),
        make_event("acme.café.opened", "acme.café.1", note="naïve", related=[flow]),
        make_event(payload={"log": "first\nsecond\t\"quoted\" c:\\dir", "esc": "\x1bred", "emoji": "😀"}),
        make_event(related=[flow, {"prefect.resource.id": "prefect.tag.ü", "prefect.resource.role": "tag"},
                            {"prefect.resource.id": "a\\b\tc", "prefect.resource.role": "x", "k": "v"}, flow]),
        {**make_event(related=[flow]), "related": None, "payload": None, "received": "2026-01-01T00:00:00Z"},
        {**make_event(), "occurred": " 2026-11-21T09:30:00.123456+02:00 "},
        {**make_event(), "occurred": "2026-11-21T09:30:00.1234567z"},
        {**make_event(), "id": "0190F1C2-8A3E-7C11-9D4B-2F6A1E0C5B7D", "follows": "0190f1c28a3e7c119d4b2f6a1e0c5b7d"},
        make_event(payload={"text": "a literal \\u0000, not a NUL"}),
        make_event(payload={"long": "x" * 300, "many": " ".join(f"w{i}" for i in range(MAX_WORDS + 5))}),
    ]


def test_it_decodes_valid_bodies_in_one_pass_into_the_events_the_full_path_makes():
    import json

    from eventfeed.events.schema import decode_clean

    events = _unusual_but_valid()
    slow = [validate_event(raw)[0] for raw in events]
    assert None not in slow
    batch = decode_clean(json.dumps(events, ensure_ascii=False).encode())
    # Taken by the fast path: the one thing it falls back on here is the text "\u0000".
    assert batch is None
    plain = [e for e in events if "\\u0000" not in json.dumps(e)]
    batch = decode_clean(json.dumps(plain, ensure_ascii=False).encode())
    assert batch is not None
    assert [_fields(e) for e in batch] == [_fields(validate_event(raw)[0]) for raw in plain]
    for raw in events:
        for one in (decode_clean(json.dumps(raw)), decode_clean(json.dumps(raw), one=True)):
            assert one is None or [_fields(e) for e in one] == [_fields(validate_event(raw)[0])]


def test_it_finds_the_same_words_on_the_fast_path_as_the_full_path_finds():
    import json

    from eventfeed.events.schema import decode_clean

    tag = {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"}
    flow = {"prefect.resource.id": "prefect.flow.7", "prefect.resource.role": "flow", "prefect.resource.name": "Load-Orders"}
    long_word = "x" * (MAX_WORD + 6)
    events = [
        make_event("prefect.flow-run.Failed", "prefect.flow-run.1", related=[flow, tag, tag], payload={"Reason": "OOM killed"}),
        # The words of the id key come from the primary resource, which every event has.
        make_event("a", "b", related=[{"prefect.resource.id": "resource", "prefect.resource.role": "prefect"}]),
        # Cut to MAX_WORD characters wherever they are.
        make_event(payload={"sha": long_word}),
        make_event(related=[{"prefect.resource.id": long_word, "prefect.resource.role": "blob"}]),
        # More words than MAX_WORDS keeps: the first ones, in order.
        make_event(payload={"w": " ".join(f"w{i}" for i in range(MAX_WORDS + 50))}),
        make_event(payload={"path": "C:\\temp\\new"}, related=[flow]),
    ]
    fast = decode_clean(json.dumps(events).encode())
    assert fast is not None
    for event, raw in zip(fast, events):
        slow = validate_event(raw)[0]
        assert sorted(event.words) == sorted(slow.words)
        assert len(event.words) == len(set(event.words)) <= MAX_WORDS
    assert "x" * MAX_WORD in fast[2].words and "x" * MAX_WORD in fast[3].words
    assert {"prefect", "resource", "id", "role"} <= set(fast[1].words)


def test_it_leaves_every_body_the_full_path_refuses_to_it():
    import json
    from datetime import datetime, timedelta, timezone

    from eventfeed.events.schema import decode_clean

    def changed(**fields):
        return {**make_event(), **fields}

    bad = [
        changed(id="nope"), changed(id=None), changed(occurred="2026-11-21T10:00:00"), changed(occurred="soon"),
        changed(occurred="0001-01-01T00:30:00+01:00"),
        changed(occurred=(datetime.now(timezone.utc) + timedelta(days=2)).isoformat()),
        changed(event=""), changed(event="  "), changed(event="e" * 1025), changed(event=3),
        changed(resource={"prefect.resource.id": " "}), changed(resource={"name": "x"}),
        changed(resource={"prefect.resource.id": "x", "n": 3}), changed(resource=None),
        changed(related=[{"prefect.resource.id": "x"}]), changed(related=[{"prefect.resource.id": "x", "prefect.resource.role": ""}]),
        changed(related={"prefect.resource.id": "x"}), changed(payload=[]), changed(payload="x"),
        changed(follows="nope"), changed(extra=1), changed(payload={"s": "nul\x00here"}),
        changed(resource={"prefect.resource.id": "x", **{f"k{i}": "v" for i in range(600)}}),
        changed(related=[{"prefect.resource.id": f"x{i}", "prefect.resource.role": "r"} for i in range(101)]),
        changed(payload={"big": "x" * 2_000_000}),
    ]
    for raw in bad:
        assert validate_event(raw)[1], raw
        assert decode_clean(json.dumps([make_event(), raw]).encode()) is None, raw
        assert decode_clean(json.dumps(raw), one=True) is None, raw
    for body in [b"", b"[]", b"{}", b"[1]", b"nul", b'{"a": NaN}', b"[" * 5000, b"\xff", '"\\ud800"'.encode()]:
        assert decode_clean(body) is None
    # A frame is one event, never an array of them.
    assert decode_clean(json.dumps([make_event()]), one=True) is None
    # The batch limit is the full path's to say.
    with override_settings(EVENTFEED_MAX_BATCH=2):
        assert decode_clean(json.dumps([make_event()] * 3).encode()) is None

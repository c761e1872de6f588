"""The filter's two back ends (database and matches()) select exactly the same events."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from eventfeed.events.filters import EventFilter, LabelCondition, Matchable, ResourceCondition
from eventfeed.events.ingest import ingest
from eventfeed.events.schema import decode_clean, validate_event
from eventfeed.events.wire import wire

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
# Small vocabularies so that filters and events collide often; case variants catch a back end
# that ignores case (SQLite's LIKE does).
NAMES = ["a.b.c", "a.b.d", "a.bc", "A.b.c", "b.y.z", "a.b.c.d"]
IDS = ["r.1", "r.10", "R.1", "x.y", "r.1.z", "tag.prod"]
ROLES = ["flow", "tag", "deployment"]
KEYS = ["k", "prefect.resource.name"]
VALUES = ["v", "V", "vv", "w.x", "a*b", "ü-é", "v\nw"]
# Free text finds words by their start: "no" must find "nothing" and "notes", not "ano".
WORDS = ["v", "vv", "b.c", "zz", "ü", "Ü", "a*b", "A", "no", "not", '"w x"', "x_y", "é", "role", "id"]

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=2)


@st.composite
def events(draw):
    related = [
        {"prefect.resource.id": draw(st.sampled_from(IDS)), "prefect.resource.role": draw(st.sampled_from(ROLES)), **draw(labels)}
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {
        "id": str(uuid.UUID(int=draw(st.integers(1, 2**64)))),
        "occurred": (T0 + timedelta(seconds=draw(st.integers(0, 600)))).isoformat(),
        "event": draw(st.sampled_from(NAMES)),
        # A primary resource may carry a role label too: its row keeps it among its labels.
        "resource": {"prefect.resource.id": draw(st.sampled_from(IDS)), **draw(labels),
                     **draw(st.sampled_from([{}, {}, {"prefect.resource.role": "flow"}]))},
        "related": related,
        "payload": {"note": draw(st.sampled_from(WORDS + ["nothing", "ano notes", "w\\nx", "x_yz", "W-X"]))},
    }


patterns = st.sampled_from(VALUES + ["v*", "*", "?", "w.*", "*x", "!v", "!v*", "!?v", "r.1*", "R.*", "r.?", "a\\*b", "flow", "t*", "!tag"])


@st.composite
def resource_conditions(draw):
    scope = draw(st.sampled_from(["resource", "related", "any"]))
    return ResourceCondition(
        scope=scope,
        ids=tuple(draw(st.lists(st.sampled_from(IDS), max_size=2))),
        id_prefixes=tuple(draw(st.lists(st.sampled_from(["r.", "r.1", "R", "x", "tag."]), max_size=1))),
        roles=tuple(draw(st.lists(st.sampled_from(ROLES), max_size=2))) if scope != "resource" else (),
        pairs=tuple(draw(st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(ROLES)), max_size=1))) if scope == "related" else (),
        labels=tuple(
            LabelCondition(draw(st.sampled_from(KEYS + ["prefect.resource.id", "prefect.resource.role"])), tuple(draw(st.lists(patterns, min_size=1, max_size=2))))
            for _ in range(draw(st.integers(0, 2)))
        )
        if not draw(st.booleans())
        else (
            LabelCondition(draw(st.sampled_from(KEYS)), (draw(st.sampled_from(["v", "V", "v*", "V*", "!v", "?"])),)),
        ),
        negate=draw(st.booleans()),
    )


@st.composite
def filters(draw):
    since = draw(st.one_of(st.none(), st.integers(0, 600)))
    until = draw(st.one_of(st.none(), st.integers(0, 600)))
    terms = draw(st.lists(st.tuples(st.sampled_from(["", "+", "-"]), st.sampled_from(WORDS)), max_size=3))
    return EventFilter(
        since=T0 + timedelta(seconds=since) if since is not None else None,
        until=T0 + timedelta(seconds=until) if until is not None else None,
        names=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=2))),
        prefixes=tuple(draw(st.lists(st.sampled_from(["a.", "a.b", "A", "b.y.", "a.b.c"]), max_size=2))),
        exclude_names=tuple(draw(st.lists(st.sampled_from(NAMES), max_size=1))),
        exclude_prefixes=tuple(draw(st.lists(st.sampled_from(["a.b.c", "b.", "A"]), max_size=1))),
        resources=tuple(draw(st.lists(resource_conditions(), max_size=3))),
        text=" ".join(sign + word for sign, word in terms),
        order=draw(st.sampled_from(["ASC", "DESC"])),
    )


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=12, unique_by=lambda e: e["id"]), f=filters(), fast=st.booleans())
def test_it_selects_the_same_events_in_the_database_and_in_python(batch, f, fast):
    # Both ways in: the one-pass decoder writes the words column from each part's JSON
    # (schema.json_words), the full path from the whole event's.
    clean = (fast and decode_clean(json.dumps(batch).encode())) or [validate_event(raw)[0] for raw in batch]
    with transaction.atomic():
        ingest(clean)
        expected = {e.id for e in clean if f.matches(Matchable.from_wire(wire(e)))}
        page, more = f.page(limit=100)
        assert {e.id for e in page} == expected
        assert not more
        # Counted (capped) the way the read API's total is: from the resource rows when a related
        # resource drives the query and nothing else is asked of the events.
        assert f.count_up_to(100) == len(expected)
        assert f.count_up_to(1) == min(1, len(expected))
        # The page is in filter order by (occurred, id), with no repeats.
        keys = [(e.occurred, e.id) for e in page]
        assert keys == sorted(keys, reverse=f.order == "DESC")
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=12, unique_by=lambda e: e["id"]), f=filters(), size=st.integers(1, 4))
def test_it_pages_through_every_match_exactly_once(batch, f, size):
    clean = [validate_event(raw)[0] for raw in batch]
    with transaction.atomic():
        ingest(clean)
        expected = [e.id for e in sorted(clean, key=lambda e: (e.occurred, e.id), reverse=f.order == "DESC")
                    if f.matches(Matchable.from_wire(wire(e)))]
        seen, after = [], None
        while True:
            page, more = f.page(limit=size, after=after)
            seen += [e.id for e in page]
            if not more:
                break
            after = (page[-1].occurred, page[-1].id)
        assert seen == expected
        transaction.set_rollback(True)


term_values = st.sampled_from(IDS + ["r.*", "flow:r.1", "tag:*", "k=v", "k=v*", "flow:k=!v", "prefect.resource.name=w.x",
                                     "!r.1", "!tag:*", "!flow:r.*", "!k=v", "!r.*"])


@st.composite
def query_strings(draw):
    """The feed's query string: what a URL carries, read by FeedFilterSet."""
    params = [("event", draw(st.sampled_from(NAMES + ["a.*", "!a.b.c", "!b.*", "A.*"]))) for _ in range(draw(st.integers(0, 2)))]
    for key in ("resource", "related", "any"):
        params += [(key, draw(term_values)) for _ in range(draw(st.integers(0, 1)))]
    if draw(st.booleans()):
        params.append(("q", draw(st.sampled_from(WORDS))))
    params.append(("since", (T0 - timedelta(minutes=1)).isoformat()))
    return params


@pytest.mark.django_db
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=12, unique_by=lambda e: e["id"]), params=query_strings())
def test_it_selects_the_same_events_for_a_query_string_in_the_database_and_in_python(batch, params):
    from django.http import QueryDict

    from eventfeed.events.filtersets import FeedFilterSet

    data = QueryDict(mutable=True)
    for key, value in params:
        data.appendlist(key, value)
    filterset = FeedFilterSet(data)
    assert filterset.is_valid(), filterset.errors
    f = filterset.event_filter()
    clean = [validate_event(raw)[0] for raw in batch]
    with transaction.atomic():
        ingest(clean)
        expected = {e.id for e in clean if f.matches(Matchable.from_wire(wire(e)))}
        # The FilterSet's own queryset is the filter's: the front adds no condition of its own.
        assert {e.id for e in filterset.qs} == expected
        transaction.set_rollback(True)


spec_patterns = st.one_of(patterns, st.lists(patterns, min_size=1, max_size=2))


@st.composite
def trigger_json(draw):
    """An event trigger's names and resources, as a user writes them (parse_trigger reads them)."""
    def spec(keys):
        return draw(st.dictionaries(st.sampled_from(keys), spec_patterns, max_size=2))

    related = [spec(KEYS + ["prefect.resource.id", "prefect.resource.role"]) for _ in range(draw(st.integers(0, 2)))]
    return {
        "type": "event",
        "match": spec(KEYS + ["prefect.resource.id", "prefect.resource.role"]),
        "match_related": related[0] if len(related) == 1 and draw(st.booleans()) else related,
        "expect": draw(st.lists(st.sampled_from(NAMES + ["a.*", "a.b.?", "*.c", "*", "A.b.c"]), max_size=2)),
    }


@pytest.mark.django_db
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(events(), min_size=1, max_size=12, unique_by=lambda e: e["id"]), data=trigger_json())
def test_it_matches_a_triggers_resources_as_the_database_selects_them(batch, data):
    """The live evaluator's matcher (EventTrigger.covers_raw, on the wire dict) is built from the
    filter's objects: it selects what the database selects for the trigger's resource filter,
    and the names its patterns name."""
    from eventfeed.automations.triggers import parse_trigger
    from eventfeed.events.patterns import glob_match

    trigger, _ = parse_trigger(data)
    clean = [validate_event(raw)[0] for raw in batch]
    with transaction.atomic():
        ingest(clean)
        in_database = {e.id for e in trigger.resource_filter.queryset()}
        for e in clean:
            data = wire(e)
            named = not trigger.expect or any(glob_match(p, e.event) for p in trigger.expect)
            assert trigger.covers_raw(data["event"], data["resource"], data["related"]) == (named and e.id in in_database), data
        transaction.set_rollback(True)

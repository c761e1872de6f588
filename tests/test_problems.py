"""One time parser with one wording per rule, whichever reader meets the time."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from eventfeed.events.problems import (TIME_FORMAT_RULE, TIME_RANGE_RULE, TIME_ZONE_RULE, Problems, TimeRuleBroken,
                                       as_sentence, read_time)
from tests.conftest import make_event

pytestmark = pytest.mark.django_db

CASES = [("yesterday", TIME_FORMAT_RULE), ("2026-11-21T09:30:00", TIME_ZONE_RULE), ("9999-12-31T23:00:00-05:00", TIME_RANGE_RULE)]


@pytest.mark.parametrize("text, rule", CASES)
def test_it_gives_each_time_rule_one_wording_in_every_reader(client: Client, auth, owner_client, text, rule):
    with pytest.raises(TimeRuleBroken) as e:
        read_time(text)
    assert e.value.rule == rule
    # An event (POST /api/events), Prefect's filter JSON, a CloudEvent and the feed's query string.
    r = client.post("/api/events", json.dumps(dict(make_event(), occurred=text)), content_type="application/json", **auth)
    assert r.json()["errors"] == [{"index": 0, "path": "occurred", "rule": rule}]
    r = client.post("/api/events/filter", json.dumps({"filter": {"occurred": {"since": text}}}), content_type="application/json", **auth)
    assert r.json()["errors"] == [{"path": "filter.occurred.since", "rule": rule}]
    cloud = {"specversion": "1.0", "id": "c1", "source": "/s", "type": "t.x", "time": text}
    r = client.post("/api/events", json.dumps(cloud), content_type="application/cloudevents+json", **auth)
    assert [(e["path"], e["rule"]) for e in r.json()["errors"]] == [("time", rule)]
    r = owner_client.get("/events/", {"since": text, "partial": "rows"})
    assert r.status_code == 400 and r.json()["errors"] == {"since": [as_sentence(rule)]}


def test_it_collects_every_problem_and_lets_an_optional_time_be_null():
    problems = Problems()
    assert problems.time(None, "a", optional=True) is None and not problems
    assert problems.time(None, "b") is None
    assert problems.time("2026-11-21T09:30:00Z", "c").isoformat() == "2026-11-21T09:30:00+00:00"
    problems.fail("d", "is wrong")
    assert problems.problems == [("b", TIME_FORMAT_RULE), ("d", "is wrong")]


def test_it_says_an_unknown_field_and_a_wrong_type_in_one_wording_in_every_json_reader():
    """An automation's body, its trigger, its actions and Prefect's filter JSON go through the one
    collector: the same rule in the same words, every problem at once."""
    from eventfeed.automations.store import parse_automation
    from eventfeed.automations.triggers import TriggerError
    from eventfeed.events.filter_parsers import from_json
    from eventfeed.events.filters import FilterError

    body = {"name": "x", "colour": "red", "enabled": "yes", "tags": "a",
            "trigger": {"type": "event", "shape": 1, "expect": 5},
            "actions": [{"type": "do-nothing", "url": "https://example.com"}]}
    with pytest.raises(TriggerError) as e:
        parse_automation(body)
    rules = dict(e.value.problems)
    fields = "expected one of: actions, actions_on_resolve, actions_on_trigger, description, enabled, name, owner_resource, tags, trigger"
    assert rules["colour"] == f"is not a field of an automation ({fields})"
    assert rules["trigger.shape"].startswith("is not a field of an event trigger (expected one of: after, ")
    assert rules["actions[0].url"] == "is not a field of do-nothing (expected one of: type)"
    assert rules["enabled"] == "must be true or false"
    assert rules["tags"] == "must be a list of strings, not a string"
    assert rules["trigger.expect"] == "must be a list of strings, not a number"
    with pytest.raises(FilterError) as e:
        from_json({"event": {"shape": 1, "name": 5}, "resource": {"distinct": "yes"}})
    rules = dict(e.value.problems)
    assert rules["filter.event.shape"] == "is not a field of filter.event (expected one of: exclude_name, exclude_prefix, name, prefix)"
    assert rules["filter.event.name"] == "must be a list of strings, not a number"
    assert rules["filter.resource.distinct"] == "must be true or false"

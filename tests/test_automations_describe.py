"""The trigger sentence: English for every combination of the event trigger's parts, and
resources by name where the store knows them."""

from __future__ import annotations

import itertools
import re

import pytest

from eventfeed.automations.describe import describe, resource_ids
from eventfeed.automations.detail import sentence
from eventfeed.events.queries import resource_names
from tests.conftest import make_event, store

DEPLOYMENT = "prefect.deployment.d1"
RUN = "prefect.flow-run.r1"
NAMES = {DEPLOYMENT: "etl/nightly", RUN: "calm-quail"}

PARTS = {
    "posture": [("Reactive", {}), ("Proactive", {})],
    "expect": [[], ["acme.order.shipped"], ["x.Failed", "x.Crashed"]],
    "after": [[], ["acme.order.paid"]],
    "match": [{}, {"prefect.resource.id": "prefect.flow-run.*"}, {"prefect.resource.id": RUN}],
    "match_related": [{}, {"prefect.resource.id": DEPLOYMENT, "prefect.resource.role": "deployment"},
                      {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}],
    "threshold": [1, 3, 22],
    "within": [0, 60, 3600],
    "for_each": [[], ["prefect.resource.id"]],
}

# What a sentence must never say: each of these reads as broken English.
WRONG = [
    r"\bno any\b", r"\ba any\b", r"\ban any\b", r"\b1 events\b", r"\bevery 1st\b", r"\bwithin 0 seconds\b",
    r"\bwhen after\b", r"\btime after\b", r"\s{2}", r" ,", r",,", r"\.\.", r"\bevent events\b", r"\bevents event\b",
    r"\boccurs occur", r"\bfollows follow", r"\(as deployment\)",
]


def combinations():
    keys = list(PARTS)
    for values in itertools.product(*(PARTS[k] for k in keys)):
        data = dict(zip(keys, values))
        data["posture"] = data["posture"][0]
        if data["posture"] == "Proactive" and data["within"] == 0:
            continue  # raised to 10 s, as in Prefect: covered by the 60 s case
        yield data


@pytest.mark.parametrize("data", list(combinations()), ids=lambda d: "-".join(str(v)[:12] for v in d.values()))
def test_it_reads_as_english_for_every_combination(data):
    from eventfeed.automations.triggers import parse_trigger

    trigger = parse_trigger(data)[0]
    text = describe(trigger, NAMES)
    assert text.startswith("Fires ") and text.endswith(".") and text.count(".") >= 1, text
    for pattern in WRONG:
        assert not re.search(pattern, text), f"{pattern!r} in {text!r}"
    # Named resources are said by name, never by their id.
    for resource_id, name in NAMES.items():
        assert resource_id not in text
        if resource_id in str(data):
            assert name in text, text
    if data["threshold"] > 1:
        assert str(data["threshold"]) in text


def test_it_names_resources_the_store_knows_and_keeps_ids_it_does_not(db):
    store(make_event("prefect.flow-run.Failed", RUN, related=[
        {"prefect.resource.id": DEPLOYMENT, "prefect.resource.role": "deployment", "prefect.resource.name": "etl/nightly"}],
        **{"prefect.resource.name": "calm-quail"}))
    trigger = {"expect": ["prefect.flow-run.Failed"], "match": {"prefect.resource.id": "prefect.flow-run.*"},
               "match_related": {"prefect.resource.id": DEPLOYMENT, "prefect.resource.role": "deployment"}}
    assert sentence(trigger) == ("Fires every time a prefect.flow-run.Failed event from prefect.flow-run.* related to the "
                                 "deployment etl/nightly occurs.")
    assert resource_names([RUN, DEPLOYMENT, "prefect.flow.unknown"]) == NAMES
    unknown = {"match": {"prefect.resource.id": "prefect.flow.unknown"}}
    assert sentence(unknown) == "Fires every time any event from prefect.flow.unknown occurs."


def test_it_collects_only_exact_ids_for_naming():
    from eventfeed.automations.triggers import parse_trigger

    trigger = parse_trigger({"type": "compound", "require": "all", "triggers": [
        {"match": {"prefect.resource.id": ["prefect.flow-run.*", RUN, "!prefect.flow-run.x"]}},
        {"match_related": {"prefect.resource.id": DEPLOYMENT, "prefect.resource.role": "deployment"}}]})[0]
    assert resource_ids(trigger) == {RUN, DEPLOYMENT}

"""Proactive triggers fire on time in a running server: within a second of their deadline, alone
and inside compound and sequence triggers (prefect#18838, #17685)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations import store
from eventfeed.automations.models import Firing
from eventfeed.events.models import ApiKey
from tests.browser.conftest import serve
from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)

WITHIN = 10
STUCK = {"match": {"prefect.resource.id": "job.*"}, "after": ["job.started"], "expect": ["job.finished"],
         "for_each": ["prefect.resource.id"], "posture": "Proactive", "within": WITHIN}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    yield from serve(django_db_blocker)


def post(server: str, key: str, events: list[dict]) -> None:
    request = urllib.request.Request(f"{server}/api/events", data=json.dumps(events).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_proactive_triggers_fire_within_a_second_of_their_deadline_alone_and_in_composites(server):
    _, key = ApiKey.create("timing")
    automations = {
        "alone": STUCK,
        "compound": {"type": "compound", "require": "all", "within": 60,
                     "triggers": [STUCK, {"match": {"prefect.resource.id": "job.*"}, "expect": ["job.started"]}]},
        "sequence": {"type": "sequence", "within": 60,
                     "triggers": [{"match": {"prefect.resource.id": "job.*"}, "expect": ["job.started"]}, STUCK]},
    }
    created = {name: store.save_automation(store.parse_automation({"name": name, "trigger": trigger}))
               for name, trigger in automations.items()}
    time.sleep(1.5)  # the server's evaluator reloads its index when automations change
    started = datetime.now(timezone.utc)
    post(server, key, [make_event("job.started", "job.7", occurred=started)])
    deadline = started + timedelta(seconds=WITHIN)
    firings = {}
    while datetime.now(timezone.utc) < deadline + timedelta(seconds=5) and len(firings) < len(created):
        for name, a in created.items():
            firing = Firing.objects.filter(automation=a).first()
            if firing is not None:
                firings[name] = firing
        time.sleep(0.05)
    assert set(firings) == set(created)
    for name, firing in firings.items():
        late = (firing.at - deadline).total_seconds()
        print(f"{name}: fired {late:.3f} s after its deadline")
        assert 0 <= late < 1.0, (name, late)
        assert firing.labels == {"prefect.resource.id": "job.7"}

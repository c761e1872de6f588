"""The fault suite for the automation evaluator (eventfeed/benchmarks/faultkit.py, AutomationLab):
`run_automations` killed with -9, the Daphne process that evaluates in-process killed with -9,
PostgreSQL down, Redis flushed, while a producer sends events an automation fires for. Each case
counts firings and what the actions did: lost 0, and nothing done twice in the database.

PostgreSQL stays down 10 s here (bench_faults: 30 s): the evaluator, the catch-up and the action
runner take the same code path either way (every connection cut, every statement failing until
it is back); only the wait is longer.
"""

from __future__ import annotations

import os

import pytest

from eventfeed.automations.service import MAX_RUNNING_ACTIONS
from eventfeed.benchmarks import faultkit

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="runs in the PostgreSQL + Redis pass of python -m tests"),
    pytest.mark.skipif(faultkit.services_available() is not None, reason=str(faultkit.services_available())),
]

OUTAGE_SECONDS = 10.0


@pytest.fixture(scope="module")
def lab():
    lab = faultkit.AutomationLab()
    yield lab
    lab.close()


@pytest.mark.parametrize("name", list(faultkit.AUTOMATION_SCENARIOS))
def test_it_fires_and_acts_once_for_every_event_through_the_fault(lab, name):
    kwargs = {"outage": OUTAGE_SECONDS} if name.endswith("postgres-down") else {}
    tally = faultkit.AUTOMATION_SCENARIOS[name](lab, **kwargs)
    print(tally.line())
    assert tally.acknowledged and tally.stored >= len(tally.acknowledged), tally.line()
    assert tally.lost == 0, tally.line()
    assert tally.unfinished == 0, tally.line()
    # Firings and the actions done in the database (emit-event): exactly once.
    assert tally.duplicated_in_database == 0, tally.line()
    # A webhook is called at least once: only a call in flight when its process was killed may
    # be made again (README, "Failure modes").
    in_flight = MAX_RUNNING_ACTIONS if name.endswith("killed") else 0
    assert tally.calls - tally.calls_distinct <= in_flight, tally.line()

"""The fault suite: a private PostgreSQL and Redis (eventfeed/benchmarks/faultkit.py) stopped, flushed and
killed, and Daphne killed with -9, while producers send over HTTP and /api/events/in (SDK-style
checkpoints) and an SDK-style /api/events/out subscriber listens on another process. Every
case counts what was acknowledged, stored, duplicated and delivered live.

It runs in the PostgreSQL + Redis pass of `python -m tests` (its own services either way; one
pass is enough for a machine this size).
"""

from __future__ import annotations

import os

import pytest

from eventfeed.benchmarks import faultkit

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="runs in the PostgreSQL + Redis pass of python -m tests"),
    pytest.mark.skipif(faultkit.services_available() is not None, reason=str(faultkit.services_available())),
]

# Live delivery must be back this soon after the service returns (the target: 10 s).
RESUME_SECONDS = 10


@pytest.fixture(scope="module")
def lab():
    lab = faultkit.Lab(servers=2)
    yield lab
    lab.close()


@pytest.mark.parametrize("name", list(faultkit.SCENARIOS))
def test_it_loses_and_doubles_nothing_and_resumes_live_delivery(lab, name):
    tally = faultkit.SCENARIOS[name](lab)
    print(tally.line())
    assert tally.acknowledged, "nothing was acknowledged: the scenario did not run"
    assert tally.lost == 0, tally.line()
    assert tally.duplicated == 0, tally.line()
    # Everything stored reached the subscriber: live, or by the backfill after it was told.
    assert tally.delivered_live == tally.stored, tally.line()
    assert tally.resumed_seconds is not None and tally.resumed_seconds <= RESUME_SECONDS, tally.line()
    # Every error the producer saw was JSON, and every close a subscriber saw had a reason.
    assert tally.not_json == 0, tally.odd_answers[:3]
    assert all(reason for _, reason in tally.closes), tally.closes


def test_it_answers_503_json_with_retry_after_while_postgres_is_down(lab):
    lab.postgres.stop("immediate")
    try:
        status, body, headers = faultkit.post(lab.servers[0].url, lab.key, [faultkit.make_event("fault.down")])
    finally:
        lab.postgres.start()
    assert status == 503
    assert "unavailable" in body["detail"] and int(headers["Retry-After"]) > 0


def test_it_tells_out_subscribers_when_redis_forgets_them(lab):
    tally = faultkit.SCENARIOS["http+redis-flushed"](lab)
    assert any(code == 1013 and "backfill" in reason for code, reason in tally.closes), tally.closes


def test_it_keeps_memory_bounded_over_the_largest_allowed_request(lab):
    from django.conf import settings

    memory = faultkit.largest_request(lab, settings.EVENTFEED_MAX_EVENT_BYTES, settings.EVENTFEED_MAX_REQUEST_BYTES)
    print(memory.line())
    body_mb = memory.body_bytes / 1e6
    # The bound: under 5x the body at peak (measured 3.6x: the parsed events, one COPY
    # piece and one published message at a time; 8.7x while the raw body stayed beside them, COPY
    # took the whole text at once and one message carried every event). What a request leaves
    # behind is given back.
    assert memory.peak_mb - memory.before_mb < 5 * body_mb, memory.line()
    assert memory.after_mb - memory.before_mb < 50, memory.line()

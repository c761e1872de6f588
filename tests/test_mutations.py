"""Tests that can fail: each named behaviour is broken on purpose (tests/mutation_plugin.py) and
the test that names it must then fail. A test that passes with its behaviour removed proves
nothing; these are the cheap ones to show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

MUTATIONS = {
    "publish before commit": (
        "eventfeed.events.ingest",
        "transaction.on_commit(lambda: publish(fresh))", "publish(fresh)",
        "tests/test_api_ingest.py::test_it_publishes_stored_events_only_after_commit",
    ),
    "emit published before the caller commits": (
        "eventfeed.events.ingest",
        "transaction.on_commit(lambda: publish(fresh))", "publish(fresh)",
        "tests/test_emit.py::test_it_publishes_only_once_the_callers_transaction_commits",
    ),
    "wire keeps the producer's offset": (
        "eventfeed.events.wire",
        "moment.astimezone(timezone.utc).isoformat()", "moment.isoformat()",
        "tests/test_wire.py::test_it_writes_every_offset_in_utc_through_every_door_and_output",
    ),
    "times out of range accepted": (
        "eventfeed.events.problems",
        "if not in_supported_range(parsed):", "if False:",
        "tests/test_views_feed.py::test_it_never_answers_500_to_odd_input",
    ),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_it_fails_the_test_that_names_a_broken_behaviour(name):
    module, old, new, test = MUTATIONS[name]
    with tempfile.TemporaryDirectory(prefix="eventfeed-mutant-") as tmp:
        # On SQLite with the in-process channel layer, in a database of its own: the suite's
        # own test databases stay untouched.
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DATABASE_READ_URL")}
        env.update(EVENTFEED_MUTATION=json.dumps({"module": module, "old": old, "new": new}),
                   EVENTFEED_TEST_SQLITE=str(Path(tmp) / "mutant.sqlite3"))
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "tests.mutation_plugin", "-p", "no:cacheprovider", "-q", "-x", test],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
    assert "RuntimeError" not in run.stdout + run.stderr, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.returncode == 1, f"{test} passed with '{name}':\n{run.stdout[-1500:]}"

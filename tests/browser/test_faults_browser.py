"""The fault suite's browser case (eventfeed/benchmarks/faultkit.py): a feed page stays open while
its server's Redis is flushed, then killed and started again empty, and shows every event posted
meanwhile, by its catch-up from the store, without a reload and without a repeat."""

from __future__ import annotations

import os
import time

import pytest

from eventfeed.benchmarks import faultkit

pytestmark = [
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="runs in the PostgreSQL + Redis pass of python -m tests"),
    pytest.mark.skipif(faultkit.services_available() is not None, reason=str(faultkit.services_available())),
]

SIGN_IN = """
from django.contrib.auth import get_user_model
from django.test import Client
user = get_user_model().objects.create_user("faults", password="faults-password-1")
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value)
"""


@pytest.fixture(scope="module")
def lab():
    lab = faultkit.Lab(servers=1)
    # The lab's server runs with DEBUG off, as production: its pages name collectstatic's files.
    faultkit.manage(lab.env, "collectstatic", "--noinput", "-v", "0")
    yield lab
    lab.close()


def test_it_shows_every_event_through_a_redis_flush_and_restart_without_a_reload(lab, browser):
    server = lab.servers[0]
    session = faultkit.manage(lab.env, "shell", "-c", SIGN_IN).strip().splitlines()[-1]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": server.url}])
    page = context.new_page()
    try:
        page.goto(server.url + "/events/?event=fault.browser.*")
        page.wait_for_selector("[data-live-status][data-state=live]", timeout=30_000)
        page.evaluate("window.__sameDocument = true")
        posted: list[dict] = []

        def post(n: int, label: str) -> None:
            for i in range(n):
                event = faultkit.make_event(f"fault.browser.{label}.{i}")
                while faultkit.post(server.url, lab.key, [event])[0] != 200:
                    time.sleep(0.2)
                posted.append(event)
                time.sleep(0.1)

        post(5, "before")
        lab.redis.flush()
        post(10, "after-flush")  # some while the page's server has not yet noticed
        lab.redis.kill()
        post(5, "redis-away")
        lab.redis.start()
        post(5, "redis-back")
        for event in posted:
            page.locator(f'.row[data-id="{event["id"]}"]').wait_for(timeout=30_000)
        ids = page.eval_on_selector_all(".row", "rows => rows.map(r => r.dataset.id)")
        assert len(ids) == len(set(ids))
        assert page.evaluate("window.__sameDocument") is True
    finally:
        context.close()

"""Actions: a webhook to a real local HTTP server, retries, notifications, emitted events,
pause/resume, and the action events in the feed."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from eventfeed.automations import actions, engine, store
from eventfeed.automations.models import ActionRun, Automation, Notification
from eventfeed.events.wire import wire
from eventfeed.events.models import Event
from tests.conftest import make_event, store as store_events


class Recorder(BaseHTTPRequestHandler):
    status = 200
    requests: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body.decode()})
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(settings):
    # The target is on loopback, which outbound calls refuse unless the operator allows it.
    settings.EVENTFEED_OUTBOUND_ALLOW = ["127.0.0.1"]
    Recorder.requests, Recorder.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Recorder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fire(actions_json: list, name: str = "shipping", **event_kw) -> Automation:
    a = store.save_automation(store.parse_automation(
        {"name": name, "trigger": {"expect": ["acme.order.shipped"]}, "actions": actions_json}))
    engine.evaluate([wire(e) for e in store_events(make_event("acme.order.shipped", "acme.order.9", **event_kw)).stored])
    return a


def action_events(name: str):
    return list(Event.objects.filter(event=f"prefect.automation.action.{name}"))


def test_it_calls_a_webhook_with_a_templated_body(db, webhook):
    recorder, url = webhook
    a = fire([{"type": "call-webhook", "url": url + "/hook", "headers": {"X-Token": "t"},
               "payload": '{"automation": "{{ automation.name }}", "resource": "{{ event.resource.id }}", '
                          '"name": {{ event.resource["prefect.resource.name"]|json }}, "total": {{ event.payload.total }}}'}],
             payload={"total": 12}, **{"prefect.resource.name": 'Order "9"'})
    assert actions.run_due_actions() == 1
    [request] = recorder.requests
    assert request["path"] == "/hook" and request["headers"]["X-Token"] == "t"
    assert json.loads(request["body"]) == {"automation": "shipping", "resource": "acme.order.9", "name": 'Order "9"', "total": 12}
    run = ActionRun.objects.get(automation=a)
    assert (run.status, run.response_status, run.attempts) == ("succeeded", 200, 1)
    [triggered] = action_events("triggered")
    [executed] = action_events("executed")
    assert executed.payload["action_type"] == "call-webhook" and executed.payload["status_code"] == 200
    roles = {r["prefect.resource.role"] for r in triggered.related}
    assert roles == {"automation-triggered-event", "triggering-event"}


def test_it_retries_a_failing_webhook_a_bounded_number_of_times(db, webhook):
    recorder, url = webhook
    recorder.status = 500
    fire([{"type": "call-webhook", "url": url}, {"type": "do-nothing"}])
    assert actions.run_due_actions() == 2
    ActionRun.objects.update(next_attempt="2000-01-01T00:00:00Z")
    actions.run_due_actions()
    ActionRun.objects.update(next_attempt="2000-01-01T00:00:00Z")
    actions.run_due_actions()
    ActionRun.objects.update(next_attempt="2000-01-01T00:00:00Z")
    assert actions.run_due_actions() == 0
    webhook_run, nothing = ActionRun.objects.order_by("index")
    assert (webhook_run.status, webhook_run.attempts, webhook_run.response_status) == ("failed", actions.MAX_ATTEMPTS, 500)
    assert "HTTP 500" in webhook_run.last_error
    assert nothing.status == "succeeded"
    assert len(recorder.requests) == actions.MAX_ATTEMPTS
    [failed] = action_events("failed")
    assert failed.payload["action_index"] == 0


def test_it_records_a_webhook_timeout_as_a_failure(db, settings):
    import socket

    settings.EVENTFEED_OUTBOUND_ALLOW = ["127.0.0.1"]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        fire([{"type": "call-webhook", "url": f"http://127.0.0.1:{listener.getsockname()[1]}/", "timeout": 0.3}])
        actions.run_due_actions()
        run = ActionRun.objects.get()
        assert run.status == "pending" and "Timeout" in run.last_error
    finally:
        listener.close()


def test_it_stores_a_notification_and_emails_it(db, django_capture_on_commit_callbacks):
    fire([{"type": "send-notification", "subject": "Shipped: {{ event.resource.id }}", "body": "by {{ automation.name }}",
           "to": ["ops@example.com"]}])
    actions.run_due_actions()
    note = Notification.objects.get()
    assert (note.subject, note.body) == ("Shipped: acme.order.9", "by shipping")
    assert mail.outbox[0].subject == "Shipped: acme.order.9" and mail.outbox[0].to == ["ops@example.com"]


def test_it_emits_an_event_and_pauses_itself(db):
    a = fire([{"type": "emit-event", "event": "acme.alert.{{ event.event }}", "resource": {"prefect.resource.id": "acme.alert.1"}},
              {"type": "pause-automation"}])
    actions.run_due_actions()
    assert Event.objects.filter(event="acme.alert.acme.order.shipped", resource_id="acme.alert.1").exists()
    a.refresh_from_db()
    assert a.enabled is False
    # Paused: a second matching event does not fire.
    assert engine.evaluate([wire(e) for e in store_events(make_event("acme.order.shipped")).stored]) == []


def test_it_keeps_running_other_actions_when_one_raises(db):
    fire([{"type": "resume-automation", "source": "selected", "automation_id": "00000000-0000-0000-0000-000000000000"},
          {"type": "do-nothing"}])
    actions.run_due_actions()
    statuses = list(ActionRun.objects.order_by("index").values_list("status", flat=True))
    assert statuses == ["pending", "succeeded"]
    assert "does not exist" in ActionRun.objects.get(index=0).last_error


@pytest.mark.parametrize("template, reason", [
    ('{{ event.resource.id|center(300000000) }}', "the filter center would make a value of 300000000 characters"),
    ("{% for a in 'abcdefghij' * 9 %}{% for b in 'abcdefghij' * 9 %}{% for c in 'abcdefghij' * 9 %}{% for d in 'abcdefghij' * 9 %}"
     "{% endfor %}{% endfor %}{% endfor %}{% endfor %}", "used more than 1 s of CPU"),
    ("{% for i in range(automation.name|length * 10 ** 8) %}{% endfor %}", "range() may have at most 1000 items"),
])
def test_it_fails_a_template_bomb_once_with_its_reason(db, template, reason):
    import time

    fire([{"type": "send-notification", "body": template}, {"type": "do-nothing"}])
    started = time.thread_time()
    actions.run_due_actions()
    # CPU time of this thread, which rendered: the machine's load does not count against it.
    assert time.thread_time() - started < 2
    bomb, nothing = ActionRun.objects.order_by("index")
    # A template fails the same way every time: no retry.
    assert (bomb.status, bomb.attempts) == ("failed", 1)
    assert bomb.last_error.startswith("the body template failed: ") and reason in bomb.last_error
    assert nothing.status == "succeeded"
    [failed] = action_events("failed")
    assert reason in failed.payload["reason"]


def test_it_renders_prefect_template_context(db):
    fire([{"type": "send-notification", "subject": "{{ resource.id }}",
           "body": "{{ event.resource_in_role['customer'].id }} {{ related[0].role }} {{ automation.name }} "
                   "{{ event.payload.total }} {{ flow_run.name }}!"}],
         related=[{"prefect.resource.id": "acme.customer.7", "prefect.resource.role": "customer"}], payload={"total": 3})
    actions.run_due_actions()
    note = Notification.objects.get()
    assert (note.subject, note.body) == ("acme.order.9", "acme.customer.7 customer shipping 3 !")


def test_it_refuses_an_invalid_template_when_saved(db):
    from eventfeed.automations.triggers import TriggerError

    with pytest.raises(TriggerError) as refused:
        store.parse_automation({"name": "x", "trigger": {"expect": ["a"]},
                                "actions": [{"type": "send-notification", "body": "{{ 'a' * 10 ** 9 }}"}]})
    [(path, rule)] = refused.value.problems
    assert path == "actions[0].body" and "the operator * would make a value of 1000000000 characters" in rule


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker):
    """Daphne serving the project (its evaluator and action runner in-process), for this module."""
    from tests.browser.conftest import serve

    yield from serve(django_db_blocker)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_server_answering_while_a_template_bomb_fails_its_action(live_server_url):
    import time

    import httpx

    from eventfeed.events.models import ApiKey

    _, key = ApiKey.create("bomb")
    headers = {"Authorization": f"Bearer {key}"}
    bomb = ("{% for a in 'abcdefghij' * 9 %}{% for b in 'abcdefghij' * 9 %}{% for c in 'abcdefghij' * 9 %}"
            "{% for d in 'abcdefghij' * 9 %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}")
    with httpx.Client(base_url=live_server_url, headers=headers, timeout=10) as http:
        created = http.post("/api/automations/", json={"name": "bomb", "trigger": {"expect": ["acme.bomb"]},
                                                       "actions": [{"type": "send-notification", "body": bomb}]})
        assert created.status_code == 201, created.text
        assert http.post("/api/events", json=make_event("acme.bomb")).status_code == 200
        answered, slowest, deadline = 0, 0.0, time.monotonic() + 60
        while not ActionRun.objects.filter(status="failed").exists():
            assert time.monotonic() < deadline, "the action did not fail within 60 s"
            started = time.monotonic()
            assert http.get("/api/health").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            answered += ActionRun.objects.filter(status="running").exists()
            time.sleep(0.05)
    run = ActionRun.objects.get()
    assert "the body template failed: the template used more than 1 s of CPU" == run.last_error
    assert answered >= 2 and slowest < 1.0, (answered, slowest)


def test_it_fails_a_webhook_to_a_refused_address_at_once_and_shows_why(db, webhook, owner_client, settings):
    recorder, url = webhook
    settings.EVENTFEED_OUTBOUND_ALLOW = []
    a = fire([{"type": "call-webhook", "url": url.replace("127.0.0.1", "localhost") + "/hook"}])
    actions.run_due_actions()
    run = ActionRun.objects.get()
    assert (run.status, run.attempts) == ("failed", 1)
    assert run.last_error.startswith("refused: localhost resolves to ") and "a loopback address" in run.last_error
    assert recorder.requests == []
    assert "refused: localhost resolves to" in owner_client.get(f"/automations/{a.id}/").content.decode()


def test_it_refuses_a_literal_refused_address_when_saved(db):
    from eventfeed.automations.triggers import TriggerError

    with pytest.raises(TriggerError) as refused:
        store.parse_automation({"name": "x", "trigger": {"expect": ["a"]},
                                "actions": [{"type": "call-webhook", "url": "http://169.254.169.254/latest/meta-data/"}]})
    assert refused.value.problems == [("actions[0].url", "cannot be called: 169.254.169.254 is a link-local address; "
                                                         "set EVENTFEED_OUTBOUND_ALLOW to allow it")]


def test_it_shows_a_failed_call_s_body_only_when_the_target_was_allowed():
    from eventfeed.outbound import Response

    assert actions.webhook_failure(Response(502, None, b"internal detail", allowed=False)) == "HTTP 502"
    assert actions.webhook_failure(Response(502, None, b"internal detail", allowed=True)) == "HTTP 502: internal detail"


def test_it_does_an_in_database_action_once_when_its_claimer_died_or_was_slow(db):
    fire([{"type": "emit-event", "event": "acme.alert", "resource": {"prefect.resource.id": "acme.alert.1"}}])
    [first] = actions.claim_due()  # the claimer is killed here: nothing was done
    ActionRun.objects.update(next_attempt="2000-01-01T00:00:00Z")  # its lease is over
    assert actions.run_due_actions() == 1
    actions.execute(first)  # the first claimer, slow rather than dead, comes back: not again
    assert Event.objects.filter(event="acme.alert").count() == 1
    run = ActionRun.objects.get()
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert len(action_events("triggered")) == 1 and len(action_events("executed")) == 1


def test_it_leaves_an_in_database_action_to_its_lease_when_the_database_fails(db, monkeypatch):
    from django.db import OperationalError

    fire([{"type": "pause-automation"}])
    [run] = actions.claim_due()
    monkeypatch.setattr(actions, "perform", lambda run: (_ for _ in ()).throw(OperationalError("server closed the connection")))
    with pytest.raises(OperationalError):
        actions.execute(run)
    run.refresh_from_db()
    # Not a failure of the action: taken again when the lease ends, nothing recorded meanwhile.
    assert (run.status, run.attempts, run.last_error) == ("running", 1, "")
    assert run.next_attempt - run.created < actions.IN_DATABASE_LEASE + timedelta(seconds=5)


def test_it_records_a_webhook_it_called_once_the_database_is_back(db, webhook, monkeypatch):
    from django.db import OperationalError

    recorder, url = webhook
    fire([{"type": "call-webhook", "url": url}])
    record, failures = actions._record_inside, []

    def away_once(*args):
        if not failures:
            failures.append(1)
            raise OperationalError("the database system is starting up")
        record(*args)

    monkeypatch.setattr(actions, "_record_inside", away_once)
    monkeypatch.setattr(actions.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(actions.connection, "close", lambda: None)  # the test's transaction stays
    assert actions.run_due_actions() == 1
    assert len(recorder.requests) == 1 and failures
    assert ActionRun.objects.get().status == "succeeded"
    assert len(action_events("executed")) == 1


def test_it_leases_a_run_for_its_timeout_when_it_calls_out():
    assert actions.lease({"type": "call-webhook", "url": "https://x", "timeout": 5}).total_seconds() == 5 + actions.LEASE_MARGIN
    assert actions.lease({"type": "send-notification", "to": ["a@example.com"]}).total_seconds() > actions.DEFAULT_TIMEOUT
    assert actions.lease({"type": "send-notification"}) == actions.lease({"type": "emit-event"}) == actions.IN_DATABASE_LEASE

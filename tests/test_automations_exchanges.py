"""Every action run's request and response (secrets masked, status, timing), and re-running a
failed action from the firing history."""

from __future__ import annotations

import pytest

from eventfeed.automations import actions
from eventfeed.automations.models import ActionRun
from tests.test_automations_actions import fire, webhook  # noqa: F401 - the local HTTP server fixture

SECRET_HEADERS = {"Authorization": "Bearer s3cret", "X-Api-Key": "k3y", "X-Trace": "visible"}


def fail_for_good() -> ActionRun:
    for _ in range(actions.MAX_ATTEMPTS):
        ActionRun.objects.update(next_attempt="2000-01-01T00:00:00Z")
        actions.run_due_actions()
    return ActionRun.objects.get(action__type="call-webhook", rerun_of=None)


def test_it_records_the_request_and_response_with_secrets_masked(db, webhook):
    recorder, url = webhook
    fire([{"type": "call-webhook", "url": url.replace("http://", "http://bot:pw@") + "/hook", "headers": SECRET_HEADERS,
           "payload": '{"event": "{{ event.event }}"}'}])
    actions.run_due_actions()
    [x] = ActionRun.objects.get().exchanges
    assert x["attempt"] == 1 and x["ms"] >= 0
    assert x["request"]["method"] == "POST" and x["request"]["url"].startswith("http://bot:••••••@127.0.0.1:")
    assert x["request"]["headers"] == {"Authorization": "••••••", "X-Api-Key": "••••••", "X-Trace": "visible"}
    assert x["request"]["body"] == '{"event": "acme.order.shipped"}'
    assert x["response"]["status"] == 200 and x["response"]["body"] == "ok"
    assert "s3cret" not in str(x) and "k3y" not in str(x)


def test_it_records_every_attempt_of_a_failing_action_and_shows_it(owner_client, webhook):
    recorder, url = webhook
    recorder.status = 500
    a = fire([{"type": "call-webhook", "url": url, "headers": SECRET_HEADERS}])
    run = fail_for_good()
    assert [x["attempt"] for x in run.exchanges] == [1, 2, 3]
    assert all(x["response"]["status"] == 500 and x["error"].startswith("HTTP 500") for x in run.exchanges)
    html = owner_client.get(f"/automations/{a.id}/").content.decode()
    exchange = html[html.index("Request and response"):html.index("</details>")]
    assert "HTTP 500" in exchange and "Authorization: ••••••" in exchange and "s3cret" not in exchange


def test_a_failed_action_can_be_rerun_from_the_firing_history(owner_client, webhook):
    recorder, url = webhook
    recorder.status = 500
    a = fire([{"type": "call-webhook", "url": url}])
    failed = fail_for_good()
    html = owner_client.get(f"/automations/{a.id}/").content.decode()
    assert f"/automations/{a.id}/runs/{failed.id}/rerun" in html
    recorder.status = 200
    response = owner_client.post(f"/automations/{a.id}/runs/{failed.id}/rerun")
    assert response.status_code == 302
    again = ActionRun.objects.get(rerun_of=failed)
    assert again.status == "pending" and again.firing_id == failed.firing_id and again.action == failed.action
    assert actions.run_due_actions() == 1
    again.refresh_from_db()
    assert again.status == "succeeded" and again.exchanges[0]["response"]["status"] == 200
    # It is no longer listed among the failures to look at.
    assert "Failed actions" not in owner_client.get(f"/automations/{a.id}/").content.decode()


def test_the_api_reruns_only_failed_runs(client, auth, webhook):
    recorder, url = webhook
    a = fire([{"type": "call-webhook", "url": url}])
    actions.run_due_actions()
    ok = ActionRun.objects.get()
    response = client.post(f"/api/automations/{a.id}/runs/{ok.id}/rerun", **auth)
    assert response.status_code == 409 and "only a failed action run" in response.json()["detail"]
    ActionRun.objects.update(status="failed")
    response = client.post(f"/api/automations/{a.id}/runs/{ok.id}/rerun", **auth)
    assert response.status_code == 202 and response.json()["rerun_of"] == str(ok.id)
    assert client.post(f"/api/automations/{a.id}/runs/nope/rerun", **auth).status_code == 404
    assert client.post(f"/api/automations/{a.id}/runs/{ok.id}/rerun").status_code == 401


def test_anonymous_users_cannot_rerun(client, db, webhook):
    recorder, url = webhook
    a = fire([{"type": "call-webhook", "url": url}])
    run = ActionRun.objects.get()
    response = client.post(f"/automations/{a.id}/runs/{run.id}/rerun")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not ActionRun.objects.filter(rerun_of=run).exists()


def test_it_shows_only_the_status_of_what_a_target_off_the_allowlist_answered(owner_client, webhook, settings, monkeypatch):
    from eventfeed import outbound

    recorder, url = webhook
    recorder.status = 500
    # The local server stands for a public host that the operator did not list: loopback passes
    # as public here, and the allowlist is empty.
    settings.EVENTFEED_OUTBOUND_ALLOW = []
    monkeypatch.setattr(outbound, "why_refused", lambda address: None)
    a = fire([{"type": "call-webhook", "url": url}])
    actions.run_due_actions()
    run = ActionRun.objects.get()
    [x] = run.exchanges
    assert x["response"] == {"status": 500, "headers": {}, "body": "(headers and body not shown: the target is not on EVENTFEED_OUTBOUND_ALLOW)"}
    assert run.last_error == "HTTP 500"
    html = owner_client.get(f"/automations/{a.id}/").content.decode()
    exchange = html[html.index("Request and response"):html.index("</details>")]
    assert "HTTP 500\n\n(headers and body not shown" in exchange and "BaseHTTP" not in exchange

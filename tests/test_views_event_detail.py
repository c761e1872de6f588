"""The event page: /events/<id>/ — title, resources, payload, causal chain, 404s, hostile content."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eventfeed.events import queries
from eventfeed.events.models import Event
from eventfeed.events.wire import wire

from .conftest import is_postgres, make_event, store

FLOW_RUN = "prefect.flow-run.3f1c2a9e-8b7d-4c6e-9a5f-1e2d3c4b5a69"
RELATED = [
    {"prefect.resource.id": "prefect.flow.aa11", "prefect.resource.role": "flow", "prefect.resource.name": "nightly-etl"},
    {"prefect.resource.id": "prefect.deployment.bb22", "prefect.resource.role": "deployment",
     "prefect.resource.name": "nightly-etl/prod", "prefect.deployment.version": "2026.11.3"},
    {"prefect.resource.id": "prefect.work-pool.cc33", "prefect.resource.role": "work-pool",
     "prefect.resource.name": "k8s-prod", "prefect.work-pool.type": "kubernetes"},
    {"prefect.resource.id": "prefect.tag.etl", "prefect.resource.role": "tag"},
]


def page_url(event_id) -> str:
    return f"/events/{event_id}/"


def stored(minutes_ago=None, now=None, **kwargs) -> dict:
    """Store one flow-run event and return its dict."""
    kwargs.setdefault("resource", FLOW_RUN)
    if minutes_ago is not None:
        kwargs["occurred"] = now - timedelta(minutes=minutes_ago)
    event = make_event(kwargs.pop("event", "prefect.flow-run.Failed"), **kwargs)
    store(event)
    return event


def embedded_event(html: str) -> dict:
    match = re.search(r'<script id="event-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page embeds the event with json_script"
    return json.loads(match.group(1))


def text(response) -> str:
    return response.content.decode()


# -- access -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_sign_in(client):
    event = stored()
    response = client.get(page_url(event["id"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/events/")


@pytest.mark.django_db
def test_it_shows_the_event_to_a_signed_in_user(owner_client):
    event = stored()
    response = owner_client.get(page_url(event["id"]))
    assert response.status_code == 200
    assert "events/detail.html" in [t.name for t in response.templates]


# -- title ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_titles_the_page_with_the_readable_name_raw_name_and_id(owner_client):
    event = stored(**{"prefect.resource.name": "crimson-fox"})
    html = text(owner_client.get(page_url(event["id"])))
    assert '<h1 class="ev-title" dir="auto">Flow run · Failed</h1>' in html
    assert "<code dir=\"auto\">prefect.flow-run.Failed</code>" in html
    assert f'<code id="event-id">{event["id"]}</code>' in html
    assert f'data-copy="{event["id"]}" aria-label="Copy event ID"' in html


@pytest.mark.django_db
def test_it_shows_occurred_relative_and_absolute_for_the_browser_to_localise(owner_client, now):
    event = stored(minutes_ago=3, now=now)
    html = text(owner_client.get(page_url(event["id"])))
    iso = (now - timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
    assert f'data-format="relative" datetime="{iso}">3 min ago</time>' in html
    assert f'data-format="datetime" datetime="{iso}"' in html
    assert (now - timedelta(minutes=3)).strftime("%Y-%m-%d %H:%M:%S UTC") in html


@pytest.mark.django_db
def test_it_shows_received_with_the_delay_when_the_event_arrived_late(owner_client, now):
    event = stored(minutes_ago=12, now=now)
    html = text(owner_client.get(page_url(event["id"])))
    stored_event = Event.objects.get(pk=event["id"])
    received = stored_event.received.isoformat().replace("+00:00", "Z")
    assert f'data-format="datetime" datetime="{received}"' in html
    assert re.search(r"12 min( \d+ s)? after it occurred", html)


@pytest.mark.django_db
def test_it_leaves_out_the_delay_of_a_few_seconds(owner_client):
    event = stored()
    html = text(owner_client.get(page_url(event["id"])))
    assert "after it occurred" not in html
    assert "Received" in html


# -- resources --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_every_label_of_the_primary_resource_with_feed_links(owner_client):
    labels = {"prefect.resource.name": "crimson-fox", "prefect.state-name": "Failed", "prefect.run-count": "2", "items": "a label named items"}
    event = stored(**labels)
    html = text(owner_client.get(page_url(event["id"])))
    resource = html.split('id="resource"', 1)[1].split("</section>", 1)[0]
    for key, value in {"prefect.resource.id": FLOW_RUN, **labels}.items():
        assert f'<code class="ev-key" dir="auto">{key}</code></th><td><div class="ev-val" dir="auto">{value}</div>' in resource
    assert f'href="/events/?resource={FLOW_RUN}"' in resource
    assert '<a class="ev-res-name" dir="auto"' in resource and ">crimson-fox</a>" in resource


@pytest.mark.django_db
def test_it_groups_related_resources_by_role_with_their_labels_and_feed_links(owner_client):
    event = stored(related=RELATED)
    html = text(owner_client.get(page_url(event["id"])))
    related = html.split('id="related"', 1)[1].split("</section>", 1)[0]
    roles = re.findall(r'data-role="([^"]+)"', related)
    assert roles == ["flow", "deployment", "work-pool", "tag"]
    for resource in RELATED:
        assert f'href="/events/?any={resource["prefect.resource.id"]}"' in related
    assert ">nightly-etl/prod</a>" in related
    assert '<code class="ev-key" dir="auto">prefect.deployment.version</code></th><td><div class="ev-val" dir="auto">2026.11.3</div>' in related
    assert '<code class="ev-key" dir="auto">prefect.work-pool.type</code></th><td><div class="ev-val" dir="auto">kubernetes</div>' in related
    assert 'class="chip tag"' in related and ">etl</a>" in related


@pytest.mark.django_db
def test_it_says_when_there_are_no_related_resources(owner_client):
    event = stored()
    assert "This event names no related resources." in text(owner_client.get(page_url(event["id"])))


# -- payload and raw JSON --------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_embeds_the_event_for_the_payload_tree_in_a_json_script(owner_client):
    payload = {"intended": {"from": "RUNNING", "to": "FAILED"}, "validated_state": {"type": "FAILED", "message": "x" * 500}}
    event = stored(payload=payload)
    html = text(owner_client.get(page_url(event["id"])))
    assert embedded_event(html) == wire(Event.objects.get(pk=event["id"]))
    assert 'id="payload-tree"' in html
    assert 'data-copy-json="payload"' in html and 'data-copy-json="event"' in html
    assert 'src="/static/js/event.js"' in html and 'type="module"' in html
    assert 'href="/static/css/event.css"' in html


@pytest.mark.django_db
def test_it_says_when_the_event_has_no_payload(owner_client):
    event = stored(payload={})
    html = text(owner_client.get(page_url(event["id"])))
    assert "This event has no payload." in html
    assert 'id="payload-tree"' not in html


@pytest.mark.django_db
def test_it_downloads_the_raw_event_in_prefect_shape(owner_client):
    event = stored(payload={"n": 1, "text": "héllo"}, related=RELATED)
    response = owner_client.get(page_url(event["id"]) + "?format=json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="event-{event["id"]}.json"'
    body = json.loads(response.content)
    assert body == wire(Event.objects.get(pk=event["id"]))
    assert set(body) == {"occurred", "event", "resource", "related", "payload", "id", "follows", "received"}


@pytest.mark.django_db
def test_it_has_a_menu_with_copy_link_copy_id_and_download(owner_client):
    event = stored()
    html = text(owner_client.get(page_url(event["id"])))
    menu = html.split('class="ev-menu-list"', 1)[1].split("</div>", 1)[0]
    assert f'data-copy="http://testserver/events/{event["id"]}/">Copy link</button>' in menu
    assert f'data-copy="{event["id"]}">Copy ID</button>' in menu
    assert f'href="/events/{event["id"]}/?format=json" download="event-{event["id"]}.json">Download JSON</a>' in menu


# -- the causal chain ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_links_the_event_it_follows(owner_client, now):
    first = stored(event="prefect.worker.submitted-flow-run", minutes_ago=2, now=now)
    second = stored(event="prefect.worker.executed-flow-run", follows=first["id"], minutes_ago=1, now=now)
    html = text(owner_client.get(page_url(second["id"])))
    chain = html.split('id="chain"', 1)[1].split("</section>", 1)[0]
    follows = chain.split("Followed by", 1)[0]
    assert f'href="/events/{first["id"]}/"' in follows
    assert "Worker · Submitted flow run" in follows


@pytest.mark.django_db
def test_it_says_when_the_followed_event_is_not_stored(owner_client):
    missing = uuid.uuid4()
    event = stored(follows=missing)
    html = text(owner_client.get(page_url(event["id"])))
    assert f"Follows <code>{missing}</code>, which is not stored" in html


@pytest.mark.django_db
def test_it_says_when_an_event_starts_its_chain(owner_client):
    event = stored()
    html = text(owner_client.get(page_url(event["id"])))
    assert "Nothing: this event starts its chain." in html
    assert "No stored event follows this one." in html


@pytest.mark.django_db
def test_it_lists_the_events_that_follow_it_oldest_first(owner_client, now):
    first = stored(event="prefect.ecs.task.pending", minutes_ago=5, now=now)
    later = stored(event="prefect.ecs.task.stopped", follows=first["id"], minutes_ago=1, now=now)
    sooner = stored(event="prefect.ecs.task.running", follows=first["id"], minutes_ago=3, now=now)
    stored(event="prefect.ecs.task.deleted", minutes_ago=2, now=now)  # follows nothing
    html = text(owner_client.get(page_url(first["id"])))
    followed_by = html.split('id="chain"', 1)[1].split("Followed by", 1)[1].split("</section>", 1)[0]
    links = re.findall(r'href="/events/([0-9a-f-]+)/"', followed_by)
    assert links == [sooner["id"], later["id"]]


@pytest.mark.django_db
def test_it_caps_the_events_that_follow_it(now):
    first = stored(minutes_ago=30, now=now)
    for i in range(4):
        stored(follows=first["id"], minutes_ago=20 - i, now=now)
    event = Event.objects.get(pk=first["id"])
    rows, more = queries.following_events(event, limit=3)
    assert len(rows) == 3 and more
    assert [r.occurred for r in rows] == sorted(r.occurred for r in rows)


# -- around this event --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_shows_ten_events_either_side_of_this_one_in_time_order(owner_client, now):
    events = [stored(event=f"prefect.flow-run.Step{i}", minutes_ago=30 - i, now=now) for i in range(25)]
    stored(resource="prefect.flow-run.other", minutes_ago=17, now=now)  # another resource
    middle = events[12]
    html = text(owner_client.get(page_url(middle["id"])))
    around = html.split('id="around"', 1)[1].split("</section>", 1)[0]
    items = re.findall(r'<li class="ev-tl( is-current)?"', around)
    assert len(items) == 21
    assert [i for i, current in enumerate(items) if current] == [10]
    linked = re.findall(r'href="/events/([0-9a-f-]+)/"', around)
    assert linked == [e["id"] for e in events[2:12] + events[13:23]]
    assert '<span class="ev-badge">this event</span>' in around


@pytest.mark.django_db
def test_it_takes_neighbours_near_the_ends_of_a_resource_history(now):
    events = [stored(minutes_ago=10 - i, now=now) for i in range(4)]
    around = queries.events_around(Event.objects.get(pk=events[1]["id"]))
    assert [str(n.event_id) for n in around] == [e["id"] for e in events]
    assert [n.current for n in around] == [False, True, False, False]


@pytest.mark.django_db
def test_it_orders_neighbours_that_occurred_at_the_same_instant_by_id(now):
    ids = sorted(uuid.uuid4() for _ in range(5))
    for pk in ids:
        stored(id=pk, occurred=now)
    around = queries.events_around(Event.objects.get(pk=ids[2]))
    assert [n.event_id for n in around] == ids
    assert around[2].current


@pytest.mark.django_db
def test_it_counts_events_relating_to_the_resource_once_with_their_role(now):
    primary = stored(minutes_ago=3, now=now)
    worker = stored(
        event="prefect.worker.submitted-flow-run", resource="prefect.worker.process.w1", minutes_ago=2, now=now,
        related=[{"prefect.resource.id": FLOW_RUN, "prefect.resource.role": "flow-run"},
                 {"prefect.resource.id": FLOW_RUN, "prefect.resource.role": "parent"}],
    )
    around = queries.events_around(Event.objects.get(pk=primary["id"]))
    assert [(str(n.event_id), n.role) for n in around] == [(primary["id"], ""), (worker["id"], "flow-run")]


@pytest.mark.django_db
def test_it_links_the_feed_up_to_this_event(owner_client, now):
    event = stored(minutes_ago=3, now=now)
    html = text(owner_client.get(page_url(event["id"])))
    iso = (now - timedelta(minutes=3)).isoformat().replace("+00:00", "Z").replace(":", "%3A")
    assert f'href="/events/?any={FLOW_RUN}&amp;until={iso}"' in html


@pytest.mark.django_db
def test_it_says_when_no_other_event_involves_the_resource(owner_client):
    event = stored()
    assert "No other stored event involves this resource." in text(owner_client.get(page_url(event["id"])))


# -- not found --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_answers_404_with_a_page_that_says_the_event_is_unknown(owner_client):
    missing = uuid.uuid4()
    response = owner_client.get(page_url(missing))
    assert response.status_code == 404
    html = text(response)
    assert "No event with this id" in html
    assert str(missing) in html
    assert "404.html" in [t.name for t in response.templates]
    assert 'href="/static/css/event.css"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["nope", "123", "3f1c2a9e-8b7d-4c6e-9a5f-1e2d3c4b5a6", "z" * 500, "%E2%80%AE%F0%9F%98%80", "%3Cscript%3E"])
def test_it_answers_404_never_500_for_a_malformed_id(owner_client, bad):
    response = owner_client.get(f"/events/{bad}/")
    assert response.status_code == 404
    html = text(response)
    assert "That is not an event id" in html
    assert "<script>" not in html.split("</header>", 1)[1]


@pytest.mark.django_db
def test_it_renders_the_styled_404_page_for_unknown_urls_with_debug_off(owner_client, settings):
    settings.DEBUG = False
    response = owner_client.get("/no/such/page/")
    assert response.status_code == 404
    html = text(response)
    assert "Page not found" in html and "/no/such/page/" in html
    assert 'class="topbar"' in html and "Back to the feed" in html


@pytest.mark.django_db
def test_it_sends_signed_out_users_to_sign_in_before_saying_an_id_is_unknown(client):
    response = client.get(page_url(uuid.uuid4()))
    assert response.status_code == 302


# -- hostile content ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_escapes_every_string_from_the_event(owner_client):
    evil = "<script>alert(1)</script>"
    event = stored(
        event="acme.<b>bold</b>.done",
        resource="acme.<img src=x onerror=alert(1)>",
        related=[{"prefect.resource.id": "prefect.tag.<script>alert(2)</script>", "prefect.resource.role": "tag"},
                 {"prefect.resource.id": "acme.x", "prefect.resource.role": '"><script>alert(3)</script>',
                  "prefect.resource.name": evil, evil: evil}],
        payload={"message": "</script><script>alert(4)</script>", evil: [evil]},
        **{"evil": evil, "prefect.resource.name": evil},
    )
    html = text(owner_client.get(page_url(event["id"])))
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The payload reaches the script as JSON with < escaped, so it cannot close the script tag.
    assert embedded_event(html)["payload"]["message"] == "</script><script>alert(4)</script>"


@pytest.mark.django_db
def test_it_keeps_unicode_intact_and_lets_the_browser_pick_each_string_direction(owner_client):
    labels = {"prefect.resource.name": "مرحبا بالعالم", "rtl": "שלום עולם", "emoji": "👩🏽‍💻🚨", "combining": "z̴̢̛a̷l̶g̸o̵"}
    event = stored(**labels, payload={"rtl": "مرحبا", "emoji": "🚀"})
    html = text(owner_client.get(page_url(event["id"])))
    for value in labels.values():
        assert f'<div class="ev-val" dir="auto">{value}</div>' in html
    assert '<a class="ev-res-name" dir="auto"' in html and ">مرحبا بالعالم</a>" in html
    assert embedded_event(html)["payload"] == {"rtl": "مرحبا", "emoji": "🚀"}


@pytest.mark.django_db
def test_it_renders_a_one_megabyte_payload(owner_client):
    payload = {
        "log": "x" * 400_000,
        "rows": [{"i": i, "name": f"row-{i}", "tags": ["a", "b"]} for i in range(12_000)],
    }
    event = stored(payload=payload)
    assert len(json.dumps(payload)) > 1_000_000
    response = owner_client.get(page_url(event["id"]))
    assert response.status_code == 200
    # Once in the json_script, never again as HTML: the tree is built in the browser.
    assert len(response.content) < 1.3 * len(json.dumps(payload))
    assert embedded_event(text(response))["payload"] == payload


@pytest.mark.django_db
def test_it_wraps_long_unbroken_strings_instead_of_widening_the_page(owner_client):
    event = stored(**{"long": "B" * 5000})
    response = owner_client.get(page_url(event["id"]))
    assert '<div class="ev-val" dir="auto">' + "B" * 5000 + "</div>" in text(response)
    css = (Path(__file__).parent.parent / "static/css/event.css").read_text()
    assert "overflow-wrap: anywhere" in css


# -- cost ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_uses_a_bounded_number_of_queries(owner_client, django_assert_max_num_queries, now):
    first = stored(minutes_ago=60, now=now, related=RELATED)
    for i in range(30):
        stored(minutes_ago=50 - i, now=now, follows=first["id"], related=RELATED)
    # Session and user, the event, what it follows, what follows it, before and after it.
    with django_assert_max_num_queries(7):
        response = owner_client.get(page_url(first["id"]))
    assert response.status_code == 200


@pytest.mark.django_db
def test_it_does_not_load_the_payload_of_the_events_it_lists(now):
    first = stored(minutes_ago=5, now=now, payload={"big": "x" * 1000})
    second = stored(minutes_ago=4, now=now, payload={"big": "y" * 1000}, follows=first["id"])
    followed = queries.followed_event(Event.objects.get(pk=second["id"]))
    following, _ = queries.following_events(Event.objects.get(pk=first["id"]))
    for e in (followed, following[0]):
        assert {"payload", "related", "words"} <= e.get_deferred_fields()


@pytest.mark.django_db
def test_it_finds_neighbours_and_followers_through_indexes_on_postgresql(now):
    if not is_postgres():
        pytest.skip("query plans are PostgreSQL's")
    first = stored(minutes_ago=5, now=now)
    stored(minutes_ago=4, now=now, follows=first["id"])
    event = Event.objects.get(pk=first["id"])
    with CaptureQueriesContext(connection) as captured:
        queries.events_around(event)
        queries.following_events(event)
    assert len(captured.captured_queries) == 3
    plans = []
    with connection.cursor() as cursor:
        # The test tables are tiny: the planner may rightly prefer a scan and a sort. What is
        # checked is that the index serves the query in order, so discourage both.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        for i, query in enumerate(captured.captured_queries):
            # The neighbours must come in index order; the followers are few, so their sort
            # is fine (only the lookup must use ev_follows).
            cursor.execute(f"SET LOCAL enable_sort = {'on' if i == 2 else 'off'}")
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    before, after, following = plans
    for plan in (before, after):
        assert "er_resource_occurred" in plan and "Sort" not in plan
        # The scan starts at this event, not at the newest or oldest row of the resource.
        assert re.search(r"Index Cond: .*occurred", plan)
    assert "ev_follows" in following

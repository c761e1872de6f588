"""Saved views: the feed's bar lists them, saving validates, sharing and deleting are the
owner's, pinning makes `/` open on the view; a view is a URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from eventfeed.savedviews import store
from eventfeed.savedviews.models import Home, SavedView

pytestmark = pytest.mark.django_db

FAILED = "event=prefect.flow-run.Failed&q=KeyError&range=7d"


@pytest.fixture
def other_client(client_factory, other_user):
    c = client_factory()
    c.force_login(other_user)
    return c


@pytest.fixture
def client_factory():
    from django.test import Client

    return Client


@pytest.fixture
def mine(owner):
    return store.save_view(owner, "Failed runs", FAILED, shared=False)


@pytest.fixture
def shared(owner):
    return store.save_view(owner, "Team errors", "event=prefect.flow-run.Crashed&hide=related", shared=True)


def saved(client, name="Prod failures", query="event=prefect.flow-run.Failed&range=24h&before=2026-01-01T00:00:00Z~00000000-0000-0000-0000-000000000000", **more):
    return client.post("/views/", {"name": name, "query": query, "next": "/events/?" + query, **more})


# -- anonymous --------------------------------------------------------------------------------------

def test_it_sends_anonymous_visitors_to_sign_in(client, mine):
    for method, url in (("get", f"/views/{mine.id}/"), ("post", "/views/"), ("post", f"/views/{mine.id}/share"),
                        ("post", f"/views/{mine.id}/pin"), ("post", f"/views/{mine.id}/delete"), ("post", "/views/home/clear")):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url
    assert SavedView.objects.count() == 1


# -- owner ------------------------------------------------------------------------------------------

def test_it_saves_the_current_filter_without_paging_and_opens_it_by_its_url(owner_client, owner):
    response = saved(owner_client)
    view = SavedView.objects.get(owner=owner, name="Prod failures")
    assert view.query == "event=prefect.flow-run.Failed&range=24h"  # the page cursor is not part of a view
    assert response.status_code == 302 and response["Location"] == "/events/?event=prefect.flow-run.Failed&range=24h"
    opened = owner_client.get(f"/views/{view.id}/")
    assert opened.status_code == 302 and opened["Location"] == "/events/?event=prefect.flow-run.Failed&range=24h"


def test_it_lists_own_and_shared_views_in_the_feed_bar_and_marks_the_one_shown(owner_client, mine, shared):
    page = owner_client.get("/events/?" + FAILED).content.decode()
    assert 'id="views-picker"' in page
    assert "Failed runs" in page and "Team errors" in page
    assert 'class="saved-view is-current" data-view="Failed runs"' in page
    # Its own views have share and delete buttons; the hidden query is this feed's.
    assert f'action="/views/{mine.id}/delete"' in page and f'action="/views/{shared.id}/share"' in page
    assert 'name="query" value="event=prefect.flow-run.Failed&amp;q=KeyError&amp;range=7d"' in page


def test_it_shares_and_unshares_an_own_view(owner_client, mine):
    response = owner_client.post(f"/views/{mine.id}/share", {"shared": "on", "next": "/events/?range=1h"})
    assert response.status_code == 302 and response["Location"] == "/events/?range=1h"
    mine.refresh_from_db()
    assert mine.shared
    owner_client.post(f"/views/{mine.id}/share", {"shared": "off"})
    mine.refresh_from_db()
    assert not mine.shared


def test_it_opens_the_feed_on_the_pinned_home_and_unpins(owner_client, owner, mine):
    assert owner_client.get("/")["Location"] == "/events/"
    owner_client.post(f"/views/{mine.id}/pin")
    assert owner_client.get("/")["Location"] == "/events/?" + FAILED
    page = owner_client.get("/events/?" + FAILED).content.decode()
    assert '<span class="sv-badge">home</span>' in page
    owner_client.post("/views/home/clear")
    assert owner_client.get("/")["Location"] == "/events/"


def test_it_pins_a_new_view_as_home_when_asked_while_saving(owner_client, owner):
    saved(owner_client, home="on", shared="on")
    view = SavedView.objects.get(owner=owner)
    assert view.shared
    assert Home.objects.get(user=owner).view == view


def test_it_deletes_an_own_view_and_the_homes_pinned_on_it(owner_client, owner, other_user, shared):
    store.pin_home(other_user, shared)
    response = owner_client.post(f"/views/{shared.id}/delete", {"next": "/events/"})
    assert response.status_code == 302
    assert not SavedView.objects.exists()
    assert not Home.objects.exists()


def test_it_hides_the_columns_a_view_hides(owner_client, shared):
    page = owner_client.get("/events/?event=prefect.flow-run.Crashed&hide=related").content.decode()
    assert 'class="card list hide-related"' in page
    # The column toggles keep the filter and flip one column.
    assert 'href="/events/?event=prefect.flow-run.Crashed" aria-pressed="false" role="button" class="sv-col">Related' in page


# -- another user -----------------------------------------------------------------------------------

def test_another_user_sees_shared_views_only(other_client, mine, shared):
    page = other_client.get("/events/").content.decode()
    assert "Team errors" in page and "shared by alice" in page
    assert 'data-view="Failed runs"' not in page
    # No share or delete for someone else's view; pinning it is theirs to do.
    assert f'action="/views/{shared.id}/delete"' not in page and f'action="/views/{shared.id}/share"' not in page
    assert f'action="/views/{shared.id}/pin"' in page
    assert other_client.get(f"/views/{mine.id}/").status_code == 404
    assert other_client.get(f"/views/{shared.id}/").status_code == 302


def test_another_user_cannot_change_or_delete_someone_elses_view(other_client, mine, shared):
    for view in (mine, shared):
        expected = 404 if view is mine else 403
        assert other_client.post(f"/views/{view.id}/share", {"shared": "off"}).status_code == expected
        assert other_client.post(f"/views/{view.id}/delete").status_code == expected
    response = other_client.post(f"/views/{shared.id}/delete")
    assert "Only its owner, alice, can change or delete" in response.content.decode()
    shared.refresh_from_db()
    assert shared.shared
    assert SavedView.objects.count() == 2


def test_another_user_can_pin_a_shared_view_which_stops_when_it_is_unshared(other_client, other_user, shared, mine):
    assert other_client.post(f"/views/{mine.id}/pin").status_code == 404
    other_client.post(f"/views/{shared.id}/pin")
    assert other_client.get("/")["Location"] == shared.feed_url()
    store.set_shared(shared, False)
    assert other_client.get("/")["Location"] == "/events/"


def test_another_user_may_reuse_a_name(other_client, other_user, mine):
    assert saved(other_client, name="Failed runs").status_code == 302
    assert SavedView.objects.filter(name="Failed runs").count() == 2


# -- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, field, words", [
    ({"name": "", "query": "range=1h"}, "name", "This field is required"),
    ({"name": " " * 5, "query": "range=1h"}, "name", "This field is required"),
    ({"name": "x" * 101, "query": "range=1h"}, "name", "at most 100 characters"),
    ({"name": "a\x00b", "query": "range=1h"}, "name", "Null characters"),
    ({"name": "Failed runs", "query": "range=1h"}, "name", "You already have a view named “Failed runs”"),
    ({"name": "ok", "query": "range=2y"}, "query", "range: Select a valid choice"),
    ({"name": "ok", "query": "since=yesterday"}, "query", "since:"),
    ({"name": "ok", "query": "hide=when"}, "query", "“when” is not a column that can be hidden"),
    ({"name": "ok", "query": "q=" + "x" * 4000}, "query", "at most 4000 characters"),
])
def test_it_refuses_a_bad_view_naming_the_field(owner_client, mine, data, field, words):
    response = owner_client.post("/views/", {**data, "next": "/events/"})
    assert response.status_code == 400
    page = response.content.decode()
    assert words in page, page
    assert f'name="{field}"' in page
    assert SavedView.objects.count() == 1


def test_it_refuses_bad_share_values_and_unknown_views(owner_client, mine):
    assert owner_client.post(f"/views/{mine.id}/share", {"shared": "maybe"}).status_code == 400
    assert owner_client.post("/views/999999/pin").status_code == 404
    assert owner_client.get("/views/abc/").status_code == 404
    assert owner_client.get(f"/views/{mine.id}/delete").status_code == 405


def test_it_never_returns_to_another_site(owner_client, mine):
    response = owner_client.post(f"/views/{mine.id}/pin", {"next": "https://evil.example/"})
    assert response["Location"] == "/events/"


def test_it_refuses_an_unknown_column_on_the_feed(owner_client):
    response = owner_client.get("/events/?hide=payload")
    assert response.status_code == 400
    assert "is not a column that can be hidden" in response.content.decode()

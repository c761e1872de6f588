"""Queries and writes for saved views: who sees which, saving, sharing, pinning as home."""

from __future__ import annotations

from urllib.parse import urlencode

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import QueryDict

from eventfeed import audit
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_NAME

from .models import Home, SavedView

# Where a page of the feed starts or how it is delivered, not what it shows: never saved.
NOT_SAVED = ("before", "after", "arrived", "partial")


def normalized_query(params: QueryDict) -> str:
    """The feed's query string as a view keeps it: paging and empty values dropped, keys in
    order, so that two URLs of the same feed compare equal (the bar marks the view you are on)."""
    pairs = []
    for key in sorted(params):
        if key in NOT_SAVED or key.startswith("_"):
            continue
        pairs += [(key, value) for value in params.getlist(key) if value.strip()]
    return urlencode(pairs)


def visible_to(user) -> QuerySet[SavedView]:
    """A user's own views and every shared one, by name."""
    if not user.is_authenticated:
        return SavedView.objects.none()
    return SavedView.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner").order_by("name", "id")


def find_visible(user, view_id: int) -> SavedView | None:
    return visible_to(user).filter(pk=view_id).first()


def name_taken(owner, name: str) -> bool:
    return SavedView.objects.filter(owner=owner, name=name).exists()


def _audit(what: str, view: SavedView, payload: dict) -> None:
    audit.record(f"saved-view.{what}", {RESOURCE_ID: f"eventfeed.saved-view.{view.pk}", RESOURCE_NAME: view.name}, payload)


@transaction.atomic
def save_view(owner, name: str, query: str, shared: bool) -> SavedView:
    view = SavedView.objects.create(owner=owner, name=name, query=query, shared=shared)
    _audit("created", view, {"name": name, "query": query, "shared": shared})
    return view


@transaction.atomic
def set_shared(view: SavedView, shared: bool) -> None:
    if view.shared == shared:
        return
    view.shared = shared
    view.save(update_fields=["shared", "updated"])
    _audit("shared" if shared else "unshared", view, {"name": view.name})


@transaction.atomic
def delete_view(view: SavedView) -> None:
    _audit("deleted", view, {"name": view.name, "query": view.query, "shared": view.shared})
    view.delete()  # homes pinned on it go with it (CASCADE): those feeds open plain again


def home_for(user) -> SavedView | None:
    """The view the user's feed opens on; a view that was unshared since no longer is."""
    if not user.is_authenticated:
        return None
    home = Home.objects.filter(user=user).select_related("view").first()
    if home is None or not (home.view.owner_id == user.pk or home.view.shared):
        return None
    return home.view


@transaction.atomic
def pin_home(user, view: SavedView) -> None:
    Home.objects.update_or_create(user=user, defaults={"view": view})


def clear_home(user) -> None:
    Home.objects.filter(user=user).delete()

"""Saved views: open one (it is a feed URL), save the current filter, share, pin as home, delete."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from . import store
from .forms import SavedViewForm
from .models import SavedView


def _visible(request: HttpRequest, view_id: int) -> SavedView:
    # Another user's unshared view is as absent as one that does not exist.
    view = store.find_visible(request.user, view_id)
    if view is None:
        raise Http404("No saved view has this id.")
    return view


def _forbidden(view: SavedView) -> HttpResponse:
    return HttpResponseForbidden(f"Only its owner, {view.owner.get_username()}, can change or delete the view “{view.name}”.",
                                 content_type="text/plain; charset=utf-8")


def _back(request: HttpRequest) -> str:
    """Where the bar's buttons return to: the feed as it was (`next`), never another site."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("feed")


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """`/`: the feed, on the view the user pinned as home if any."""
    view = store.home_for(request.user)
    return redirect(view.feed_url() if view else reverse("feed"))


@require_GET
@login_required
def view_open(request: HttpRequest, view_id: int) -> HttpResponse:
    return redirect(_visible(request, view_id).feed_url())


@require_POST
@login_required
def view_save(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST, owner=request.user)
    if not form.is_valid():
        return render(request, "savedviews/save.html", {"form": form, "back": _back(request)}, status=400)
    view = store.save_view(request.user, **form.cleaned_data)
    if request.POST.get("home") == "on":
        store.pin_home(request.user, view)
    messages.success(request, f"Saved the view “{view.name}”" + (", shared with everyone." if view.shared else "."))
    return redirect(view.feed_url())


@require_POST
@login_required
def view_share(request: HttpRequest, view_id: int) -> HttpResponse:
    view = _visible(request, view_id)
    if view.owner_id != request.user.pk:
        return _forbidden(view)
    shared = request.POST.get("shared")
    if shared not in ("on", "off"):
        return HttpResponse("shared: must be “on” or “off”.", status=400, content_type="text/plain; charset=utf-8")
    store.set_shared(view, shared == "on")
    messages.success(request, f"“{view.name}” is " + ("shared with everyone." if view.shared else "yours alone now."))
    return redirect(_back(request))


@require_POST
@login_required
def view_pin(request: HttpRequest, view_id: int) -> HttpResponse:
    view = _visible(request, view_id)
    store.pin_home(request.user, view)
    messages.success(request, f"The feed now opens on “{view.name}”.")
    return redirect(_back(request))


@require_POST
@login_required
def home_clear(request: HttpRequest) -> HttpResponse:
    store.clear_home(request.user)
    messages.success(request, "The feed opens on every event again.")
    return redirect(_back(request))


@require_POST
@login_required
def view_delete(request: HttpRequest, view_id: int) -> HttpResponse:
    view = _visible(request, view_id)
    if view.owner_id != request.user.pk:
        return _forbidden(view)
    store.delete_view(view)
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect(_back(request))

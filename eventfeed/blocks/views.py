"""The Channels page: add a notification channel, send it a test message, see its last delivery."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import delivery, store
from .kinds import KINDS
from .models import BlockDocument


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k.slug, k.name) for k in KINDS.values()])
    name = forms.SlugField(max_length=200, help_text="lowercase letters, numbers and dashes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One optional input per field of every kind; clean() requires the chosen kind's.
        for kind in KINDS.values():
            for field in kind.fields:
                widget = forms.PasswordInput(render_value=False) if field.secret else forms.TextInput()
                self.fields[f"{kind.slug}__{field.name}"] = forms.CharField(label=field.label, required=False, widget=widget)

    def clean_name(self) -> str:
        return self.cleaned_data["name"].lower()

    def clean(self):
        cleaned = super().clean()
        kind = KINDS.get(cleaned.get("kind", ""))
        if kind is None:
            return cleaned
        data = {}
        for field in kind.fields:
            value = (cleaned.get(f"{kind.slug}__{field.name}") or "").strip()
            if not value and field.name != "method":
                self.add_error(f"{kind.slug}__{field.name}", f"{field.label} is required for {kind.name}.")
            data[field.name] = value
        if kind.slug == "webhook":
            data["method"] = (data.get("method") or "POST").upper()
            data["headers"] = {}
        cleaned["data"] = data
        return cleaned

    def kinds(self) -> list[tuple]:
        return [(k, [self[f"{k.slug}__{f.name}"] for f in k.fields]) for k in KINDS.values()]


@require_http_methods(["GET", "POST"])
@login_required
def channels(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            doc = store.create_document(form.cleaned_data["name"], store.ensure_type(form.cleaned_data["kind"]),
                                        form.cleaned_data["data"])
        except store.BlockError as e:
            form.add_error("name", str(e.problems[0][1]))
        else:
            store.audit_change("created", doc)
            messages.success(request, f"Added {doc.name}. Send it a test message to check it.")
            return redirect("channels")
    docs = BlockDocument.objects.filter(is_anonymous=False).select_related("block_type").order_by("name")
    return render(request, "blocks/channels.html", {"form": form, "channels": docs}, status=400 if form.errors else 200)


def _channel(document_id: str) -> BlockDocument:
    doc = store.find_document(document_id)
    if doc is None:
        raise Http404("No channel has this id.")
    return doc


@require_POST
@login_required
def channel_test(request: HttpRequest, document_id: str) -> HttpResponse:
    doc = _channel(document_id)
    try:
        delivery.notify(doc, "Eventfeed test message", f"A test message from Eventfeed to the channel {doc.name}.")
    except delivery.DeliveryFailed as e:
        messages.error(request, f"{doc.name}: the test message failed: {e}")
    else:
        messages.success(request, f"{doc.name}: test message sent.")
    return redirect("channels")


@require_POST
@login_required
def channel_delete(request: HttpRequest, document_id: str) -> HttpResponse:
    doc = _channel(document_id)
    store.audit_change("deleted", doc)
    doc.delete()
    messages.success(request, f"Deleted {doc.name}.")
    return redirect("channels")

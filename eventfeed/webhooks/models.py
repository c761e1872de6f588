"""Incoming webhooks: a URL whose template turns any HTTP request into an event."""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F


def new_slug() -> str:
    """An opaque, unguessable URL part (128 bits), like Prefect Cloud's `AERylZ_uewzpDx-8fcweHQ`."""
    return secrets.token_urlsafe(16)


class Webhook(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Jinja2 source that renders to the event's JSON (templates.py).
    template = models.TextField()
    slug = models.CharField(max_length=64, unique=True, default=new_slug)
    # {"kind": "github" | "stripe" | "standard-webhooks" | "shared-secret-header" | "none",
    #  "secret": "...", "header": "..." (shared-secret-header only)}. The secret is kept as sent,
    # since signatures are computed with it; it never leaves through the API or the pages.
    verification = models.JSONField(default=dict)
    # Who may see and change it: the user who made it, or, for a webhook made with an API key
    # that belongs to no user (create_api_key), nobody but such keys and staff.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The list page and GET /api/webhooks/: one owner's webhooks by name.
            models.Index("owner", "name", name="wh_owner_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def resource_id(self) -> str:
        return f"eventfeed.webhook.{self.id}"

    @property
    def kind(self) -> str:
        return (self.verification or {}).get("kind") or "none"


class WebhookRequest(models.Model):
    """One request a webhook received, kept so its owner can see what arrived and preview a
    template against it. Only the newest few per webhook are kept (store.KEEP_REQUESTS)."""

    STORED, FAILED, REFUSED = "stored", "failed", "refused"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="requests")
    received = models.DateTimeField()
    method = models.CharField(max_length=16)
    # Without Authorization and Cookie, like the template's `headers`.
    headers = models.JSONField(default=dict)
    # The body as text (bytes that are not UTF-8 are replaced), cut at store.KEEP_BODY characters.
    body = models.TextField(blank=True, default="")
    body_truncated = models.BooleanField(default=False)
    status = models.PositiveIntegerField()
    # stored: an event was made; failed: the template or the event was wrong; refused: the
    # signature, the size or a disabled webhook stopped it before the template.
    outcome = models.CharField(max_length=16)
    event_id = models.UUIDField(null=True, blank=True)
    # What the template rendered (cut like the body), whether or not it made a valid event.
    rendered = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The webhook page's request log and the pruning of old requests: newest first.
            models.Index("webhook", F("received").desc(), F("id").desc(), name="wr_webhook_received"),
        ]

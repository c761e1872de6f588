"""Sending through a channel: Apprise for the notification services, the guarded outbound client
for webhooks, Django's mail for email. Every outcome is recorded on the channel."""

from __future__ import annotations

import json

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from eventfeed import outbound

from .kinds import apprise_url
from .models import BlockDocument

TIMEOUT = 10.0


class DeliveryFailed(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def notify(doc: BlockDocument, subject: str, body: str) -> int | None:
    """Send a notification through the channel; returns an HTTP status where there is one."""
    return _recorded(doc, lambda: _notify(doc, subject, body))


def call_webhook(doc: BlockDocument, payload: str) -> int:
    """Prefect's CallWebhook: the Webhook block's method, URL and headers, with this body."""
    if doc.block_type.slug != "webhook":
        raise DeliveryFailed(f"call-webhook needs a webhook block, not {doc.block_type.slug}")
    return _recorded(doc, lambda: _call(doc, payload))


def _recorded(doc: BlockDocument, send):
    try:
        result = send()
    except DeliveryFailed as e:
        record(doc, str(e))
        raise
    record(doc, "")
    return result


def _notify(doc: BlockDocument, subject: str, body: str) -> int | None:
    slug = doc.block_type.slug
    if slug == "eventfeed-email":
        to = [a.strip() for a in str(doc.data.get("to", "")).split(",") if a.strip()]
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
        return None
    if slug == "webhook":
        return _call(doc, json.dumps({"subject": subject, "body": body}))
    url = apprise_url(slug, doc.data)
    if url is None:
        raise DeliveryFailed(f"a {slug} block cannot send notifications")
    _apprise(url, subject, body)
    return None


def record(doc: BlockDocument, error: str) -> None:
    BlockDocument.objects.filter(pk=doc.pk).update(last_delivery_at=timezone.now(), last_delivery_ok=not error,
                                                   last_delivery_error=error[:2000])


def _call(doc: BlockDocument, content: str) -> int:
    data = doc.data
    try:
        response = outbound.request(str(data.get("method") or "POST").upper(), str(data.get("url", "")),
                                    headers=data.get("headers") or {}, content=content.encode(), timeout=TIMEOUT)
    except outbound.OutboundRefused as e:
        raise DeliveryFailed(f"refused: {e.reason}") from None
    except httpx.HTTPError as e:
        raise DeliveryFailed(f"{type(e).__name__}: {e}") from None
    if response.status_code >= 400:
        raise DeliveryFailed(f"HTTP {response.status_code}", response.status_code)
    return response.status_code


def _apprise(url: str, subject: str, body: str) -> None:
    """The one place Apprise is called. Apprise makes its own connections, to a host the user
    chose for json://, xml://, form:// (and any Apprise URL): they run under the outbound rules,
    each resolved, checked and connected to the address checked, redirects included."""
    import apprise

    client = apprise.Apprise()
    if not client.add(url):
        raise DeliveryFailed("Apprise does not recognise this URL")
    with outbound.guarded() as guard:
        delivered = client.notify(title=subject, body=body)
    if guard.refused:
        raise DeliveryFailed(f"refused: {guard.refused[0]}")
    if not delivered:
        raise DeliveryFailed("the service did not accept the message (Apprise logged why)")

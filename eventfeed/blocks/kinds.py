"""The channel kinds Eventfeed can deliver to, by Prefect block type slug, and how each one's
data becomes an Apprise URL (Apprise is what Prefect's notification blocks use)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    secret: bool = True


@dataclass(frozen=True)
class Kind:
    slug: str
    name: str  # Prefect's block type name where Prefect has the block
    fields: tuple[Field, ...]


KINDS = {k.slug: k for k in (
    Kind("slack-webhook", "Slack Webhook", (Field("url", "Incoming webhook URL"),)),
    Kind("ms-teams-webhook", "Microsoft Teams Webhook", (Field("url", "Incoming webhook URL"),)),
    Kind("discord-webhook", "Discord Webhook", (Field("webhook_id", "Webhook id"), Field("webhook_token", "Webhook token"))),
    Kind("pager-duty-webhook", "Pager Duty Webhook", (Field("integration_key", "Integration key"), Field("api_key", "API key"))),
    Kind("opsgenie-webhook", "Opsgenie Webhook", (Field("apikey", "API key"),)),
    Kind("webhook", "Webhook", (Field("url", "URL"), Field("method", "Method (POST, PUT, …)", secret=False))),
    # Eventfeed's own: email through Django's EMAIL_BACKEND, and any Apprise URL.
    Kind("eventfeed-email", "Email", (Field("to", "Addresses, comma-separated", secret=False),)),
    Kind("eventfeed-apprise", "Apprise URL", (Field("url", "Any Apprise URL (json://, mailto://, tgram://, …)"),)),
)}


def apprise_url(slug: str, data: dict) -> str | None:
    """The Apprise URL of a notification channel; None for the kinds sent another way."""
    if slug in ("slack-webhook", "ms-teams-webhook", "eventfeed-apprise"):
        return data.get("url") or None
    if slug == "discord-webhook":
        return f"discord://{data.get('webhook_id', '')}/{data.get('webhook_token', '')}/"
    if slug == "pager-duty-webhook":
        return f"pagerduty://{data.get('integration_key', '')}@{data.get('api_key', '')}/"
    if slug == "opsgenie-webhook":
        return f"opsgenie://{data.get('apikey', '')}/"
    return None


def secret_fields(slug: str, schema_fields: dict | None) -> list[str]:
    """Write-only fields: those the block's schema marks secret, and those Eventfeed knows."""
    names = {f.split(".")[0] for f in (schema_fields or {}).get("secret_fields", [])}
    kind = KINDS.get(slug)
    if kind is not None:
        names |= {f.name for f in kind.fields if f.secret}
    return sorted(names)

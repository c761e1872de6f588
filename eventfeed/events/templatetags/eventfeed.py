"""Display helpers shared by the feed rows, the event page and the live push."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template

from ..schema import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE

register = template.Library()

SYSTEM_NAMESPACES = ("prefect", "prefect-cloud")


def _words(segment: str) -> str:
    return segment.replace("-", " ").replace("_", " ")


@register.filter
def readable_name(name: str) -> str:
    """prefect.flow-run.Completed → "Flow run · Completed"; acme.order.shipped → "Acme order · Shipped"."""
    parts = [p for p in name.split(".") if p]
    if len(parts) > 1 and parts[0] in SYSTEM_NAMESPACES:
        parts = parts[1:]
    if len(parts) < 2:
        return _words(name)
    subject = " ".join(_words(p) for p in parts[:-1])
    action = _words(parts[-1])
    return f"{subject[:1].upper()}{subject[1:]} · {action[:1].upper()}{action[1:]}"


@register.filter
def resource_label(labels: dict) -> str:
    """A resource's display name: its name label, else a tag's tag, else its id."""
    if labels.get(RESOURCE_NAME):
        return labels[RESOURCE_NAME]
    rid = labels.get(RESOURCE_ID, "")
    if labels.get(RESOURCE_ROLE) == "tag" and rid.startswith("prefect.tag."):
        return rid.removeprefix("prefect.tag.")
    return rid


@register.filter
def related_by_role(related: list[dict]) -> list[tuple[str, list[dict]]]:
    """Related resources grouped by role, tags last, in first-seen order otherwise."""
    groups: dict[str, list[dict]] = {}
    for resource in related or []:
        groups.setdefault(resource.get(RESOURCE_ROLE, ""), []).append(resource)
    return sorted(groups.items(), key=lambda item: item[0] == "tag")


@register.simple_tag
def feed_url(**params) -> str:
    """/events/?… with the given filter parameters (empty ones left out)."""
    query = urlencode({k: v for k, v in params.items() if v}, doseq=True)
    return "/events/" + (f"?{query}" if query else "")


@register.filter
def resource_filter(resource: dict) -> str:
    """The feed URL that shows every event touching this resource."""
    return feed_url(any=resource.get(RESOURCE_ID, ""))


@register.filter
def label(labels: dict, key: str) -> str:
    """A label by name: template lookups cannot reach keys with dots."""
    return (labels or {}).get(key, "")

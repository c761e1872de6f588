"""Filters for action templates (webhook bodies, notification texts, emitted events)."""

from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def label(labels: dict, key: str) -> str:
    """A label by name, for keys with dots: {{ event.resource|label:"prefect.resource.name" }}."""
    return (labels or {}).get(key, "")


@register.filter(name="json")
def to_json(value) -> str:
    """A value as JSON, for webhook bodies: {{ event|json }}."""
    return json.dumps(value, ensure_ascii=False, default=str)

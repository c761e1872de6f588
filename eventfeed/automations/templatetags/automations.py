"""The event page's "Automations" card: which automations the event reached and what each did
(the events app renders it without importing the automations app's code)."""

from django import template

from eventfeed.automations import records

register = template.Library()


@register.inclusion_tag("automations/_reached.html")
def automations_reached(event):
    return {"reached": records.for_event(event)}

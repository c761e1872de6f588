"""Data migrations of automations: stored Django action templates become Jinja templates."""

from __future__ import annotations

import importlib

from django.apps import apps

from eventfeed import sandbox
from eventfeed.automations import store
from eventfeed.automations.models import Automation

jinja = importlib.import_module("eventfeed.automations.migrations.0003_action_templates_jinja")

DJANGO = ('{"name": {{ event.resource|label:"prefect.resource.name"|json }}, "d": {{ x|default:"a|b: c" }}}'
          "{% for r in event.related %}{{ forloop.counter }}{% empty %}none{% endfor %}{% comment %}why{% endcomment %}")
JINJA = ('{"name": {{ event.resource|label("prefect.resource.name")|json }}, "d": {{ x|default("a|b: c") }}}'
         "{% for r in event.related %}{{ loop.index }}{% else %}none{% endfor %}{#why#}")


def test_it_rewrites_the_django_spellings_jinja_does_not_share():
    assert jinja.to_jinja(DJANGO) == JINJA
    assert sandbox.check(JINJA) == []
    assert jinja.to_jinja('plain text | with: colons {{ event.event }}') == 'plain text | with: colons {{ event.event }}'


def test_it_migrates_every_template_field_of_stored_automations(db):
    a = store.save_automation(store.parse_automation({"name": "old", "trigger": {"expect": ["a"]}, "actions": [{"type": "do-nothing"}]}))
    old = [{"type": "call-webhook", "url": "https://example.com", "payload": DJANGO},
           {"type": "send-notification", "subject": "{{ x|default:'s' }}", "body": "{{ y|default:'b' }}"},
           {"type": "emit-event", "event": "{{ e|default:'e' }}", "resource": {"prefect.resource.id": "{{ r|default:'r' }}"},
            "related": [{"prefect.resource.id": "{{ q|default:'q' }}"}]}]
    Automation.objects.filter(pk=a.pk).update(actions=old, actions_on_resolve=old[:1])
    jinja.forwards(apps, None)
    a.refresh_from_db()
    webhook, notification, emit = a.actions
    assert webhook["payload"] == JINJA and a.actions_on_resolve[0]["payload"] == JINJA
    assert (notification["subject"], notification["body"]) == ("{{ x|default('s') }}", "{{ y|default('b') }}")
    assert emit["event"] == "{{ e|default('e') }}" and emit["resource"]["prefect.resource.id"] == "{{ r|default('r') }}"
    assert emit["related"][0]["prefect.resource.id"] == "{{ q|default('q') }}"

"""Action templates were Django templates; they render in Jinja2's sandbox now (eventfeed/sandbox.py).

Most Django templates are Jinja already (`{{ event.resource.id }}`, `{% if %}`, `{% for %}`). This
rewrites the spellings that differ: a filter argument after a colon (`|label:"x"` becomes
`|label("x")`), `{% empty %}`, `forloop.*`, `{% comment %}` and `{% verbatim %}`. What has no Jinja
equivalent (Django-only filters such as `date`) is left as written: the action then fails with the
template's reason, shown on the automation page, until it is edited.
"""

import re

from django.db import migrations

TEMPLATE_FIELDS = {
    "call-webhook": ("payload",),
    "send-notification": ("subject", "body"),
    "emit-event": ("event",),
}
TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
FILTER_ARGUMENT = re.compile(r"""\|\s*(\w+)\s*:\s*("[^"]*"|'[^']*'|[\w.\-]+)""")
FORLOOP = {"forloop.counter0": "loop.index0", "forloop.counter": "loop.index", "forloop.revcounter0": "loop.revindex0",
           "forloop.revcounter": "loop.revindex", "forloop.first": "loop.first", "forloop.last": "loop.last"}
BLOCKS = {"empty": "else", "comment": None, "endcomment": None, "verbatim": "raw", "endverbatim": "endraw"}


def to_jinja(source):
    if not isinstance(source, str):
        return source

    def tag(match):
        text = FILTER_ARGUMENT.sub(r"|\1(\2)", match.group(0))
        for old, new in FORLOOP.items():
            text = text.replace(old, new)
        word = text[2:-2].strip()
        if text.startswith("{%") and word in BLOCKS:
            new = BLOCKS[word]
            text = ("{% " + new + " %}") if new else ("{#" if word == "comment" else "#}")
        return text

    return TAG.sub(tag, source)


def convert_action(action):
    if not isinstance(action, dict):
        return action
    action = dict(action)
    for field in TEMPLATE_FIELDS.get(action.get("type"), ()):
        action[field] = to_jinja(action.get(field))
    if action.get("type") == "emit-event":
        if isinstance(action.get("resource"), dict):
            action["resource"] = {k: to_jinja(v) for k, v in action["resource"].items()}
        if isinstance(action.get("related"), list):
            action["related"] = [{k: to_jinja(v) for k, v in r.items()} if isinstance(r, dict) else r for r in action["related"]]
    return action


def forwards(apps, schema_editor):
    Automation = apps.get_model("automations", "Automation")
    ActionRun = apps.get_model("automations", "ActionRun")
    for automation in Automation.objects.all().iterator():
        changed = False
        for field in ("actions", "actions_on_trigger", "actions_on_resolve"):
            old = getattr(automation, field) or []
            new = [convert_action(a) for a in old]
            if new != old:
                setattr(automation, field, new)
                changed = True
        if changed:
            automation.save(update_fields=["actions", "actions_on_trigger", "actions_on_resolve"])
    for run in ActionRun.objects.filter(status__in=["pending", "running"]).iterator():
        new = convert_action(run.action)
        if new != run.action:
            run.action = new
            run.save(update_fields=["action"])


class Migration(migrations.Migration):
    dependencies = [("automations", "0002_evaluated_event")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

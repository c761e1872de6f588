"""Prefect's own SDK and CLI (`prefect.automations.Automation`, the client's automation calls,
`prefect automation …`) against our /api/automations/ on a live Daphne."""

from __future__ import annotations

import json

import pytest

from eventfeed.automations import store
from eventfeed.automations.models import Automation
from eventfeed.events.models import ApiKey
from tests.browser.conftest import serve
from tests.prefect_sdk import require_prefect, run_cli, run_python, sdk_env

require_prefect()

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, django_db_blocker):
    yield from serve(django_db_blocker)


@pytest.fixture
def env(asgi_server, tmp_path):
    _, key = ApiKey.create("prefect sdk")
    return sdk_env(tmp_path / "home", PREFECT_API_URL=f"{asgi_server}/api", PREFECT_API_AUTH_STRING=key)


SCRIPT = """
from prefect.automations import Automation
from prefect.events.actions import DoNothing
from prefect.events.schemas.automations import EventTrigger, Posture

trigger = EventTrigger(expect={"acme.sdk"}, match={"prefect.resource.id": "acme.*"}, for_each={"prefect.resource.id"},
                       posture=Posture.Reactive, threshold=2, within=60)
created = Automation(name="from the sdk", trigger=trigger, actions=[DoNothing()]).create()
read = Automation.read(id=created.id)
assert read.name == "from the sdk" and read.trigger.threshold == 2 and read.trigger.for_each == {"prefect.resource.id"}, read
read.disable()
assert Automation.read(id=created.id).enabled is False
print(created.id)
"""


def test_it_creates_reads_and_disables_an_automation_with_the_prefect_sdk(env):
    result = run_python(SCRIPT, env)
    assert result.returncode == 0, result.stderr
    automation = Automation.objects.get(pk=result.stdout.strip().splitlines()[-1])
    assert automation.enabled is False
    assert automation.trigger["expect"] == ["acme.sdk"] and automation.actions == [{"type": "do-nothing"}]


EVENT = {"type": "event", "match": {"prefect.resource.id": "acme.*"}, "expect": ["acme.done"], "posture": "Reactive", "threshold": 1}
# What the automation form and the Automate button create: every action Eventfeed has.
EVERYTHING = {
    "name": "everything eventfeed has",
    "trigger": {"type": "compound", "require": "any", "within": 300, "triggers": [
        EVENT,
        {"type": "sequence", "within": 60, "triggers": [EVENT, {**EVENT, "expect": ["acme.later"]}]},
        {"type": "event", "after": ["acme.start"], "expect": ["acme.heartbeat"], "for_each": ["prefect.resource.id"],
         "posture": "Proactive", "threshold": 1, "within": 30},
    ]},
    "actions": [
        {"type": "call-webhook", "url": "https://hooks.example.com/x", "payload": '{"e": {{ event.event|json }}}'},
        {"type": "send-notification", "subject": "{{ automation.name }}", "body": "b", "to": ["ops@example.com"]},
        {"type": "emit-event", "event": "acme.alert", "resource": {"prefect.resource.id": "acme.alert.1"}},
        {"type": "pause-automation", "source": "inferred"},
        {"type": "do-nothing"},
    ],
    "actions_on_resolve": [{"type": "send-notification", "body": "resolved"}],
}

READ_BACK = """
import json, sys
from uuid import UUID
from prefect import get_client
from prefect.automations import Automation
from prefect.events.actions import DoNothing, UnknownAction, PauseAutomation
from prefect.events.schemas.automations import AutomationCore, EventTrigger

target = UUID(sys.argv[1])
read = Automation.read(id=target)
kinds = [type(a).__name__ for a in read.actions]
assert kinds == ["UnknownAction", "UnknownAction", "UnknownAction", "PauseAutomation", "DoNothing"], kinds
assert read.actions[0].type == "eventfeed-call-webhook" and read.actions[0].model_extra["url"] == "https://hooks.example.com/x"
assert type(read.trigger).__name__ == "CompoundTrigger", read.trigger
assert Automation.read(name="everything eventfeed has").id == target

# Read, change the name, write back: Eventfeed's own actions travel unchanged.
read.name = "renamed by the sdk"
read.update()

with get_client(sync_client=True) as client:
    everything = client.read_automations()
    assert {a.name for a in everything} >= {"renamed by the sdk", "plain"}, everything
    assert client.find_automation("renamed by the sdk").id == target
    assert client.find_automation("RENAMED BY THE SDK").id == target
    assert client.find_automation(str(target)).id == target
    assert [a.id for a in client.read_automations_by_name("renamed by the sdk")] == [target]
    assert target in [a.id for a in client.read_resource_related_automations("acme.order.7")]
    plain = client.find_automation("plain")
    # update_automation() dumps with exclude_unset: no `type` anywhere.
    client.update_automation(plain.id, AutomationCore(name="plain, updated", trigger=EventTrigger(expect={"acme.x"}),
                                                      actions=[DoNothing()]))
    client.pause_automation(plain.id)
    client.resume_automation(plain.id)
    owned = Automation(name="owned", trigger=EventTrigger(expect={"acme.y"}), actions=[DoNothing()],
                       owner_resource="acme.owner.1").create()
    client.delete_resource_owned_automations("acme.owner.1")
    assert client.read_automations_by_name("owned") == []
    sdk_made = Automation(name="short-lived", trigger=EventTrigger(expect={"acme.z"}), actions=[DoNothing()]).create()
    sdk_made.disable()
    sdk_made.enable()
    assert Automation.read(id=sdk_made.id).enabled is True
    assert sdk_made.delete() is True
    page = client.read_events(limit=100)
    assert page.total >= 1, page
print("ok")
"""


def test_it_reads_every_automation_eventfeed_stores_through_the_sdk(env):
    everything = store.save_automation({**store.parse_automation(EVERYTHING)})
    store.save_automation(store.parse_automation({"name": "plain", "trigger": EVENT}))
    result = run_python(READ_BACK.replace("sys.argv[1]", repr(str(everything.id))), env)
    assert result.returncode == 0, result.stderr
    everything.refresh_from_db()
    assert everything.name == "renamed by the sdk"
    assert everything.actions == store.parse_automation(EVERYTHING)["actions"]
    assert everything.actions_on_resolve[0]["type"] == "send-notification"
    plain = Automation.objects.get(name="plain, updated")
    assert plain.enabled is True and plain.actions == [{"type": "do-nothing"}] and plain.trigger["expect"] == ["acme.x"]


def test_it_serves_the_prefect_automation_cli(env):
    everything = store.save_automation(store.parse_automation(EVERYTHING))
    other = store.save_automation(store.parse_automation({"name": "second", "trigger": EVENT}))

    listed = run_cli(["automation", "ls"], env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "everything eventfeed has" in listed.stdout and "second" in listed.stdout

    inspected = run_cli(["automation", "inspect", "--id", str(everything.id), "--json"], env)
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    shown = json.loads(inspected.stdout)
    assert shown["actions"][0]["type"] == "eventfeed-call-webhook" and shown["actions"][3]["type"] == "pause-automation"

    paused = run_cli(["automation", "pause", "--id", str(everything.id)], env)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    everything.refresh_from_db()
    assert everything.enabled is False
    resumed = run_cli(["automation", "resume", "--id", str(everything.id)], env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    everything.refresh_from_db()
    assert everything.enabled is True

    deleted = run_cli(["automation", "delete", "--id", str(other.id)], env)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert list(Automation.objects.values_list("name", flat=True)) == ["everything eventfeed has"]

    store.save_automation(store.parse_automation({"name": "third", "trigger": EVENT}))
    everyone = run_cli(["automation", "delete", "--all"], env)
    assert everyone.returncode == 0, everyone.stdout + everyone.stderr
    assert "Deleted 2 automations" in everyone.stdout
    assert not Automation.objects.exists()
